"""Does patchiness's relation to the score survive other numbers of bins and smaller samples?

The measures stage re-measures each model's sample at the settings of ``measures.sweep``
(:mod:`latentgeo.geometry.measures.sweep`); here every setting becomes one measure column of the
results table's models, and the regression (:func:`latentgeo.analysis.regression.regress`, the
same fits, controls and held-out rows as the main analysis) gives per setting: r with its CI,
partial r given the controls and its Holm-adjusted p-value across the settings.

    rows:      model, quantizer, m, nbits, k, n_sequences (None: whole sample), n, train_size,
               <cell measures>, patchiness_sd
    relations: setting, quantizer, m, nbits, k, bins (M·k), n_sequences, n_vectors (median over
               models), patchiness_mean, patchiness_seed_sd (median), n, r, ci_low, ci_high,
               p_value, partial_r, partial_p_value, partial_p_holm
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from latentgeo.analysis.regression import regress
from latentgeo.analysis.table import read_measure_results, select_models
from latentgeo.errors import LatentgeoError
from latentgeo.plotting import figure_style, new_figure, provenance, save_figure

WHOLE = "whole"  # the n_sequences label of the whole sample
RELATION_COLUMNS = [
    "setting", "quantizer", "m", "nbits", "k", "bins", "n_sequences", "n_vectors", "patchiness_mean",
    "patchiness_seed_sd", "n", "r", "ci_low", "ci_high", "p_value", "partial_r", "partial_p_value",
    "partial_p_holm",
]


def setting_name(quantizer: str, m: int, nbits: int, n_sequences: int | None) -> str:
    """The column name of one sweep setting, e.g. ``pq_m4_nbits8_whole`` or ``pq_m4_nbits8_seq250``."""
    size = WHOLE if n_sequences is None else f"seq{int(n_sequences)}"
    return f"{quantizer}_m{int(m)}_nbits{int(nbits)}_{size}"


def read_sweep_rows(measures_dir: str | os.PathLike, model_ids: Sequence[str]) -> pd.DataFrame:
    """The ``sweep`` rows of each model's measures file (found under ``measures_dir`` as the
    results table finds them), with ``model`` and ``setting`` columns; every model must have the
    same settings."""
    entries = select_models(read_measure_results(measures_dir), model_ids, "measures")
    frames, settings = [], None
    for model_id in model_ids:
        path, rows = entries[model_id]["source"], entries[model_id]["data"].get("sweep")
        if not rows:
            raise LatentgeoError(f"{path} has no sweep: rerun the measures stage with measures.sweep set")
        frame = pd.DataFrame(rows).assign(model=model_id)
        these = [setting_name(r["quantizer"], r["m"], r["nbits"], r["n_sequences"]) for r in rows]
        if settings is not None and these != settings:
            raise LatentgeoError(f"{path}: sweep settings {these} differ from the other models' {settings}")
        settings = these
        frames.append(frame.assign(setting=these))
    if not frames:
        raise LatentgeoError("no models given")
    return pd.concat(frames, ignore_index=True)


def sweep_relations(
    rows: pd.DataFrame, table: pd.DataFrame, score: str, *, controls: Sequence[str] = (),
    measure: str = "patchiness",
) -> pd.DataFrame:
    """One row per sweep setting (columns :data:`RELATION_COLUMNS`, in sweep order): how ``measure``
    at that setting relates to ``score`` over the table's models (fits as the main regression)."""
    order = list(dict.fromkeys(rows["setting"]))
    wide = rows.pivot(index="model", columns="setting", values=measure)[order]
    missing = sorted(set(table["model"]) - set(wide.index))
    if missing:
        raise LatentgeoError(f"models of the table without sweep rows: {missing}")
    frame = table.drop(columns=[c for c in table.columns if c in order]).merge(
        wide, left_on="model", right_index=True, how="left")
    fits = regress(frame, score, measures=order, controls=controls)["measures"]
    out = []
    for setting in order:
        at = rows[rows["setting"] == setting]
        first = at.iloc[0]
        fit = fits[setting]
        n_seq = first["n_sequences"]
        out.append({
            "setting": setting,
            "quantizer": first["quantizer"],
            "m": int(first["m"]),
            "nbits": int(first["nbits"]),
            "k": int(first["k"]),
            "bins": int(first["m"]) * int(first["k"]),
            "n_sequences": WHOLE if pd.isna(n_seq) else str(int(n_seq)),
            "n_vectors": int(np.median(at["n"])),
            "patchiness_mean": float(at[measure].mean()),
            "patchiness_seed_sd": float(at["patchiness_sd"].median()) if at["patchiness_sd"].notna().any() else None,
            "n": fit["n"],
            "r": fit["r"],
            "ci_low": fit["r_ci_low"],
            "ci_high": fit["r_ci_high"],
            "p_value": fit["p_value"],
            "partial_r": fit.get("partial_r"),
            "partial_p_value": fit.get("partial_p_value"),
            "partial_p_holm": fit.get("partial_p_holm"),
        })
    return pd.DataFrame(out, columns=RELATION_COLUMNS)


def _panel(ax, part: pd.DataFrame, x: np.ndarray, labels: list[str], xlabel: str) -> None:
    r = part["r"].to_numpy(dtype=float)
    ax.errorbar(x, r, yerr=[r - part["ci_low"].to_numpy(dtype=float), part["ci_high"].to_numpy(dtype=float) - r],
                fmt="o-", color="C0", capsize=3, linewidth=1, markersize=4, label="r (95 % CI)")
    if part["partial_r"].notna().any():
        ax.plot(x, part["partial_r"].to_numpy(dtype=float), "s--", color="C3", markersize=4,
                linewidth=1, label="partial r given the controls")
    ax.axhline(0.0, color="0.3", linewidth=0.8)
    ax.set_xticks(x, labels)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel(xlabel)


def plot_patchiness_sweep(
    relations: pd.DataFrame, path: str | os.PathLike, *, score: str, suite: str, profile: str,
    main: tuple[int, int],
) -> Path:
    """r and partial r of ``score`` with patchiness per setting: left, the bins (whole sample;
    nbits at the main m, then m at the main nbits); right, the sample size at the main setting."""
    m0, b0 = main
    whole = relations[relations["n_sequences"] == WHOLE]
    by_nbits = whole[whole["m"] == m0].sort_values("nbits")
    by_m = whole[(whole["nbits"] == b0) & (whole["m"] != m0)].sort_values("m")
    bins = pd.concat([by_nbits, by_m])
    sizes = relations[(relations["m"] == m0) & (relations["nbits"] == b0)]
    sizes = pd.concat([sizes[sizes["n_sequences"] != WHOLE].sort_values(
        "n_sequences", key=lambda s: s.astype(int)), sizes[sizes["n_sequences"] == WHOLE]])
    quantizer = str(relations["quantizer"].iloc[0]).upper()
    with figure_style():
        fig = new_figure(9.0, 3.8)
        left, right = fig.subplots(1, 2, sharey=True)
        _panel(left, bins, np.arange(len(bins)),
               [f"M={m}\nk={k}" for m, k in zip(bins["m"], bins["k"])], "codebooks M × centroids k (whole sample)")
        _panel(right, sizes, np.arange(len(sizes)),
               [f"{s}\n({n:,} vec)" if s != WHOLE else f"all\n({n:,} vec)"
                for s, n in zip(sizes["n_sequences"], sizes["n_vectors"])],
               f"sequences in the sample (M={m0}, k={2**b0})")
        left.set_ylabel(f"correlation with {score}")
        left.legend(loc="lower left", fontsize=7)
        n_models = f"n = {int(relations['n'].max())} fitted models"
        fig.suptitle(f"{quantizer} patchiness against the score, at other bins and sample sizes\n"
                     f"{provenance(suite, profile, n_models)}")
        return save_figure(fig, path)
