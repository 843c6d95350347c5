"""Which geometric measures predict the downstream score: OLS per measure, on any table.

The input is a table with one row per model (``results/table.csv`` or a table from elsewhere,
e.g. a published one). For every measure column it fits ``score ~ measure`` by ordinary least
squares (statsmodels) and reports plain, standard statistics, so every number can be checked
against numpy/scipy.

**Training and held-out rows.** When the table has a ``family`` column holding
``non-standard`` rows, those rows are *held out*: no fit below ever sees them; they are only
predicted. Every other row is a training row. (This is what the geometry paper's
``results/linreg_clean.R`` does: its lines are fitted on the perturbed families and
``predict(model, alt)`` scores the alternative models.)

Per measure:

* ``n``, ``slope``, ``intercept`` with 95 % confidence intervals (Student t, n − 2 df);
  Pearson ``r`` with its 95 % interval by the Fisher z transform (as
  ``scipy.stats.pearsonr(...).confidence_interval()``), ``r2`` = r², the two-sided ``p_value``
  of the slope (identical to Pearson's test) and ``p_value_holm``, Holm-adjusted across the
  fitted measures;
* the leave-one-out prediction error (``loo_rmse``, ``loo_mae``) on the training rows: each row
  predicted by the line fitted without it (closed form: residual / (1 − leverage));
* ``heldout``: the held-out rows predicted by the line, with ``rmse``, ``mae``, ``mse`` and
  ``mse_without_outliers`` (the held-out rows whose label is in ``outliers`` left out; by default
  the R script's list of outlier models, :data:`R_SCRIPT_OUTLIERS`);
* with a group column, ``group_fit``: ``score ~ measure + C(group)`` (treatment coding, the first
  level in sorted order as reference, as R's and patsy's factors) fitted on the training rows
  only; it predicts the held-out rows whose group level occurs among the training rows (a level
  the fit never saw has no coefficient: those rows are listed as ``unpredictable``), with the
  same error summary;
* with controls (``--control EXPR``: a column, ``log(COL)`` or ``log1p(COL)``), the measure's
  partial correlation with the score given the controls, on the training rows: ``partial_r``
  (the correlation of the residuals of measure and score, each regressed on [1, controls]), its
  p-value ``partial_p_value`` (t = r·√(df / (1 − r²)), df = n − 2 − #controls), the same
  hypothesis tested as the measure's coefficient in ``score ~ controls + measure``
  (``partial_slope``, ``partial_slope_p_value``: the two p-values are one t-test, equal up to
  rounding), ``r2_controls`` and ``r2_controls_and_measure`` (what the measure adds beyond the
  controls), and ``partial_p_holm`` (Holm across the measures). ``controls`` at the top level
  holds each control's own line against the score on the same rows (e.g. log α alone).

:func:`correlation_summary` keeps only the correlation part of a result (r with its interval,
partial r with p-values and Holm adjustment), for a second score. The statistics themselves are
small pure functions in :mod:`latentgeo.analysis.statistics`; predicting each family of models
from the others is :mod:`latentgeo.analysis.lofo`.

**Row labels.** A row is named by its ``model`` column when the table has one; otherwise by a
first column whose header is blank (pandas reads it as ``Unnamed: 0``: the layout of a CSV
written from a pandas index, as the paper's tables are) when it holds unique, non-missing
strings; otherwise by its position (0, 1, …). Columns with a blank header are never measures.

Rows with a missing value in the columns a fit uses are dropped from that fit and counted
(``n_dropped``, ``dropped``). Problems a user can cause (a missing score column, an unknown or
non-numeric measure, fewer than 3 usable rows, a constant measure, a bad control) raise
:class:`~latentgeo.errors.LatentgeoError` naming the column, before any fitting.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from latentgeo.analysis.controls import Control, parse_control
from latentgeo.analysis.statistics import (
    CONFIDENCE,
    PARTIAL_KEYS,
    R_SCRIPT_OUTLIERS,
    SIGNIFICANCE,
    fit_group,
    fit_line,
    fit_with_controls,
    holm_adjust,
    predict_group_heldout,
    predict_heldout,
)
from latentgeo.errors import LatentgeoError
from latentgeo.io import check_output_path, write_json

MIN_ROWS = 3
HOLDOUT_COLUMN = "family"
HOLDOUT_VALUE = "non-standard"
LABEL_COLUMN = "model"
# Columns of results/table.csv that describe a model rather than measure its geometry: never a
# default measure. Other ``score_*`` columns are outcomes, not predictors, and are left out too.
DESIGN_COLUMNS = ("alpha", "seed")
SCORE_PREFIX = "score_"
# pandas names a column with a blank header "Unnamed: <position>".
BLANK_HEADER_PREFIX = "Unnamed: "


# --------------------------------------------------------------------------------------------
# Reading and validating a table
# --------------------------------------------------------------------------------------------


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV table; a missing, empty or unparsable file raises :class:`LatentgeoError`."""
    path = Path(path)
    if not path.is_file():
        raise LatentgeoError(f"table not found: {path}")
    try:
        table = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise LatentgeoError(f"cannot read {path} as a CSV table: {err}") from None
    if table.empty:
        raise LatentgeoError(f"table {path} has no rows")
    return table


def numeric_column(table: pd.DataFrame, column: str, role: str) -> pd.Series:
    """The column as float64; missing cells become NaN, any other non-number is refused."""
    if column not in table.columns:
        raise LatentgeoError(
            f"{role} column {column!r} is not in the table; columns: {list(map(str, table.columns))}"
        )
    values = table[column]
    if pd.api.types.is_bool_dtype(values):
        raise LatentgeoError(f"{role} column {column!r} is boolean, not a number")
    converted = pd.to_numeric(values, errors="coerce")
    bad = converted.isna() & values.notna()
    if bad.any():
        example = values[bad].iloc[0]
        raise LatentgeoError(f"{role} column {column!r} is not numeric (e.g. value {example!r})")
    return converted.astype("float64")


def _is_blank_header(column: object) -> bool:
    return str(column).startswith(BLANK_HEADER_PREFIX) or str(column).strip() == ""


def label_column(table: pd.DataFrame) -> str | None:
    """The column that names the rows (see the module doc), or None for positional labels.

    ``model`` when present; else the first column if its header is blank and it holds unique,
    non-missing strings (a CSV written from a pandas index, such as the paper's tables).
    """
    if LABEL_COLUMN in table.columns:
        return LABEL_COLUMN
    first = table.columns[0]
    if not _is_blank_header(first):
        return None
    values = table[first]
    if values.isna().any() or not values.map(lambda v: isinstance(v, str)).all():
        return None
    return str(first) if values.is_unique else None


def row_labels(table: pd.DataFrame) -> pd.Series:
    """How each row is named in the output: :func:`label_column`'s values, else the position."""
    column = label_column(table)
    if column is not None:
        return table[column].astype(str)
    return pd.Series([str(i) for i in range(len(table))], index=table.index)


def default_measures(
    table: pd.DataFrame, score: str, group: str | None = None, exclude: Sequence[str] = ()
) -> list[str]:
    """Every numeric column but the score, the group, ``exclude`` (e.g. control columns), the
    design columns, other ``score_*`` columns and columns with a blank header."""
    skip = {score, group, *DESIGN_COLUMNS, *exclude}
    out = []
    for column in table.columns:
        if column in skip or str(column).startswith(SCORE_PREFIX) or _is_blank_header(column):
            continue
        series = table[column]
        if pd.api.types.is_bool_dtype(series):
            continue
        if pd.api.types.is_numeric_dtype(series) or (
            series.notna().any() and pd.to_numeric(series, errors="coerce").notna().sum()
            == series.notna().sum()
        ):
            out.append(str(column))
    return out


def _is_constant(x: np.ndarray) -> bool:
    """True when every value is equal up to float rounding (r and the slope are undefined)."""
    scale = max(1.0, float(np.max(np.abs(x))))
    return float(np.ptp(x)) <= 1e-12 * scale


# --------------------------------------------------------------------------------------------
# Controls: a column, log(COL) or log1p(COL) (parsed by latentgeo.analysis.controls)
# --------------------------------------------------------------------------------------------


def control_values(table: pd.DataFrame, control: Control, labels: pd.Series) -> pd.Series:
    """The control's values over the table, float64; refuses a missing or non-numeric column and
    values outside the transform's domain (log: > 0; log1p: > −1) wherever the column has one."""
    values = numeric_column(table, control.column, "control")
    present = values.notna()
    if control.transform == "log":
        bad = present & (values <= 0)
        rule = "log needs positive values"
    elif control.transform == "log1p":
        bad = present & (values <= -1)
        rule = "log1p needs values above -1"
    else:
        bad = pd.Series(False, index=values.index)
        rule = ""
    if bad.any():
        first = bad.idxmax()
        raise LatentgeoError(
            f"control {control.expr!r}: {rule}, but column {control.column!r} has {int(bad.sum())} "
            f"value(s) outside (e.g. {values[first]:g} in row {labels[first]!r})"
        )
    return control.apply(values).astype("float64")


# --------------------------------------------------------------------------------------------
# The regression over a table
# --------------------------------------------------------------------------------------------


def holdout_mask(table: pd.DataFrame, holdout: str | None) -> pd.Series | None:
    """Rows to hold out (family == holdout), or None when the table has no such rows."""
    if holdout is None or HOLDOUT_COLUMN not in table.columns:
        return None
    mask = table[HOLDOUT_COLUMN].astype("string") == holdout
    mask = mask.fillna(False).astype(bool)
    return mask if mask.any() else None


@dataclass(frozen=True)
class _Rows:
    """What every per-measure fit shares: the score, labels, row masks, groups and controls."""

    score: str
    y: pd.Series
    labels: pd.Series
    train: pd.Series
    held: pd.Series | None
    groups: pd.Series | None
    controls: pd.DataFrame | None  # transformed control values, one column per expression
    outliers: tuple[str, ...]
    confidence: float


def check_controls(
    table: pd.DataFrame, exprs: Sequence[str], score: str, measures: Sequence[str] | None,
    group: str | None, labels: pd.Series,
) -> tuple[list[Control], pd.DataFrame]:
    """Parse and check every control before any fit; returns them and their transformed values."""
    controls = [parse_control(e) for e in exprs]
    controls = list({c.expr: c for c in controls}.values())  # the same expression twice counts once
    for c in controls:
        if c.column == score:
            raise LatentgeoError(f"control {c.expr!r} uses the score column {score!r}")
        if measures is not None and c.column in measures:
            raise LatentgeoError(f"control {c.expr!r} uses {c.column!r}, which is also a measure")
        if group is not None and c.column == group:
            raise LatentgeoError(f"control {c.expr!r} uses the group column {group!r}")
    values = pd.DataFrame({c.expr: control_values(table, c, labels) for c in controls}, index=table.index)
    return controls, values


def _controls_summary(rows: _Rows) -> dict:
    """Each control's own line against the score on the training rows where all are present, and
    the R² of ``score ~ controls``: how much of the score the controls alone explain."""
    import statsmodels.api as sm

    c = rows.controls
    usable = rows.train & rows.y.notna() & c.notna().all(axis=1)
    y = rows.y[usable].to_numpy()
    if y.size < MIN_ROWS:
        raise LatentgeoError(
            f"the controls {list(c.columns)} leave {y.size} training rows with a score; need {MIN_ROWS}"
        )
    fits = {}
    for expr in c.columns:
        x = c.loc[usable, expr].to_numpy()
        if _is_constant(x):
            raise LatentgeoError(f"control {expr!r} is constant ({float(x[0]):g}) over the training rows")
        fit = fit_line(x, y, rows.confidence)
        fits[expr] = {k: fit[k] for k in ("n", "r", "r_ci_low", "r_ci_high", "p_value", "slope", "intercept")}
    design = np.column_stack([np.ones(y.size), c[usable].to_numpy()])
    if np.linalg.matrix_rank(design) < design.shape[1]:
        raise LatentgeoError(f"the controls {list(c.columns)} are collinear over the training rows")
    return {
        "exprs": list(c.columns),
        "n": int(y.size),
        "r2": float(sm.OLS(y, design).fit().rsquared),
        "fits": fits,
    }


def regress(
    table: pd.DataFrame,
    score: str,
    measures: Sequence[str] | None = None,
    group: str | None = None,
    *,
    controls: Sequence[str] = (),
    holdout: str | None = HOLDOUT_VALUE,
    outliers: Sequence[str] = R_SCRIPT_OUTLIERS,
    confidence: float = CONFIDENCE,
) -> dict:
    """Regress ``score`` on each measure of ``table``; see the module docstring for the numbers.

    ``measures``: columns to use; None takes :func:`default_measures` (numeric columns, minus the
    control columns), and then columns that cannot be fitted (constant, fewer than 3 usable rows)
    are skipped and listed under ``skipped`` instead of failing. Named measures are held to the
    rules strictly.
    ``group``: a column for ``score ~ measure + C(group)`` (fitted on the training rows).
    ``controls``: expressions (``COL``, ``log(COL)``, ``log1p(COL)``) for the partial r.
    ``holdout``: the ``family`` value whose rows are held out of every fit and predicted by it
    (None: every row is a training row).
    ``outliers``: row labels left out of ``mse_without_outliers``.
    Returns a JSON-ready dict: ``measures`` (per measure), ``ranking`` (by |r|, strongest first),
    ``skipped``, ``controls`` (or None) and the settings used.
    """
    if not 0 < confidence < 1:
        raise LatentgeoError(f"confidence must be in (0, 1), got {confidence}")
    y_all = numeric_column(table, score, "score")
    labels = row_labels(table)
    explicit = measures is not None
    if explicit:
        measures = list(dict.fromkeys(measures))
        if not measures:
            raise LatentgeoError("no measure columns were named")
        for m in measures:
            if m == score:
                raise LatentgeoError(f"measure column {m!r} is the score column itself")
            numeric_column(table, m, "measure")
    if group is not None:
        if group not in table.columns:
            raise LatentgeoError(
                f"group column {group!r} is not in the table; columns: {list(map(str, table.columns))}"
            )
        if group == score or (explicit and group in measures):
            raise LatentgeoError(f"group column {group!r} is also used as score or measure")
    parsed, control_frame = check_controls(table, list(controls), score, measures, group, labels)
    if not explicit:
        measures = default_measures(table, score, group, exclude=[c.column for c in parsed])
        if not measures:
            raise LatentgeoError(
                f"the table has no numeric measure columns besides the score {score!r}; "
                f"columns: {list(map(str, table.columns))}"
            )
    if y_all.notna().sum() < MIN_ROWS:
        raise LatentgeoError(
            f"score column {score!r} has {int(y_all.notna().sum())} usable rows; need at least {MIN_ROWS}"
        )

    held = holdout_mask(table, holdout)
    rows = _Rows(
        score=score,
        y=y_all,
        labels=labels,
        train=~held if held is not None else pd.Series(True, index=table.index),
        held=held,
        groups=table[group].astype("string") if group is not None else None,
        controls=control_frame if parsed else None,
        outliers=tuple(str(o) for o in outliers),
        confidence=confidence,
    )
    controls_summary = _controls_summary(rows) if parsed else None
    results: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    for m in measures:
        x_all = numeric_column(table, m, "measure")
        try:
            results[m] = _regress_one(m, x_all, rows)
        except LatentgeoError as err:
            if explicit:
                raise
            skipped[m] = str(err)
    if not results:
        raise LatentgeoError(
            "no measure could be fitted: " + "; ".join(f"{k}: {v}" for k, v in skipped.items())
        )
    for name, adjusted in holm_adjust({k: v["p_value"] for k, v in results.items()}).items():
        results[name]["p_value_holm"] = adjusted
    if parsed:
        partial = holm_adjust({k: v["partial_p_value"] for k, v in results.items()})
        for name, adjusted in partial.items():
            results[name]["partial_p_holm"] = adjusted
    ranking = sorted(results, key=lambda k: (-abs(results[k]["r"]), k))
    return {
        "score": score,
        "group": group,
        "confidence": confidence,
        "n_rows": int(len(table)),
        "label_column": label_column(table),
        "fit_rows": (
            f"{HOLDOUT_COLUMN} != {holdout!r}" if held is not None else "all"
        ),
        "holdout": (
            {"column": HOLDOUT_COLUMN, "value": holdout, "n": int(held.sum())}
            if held is not None else None
        ),
        "outliers": list(rows.outliers),
        "controls": controls_summary,
        "measures": results,
        "ranking": ranking,
        "skipped": skipped,
    }


def _regress_one(measure: str, x_all: pd.Series, rows: _Rows) -> dict:
    """All fits for one measure; raises :class:`LatentgeoError` naming it when it cannot be fitted."""
    y_all, labels, train, held = rows.y, rows.labels, rows.train, rows.held
    usable = x_all.notna() & y_all.notna()
    fit_rows = usable & train
    dropped = train & ~usable
    x = x_all[fit_rows].to_numpy()
    y = y_all[fit_rows].to_numpy()
    if x.size < MIN_ROWS:
        raise LatentgeoError(
            f"measure {measure!r} has {x.size} usable rows (after dropping {int(dropped.sum())} "
            f"with a missing value); need at least {MIN_ROWS}"
        )
    if _is_constant(x):
        raise LatentgeoError(f"measure {measure!r} is constant ({float(x[0]):g}) over the usable rows")
    if _is_constant(y):
        raise LatentgeoError(f"score {rows.score!r} is constant over the rows usable with {measure!r}")
    fit = fit_line(x, y, rows.confidence)
    out = {k: v for k, v in fit.items() if not k.startswith("_")}
    out["n_dropped"] = int(dropped.sum())
    out["dropped"] = labels[dropped].tolist()

    if held is not None:
        h_rows = held & usable
        out["heldout"] = predict_heldout(
            fit, x_all[h_rows].to_numpy(), y_all[h_rows].to_numpy(), labels[h_rows].tolist(),
            rows.confidence, rows.outliers,
        )
        out["heldout"]["n_dropped"] = int((held & ~usable).sum())
        out["heldout"]["dropped"] = labels[held & ~usable].tolist()

    if rows.controls is not None:
        out.update(_partial_one(x_all, rows, fit_rows))

    if rows.groups is not None:
        out["group_fit"] = _group_one(measure, x_all, rows, usable)
    return out


def _partial_one(x_all: pd.Series, rows: _Rows, fit_rows: pd.Series) -> dict:
    """The partial-correlation keys for one measure; NaN with ``partial_undefined`` (the reason)
    when too few rows remain or the measure is a linear function of the controls."""
    c = rows.controls
    p_rows = fit_rows & c.notna().all(axis=1)
    try:
        return {
            **fit_with_controls(
                x_all[p_rows].to_numpy(), rows.y[p_rows].to_numpy(), c[p_rows].to_numpy(),
                rows.confidence,
            ),
            "partial_undefined": None,
        }
    except LatentgeoError as err:
        undefined = dict.fromkeys(PARTIAL_KEYS, math.nan)
        undefined["partial_n"] = int(p_rows.sum())
        return {**undefined, "partial_undefined": str(err)}


def _group_one(measure: str, x_all: pd.Series, rows: _Rows, usable: pd.Series) -> dict:
    """``score ~ measure + C(group)`` on the training rows; predicts the held-out rows."""
    groups, labels, train, held = rows.groups, rows.labels, rows.train, rows.held
    g_usable = usable & groups.notna()
    g_rows = g_usable & train
    try:
        fit = fit_group(
            x_all[g_rows].to_numpy(), rows.y[g_rows].to_numpy(),
            groups[g_rows].astype(str).tolist(), rows.confidence,
        )
    except LatentgeoError as err:
        raise LatentgeoError(f"group model for measure {measure!r}: {err}") from None
    out = {k: v for k, v in fit.items() if not k.startswith("_")}
    out["n_dropped"] = int((train & ~g_usable).sum())
    out["dropped"] = labels[train & ~g_usable].tolist()
    if held is not None:
        h_rows = held & g_usable
        out["heldout"] = predict_group_heldout(
            fit, x_all[h_rows].to_numpy(), rows.y[h_rows].to_numpy(),
            groups[h_rows].astype(str).tolist(), labels[h_rows].tolist(), rows.confidence,
            rows.outliers,
        )
        out["heldout"]["n_dropped"] = int((held & ~g_usable).sum())
        out["heldout"]["dropped"] = labels[held & ~g_usable].tolist()
    return out


# --------------------------------------------------------------------------------------------
# A second score: the correlation analysis only
# --------------------------------------------------------------------------------------------

# What a second score's analysis keeps per measure: r with its interval and p-values, and the
# partial r given the controls with its p-value and Holm adjustment (lines, predictions and
# leave-one-out errors stay with the primary score).
CORRELATION_KEYS = ("n", "r", "r_ci_low", "r_ci_high", "p_value", "p_value_holm", "partial_n",
                    "partial_r", "partial_p_value", "partial_p_holm", "partial_undefined")


def correlation_summary(result: dict) -> dict:
    """The correlation part of a :func:`regress` result: ``score``, ``fit_rows``, ``controls``
    (``exprs``, ``n``, ``r2``; None without controls), ``measures`` (per measure the
    :data:`CORRELATION_KEYS` it has) and ``skipped``. JSON-ready."""
    controls = result.get("controls")
    return {
        "score": result["score"],
        "fit_rows": result["fit_rows"],
        "controls": {k: controls[k] for k in ("exprs", "n", "r2")} if controls else None,
        "measures": {
            name: {k: fit[k] for k in CORRELATION_KEYS if k in fit}
            for name, fit in result["measures"].items()
        },
        "skipped": dict(result.get("skipped", {})),
    }


def pearson_table(result: dict) -> pd.DataFrame:
    """One row per fitted measure: measure, n, r, ci_low, ci_high, p_value; sorted by r (descending)."""
    rows = [
        {
            "measure": name,
            "n": fit["n"],
            "r": fit["r"],
            "ci_low": fit["r_ci_low"],
            "ci_high": fit["r_ci_high"],
            "p_value": fit["p_value"],
        }
        for name, fit in result["measures"].items()
    ]
    frame = pd.DataFrame(rows, columns=["measure", "n", "r", "ci_low", "ci_high", "p_value"])
    return frame.sort_values(["r", "measure"], ascending=[False, True], kind="mergesort").reset_index(
        drop=True
    )


PARTIAL_COLUMNS = ["measure", "n", "r", "p_value", "p_value_holm", "partial_n", "partial_r",
                   "partial_p_value", "partial_p_holm", "partial_slope", "partial_slope_p_value",
                   "r2_controls", "r2_controls_and_measure"]


def holm_survivors(result: dict, level: float = SIGNIFICANCE) -> set[str]:
    """The measures of a :func:`regress` result whose partial r given the controls survives Holm's
    correction at ``level`` (none without controls)."""
    return {name for name, fit in result["measures"].items()
            if fit.get("partial_p_holm") is not None and fit["partial_p_holm"] < level}


def partial_table(result: dict) -> pd.DataFrame:
    """One row per fitted measure with its r and its partial r given the controls (columns
    :data:`PARTIAL_COLUMNS`), in ranking order (|r|, strongest first). Needs a result with
    controls."""
    if not result.get("controls"):
        raise LatentgeoError("the regression result has no controls, hence no partial r")
    rows = [{"measure": name, **{k: result["measures"][name].get(k) for k in PARTIAL_COLUMNS[1:]}}
            for name in result["ranking"]]
    return pd.DataFrame(rows, columns=PARTIAL_COLUMNS)


def heldout_error_table(result: dict) -> pd.DataFrame:
    """Held-out errors per measure, plain line and group fit side by side: measure, n, mse,
    mse_without_outliers, and with a group the group fit's n_group, mse_group,
    mse_group_without_outliers (NaN where a fit had nothing to predict). Ranking order."""
    rows = []
    for name in result["ranking"]:
        fit = result["measures"][name]
        plain = fit.get("heldout") or {}
        row = {"measure": name, "n": plain.get("n"), "mse": plain.get("mse"),
               "mse_without_outliers": plain.get("mse_without_outliers")}
        if "group_fit" in fit:
            grouped = fit["group_fit"].get("heldout") or {}
            row.update({"n_group": grouped.get("n"), "mse_group": grouped.get("mse"),
                        "mse_group_without_outliers": grouped.get("mse_without_outliers")})
        rows.append(row)
    return pd.DataFrame(rows)


def write_regression(result: dict, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a :func:`regress` result as deterministic JSON (NaN becomes null), atomically."""
    path = check_output_path(path, overwrite=overwrite)
    return write_json(path, result)
