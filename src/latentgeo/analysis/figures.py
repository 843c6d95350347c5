"""Figures of the regression analysis, drawn with seaborn/matplotlib into PNG files.

Every figure is deterministic to the byte (:mod:`latentgeo.plotting`: the fixed style, the Agg
canvas, PNGs without metadata), and seaborn's bootstrap bands get an explicit ``seed``. Each
figure names the task suite and the profile that made it. Functions take the results table
(:mod:`latentgeo.analysis.table`) and/or a regression result
(:func:`latentgeo.analysis.regression.regress`) and an output path, and return the path.
"""

from __future__ import annotations

import math
import os
import re
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from latentgeo.analysis.regression import partial_table, pearson_table
from latentgeo.analysis.statistics import SIGNIFICANCE
from latentgeo.analysis.table import SCORE_AVERAGE, SCORE_NORMALISED, measure_columns, score_columns
from latentgeo.errors import LatentgeoError
from latentgeo.plotting import figure_style, new_figure, provenance, save_figure

# Imported inside the functions that use them (heavy, or rarely needed): matplotlib, seaborn.

N_BOOT = 1000
CI = ("ci", 95)
NONSTANDARD = "non-standard"


def _title(fig, title: str, suite: str, profile: str, note: str | None) -> None:
    fig.suptitle(f"{title}\n{provenance(suite, profile, note)}")


# A grid of at most this many positive noise levels gets a tick at each; a denser one at decades.
ALPHA_LEVEL_TICKS = 4


def _alpha_ticks(alphas: np.ndarray) -> list[float]:
    """Ticks of a symlog α scale (linear up to the smallest positive level): 0, then each level of
    a small grid or the decades inside the logarithmic part (a decade below the threshold would sit
    on the 0 tick)."""
    positive = alphas[np.isfinite(alphas) & (alphas > 0)]
    if not positive.size:
        return [0.0]
    levels = sorted({float(a) for a in positive})
    if len(levels) <= ALPHA_LEVEL_TICKS:
        return [0.0, *levels]
    low, high = math.floor(math.log10(levels[0])), math.ceil(math.log10(levels[-1]))
    return [0.0, *(10.0**k for k in range(low, high + 1) if levels[0] <= 10.0**k <= levels[-1] * 1.4)]


def _plain_numbers(axis) -> None:
    """Tick labels as plain numbers (1, 10, 0.5), not powers of ten."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))


def _alpha_axis(ax, alphas: np.ndarray) -> None:
    """α axis in percent, logarithmic above the smallest positive level so 0 stays visible."""
    from matplotlib.ticker import FixedLocator

    positive = alphas[np.isfinite(alphas) & (alphas > 0)]
    if positive.size:
        linthresh = float(positive.min())
        ax.set_xscale("symlog", linthresh=linthresh)
        # No negative half: α ≥ 0. A little room left of 0 and right of the largest level.
        ax.set_xlim(-0.25 * linthresh, float(positive.max()) * 1.4)
        ax.xaxis.set_major_locator(FixedLocator(_alpha_ticks(alphas)))
        _plain_numbers(ax.xaxis)
    ax.set_xlabel("noise level α (%)")


def _swept(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of the noise sweep (those with an α: base and perturbed models)."""
    if "alpha" not in table.columns:
        raise LatentgeoError("the table has no 'alpha' column; cannot plot against the noise level")
    rows = table[table["alpha"].notna()]
    if rows.empty:
        raise LatentgeoError("no row of the table has a noise level α")
    return rows


def _nonstandard(table: pd.DataFrame) -> pd.DataFrame:
    if "family" not in table.columns:
        return table.iloc[0:0]
    return table[table["family"] == NONSTANDARD]


def _base_models(table: pd.DataFrame) -> list:
    """The families of perturbed models (``base_model``) in order of first appearance; [None] for a
    table without the column (one family)."""
    if "base_model" not in table.columns or table["base_model"].isna().all():
        return [None]
    return list(dict.fromkeys(table["base_model"].dropna()))


def _nonstandard_kind(row: pd.Series) -> str:
    """What a non-standard model is, from its id: ``minilm-l6-untrained-s1`` of base ``minilm-l6``
    is ``untrained`` (the whole id when it does not have that form)."""
    model, base = str(row["model"]), row.get("base_model")
    kind = model.removeprefix(f"{base}-") if isinstance(base, str) else model
    return re.sub(r"-s\d+$", "", kind) or model


# Non-standard models: one line style per kind, in the colour of their family.
NONSTANDARD_STYLES = ("--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))


def _nonstandard_lines(table: pd.DataFrame, colours: dict) -> list[tuple[pd.Series, object, object, str]]:
    """(row, colour, line style, kind) for each non-standard model of the table: the colour of its
    family (grey if its family has none), a line style per kind."""
    others = _nonstandard(table)
    kinds = list(dict.fromkeys(_nonstandard_kind(row) for _, row in others.iterrows()))
    styles = {kind: NONSTANDARD_STYLES[i % len(NONSTANDARD_STYLES)] for i, kind in enumerate(kinds)}
    lines = []
    for _, row in others.iterrows():
        family = row.get("base_model") if "base_model" in others.columns else None
        colour = colours.get(family, colours.get(None, "0.35"))
        kind = _nonstandard_kind(row)
        lines.append((row, colour, styles[kind], kind))
    return lines


def _grid(n: int, ncols: int) -> tuple[int, int]:
    ncols = max(1, min(ncols, n))
    return math.ceil(n / ncols), ncols


# --------------------------------------------------------------------------------------------


def plot_score_vs_alpha(
    table: pd.DataFrame,
    path: str | os.PathLike,
    *,
    suite: str,
    profile: str,
    seed: int = 0,
    note: str | None = None,
) -> Path:
    """Score of every task and their average vs. α, one panel per family (``base_model``; shared
    score axis): the mean over the noise seeds with a seeded 95 % bootstrap band.

    The family's non-standard models, which have no α, are grey horizontal lines at their average
    score, one line style per kind.
    """
    import seaborn as sns

    # The chance-normalised average is on another scale (0 = chance): it has no place among the
    # task metrics.
    scores = [c for c in score_columns(table) if c != SCORE_NORMALISED]
    if not scores:
        raise LatentgeoError("the table has no score_* columns")
    from matplotlib.lines import Line2D

    rows = _swept(table)
    families = _base_models(rows)  # families with a noise sweep
    id_columns = ["model", "alpha"] + ([] if families == [None] else ["base_model"])
    long = rows.melt(id_vars=id_columns, value_vars=scores, var_name="task", value_name="score")
    long["task"] = long["task"].str.removeprefix("score_")
    tasks = [c.removeprefix("score_") for c in scores]
    colours = sns.color_palette("tab10", len(tasks))
    palette = {t: (0.0, 0.0, 0.0) if t == "average" else colours[i] for i, t in enumerate(tasks)}
    lines = _nonstandard_lines(table, dict.fromkeys(families, "0.35"))
    with figure_style():
        fig = new_figure(1.8 + 4.2 * len(families), 4.4)
        axes = fig.subplots(1, len(families), sharey=True, squeeze=False)[0]
        for ax, family in zip(axes, families):
            mine = long if family is None else long[long["base_model"] == family]
            sns.lineplot(
                data=mine, x="alpha", y="score", hue="task", hue_order=tasks, palette=palette,
                errorbar=CI, n_boot=N_BOOT, seed=seed, marker="o", markersize=4, legend=False, ax=ax,
            )
            if SCORE_AVERAGE in table.columns:
                # Labelled in the legend, not on the plot: their levels are often close together.
                for row, colour, style, kind in lines:
                    if family is None or row.get("base_model") == family:
                        ax.axhline(row[SCORE_AVERAGE], color=colour, linestyle=style, linewidth=1,
                                   label=f"{kind}\n(non-standard, average)")
            _alpha_axis(ax, rows["alpha"].to_numpy())
            ax.set_ylabel("score (task metric)")
            if family is not None:
                ax.set_title(str(family))
        legend = {task: Line2D([], [], color=palette[task], marker="o", markersize=4) for task in tasks}
        for ax in axes:  # each kind of non-standard model once, whichever panels show it
            for handle, label in zip(*ax.get_legend_handles_labels()):
                legend.setdefault(label, handle)
        axes[-1].legend(legend.values(), legend.keys(), title="task", loc="upper left",
                        bbox_to_anchor=(1.01, 1.0))
        _title(fig, "Downstream score vs. noise level", suite, profile, note)
        return save_figure(fig, path)


def _family_hue(families: list, colours: dict) -> dict:
    """seaborn's keywords for one line per family, or one colour for a single family."""
    if families == [None]:
        return {"color": colours[None]}
    return {"hue": "base_model", "hue_order": families, "palette": colours}


def _family_legend(fig, families: list, colours: dict, lines: list) -> None:
    """One legend under the panels: a line per family (when there are several), a line style per
    kind of non-standard model."""
    from matplotlib.lines import Line2D

    handles, labels = [], []
    if families != [None]:
        for family in families:
            handles.append(Line2D([], [], color=colours[family], marker="o", markersize=3))
            labels.append(str(family))
    for kind, style in dict.fromkeys((kind, style) for _, _, style, kind in lines):
        handles.append(Line2D([], [], color="0.35", linestyle=style, linewidth=1))
        labels.append(f"{kind} (non-standard)")
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(handles)))


def plot_measures_vs_alpha(
    table: pd.DataFrame,
    path: str | os.PathLike,
    *,
    suite: str,
    profile: str,
    measures: Sequence[str] | None = None,
    seed: int = 0,
    ncols: int = 4,
    note: str | None = None,
) -> Path:
    """A grid with one panel per measure vs. α: one line per family (``base_model``), the mean over
    the noise seeds with a seeded 95 % bootstrap band.

    ``measures`` defaults to every measure column with a value. Non-standard models are horizontal
    lines in their family's colour, one line style per kind (untrained, shuffled, ...).
    """
    import seaborn as sns

    rows = _swept(table)
    if measures is None:
        measures = [m for m in measure_columns(table) if table[m].notna().any()]
    missing = [m for m in measures if m not in table.columns]
    if missing:
        raise LatentgeoError(f"measure columns {missing} are not in the table")
    if not measures:
        raise LatentgeoError("no measure columns to plot")
    families = _base_models(rows)  # families with a noise sweep
    colours = dict(zip(families, sns.color_palette("tab10", len(families))))
    lines = _nonstandard_lines(table, colours)
    nrows, ncols = _grid(len(measures), ncols)
    with figure_style():
        fig = new_figure(2.9 * ncols, 2.3 * nrows + 0.8)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax, measure in zip(axes.flat, measures):
            sns.lineplot(
                data=rows, x="alpha", y=measure, errorbar=CI, n_boot=N_BOOT, seed=seed,
                marker="o", markersize=3, legend=False, ax=ax, **_family_hue(families, colours),
            )
            for row, colour, style, _ in lines:
                if pd.notna(row[measure]):
                    ax.axhline(row[measure], color=colour, linestyle=style, linewidth=1)
            _alpha_axis(ax, rows["alpha"].to_numpy())
            ax.set_title(measure)
            ax.set_ylabel("")
        for ax in list(axes.flat)[len(measures):]:
            ax.set_visible(False)
        _family_legend(fig, families, colours, lines)
        _title(fig, "Geometric measures vs. noise level", suite, profile, note)
        return save_figure(fig, path)


# Markers of the held-out models in the score-vs-measure panels, one per model, in table order.
HELD_MARKERS = ("X", "P", "D", "s", "^", "v", "*", "h")


def _fit_mask(table: pd.DataFrame, regression: dict) -> pd.Series:
    """Rows the per-measure lines were fitted on (the held-out family excluded)."""
    holdout = regression.get("holdout")
    if holdout and holdout["column"] in table.columns:
        return table[holdout["column"]] != holdout["value"]
    return pd.Series(True, index=table.index)


def plot_score_vs_top_measures(
    table: pd.DataFrame,
    regression: dict,
    path: str | os.PathLike,
    *,
    suite: str,
    profile: str,
    k: int = 4,
    seed: int = 0,
    ncols: int = 4,
    note: str | None = None,
) -> Path:
    """The score against the ``k`` measures with the largest |r|, with the OLS line.

    Points of the fit are coloured by α; the band is seaborn's seeded 95 % bootstrap interval of
    the line; held-out (non-standard) models are hollow red markers, one shape per model, named in
    the legend. Panel titles give r with its CI and n from ``regression``.
    """
    import seaborn as sns
    from matplotlib.colors import SymLogNorm

    if k < 1:
        raise LatentgeoError(f"k must be at least 1, got {k}")
    score = regression["score"]
    top = list(regression["ranking"][:k])
    missing = [c for c in [score, *top] if c not in table.columns]
    if missing:
        raise LatentgeoError(f"columns {missing} of the regression result are not in the table")
    fit_mask = _fit_mask(table, regression)
    has_alpha = "alpha" in table.columns and table["alpha"].notna().any()
    norm = None
    if has_alpha:
        alphas = table["alpha"].to_numpy(dtype="float64")
        positive = alphas[np.isfinite(alphas) & (alphas > 0)]
        linthresh = float(positive.min()) if positive.size else 1.0
        norm = SymLogNorm(linthresh=linthresh, vmin=0.0, vmax=float(np.nanmax(alphas)) or 1.0)
    nrows, ncols = _grid(len(top), ncols)
    with figure_style():
        fig = new_figure(3.2 * ncols + (0.8 if has_alpha else 0), 3.0 * nrows + 0.7)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        mappable, held_markers = None, {}
        for ax, measure in zip(axes.flat, top):
            used = table[[score, measure]].notna().all(axis=1)
            fit_rows = table[fit_mask & used]
            held = table[~fit_mask & used]
            sns.regplot(
                data=fit_rows, x=measure, y=score, scatter=False, ci=95, n_boot=N_BOOT, seed=seed,
                color="0.2", line_kws={"linewidth": 1.2}, ax=ax,
            )
            if has_alpha:
                mappable = ax.scatter(
                    fit_rows[measure], fit_rows[score], c=fit_rows["alpha"], cmap="viridis",
                    norm=norm, s=18, edgecolors="none", zorder=3,
                )
            else:
                ax.scatter(fit_rows[measure], fit_rows[score], color="C0", s=18, zorder=3)
            for _, row in held.iterrows():  # named in the legend: their ids are too long for the panels
                shape = HELD_MARKERS[len(held_markers) % len(HELD_MARKERS)]
                marker = held_markers.setdefault(str(row["model"]), shape)
                # hollow, so that two held-out models at the same place both show
                ax.scatter(row[measure], row[score], marker=marker, facecolors="none", edgecolors="C3",
                           linewidths=1.2, s=44, zorder=4)
            ax.margins(x=0.1, y=0.1)
            fit = regression["measures"][measure]
            ax.set_title(
                f"{measure}\nr = {fit['r']:.2f} [{fit['r_ci_low']:.2f}, {fit['r_ci_high']:.2f}],"
                f" n = {fit['n']}"
            )
            ax.set_xlabel(measure)
            ax.set_ylabel(score)
        for ax in list(axes.flat)[len(top):]:
            ax.set_visible(False)
        if mappable is not None:
            colorbar = fig.colorbar(mappable, ax=axes, label="noise level α (%)", shrink=0.8)
            colorbar.set_ticks(_alpha_ticks(alphas))
            _plain_numbers(colorbar.ax.yaxis)
        if held_markers:
            from matplotlib.lines import Line2D

            handles = [Line2D([], [], marker=m, color="C3", markerfacecolor="none", linestyle="",
                              markersize=6) for m in held_markers.values()]
            fig.legend(handles, list(held_markers), loc="outside lower center",
                       ncols=min(4, len(handles)), title="held out: non-standard models (not in the fit)")
        _title(fig, f"{score} vs. the {len(top)} strongest measures (OLS, 95 % band)", suite,
               profile, note)
        return save_figure(fig, path)


def plot_pearson_r(
    regression: dict,
    path: str | os.PathLike,
    *,
    suite: str,
    profile: str,
    note: str | None = None,
) -> Path:
    """Pearson r of the score with every measure and its 95 % CI (Fisher z), sorted by r."""
    frame = pearson_table(regression)
    if frame.empty:
        raise LatentgeoError("the regression result holds no fitted measure")
    frame = frame.iloc[::-1].reset_index(drop=True)  # strongest positive on top
    y = np.arange(len(frame))
    r = frame["r"].to_numpy()
    low = np.nan_to_num(r - frame["ci_low"].to_numpy(), nan=0.0)
    high = np.nan_to_num(frame["ci_high"].to_numpy() - r, nan=0.0)
    n_range = f"n = {frame['n'].min()}" if frame["n"].nunique() == 1 else (
        f"n = {frame['n'].min()}–{frame['n'].max()}"
    )
    with figure_style():
        fig = new_figure(6.0, max(2.6, 0.26 * len(frame) + 1.4))
        ax = fig.add_subplot()
        for sign, colour in ((r >= 0, "C0"), (r < 0, "C3")):
            if sign.any():
                ax.errorbar(r[sign], y[sign], xerr=[low[sign], high[sign]], fmt="o", color=colour,
                            markersize=4, capsize=2, linewidth=1)
        ax.axvline(0.0, color="0.3", linewidth=0.8)
        ax.set_yticks(y, frame["measure"].tolist())
        ax.set_xlim(-1.05, 1.05)
        ax.set_ylim(-0.7, len(frame) - 0.3)
        ax.set_xlabel(f"Pearson r with {regression['score']} (95 % CI, Fisher z; {n_range})")
        _title(fig, "Correlation of each measure with the downstream score", suite, profile, note)
        return save_figure(fig, path)


def plot_partial_vs_r(regression: dict, path: str | os.PathLike, *, title: str, label: str) -> Path:
    """Per measure (one row each, strongest |r| on top): its Pearson r with the score (grey) and
    its partial r given the controls (blue; filled when Holm-adjusted p < ``SIGNIFICANCE``),
    joined by a line.

    A long line towards 0 marks a measure that mostly tracks the controls (e.g. the noise level).
    Measures whose partial r is undefined (too few rows) show r alone, and a note says why. A
    figure is written even when no partial r is defined or the result has no controls (it then
    says so), so a stage that declares it always has its output.
    """
    if regression.get("controls"):
        frame = partial_table(regression)
        controls = ", ".join(regression["controls"]["exprs"])
        note = None
        undefined = frame[frame["partial_r"].isna()]
        if not undefined.empty:
            reason = regression["measures"][undefined["measure"].iloc[0]].get("partial_undefined")
            note = f"partial r undefined for {len(undefined)} of {len(frame)} measures: {reason}"
    else:
        frame = pearson_table(regression)
        frame = frame.assign(partial_r=float("nan"), partial_p_holm=float("nan"), partial_n=float("nan"))
        frame = frame.reindex(frame["r"].abs().sort_values(ascending=False, kind="mergesort").index)
        controls, note = "(none)", "no controls were given: partial r not computed"
    frame = frame.iloc[::-1].reset_index(drop=True)  # strongest |r| at the top
    y = np.arange(len(frame))
    r = frame["r"].to_numpy(dtype="float64")
    pr = frame["partial_r"].to_numpy(dtype="float64")
    significant = (frame["partial_p_holm"].to_numpy(dtype="float64") < SIGNIFICANCE)
    n = sorted({int(v) for v in frame["partial_n"].dropna()})
    n_text = f"n = {n[0]}" if len(n) == 1 else (f"n = {n[0]}–{n[-1]}" if n else "")
    with figure_style():
        fig = new_figure(6.4, max(2.8, 0.24 * len(frame) + 1.8))
        ax = fig.add_subplot()
        defined = np.isfinite(pr)
        for yi, a, b in zip(y[defined], r[defined], pr[defined]):
            ax.plot([a, b], [yi, yi], color="0.75", linewidth=1.2, zorder=1)
        ax.scatter(r, y, color="0.45", s=16, zorder=2, label="r")
        filled, hollow = defined & significant, defined & ~significant
        ax.scatter(pr[filled], y[filled], color="C0", s=22, zorder=3,
                   label=f"partial r, Holm p < {SIGNIFICANCE:g}")
        ax.scatter(pr[hollow], y[hollow], facecolors="white", edgecolors="C0", s=22, zorder=3,
                   label="partial r, not significant after Holm")
        ax.axvline(0.0, color="0.3", linewidth=0.8)
        ax.set_yticks(y, frame["measure"].tolist())
        ax.set_xlim(-1.05, 1.05)
        ax.set_ylim(-0.7, len(frame) - 0.3)
        ax.set_xlabel(f"correlation with {regression['score']}; partial r given {controls}"
                      + (f" ({n_text})" if n_text else ""))
        fig.legend(loc="outside lower center", ncols=3)
        if note:
            ax.set_title("\n".join(textwrap.wrap(note, 95)), fontsize=7)
        fig.suptitle(f"{title}\n{label}")
        return save_figure(fig, path)


# How many points of a partial-r-vs-r panel carry their measure's name (the largest |partial r|).
PARTIAL_LABELS = 10


def _stack_overlapping_labels(labels, gap_points: float = 0.5) -> None:
    """Move point labels (annotations at an offset in points) down until none overlaps another.

    Measures that move alike sit on the same spot (a patchiness and its corrected variant), and
    their names then print over each other. Labels are placed top to bottom in the order given
    within equal heights; each one that would overlap a label already placed steps down by its own
    height until it is clear, its leader line pointing back to its point. Deterministic, and only
    the offsets change: the points stay where they are. Needs a drawn figure (the labels' extents).
    """
    if not labels:
        return
    from matplotlib.text import Text

    renderer = labels[0].figure.canvas.get_renderer()
    points_per_pixel = 72.0 / labels[0].figure.dpi

    def text_box(label):  # the text alone: an annotation's own extent includes its leader line
        return Text.get_window_extent(label, renderer)

    placed = []
    for label in sorted(labels, key=lambda a: -text_box(a).y1):
        box = text_box(label)
        step = box.height * points_per_pixel + gap_points
        moved = False
        for _ in range(len(labels)):
            if not any(box.overlaps(other) for other in placed):
                break
            x, y = label.xyann
            label.xyann = (x, y - step)
            box, moved = text_box(label), True
        if label.arrow_patch is not None:
            label.arrow_patch.set_visible(moved)  # a leader line only where a label left its point
        placed.append(box)


def _partial_vs_r_panel(ax, regression: dict, name: str) -> list:
    """One panel of :func:`plot_partial_r_vs_r`: partial r (y) against r (x), one point per
    measure (the :data:`PARTIAL_LABELS` largest |partial r| named), filled when Holm p <
    ``SIGNIFICANCE``; a note instead when there is no partial r. Returns the name labels."""
    ax.axline((0.0, 0.0), slope=1.0, color="0.6", linewidth=0.8, linestyle="--", zorder=0)
    ax.axhline(0.0, color="0.3", linewidth=0.8, zorder=0)
    ax.axvline(0.0, color="0.3", linewidth=0.8, zorder=0)
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_aspect("equal")
    ax.set_xlabel(f"r with {regression.get('score', 'the score')}")
    if not regression.get("controls"):
        ax.set_title(f"{name}\n(no controls: partial r not computed)", fontsize=8)
        return []
    frame = partial_table(regression)
    controls = ", ".join(regression["controls"]["exprs"])
    defined = frame["partial_r"].notna().to_numpy()
    significant = (frame["partial_p_holm"].to_numpy(dtype="float64") < SIGNIFICANCE) & defined
    r = frame["r"].to_numpy(dtype="float64")
    pr = frame["partial_r"].to_numpy(dtype="float64")
    ax.scatter(r[significant], pr[significant], color="C0", s=22, zorder=3,
               label=f"Holm p < {SIGNIFICANCE:g}")
    ax.scatter(r[defined & ~significant], pr[defined & ~significant], facecolors="white",
               edgecolors="C0", s=22, zorder=3, label="not significant after Holm")
    # Dozens of measures crowd near |r| = 1: name only those that keep the most beyond the controls.
    order = np.argsort(-np.abs(np.where(defined, pr, 0.0)), kind="stable")[:PARTIAL_LABELS]
    # Names of points near the right edge go to their left, where the axes have room for them.
    labels = [
        ax.annotate(frame["measure"].iloc[i], (r[i], pr[i]), textcoords="offset points",
                    xytext=(-3, 2) if r[i] > 0.5 else (3, 2), ha="right" if r[i] > 0.5 else "left",
                    fontsize=5.5, arrowprops={"arrowstyle": "-", "color": "0.6", "linewidth": 0.4,
                                              "shrinkA": 0, "shrinkB": 2})
        for i in order[defined[order]]
    ]
    for label in labels:
        label.set_in_layout(False)  # labels must not squeeze the panels
    n = sorted({int(v) for v in frame["partial_n"].dropna()})
    n_text = f"n = {n[0]}" if len(n) == 1 else (f"n = {n[0]}–{n[-1]}" if n else "no partial r defined")
    ax.set_ylabel(f"partial r given {controls}")
    ax.set_title(f"{name} ({n_text}; {int(defined.sum())} of {len(frame)} measures)", fontsize=8)
    ax.legend(loc="lower right", fontsize=6)
    return labels


def plot_partial_r_vs_r(
    regression: dict,
    path: str | os.PathLike,
    *,
    title: str,
    label: str,
    paper: dict | None = None,
    names: tuple[str, str] = ("this study", "paper (reanalysis)"),
) -> Path:
    """Each measure's partial r given the controls (y) against its r (x), labelled points, the
    diagonal (partial r = r: the controls explain nothing) and the zero lines; a point is filled
    when its Holm-adjusted partial p < ``SIGNIFICANCE``; overlapping names are stacked (leader
    lines to their points). A point near the x axis far from the y axis is a measure whose r is the
    controls' (e.g. the noise level).

    ``regression``: a :func:`~latentgeo.analysis.regression.regress` result. ``paper``: optional
    second result drawn beside it on the same axes: a ``regress`` result or the reanalysis JSON
    (``results/reanalysis/<source>.json``, whose ``sweep`` is one). ``names``: the panels' titles.
    A figure is written in every case (a panel without controls says so).
    """
    results = [regression]
    if paper is not None:
        # The reanalysis result holds its regression under "sweep" (and has its own "measures" list).
        sweep = paper["sweep"] if "sweep" in paper else paper
        if not isinstance(sweep, dict) or "measures" not in sweep:
            raise LatentgeoError("the second result is neither a regression result nor a reanalysis "
                                 "result (no 'measures' or 'sweep')")
        results.append(sweep)
    with figure_style():
        fig = new_figure(5.6 * len(results), 6.0)
        axes = fig.subplots(1, len(results), squeeze=False)[0]
        labels = [_partial_vs_r_panel(ax, result, name) for ax, result, name in zip(axes, results, names)]
        fig.suptitle(f"{title}\n{label}")
        fig.canvas.draw()  # the final layout: where the labels will be drawn
        for panel_labels in labels:
            _stack_overlapping_labels(panel_labels)
        return save_figure(fig, path)
