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

Two further analyses build on it: :func:`correlation_summary` keeps only the correlation part of a
result (r with its interval, partial r with p-values and Holm adjustment), for a second score;
:func:`leave_one_family_out` predicts each family of models (``base_model``) from the others,
``score ~ controls + measure`` against ``score ~ controls`` alone (RMSE and MAE), on the same
training rows.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from latentgeo.analysis.controls import Control, parse_control
from latentgeo.errors import LatentgeoError
from latentgeo.io import check_output_path, write_json

# Deferred to the functions that use them, so that importing this module stays light: statsmodels.

CONFIDENCE = 0.95
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
# The outlier models of the paper's results/linreg_clean.R, as its `outlier_models` lists them.
# Only the first three are model names; the other four name error columns of that script and match
# no model. Kept whole so that "MSE without outliers" filters exactly what the script filters.
R_SCRIPT_OUTLIERS = ("untrained", "rand", "untrained_w_emb", "mse", "mse_filter", "sse", "sse_filter")


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


def _numeric_column(table: pd.DataFrame, column: str, role: str) -> pd.Series:
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
    values = _numeric_column(table, control.column, "control")
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
# Small pure statistics
# --------------------------------------------------------------------------------------------


def fisher_ci(r: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Confidence interval of a Pearson r by the Fisher z transform: tanh(atanh r ± z·/√(n−3)).

    Undefined (NaN, NaN) for n ≤ 3. A perfect correlation gives the degenerate interval (r, r).
    """
    if n <= 3:
        return (math.nan, math.nan)
    if abs(r) >= 1.0:
        return (float(r), float(r))
    z = math.atanh(r)
    half = stats.norm.ppf(0.5 + confidence / 2) / math.sqrt(n - 3)
    return (math.tanh(z - half), math.tanh(z + half))


def leverages(design: np.ndarray) -> np.ndarray:
    """Diagonal of the hat matrix X (XᵀX)⁻¹ Xᵀ for a full-rank (n, p) design, shape (n,)."""
    q, _ = np.linalg.qr(design)
    return np.sum(q * q, axis=1)


def loo_residuals(design: np.ndarray, y: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    """Leave-one-out prediction errors y_i − ŷ_(−i) = e_i / (1 − h_ii), shape (n,).

    A row with leverage 1 cannot be predicted from the others (without it the design is
    singular): its error is NaN.
    """
    h = leverages(design)
    out = np.full_like(residuals, np.nan, dtype="float64")
    ok = h < 1.0 - 1e-10
    out[ok] = residuals[ok] / (1.0 - h[ok])
    return out


def _rmse(errors: np.ndarray) -> float:
    return float(np.sqrt(np.mean(errors**2))) if errors.size and np.all(np.isfinite(errors)) else math.nan


def _mse(errors: np.ndarray) -> float:
    """Mean squared error, as R's ``Metrics::mse(actual, predicted)``; NaN for no rows."""
    return float(np.mean(errors**2)) if errors.size and np.all(np.isfinite(errors)) else math.nan


def _mae(errors: np.ndarray) -> float:
    return float(np.mean(np.abs(errors))) if errors.size and np.all(np.isfinite(errors)) else math.nan


def residualize(v: np.ndarray, covariates: np.ndarray) -> np.ndarray:
    """Residuals of v (n,) after least squares on [1, covariates] ((n, k)), float64, shape (n,)."""
    design = np.column_stack([np.ones(v.shape[0]), covariates]).astype("float64")
    coef, *_ = np.linalg.lstsq(design, v.astype("float64"), rcond=None)
    return v - design @ coef


def partial_correlation(x: np.ndarray, y: np.ndarray, covariates: np.ndarray) -> tuple[float, float, int]:
    """Partial correlation of x and y (n,) given covariates (n, k), its two-sided p-value, and df.

    r is the Pearson correlation of the residuals of x and of y, each regressed on
    [1, covariates]; under the null, t = r·√(df / (1 − r²)) has a Student t distribution with
    df = n − 2 − k. Raises :class:`LatentgeoError` when df < 1 or x (or y) is a linear function
    of the covariates (r undefined).
    """
    n, k = covariates.shape
    df = n - 2 - k
    if df < 1:
        raise LatentgeoError(f"a partial correlation given {k} control(s) needs more than {2 + k} rows, has {n}")
    rx, ry = residualize(x, covariates), residualize(y, covariates)
    for name, res, v in (("measure", rx, x), ("score", ry, y)):
        if float(np.sqrt(res @ res)) <= 1e-10 * max(1.0, float(np.sqrt(v @ v))):
            raise LatentgeoError(f"the {name} is a linear function of the controls on these rows")
    r = float(rx @ ry / math.sqrt((rx @ rx) * (ry @ ry)))
    r = min(1.0, max(-1.0, r))
    if abs(r) >= 1.0:
        return r, 0.0, df
    t = r * math.sqrt(df / (1.0 - r * r))
    return r, float(2.0 * stats.t.sf(abs(t), df)), df


def holm_adjust(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm step-down adjusted p-values (statsmodels ``multipletests``, method 'holm') over the
    finite entries of ``p_values``; entries that are NaN stay NaN and do not count."""
    from statsmodels.stats.multitest import multipletests

    out = {k: math.nan for k in p_values}
    finite = {k: float(v) for k, v in p_values.items() if v is not None and math.isfinite(v)}
    if finite:
        adjusted = multipletests(list(finite.values()), method="holm")[1]
        out.update(zip(finite, (float(a) for a in adjusted)))
    return out


def fit_line(x: np.ndarray, y: np.ndarray, confidence: float = CONFIDENCE) -> dict:
    """OLS of y on x with an intercept (statsmodels), and the statistics listed in the module doc.

    ``x``, ``y``: float arrays of shape (n,), no missing values, n ≥ 3, x not constant.
    Returns a flat dict of floats (and ``n``) plus ``_model``, the fitted statsmodels results, for
    predictions (callers drop it before writing).
    """
    import statsmodels.api as sm

    n = int(x.size)
    design = np.column_stack([np.ones(n), x])
    fit = sm.OLS(y, design).fit()
    ci = fit.conf_int(alpha=1 - confidence)
    intercept, slope = (float(v) for v in fit.params)
    # Pearson r straight from its definition; statsmodels' R² equals r² in simple regression.
    r = float(stats.pearsonr(x, y).statistic)
    r_low, r_high = fisher_ci(r, n, confidence)
    loo = loo_residuals(design, y, fit.resid)
    return {
        "n": n,
        "slope": slope,
        "slope_se": float(fit.bse[1]),
        "slope_ci_low": float(ci[1, 0]),
        "slope_ci_high": float(ci[1, 1]),
        "intercept": intercept,
        "intercept_ci_low": float(ci[0, 0]),
        "intercept_ci_high": float(ci[0, 1]),
        "r": r,
        "r_ci_low": r_low,
        "r_ci_high": r_high,
        "r2": float(fit.rsquared),
        "p_value": float(fit.pvalues[1]),
        "loo_rmse": _rmse(loo),
        "loo_mae": _mae(loo),
        "_model": fit,
    }


def fit_with_controls(x: np.ndarray, y: np.ndarray, covariates: np.ndarray,
                      confidence: float = CONFIDENCE) -> dict:
    """``score ~ controls + measure`` and ``score ~ controls`` by OLS, and the partial r.

    ``x``, ``y``: (n,); ``covariates``: (n, k). Returns ``partial_n``, ``partial_df``,
    ``partial_r``, ``partial_p_value`` (:func:`partial_correlation`), ``partial_slope`` (the
    measure's coefficient in the full model) with its standard error, interval and p-value (the
    same t-test as ``partial_p_value``), ``r2_controls`` and ``r2_controls_and_measure``.
    """
    import statsmodels.api as sm

    r, p, df = partial_correlation(x, y, covariates)
    base = np.column_stack([np.ones(x.size), covariates])
    full = np.column_stack([base, x])
    fit = sm.OLS(y, full).fit()
    ci = fit.conf_int(alpha=1 - confidence)
    return {
        "partial_n": int(x.size),
        "partial_df": df,
        "partial_r": r,
        "partial_p_value": p,
        "partial_slope": float(fit.params[-1]),
        "partial_slope_se": float(fit.bse[-1]),
        "partial_slope_ci_low": float(ci[-1, 0]),
        "partial_slope_ci_high": float(ci[-1, 1]),
        "partial_slope_p_value": float(fit.pvalues[-1]),
        "r2_controls": float(sm.OLS(y, base).fit().rsquared),
        "r2_controls_and_measure": float(fit.rsquared),
    }


PARTIAL_KEYS = (
    "partial_n", "partial_df", "partial_r", "partial_p_value", "partial_slope", "partial_slope_se",
    "partial_slope_ci_low", "partial_slope_ci_high", "partial_slope_p_value", "r2_controls",
    "r2_controls_and_measure",
)


def group_design(
    x: np.ndarray, groups: Sequence[str], levels: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Design [1, x, one dummy per non-reference level] of ``score ~ measure + C(group)``.

    Treatment coding with the first level in sorted order as reference, as patsy's ``C()`` and
    R's factors do. ``levels``: those of a fitted model (to predict new rows; a row of another
    level gets all-zero dummies, so callers must keep such rows out); None: the sorted levels of
    ``groups``. Returns the (n, 2 + levels − 1) design and the levels.
    """
    groups = np.asarray(groups, dtype=object)
    levels = sorted(set(groups.tolist())) if levels is None else list(levels)
    dummies = [(groups == level).astype("float64") for level in levels[1:]]
    design = np.column_stack([np.ones(x.size), x, *dummies])
    return design, levels


def fit_group(
    x: np.ndarray, y: np.ndarray, groups: Sequence[str], confidence: float = CONFIDENCE
) -> dict:
    """OLS of ``score ~ measure + C(group)``; the measure's slope, its interval and the fit.

    Callers pass training rows only. Returns a JSON-ready dict plus ``_model`` (the statsmodels
    results, for predictions; dropped before writing). Raises :class:`LatentgeoError` when the
    group has one level only or the design has no residual degrees of freedom.
    """
    import statsmodels.api as sm

    design, levels = group_design(x, groups)
    n, p = design.shape
    if len(levels) < 2:
        raise LatentgeoError(f"only one level ({levels[0]!r}); a group model needs two or more")
    if np.linalg.matrix_rank(design) < p or n <= p:
        raise LatentgeoError(
            f"score ~ measure + C(group) has {p} parameters but only {n} usable rows "
            f"({len(levels)} levels); it cannot be fitted"
        )
    fit = sm.OLS(y, design).fit()
    ci = fit.conf_int(alpha=1 - confidence)
    return {
        "n": int(n),
        "levels": levels,
        "reference": levels[0],
        "slope": float(fit.params[1]),
        "slope_se": float(fit.bse[1]),
        "slope_ci_low": float(ci[1, 0]),
        "slope_ci_high": float(ci[1, 1]),
        "p_value": float(fit.pvalues[1]),
        "intercept": float(fit.params[0]),
        "r2": float(fit.rsquared),
        "r2_adj": float(fit.rsquared_adj),
        "group_effects": {lvl: float(b) for lvl, b in zip(levels[1:], fit.params[2:])},
        "group_p_values": {lvl: float(pv) for lvl, pv in zip(levels[1:], fit.pvalues[2:])},
        "_model": fit,
    }


def heldout_errors(observed: np.ndarray, predicted: np.ndarray, labels: Sequence[str],
                   outliers: Sequence[str] = R_SCRIPT_OUTLIERS) -> dict:
    """Error summary of predictions (errors are observed − predicted), all rows and without the
    rows labelled as ``outliers``: n, rmse, mae, mse, mse_without_outliers, n_without_outliers
    and which labels were left out (``outliers_excluded``)."""
    errors = np.asarray(observed, dtype="float64") - np.asarray(predicted, dtype="float64")
    labels = [str(label) for label in labels]
    keep = np.array([label not in set(outliers) for label in labels], dtype=bool)
    return {
        "n": int(errors.size),
        "rmse": _rmse(errors),
        "mae": _mae(errors),
        "mse": _mse(errors),
        "n_without_outliers": int(keep.sum()),
        "mse_without_outliers": _mse(errors[keep]),
        "outliers_excluded": [label for label, k in zip(labels, keep) if not k],
    }


def _prediction_rows(model, design: np.ndarray, x: np.ndarray, y: np.ndarray,
                     labels: Sequence[str], confidence: float) -> tuple[np.ndarray, list[dict]]:
    """Predictions of a fitted statsmodels OLS on ``design`` with their prediction intervals."""
    frame = model.get_prediction(design).summary_frame(alpha=1 - confidence)
    predicted = frame["mean"].to_numpy()
    rows = [
        {
            "model": str(label),
            "measure": float(xi),
            "observed": float(yi),
            "predicted": float(pi),
            "error": float(yi - pi),
            "pi_low": float(lo),
            "pi_high": float(hi),
        }
        for label, xi, yi, pi, lo, hi in zip(
            labels, x, y, predicted, frame["obs_ci_lower"], frame["obs_ci_upper"]
        )
    ]
    return predicted, rows


def predict_heldout(fit: dict, x: np.ndarray, y: np.ndarray, labels: Sequence[str],
                    confidence: float = CONFIDENCE, outliers: Sequence[str] = R_SCRIPT_OUTLIERS) -> dict:
    """Predict held-out rows from a :func:`fit_line` result; errors are observed − predicted.

    Each prediction carries its ``confidence`` prediction interval (for a new observation).
    """
    design = np.column_stack([np.ones(x.size), x])
    predicted, rows = _prediction_rows(fit["_model"], design, x, y, labels, confidence)
    return {**heldout_errors(y, predicted, labels, outliers), "predictions": rows}


def predict_group_heldout(fit: dict, x: np.ndarray, y: np.ndarray, groups: Sequence[str],
                          labels: Sequence[str], confidence: float = CONFIDENCE,
                          outliers: Sequence[str] = R_SCRIPT_OUTLIERS) -> dict:
    """Predict held-out rows from a :func:`fit_group` result, where their level was seen in
    training; rows of another level are listed under ``unpredictable`` (label and level)."""
    groups = [str(g) for g in groups]
    seen = np.array([g in set(fit["levels"]) for g in groups], dtype=bool)
    pick = lambda values: [v for v, s in zip(values, seen) if s]  # noqa: E731
    design, _ = group_design(x[seen], pick(groups), fit["levels"])
    predicted, rows = _prediction_rows(fit["_model"], design, x[seen], y[seen], pick(labels), confidence)
    for row, group in zip(rows, pick(groups)):
        row["group"] = group
    return {
        **heldout_errors(y[seen], predicted, pick(labels), outliers),
        "predictions": rows,
        "unpredictable": [
            {"model": str(label), "group": group}
            for label, group, s in zip(labels, groups, seen) if not s
        ],
    }


# --------------------------------------------------------------------------------------------
# The regression over a table
# --------------------------------------------------------------------------------------------


def _holdout_mask(table: pd.DataFrame, holdout: str | None) -> pd.Series | None:
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


def _check_controls(
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
    y_all = _numeric_column(table, score, "score")
    labels = row_labels(table)
    explicit = measures is not None
    if explicit:
        measures = list(dict.fromkeys(measures))
        if not measures:
            raise LatentgeoError("no measure columns were named")
        for m in measures:
            if m == score:
                raise LatentgeoError(f"measure column {m!r} is the score column itself")
            _numeric_column(table, m, "measure")
    if group is not None:
        if group not in table.columns:
            raise LatentgeoError(
                f"group column {group!r} is not in the table; columns: {list(map(str, table.columns))}"
            )
        if group == score or (explicit and group in measures):
            raise LatentgeoError(f"group column {group!r} is also used as score or measure")
    parsed, control_frame = _check_controls(table, list(controls), score, measures, group, labels)
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

    held = _holdout_mask(table, holdout)
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
        x_all = _numeric_column(table, m, "measure")
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


# --------------------------------------------------------------------------------------------
# Leave one family of models out
# --------------------------------------------------------------------------------------------

FAMILY_COLUMN = "base_model"


def leave_one_family_out_predictions(features: np.ndarray, y: np.ndarray, families: Sequence[str]) -> np.ndarray:
    """Each row's score predicted by OLS of ``y ~ 1 + features`` fitted on the rows of the other
    families only. ``features``: (n, p), may be p = 0 (intercept only); ``y``: (n,); returns (n,).

    Raises :class:`LatentgeoError` when fewer than two families are given or a fold's design
    is rank-deficient (e.g. a feature constant over the other families' rows).
    """
    import statsmodels.api as sm

    families = np.asarray([str(f) for f in families], dtype=object)
    levels = sorted(set(families.tolist()))
    if len(levels) < 2:
        raise LatentgeoError(f"leave-one-family-out needs two or more families, got {levels}")
    design = np.column_stack([np.ones(y.size), features]).astype("float64")
    predicted = np.full(y.size, np.nan)
    for level in levels:
        out = families == level
        train = design[~out]
        if train.shape[0] <= train.shape[1] - 1 or np.linalg.matrix_rank(train) < train.shape[1]:
            raise LatentgeoError(
                f"without family {level!r}: {train.shape[0]} rows cannot fit {train.shape[1]} "
                "coefficients (too few rows, or a constant or collinear column)"
            )
        fit = sm.OLS(y[~out].astype("float64"), train).fit()
        predicted[out] = design[out] @ fit.params
    return predicted


def _lofo_errors(features: np.ndarray, y: np.ndarray, families: np.ndarray) -> dict:
    """RMSE and MAE of the leave-one-family-out predictions, over all rows and per family."""
    errors = y - leave_one_family_out_predictions(features, y, families)
    return {
        "n": int(y.size),
        "rmse": _rmse(errors),
        "mae": _mae(errors),
        "per_family": {
            str(f): {"n": int((families == f).sum()), "rmse": _rmse(errors[families == f]),
                     "mae": _mae(errors[families == f])}
            for f in sorted(set(families.tolist()))
        },
    }


def leave_one_family_out(
    table: pd.DataFrame,
    score: str,
    measures: Sequence[str],
    *,
    controls: Sequence[str] = (),
    family_column: str = FAMILY_COLUMN,
    holdout: str | None = HOLDOUT_VALUE,
) -> dict:
    """How well each measure predicts a family of models it has never seen.

    For every value of ``family_column`` (e.g. ``base_model``: the model each row was perturbed
    from), ``score ~ controls + measure`` is fitted on the training rows (those :func:`regress`
    fits: every row but the ``holdout`` family's) of the *other* families and predicts that
    family's rows; the errors (observed − predicted) over every left-out row give ``rmse`` and
    ``mae`` per measure (and ``per_family``). ``baseline_rmse`` and ``baseline_mae`` are those of
    ``score ~ controls`` on the same rows (intercept only without controls): the error a measure
    has to beat. A row missing the score, a control, its family or the measure is left out.

    Returns ``column``, ``families`` (sorted), ``controls`` (expressions), ``fit_rows``,
    ``baseline`` (``score ~ controls`` over every row with score and controls: n, rmse, mae,
    per_family) and ``measures`` (per measure: n, rmse, mae, baseline_rmse, baseline_mae,
    per_family, reason None; or, when a measure cannot be fitted in some fold, null numbers and
    the ``reason``), with ``reason`` None. With fewer than two families (or no family column),
    ``baseline`` and ``measures`` are None and ``reason`` says why: never an error.
    """
    labels = row_labels(table)
    y_all = _numeric_column(table, score, "score")
    parsed, control_frame = _check_controls(table, list(controls), score, list(measures), None, labels)
    held = _holdout_mask(table, holdout)
    train = ~held if held is not None else pd.Series(True, index=table.index)
    out = {
        "column": family_column,
        "families": [],
        "controls": [c.expr for c in parsed],
        "fit_rows": f"{HOLDOUT_COLUMN} != {holdout!r}" if held is not None else "all",
        "baseline": None,
        "measures": None,
        "reason": None,
    }
    if family_column not in table.columns:
        return {**out, "reason": f"the table has no {family_column!r} column"}
    families_all = table[family_column].astype("string")
    base_rows = train & y_all.notna() & families_all.notna() & control_frame.notna().all(axis=1)
    out["families"] = sorted(families_all[base_rows].unique().tolist())
    if len(out["families"]) < 2:
        return {**out, "reason": f"{len(out['families'])} family of models ({family_column}: "
                                 f"{out['families']}) among the training rows; leaving one out needs two or more"}
    xs = {m: _numeric_column(table, m, "measure") for m in measures}
    c_all = control_frame.to_numpy(dtype="float64")

    def errors(rows: pd.Series, with_measure: pd.Series | None) -> dict:
        mask = rows.to_numpy()
        features = c_all[mask]
        if with_measure is not None:
            features = np.column_stack([features, with_measure[rows].to_numpy()])
        fams = families_all[rows].astype(str).to_numpy(dtype=object)
        return _lofo_errors(features, y_all[rows].to_numpy(), fams)

    try:
        out["baseline"] = errors(base_rows, None)
    except LatentgeoError as err:
        return {**out, "reason": f"controls-only model: {err}"}
    results = {}
    for m, x in xs.items():
        rows = base_rows & x.notna()
        try:
            model, baseline = errors(rows, x), errors(rows, None)
        except LatentgeoError as err:
            results[m] = {"n": int(rows.sum()), "rmse": None, "mae": None, "baseline_rmse": None,
                          "baseline_mae": None, "per_family": None, "reason": str(err)}
            continue
        per_family = {
            f: {**v, "baseline_rmse": baseline["per_family"][f]["rmse"],
                "baseline_mae": baseline["per_family"][f]["mae"]}
            for f, v in model["per_family"].items()
        }
        results[m] = {"n": model["n"], "rmse": model["rmse"], "mae": model["mae"],
                      "baseline_rmse": baseline["rmse"], "baseline_mae": baseline["mae"],
                      "per_family": per_family, "reason": None}
    out["measures"] = results
    return out


LOFO_COLUMNS = ["measure", "n", "rmse", "mae", "baseline_rmse", "baseline_mae", "beats_baseline", "reason"]


def lofo_table(lofo: dict) -> pd.DataFrame:
    """One row per measure of a :func:`leave_one_family_out` result (columns :data:`LOFO_COLUMNS`;
    ``beats_baseline``: RMSE below the controls-only RMSE), lowest RMSE first; empty when the
    result has no measures (its ``reason`` says why)."""
    if not lofo.get("measures"):
        return pd.DataFrame(columns=LOFO_COLUMNS)
    rows = []
    for name, fit in lofo["measures"].items():
        rmse, base = fit["rmse"], fit["baseline_rmse"]
        beats = None if rmse is None or base is None else bool(rmse < base)
        rows.append({"measure": name, **{k: fit[k] for k in LOFO_COLUMNS[1:6]},
                     "beats_baseline": beats, "reason": fit["reason"]})
    frame = pd.DataFrame(rows, columns=LOFO_COLUMNS)
    return frame.sort_values(["rmse", "measure"], na_position="last", kind="mergesort").reset_index(drop=True)


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
