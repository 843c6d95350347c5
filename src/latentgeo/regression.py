"""Which geometric measures predict the downstream score: OLS per measure, on any table.

The input is a table with one row per model (``results/table.csv`` or a table from elsewhere,
e.g. a published one). For every measure column it fits ``score ~ measure`` by ordinary least
squares (statsmodels) and reports plain, standard statistics, so every number can be checked
against numpy/scipy:

* ``n``, ``slope``, ``intercept`` with 95 % confidence intervals (Student t, n − 2 df);
* Pearson ``r`` with its 95 % interval by the Fisher z transform (as
  ``scipy.stats.pearsonr(...).confidence_interval()``), ``r2`` = r², the two-sided ``p_value``
  of the slope (identical to Pearson's test);
* the leave-one-out prediction error (``loo_rmse``, ``loo_mae``): each row predicted by the line
  fitted without it (closed form: residual / (1 − leverage));
* with a group column, ``score ~ measure + C(group)`` (treatment coding, the first level in sorted
  order as reference): the measure's slope and its interval, R², adjusted R², the group effects;
* with a ``family`` column holding ``non-standard`` rows, the paper's held-out check: the
  per-measure line is fitted on the other rows (perturbed and base models) and predicts the
  non-standard models; their errors are reported.

Rows with a missing value in the columns a fit uses are dropped from that fit and counted
(``n_dropped``, ``dropped``). Problems a user can cause (a missing score column, an unknown or
non-numeric measure, fewer than 3 usable rows, a constant measure) raise
:class:`~latentgeo.errors.LatentgeoError` naming the column.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from .errors import LatentgeoError
from .io import check_output_path, write_json

CONFIDENCE = 0.95
MIN_ROWS = 3
HOLDOUT_COLUMN = "family"
HOLDOUT_VALUE = "non-standard"
# Columns of results/table.csv that describe a model rather than measure its geometry: never a
# default measure. Other ``score_*`` columns are outcomes, not predictors, and are left out too.
DESIGN_COLUMNS = ("alpha", "seed")
SCORE_PREFIX = "score_"


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


def default_measures(table: pd.DataFrame, score: str, group: str | None = None) -> list[str]:
    """Every numeric column but the score, the group, the design columns and other scores."""
    skip = {score, group, *DESIGN_COLUMNS}
    out = []
    for column in table.columns:
        if column in skip or str(column).startswith(SCORE_PREFIX):
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


def _row_labels(table: pd.DataFrame) -> pd.Series:
    """How a row is named in the output: its ``model`` value when there is one, else its index."""
    if "model" in table.columns:
        return table["model"].astype(str)
    return pd.Series([str(i) for i in table.index], index=table.index)


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


def _mae(errors: np.ndarray) -> float:
    return float(np.mean(np.abs(errors))) if errors.size and np.all(np.isfinite(errors)) else math.nan


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


def group_design(x: np.ndarray, groups: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Design [1, x, one dummy per non-reference level] of ``score ~ measure + C(group)``.

    Treatment coding with the first level in sorted order as reference, as patsy's ``C()`` does.
    Returns the (n, 2 + levels − 1) design and the sorted levels.
    """
    groups = np.asarray(groups, dtype=object)
    levels = sorted(set(groups.tolist()))
    dummies = [(groups == level).astype("float64") for level in levels[1:]]
    design = np.column_stack([np.ones(x.size), x, *dummies])
    return design, levels


def fit_group(
    x: np.ndarray, y: np.ndarray, groups: Sequence[str], confidence: float = CONFIDENCE
) -> dict:
    """OLS of ``score ~ measure + C(group)``; the measure's slope, its interval and the fit.

    Raises :class:`LatentgeoError` when the group has one level only or the design has no
    residual degrees of freedom.
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
    }


def predict_heldout(fit: dict, x: np.ndarray, y: np.ndarray, labels: Sequence[str],
                    confidence: float = CONFIDENCE) -> dict:
    """Predict held-out rows from a :func:`fit_line` result; errors are observed − predicted.

    Each prediction carries its ``confidence`` prediction interval (for a new observation).
    """
    design = np.column_stack([np.ones(x.size), x])
    frame = fit["_model"].get_prediction(design).summary_frame(alpha=1 - confidence)
    predicted = frame["mean"].to_numpy()
    errors = y - predicted
    rows = [
        {
            "model": str(label),
            "measure": float(xi),
            "observed": float(yi),
            "predicted": float(pi),
            "error": float(ei),
            "pi_low": float(lo),
            "pi_high": float(hi),
        }
        for label, xi, yi, pi, ei, lo, hi in zip(
            labels, x, y, predicted, errors, frame["obs_ci_lower"], frame["obs_ci_upper"]
        )
    ]
    return {"n": int(x.size), "rmse": _rmse(errors), "mae": _mae(errors), "predictions": rows}


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


def regress(
    table: pd.DataFrame,
    score: str,
    measures: Sequence[str] | None = None,
    group: str | None = None,
    *,
    holdout: str | None = HOLDOUT_VALUE,
    confidence: float = CONFIDENCE,
) -> dict:
    """Regress ``score`` on each measure of ``table``; see the module docstring for the numbers.

    ``measures``: columns to use; None takes :func:`default_measures` (numeric columns), and then
    columns that cannot be fitted (constant, fewer than 3 usable rows) are skipped and listed
    under ``skipped`` instead of failing. Named measures are held to the rules strictly.
    ``group``: a column for ``score ~ measure + C(group)`` (fitted on all usable rows).
    ``holdout``: the ``family`` value whose rows are held out of the per-measure fit and
    predicted by it (None: fit on every row).
    Returns a JSON-ready dict: ``measures`` (per measure), ``ranking`` (by |r|, strongest first),
    ``skipped``, and the settings used.
    """
    if not 0 < confidence < 1:
        raise LatentgeoError(f"confidence must be in (0, 1), got {confidence}")
    y_all = _numeric_column(table, score, "score")
    explicit = measures is not None
    if explicit:
        measures = list(dict.fromkeys(measures))
        if not measures:
            raise LatentgeoError("no measure columns were named")
        for m in measures:
            if m == score:
                raise LatentgeoError(f"measure column {m!r} is the score column itself")
            _numeric_column(table, m, "measure")
    else:
        measures = default_measures(table, score, group)
        if not measures:
            raise LatentgeoError(
                f"the table has no numeric measure columns besides the score {score!r}; "
                f"columns: {list(map(str, table.columns))}"
            )
    if group is not None:
        if group not in table.columns:
            raise LatentgeoError(
                f"group column {group!r} is not in the table; columns: {list(map(str, table.columns))}"
            )
        if group == score or group in measures:
            raise LatentgeoError(f"group column {group!r} is also used as score or measure")
        groups_all = table[group].astype("string")
    if y_all.notna().sum() < MIN_ROWS:
        raise LatentgeoError(
            f"score column {score!r} has {int(y_all.notna().sum())} usable rows; need at least {MIN_ROWS}"
        )

    labels = _row_labels(table)
    held = _holdout_mask(table, holdout)
    train = ~held if held is not None else pd.Series(True, index=table.index)
    results: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    for m in measures:
        x_all = _numeric_column(table, m, "measure")
        try:
            results[m] = _regress_one(
                m, score, x_all, y_all, labels, train, held,
                groups_all if group is not None else None, confidence,
            )
        except LatentgeoError as err:
            if explicit:
                raise
            skipped[m] = str(err)
    if not results:
        raise LatentgeoError(
            "no measure could be fitted: " + "; ".join(f"{k}: {v}" for k, v in skipped.items())
        )
    ranking = sorted(results, key=lambda k: (-abs(results[k]["r"]), k))
    return {
        "score": score,
        "group": group,
        "confidence": confidence,
        "n_rows": int(len(table)),
        "fit_rows": (
            f"{HOLDOUT_COLUMN} != {holdout!r}" if held is not None else "all"
        ),
        "holdout": (
            {"column": HOLDOUT_COLUMN, "value": holdout, "n": int(held.sum())}
            if held is not None else None
        ),
        "measures": results,
        "ranking": ranking,
        "skipped": skipped,
    }


def _regress_one(
    measure: str,
    score: str,
    x_all: pd.Series,
    y_all: pd.Series,
    labels: pd.Series,
    train: pd.Series,
    held: pd.Series | None,
    groups_all: pd.Series | None,
    confidence: float,
) -> dict:
    """All fits for one measure; raises :class:`LatentgeoError` naming it when it cannot be fitted."""
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
        raise LatentgeoError(f"score {score!r} is constant over the rows usable with {measure!r}")
    fit = fit_line(x, y, confidence)
    out = {k: v for k, v in fit.items() if not k.startswith("_")}
    out["n_dropped"] = int(dropped.sum())
    out["dropped"] = labels[dropped].tolist()

    if held is not None:
        h_rows = held & usable
        out["heldout"] = predict_heldout(
            fit, x_all[h_rows].to_numpy(), y_all[h_rows].to_numpy(), labels[h_rows].tolist(),
            confidence,
        )
        out["heldout"]["n_dropped"] = int((held & ~usable).sum())
        out["heldout"]["dropped"] = labels[held & ~usable].tolist()

    if groups_all is not None:
        g_usable = usable & groups_all.notna()
        try:
            g = fit_group(
                x_all[g_usable].to_numpy(), y_all[g_usable].to_numpy(),
                groups_all[g_usable].astype(str).tolist(), confidence,
            )
        except LatentgeoError as err:
            raise LatentgeoError(f"group model for measure {measure!r}: {err}") from None
        g["n_dropped"] = int((~g_usable).sum())
        g["dropped"] = labels[~g_usable].tolist()
        out["group_fit"] = g
    return out


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


def write_regression(result: dict, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a :func:`regress` result as deterministic JSON (NaN becomes null), atomically."""
    path = check_output_path(path, overwrite=overwrite)
    return write_json(path, result)
