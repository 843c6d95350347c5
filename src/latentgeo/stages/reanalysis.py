"""The reanalysis stage (``notebooks/08_paper_reanalysis.ipynb``, ``latentgeo reanalyse``): the
paper's published tables, checked against their manifest, reanalysed by
:mod:`latentgeo.analysis.reanalysis`, written as JSON and a partial-r figure."""

from __future__ import annotations

import os

from latentgeo.analysis.figures import plot_partial_r_vs_r, plot_partial_vs_r
from latentgeo.analysis.reanalysis import DEFAULT_CONTROLS, ReanalysisResult, read_published_tables, reanalyse
from latentgeo.analysis.references import Manifest, load_manifest, verify_references
from latentgeo.errors import LatentgeoError
from latentgeo.io import read_json, write_json


def run_reanalysis(
    manifest_path: str | os.PathLike,
    tables_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    figure: str | os.PathLike | None = None,
    *,
    controls: tuple[str, ...] | list[str] = DEFAULT_CONTROLS,
    label: str = "",
    ours: str | os.PathLike | None = None,
    pair_figure: str | os.PathLike | None = None,
) -> ReanalysisResult:
    """Verify the tables against the manifest, reanalyse them, write the JSON (``out``) and the
    partial-r figure (``figure``) when given, atomically. ``label`` goes on the figure.

    With ``ours`` (a study's ``results/regression.json``) and ``pair_figure``, also draw partial r
    against r per measure for that study beside the paper's sweep, on the same axes
    (:func:`~latentgeo.analysis.figures.plot_partial_r_vs_r`).
    """
    if (ours is None) != (pair_figure is None):
        raise LatentgeoError("ours and pair_figure go together: the study's regression.json and the figure to draw")
    study = read_json(ours) if ours is not None else None
    if study is not None and "measures" not in study:
        raise LatentgeoError(f"{ours} is not a regression result (no 'measures'): pass results/regression.json")
    manifest: Manifest = load_manifest(manifest_path)
    paths = verify_references(manifest, tables_dir)
    result = reanalyse(read_published_tables(paths), controls)
    result["provenance"] = {
        "repository": manifest.repository,
        "commit": manifest.commit,
        "tables": {t.role: {"path": t.path, "sha256": t.sha256, "rows": t.rows} for t in manifest.tables},
    }
    out_path = write_json(out, result) if out is not None else None
    figure_path = None
    if figure is not None:
        figure_path = plot_partial_vs_r(
            result["sweep"], figure,
            title="Published bert-small sweep: r and partial r with the GLUE average",
            label=label or f"{manifest.repository}@{manifest.commit[:7]} (published tables)",
        )
    if study is not None:
        plot_partial_r_vs_r(
            study, pair_figure,
            title="Partial r given the noise level against r, per measure",
            label=(f"left: profile {study.get('profile', '?')}, suite {study.get('suite', '?')}; right: "
                   f"{manifest.repository}@{manifest.commit[:7]} published bert-small sweep"),
            paper=result,
            names=(f"this study ({study.get('profile', '?')} profile)", "the paper's bert-small sweep (published)"),
        )
    return ReanalysisResult(result, out_path, figure_path)
