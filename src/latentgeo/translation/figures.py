"""The stitching figures: source × target heatmaps per method, stitched accuracy against the
number of anchors, and each pair's CKA against its translation R².

Each takes tidy tables of :mod:`latentgeo.translation.experiments` and an output path, draws in
the project's fixed style (:mod:`latentgeo.plotting`), labels the figure with the suite and
profile that made it, and returns the path. Methods are labelled by how they are fitted
(:data:`latentgeo.translation.methods.METHOD_LABELS`).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from latentgeo.plotting import figure_style, new_figure, provenance, save_figure
from latentgeo.translation.methods import METHOD_LABELS

# Imported inside the functions that use them (heavy): seaborn.

def _pair_matrix(grid: pd.DataFrame, encoders: list[str], value: str) -> pd.DataFrame:
    m = grid.pivot(index="source", columns="target", values=value)
    return m.reindex(index=encoders, columns=encoders)


def _annotated_matrix(ax, matrix: pd.DataFrame, vmin: float | None, vmax: float | None, cmap: str):
    """A heatmap drawn with imshow and one text per cell (seaborn's heatmap is ~10× slower here)."""
    values = matrix.to_numpy(dtype=float)
    image = ax.imshow(np.ma.masked_invalid(values), vmin=vmin, vmax=vmax, cmap=cmap)
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            r, g, b, _ = image.cmap(image.norm(v))
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5  # perceived luminance of the cell
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white" if dark else "black")
    ax.set_xticks(range(values.shape[1]), matrix.columns, rotation=60, ha="right")
    ax.set_yticks(range(values.shape[0]), matrix.index)
    ax.grid(False)
    return image


def _coinciding_methods(grid: pd.DataFrame, a: str, b: str, value: str, tol: float = 0.01) -> float | None:
    """Largest |difference| of ``value`` between methods a and b over the same pairs and
    pre-processing, when it is below ``tol`` (a's points are then hidden under b's); else None."""
    keys = ["source", "target", "preprocess"]
    va = grid[grid["method"] == a].set_index(keys)[value]
    vb = grid[grid["method"] == b].set_index(keys)[value]
    if va.empty or vb.empty:
        return None
    gap = float((va - vb.reindex(va.index)).abs().max())
    return gap if gap < tol else None


def plot_heatmaps(
    grid: pd.DataFrame, value: str, label: str, path: Path, *, suite: str, profile: str, note: str,
    vmin: float | None = None, vmax: float | None = None, cmap: str = "viridis",
) -> Path:
    """One source × target heatmap of ``value`` per method (columns) and pre-processing (rows)."""
    encoders = list(dict.fromkeys([*grid["source"], *grid["target"]]))
    methods, preps = list(dict.fromkeys(grid["method"])), list(dict.fromkeys(grid["preprocess"]))
    with figure_style():
        # Square panels keep their aspect, so the constrained layout cannot shrink them to make
        # room: each row gets its panel, its title and a gap, the last row its rotated names.
        fig = new_figure(2.4 * len(methods) + 1.2, 2.5 * len(preps) + 1.4)
        axes = fig.subplots(len(preps), len(methods), squeeze=False)
        for (i, p), (j, m) in itertools.product(enumerate(preps), enumerate(methods)):
            ax = axes[i, j]
            sub = grid[(grid["method"] == m) & (grid["preprocess"] == p)]
            image = _annotated_matrix(ax, _pair_matrix(sub, encoders, value), vmin, vmax, cmap)
            ax.set_title(f"{METHOD_LABELS[m]} · {p}")
            ax.set_xlabel("target" if i == len(preps) - 1 else "")
            ax.set_ylabel("source" if j == 0 else "")
            if j:
                ax.set_yticklabels([])
            if i < len(preps) - 1:
                ax.set_xticklabels([])
        fig.colorbar(image, ax=axes, label=label, shrink=0.8)
        fig.suptitle(f"{label} per encoder pair (blank diagonal: same encoder)\n{provenance(suite, profile, note)}")
        return save_figure(fig, path)


def plot_anchor_sweep(sweep: pd.DataFrame, path: Path, *, suite: str, profile: str, note: str, seed: int) -> Path:
    """Stitched accuracy vs anchors (log axis), mean over ordered pairs with a seeded 95 % band."""
    import seaborn as sns

    sweep = sweep.assign(method=sweep["method"].map(METHOD_LABELS))  # legend says how each is fitted
    with figure_style():
        fig = new_figure(6.0, 3.8)
        ax = fig.subplots()
        sns.lineplot(
            data=sweep, x="n_anchors", y="stitched_accuracy", hue="method", marker="o", ax=ax,
            errorbar=("ci", 95), n_boot=1000, seed=seed,
        )
        target = sweep.groupby("n_anchors")["target_accuracy"].mean()
        ax.plot(target.index, target.values, "k--", lw=1, label="target's own (mean)")
        ax.axhline(sweep["chance_accuracy"].mean(), color="grey", ls=":", lw=1, label="chance (majority)")
        ax.set_xscale("log")
        counts = sorted(sweep["n_anchors"].unique())
        ax.set_xticks(counts, [str(c) for c in counts])
        ax.minorticks_off()
        ax.set_xlabel("anchors (parallel texts, log scale)")
        ax.set_ylabel("stitched accuracy on the fixed evaluation set")
        ax.set_ylim(0, 1)
        ax.legend(loc="lower right")
        fig.suptitle(f"Zero-shot stitched accuracy vs. number of anchors\n{provenance(suite, profile)}\n{note}")
        return save_figure(fig, path)


def plot_cka_vs_r2(grid: pd.DataFrame, similarity: pd.DataFrame, path: Path, *, suite: str, profile: str, note: str) -> Path:
    """Each ordered pair's linear CKA against its stitch R², per method (colour) and pre-processing."""
    import seaborn as sns

    cka = {frozenset((r.encoder_a, r.encoder_b)): r.linear_cka for r in similarity.itertuples()}
    data = grid.assign(
        linear_cka=[cka[frozenset((s, t))] for s, t in zip(grid["source"], grid["target"])],
        method=grid["method"].map(METHOD_LABELS),  # the legend says how each method is fitted
    )
    low = max(-1.0, float(data["r2"].min()) - 0.05)
    with figure_style():
        fig = new_figure(7.2, 4.0)
        ax = fig.subplots()
        sns.scatterplot(data=data, x="linear_cka", y="r2", hue="method", style="preprocess", ax=ax, s=30)
        ax.set_ylim(low, 1.0)
        ax.set_xlabel("linear CKA of the pair (all texts)")
        ax.set_ylabel("stitch R² on evaluation texts" + (" (clipped at −1)" if low == -1.0 else ""))
        # beside the axes: inside, the legend hid the pairs of highest CKA
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=6, frameon=False)
        hidden = _coinciding_methods(grid, "linear", "affine", "r2")
        if hidden is not None:  # say why a legend entry has no visible points
            ax.annotate(
                f"{METHOD_LABELS['linear']} lies under {METHOD_LABELS['affine']}\n(centred anchors: "
                f"the bias is ~0; R² within {hidden:.0e})",
                xy=(1.02, 0.0), xycoords="axes fraction", ha="left", va="bottom", fontsize=6,
            )
        fig.suptitle(f"Similarity index vs. translation quality\n{provenance(suite, profile)}\n{note}")
        return save_figure(fig, path)
