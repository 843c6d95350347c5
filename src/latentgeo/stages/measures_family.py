"""The family side by side (notebook ``05_measures_family``, DVC stage ``measures-family``).

The measures stage (notebook 04) measures one latent sample per model; this step reads every model's measures
file of the active profile and puts them side by side: one CSV row per model
(:func:`latentgeo.analysis.table.build_measures_table`), a small table of the headline measures, and every
measure against the noise level α (:func:`latentgeo.analysis.figures.plot_measures_vs_alpha`), the
non-standard models drawn as horizontal lines. It needs no fine-tuning result, so the geometry of a
family can be read before (or without) the downstream scores.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from latentgeo.analysis.collapse import collapse_table
from latentgeo.analysis.figures import plot_measures_vs_alpha
from latentgeo.analysis.seed_spread import seed_spread_table
from latentgeo.analysis.table import build_measures_table, write_results_table
from latentgeo.config.schema import Params

FIGURE_NAME = "measures_vs_alpha.png"
# The measures the small table shows (patchiness in the profile's variant, see headline_table).
HEADLINE_MEASURES = (
    "lsq_patchiness",
    "pq_patchiness",
    "lsq_point_dist",  # the paper's strongest measure on bert-base (r = −0.88) and RoBERTa (−0.76)
    "pq_point_dist",
    "lsq_reconstruction_error",
    "pq_reconstruction_error",
    "spread_isoscore",
    "spread_eee",
    "spread_effective_rank",
    "spread_twonn_id",
    "stitch_ortho_r2",
)


def headline_table(table: pd.DataFrame, variant: str = "paper") -> pd.DataFrame:
    """Model, family, α and the :data:`HEADLINE_MEASURES` present in ``table``.

    ``variant`` picks the patchiness form: ``paper`` (``*_patchiness``) or ``corrected``
    (``*_patchiness_corrected``, shown under the same name so the table keeps one layout).
    """
    renamed = {}
    for name in HEADLINE_MEASURES:
        source = f"{name}_corrected" if variant == "corrected" and name.endswith("_patchiness") else name
        if source in table.columns:
            renamed[source] = name
    return table[["model", "family", "alpha", *renamed]].rename(columns=renamed)


@dataclass(frozen=True)
class MeasuresFamilyResult:
    """The family's measures (``table``), its headline view, the quantizer-seed spread of its cell
    measures (:func:`latentgeo.analysis.seed_spread.seed_spread_table`), the collapse diagnostic
    (distinct token vectors per model, :func:`latentgeo.analysis.collapse.collapse_table`), and the
    paths written."""

    table: pd.DataFrame
    headline: pd.DataFrame
    seed_spread: pd.DataFrame
    collapse: pd.DataFrame
    table_path: Path
    seed_spread_path: Path
    collapse_path: Path
    figure: Path


def run_measures_family_stage(
    params: Params,
    measures_dir: str | os.PathLike,
    table_out: str | os.PathLike,
    figures_dir: str | os.PathLike,
    seed_spread_out: str | os.PathLike,
    collapse_out: str | os.PathLike,
) -> MeasuresFamilyResult:
    """Read the profile's measures files under ``measures_dir``; write the family table (CSV) to
    ``table_out``, the cell measures' quantizer-seed spread (CSV) to ``seed_spread_out``, the
    distinct token vectors per model (CSV) to ``collapse_out`` and
    ``figures_dir/measures_vs_alpha.png`` (every measure with a value), each atomically (stage
    outputs are replaced). Models of other profiles left in ``measures_dir`` are ignored; a missing
    one is an error naming it.
    """
    model_ids = params.perturb.model_ids()
    table = build_measures_table(measures_dir, model_ids)
    table_path = write_results_table(table, table_out, overwrite=True)
    spread = seed_spread_table(measures_dir, model_ids)
    spread_path = write_results_table(spread, seed_spread_out, overwrite=True)
    collapse = collapse_table(measures_dir, model_ids)
    collapse_path = write_results_table(collapse, collapse_out, overwrite=True)
    corpus = params.data.corpus
    figure = plot_measures_vs_alpha(
        table,
        Path(figures_dir) / FIGURE_NAME,
        suite=params.finetune.suite,
        profile=params.profile,
        note=f"{corpus.n_sequences} {params.data.source} corpus sequences per sample",
    )
    variant = params.measures.patchiness_variant
    return MeasuresFamilyResult(table, headline_table(table, variant), spread, collapse, table_path,
                                spread_path, collapse_path, figure)
