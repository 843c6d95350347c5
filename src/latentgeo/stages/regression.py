"""The regression stage (notebook 07): results table → regression → DVC plot files → figures.

It reads only the outputs of earlier stages (fine-tuning scores, measures) and writes, each
atomically: the results table (CSV), the regression result (JSON, a DVC metrics file), two small
CSV files for ``dvc plots`` (score vs. α, r per measure) and four figures (the measures vs. α
figure belongs to the measures-family stage, :mod:`latentgeo.stages.measures_family`). Output paths come
from the caller (dvc.yaml → papermill parameters); settings from ``params.regression``, whose
``controls`` (e.g. ``log1p(alpha)``) give each measure's partial r: every measure moves with the
noise level, and the partial r says what a measure tells about the score beyond α.

Besides the profile's score, regression.json holds two more analyses under their own top-level
keys: ``secondary_score``, the r and partial r of every measure with the other summary score
(``score_normalised``, the chance-normalised average, when the profile regresses
``score_average``; ``score_average`` otherwise), and ``leave_one_family_out``, each measure's error
predicting a family of models (``base_model``) from the others, against the controls alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from latentgeo.analysis.figures import (
    plot_partial_r_vs_r,
    plot_partial_vs_r,
    plot_pearson_r,
    plot_score_vs_alpha,
    plot_score_vs_top_measures,
)
from latentgeo.analysis.lofo import leave_one_family_out, lofo_table
from latentgeo.analysis.regression import (
    correlation_summary,
    heldout_error_table,
    partial_table,
    pearson_table,
    regress,
)
from latentgeo.analysis.sweep import plot_patchiness_sweep, read_sweep_rows, sweep_relations
from latentgeo.analysis.table import (
    SCORE_AVERAGE,
    SCORE_NORMALISED,
    build_results_table,
    score_columns,
    write_results_table,
)
from latentgeo.config.schema import Params
from latentgeo.io import write_csv, write_json
from latentgeo.plotting import provenance

FIGURE_NAMES = {
    "score_vs_alpha": "score_vs_alpha.png",
    "score_vs_top_measures": "score_vs_top_measures.png",
    "pearson_r": "pearson_r.png",
    "partial_r": "partial_r.png",
    "partial_r_vs_r": "partial_r_vs_r.png",
    "patchiness_sweep": "patchiness_sweep.png",
}
# Top-level keys of regression.json added beside the primary analysis (module docstring).
SECONDARY_KEY = "secondary_score"
LOFO_KEY = "leave_one_family_out"


def secondary_score(primary: str) -> str:
    """The summary score analysed beside the profile's: the chance-normalised average, or the raw
    average when the profile already regresses the normalised one."""
    return SCORE_AVERAGE if primary == SCORE_NORMALISED else SCORE_NORMALISED
PLOT_NAMES = {"score_vs_alpha": "score_vs_alpha.csv", "pearson_r": "pearson_r.csv"}


# Published Pearson r with the average GLUE score on the bert-small sweep (n = 125), Marbut,
# Chandler & Wheeler (arXiv 2406.12159), for the paper-compatible patchiness (additive and
# product quantizer); recomputed from the published tables by `latentgeo reanalyse`.
PAPER_R = {"lsq_patchiness": 0.902, "pq_patchiness": 0.326}


def heldout_table(regression: dict) -> pd.DataFrame:
    """Predictions of the held-out (non-standard) models, one row per measure and model,
    measures in ranking order: measure, model, observed, predicted, error, pi_low, pi_high."""
    columns = ["measure", "model", "observed", "predicted", "error", "pi_low", "pi_high"]
    rows = [
        {"measure": name, **{k: p[k] for k in columns[1:]}}
        for name in regression["ranking"]
        for p in regression["measures"][name].get("heldout", {}).get("predictions", [])
    ]
    return pd.DataFrame(rows, columns=columns)


def paper_comparison(regression: dict, variant: str = "paper") -> pd.DataFrame:
    """Our r (with CI and n) beside the paper's published r for the patchiness measures.

    A measure is looked up as ``<name>`` or ``<name>_<variant>``; one absent from this run shows
    as missing rather than being dropped, so the comparison says what it could not compare.
    """
    rows = []
    for name, published in PAPER_R.items():
        found = next(
            (c for c in (name, f"{name}_{variant}") if c in regression["measures"]), None
        )
        fit = regression["measures"].get(found, {}) if found else {}
        rows.append({
            "measure": found or name,
            "paper_r": published,
            "r": fit.get("r"),
            "ci_low": fit.get("r_ci_low"),
            "ci_high": fit.get("r_ci_high"),
            "n": fit.get("n"),
        })
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class RegressionStageResult:
    """What the stage produced: the table, the regression dict and the paths written."""

    table: pd.DataFrame
    regression: dict
    table_path: Path
    regression_path: Path
    plots: dict[str, Path]
    figures: dict[str, Path]
    sweep: pd.DataFrame  # analysis.sweep.sweep_relations: patchiness vs score per sweep setting

    @property
    def pearson(self) -> pd.DataFrame:
        """r per measure with its CI, strongest positive first."""
        return pearson_table(self.regression)

    @property
    def heldout(self) -> pd.DataFrame:
        """How well each line predicts the non-standard models."""
        return heldout_table(self.regression)

    @property
    def partial(self) -> pd.DataFrame:
        """r and partial r given the profile's controls per measure, with Holm-adjusted p-values
        (empty when the profile names no control)."""
        if not self.regression.get("controls"):
            return pd.DataFrame()
        return partial_table(self.regression)

    @property
    def heldout_errors(self) -> pd.DataFrame:
        """Held-out MSE per measure (plain line, and group fit when the profile has a group)."""
        return heldout_error_table(self.regression)

    @property
    def secondary(self) -> pd.DataFrame:
        """r and partial r of every measure with the secondary score (``score_normalised`` when
        the profile regresses ``score_average``), in the primary ranking's order."""
        return secondary_table(self.regression)

    @property
    def lofo(self) -> pd.DataFrame:
        """Leave-one-family-out RMSE/MAE per measure against the controls-only baseline (empty
        with one family: ``regression["leave_one_family_out"]["reason"]`` says why)."""
        return lofo_table(self.regression[LOFO_KEY])

    @property
    def paper(self) -> pd.DataFrame:
        """r of the patchiness measures here beside the paper's published values."""
        return paper_comparison(self.regression, self.regression.get("patchiness_variant", "paper"))


def secondary_table(regression: dict) -> pd.DataFrame:
    """Per measure (primary ranking order): r and partial r with the primary score beside those
    with the secondary score; columns ``measure``, ``r``, ``partial_r``, ``partial_p_holm``, then
    the same three with the secondary score's name as suffix (e.g. ``r_score_normalised``)."""
    other = regression[SECONDARY_KEY]
    suffix = f"_{other['score']}"
    keys = ("r", "partial_r", "partial_p_holm")
    rows = []
    for name in regression["ranking"]:
        mine, theirs = regression["measures"][name], other["measures"].get(name, {})
        rows.append({"measure": name, **{k: mine.get(k) for k in keys},
                     **{k + suffix: theirs.get(k) for k in keys}})
    return pd.DataFrame(rows, columns=["measure", *keys, *(k + suffix for k in keys)])


def score_vs_alpha_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Rows with an α (base + perturbed models): model, family, alpha, seed and every score
    column (``score_<task>``, ``score_average``), for ``dvc plots`` (x: alpha)."""
    rows = table[table["alpha"].notna()]
    return rows[["model", "family", "alpha", "seed", *score_columns(table)]].reset_index(drop=True)


def run_regression_stage(
    params: Params,
    finetune_dir: str | os.PathLike,
    measures_dir: str | os.PathLike,
    table_out: str | os.PathLike,
    regression_out: str | os.PathLike,
    plots_dir: str | os.PathLike,
    figures_dir: str | os.PathLike,
    sweep_out: str | os.PathLike,
) -> RegressionStageResult:
    """Build the table, regress ``params.regression.score`` on the measures, write everything.

    The table holds exactly the models and tasks of the active profile (``params.perturb``,
    ``finetune.tasks``): results of other profiles left in the same folders are ignored, missing
    ones are an error.

    Stage outputs are owned by the stage (DVC removes them before a rerun), so existing files
    are replaced. The regression JSON also records the suite, the profile and the patchiness
    variant, so the figures and the README can say what produced them.
    """
    settings = params.regression
    table = build_results_table(finetune_dir, measures_dir, params.perturb.model_ids(),
                                params.finetune.tasks)
    regression = regress(table, settings.score, measures=settings.measures, group=settings.group,
                         controls=settings.controls)
    suite = str(table["suite"].iloc[0])
    note = f"patchiness: {params.measures.patchiness_variant} form"
    other = regress(table, secondary_score(settings.score), measures=settings.measures,
                    group=settings.group, controls=settings.controls)
    regression = {
        **regression,
        "suite": suite,
        "profile": params.profile,
        "patchiness_variant": params.measures.patchiness_variant,
        SECONDARY_KEY: correlation_summary(other),
        LOFO_KEY: leave_one_family_out(table, settings.score, list(regression["measures"]),
                                       controls=settings.controls),
    }

    sweep = sweep_relations(read_sweep_rows(measures_dir, list(table["model"])), table, settings.score,
                            controls=settings.controls)

    table_path = write_results_table(table, table_out, overwrite=True)
    write_csv(sweep_out, sweep)
    regression_path = write_json(regression_out, regression)
    plots_dir, figures_dir = Path(plots_dir), Path(figures_dir)
    plots = {
        "score_vs_alpha": write_csv(plots_dir / PLOT_NAMES["score_vs_alpha"], score_vs_alpha_frame(table)),
        "pearson_r": write_csv(plots_dir / PLOT_NAMES["pearson_r"], pearson_table(regression)),
    }
    label = {"suite": suite, "profile": params.profile, "note": note}
    seed = settings.bootstrap_seed
    figures = {
        "score_vs_alpha": plot_score_vs_alpha(
            table, figures_dir / FIGURE_NAMES["score_vs_alpha"], seed=seed, **label
        ),
        "score_vs_top_measures": plot_score_vs_top_measures(
            table, regression, figures_dir / FIGURE_NAMES["score_vs_top_measures"],
            k=settings.top_measures, seed=seed, **label,
        ),
        "pearson_r": plot_pearson_r(regression, figures_dir / FIGURE_NAMES["pearson_r"], **label),
    }
    figures["partial_r"] = plot_partial_vs_r(
        regression, figures_dir / FIGURE_NAMES["partial_r"],
        title="Each measure's r with the score, and what is left given the controls",
        label=provenance(suite, params.profile, note),
    )
    figures["partial_r_vs_r"] = plot_partial_r_vs_r(
        regression, figures_dir / FIGURE_NAMES["partial_r_vs_r"],
        title="Partial r given the controls against r, per measure",
        label=provenance(suite, params.profile, note),
    )
    figures["patchiness_sweep"] = plot_patchiness_sweep(
        sweep, figures_dir / FIGURE_NAMES["patchiness_sweep"], score=settings.score, suite=suite,
        profile=params.profile, main=(params.measures.m, params.measures.nbits),
    )
    return RegressionStageResult(table, regression, table_path, regression_path, plots, figures, sweep)
