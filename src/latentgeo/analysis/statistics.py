"""The statistics behind the regressions: small pure functions on float64 arrays.

Pearson r's Fisher interval, leave-one-out errors by leverage, partial correlation by residuals,
Holm's adjustment, OLS fits (statsmodels) of ``score ~ measure``, ``score ~ controls + measure``
and ``score ~ measure + C(group)``, and predictions of held-out rows with their errors. Nothing
here reads a table or knows a column name: :mod:`latentgeo.analysis.regression` applies these
to every measure of a results table, :mod:`latentgeo.analysis.lofo` to families of models.
Each is checked against a plain numpy/scipy reference in ``tests/test_analysis_statistics.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from latentgeo.errors import LatentgeoError

# Deferred to the functions that use them, so that importing this module stays light: statsmodels.

CONFIDENCE = 0.95

# The family-wise level below which the study calls a Holm-adjusted p-value significant (figures,
# results document, benchmarks).
SIGNIFICANCE = 0.05

# The outlier models of the paper's results/linreg_clean.R, as its `outlier_models` lists them.
# Only the first three are model names; the other four name error columns of that script and match
# no model. Kept whole so that "MSE without outliers" filters exactly what the script filters.
R_SCRIPT_OUTLIERS = ("untrained", "rand", "untrained_w_emb", "mse", "mse_filter", "sse", "sse_filter")


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


def rmse(errors: np.ndarray) -> float:
    """Root mean squared error of ``errors`` (n,); NaN for no rows or a non-finite error."""
    return float(np.sqrt(np.mean(errors**2))) if errors.size and np.all(np.isfinite(errors)) else math.nan


def mse(errors: np.ndarray) -> float:
    """Mean squared error, as R's ``Metrics::mse(actual, predicted)``; NaN for no rows."""
    return float(np.mean(errors**2)) if errors.size and np.all(np.isfinite(errors)) else math.nan


def mae(errors: np.ndarray) -> float:
    """Mean absolute error of ``errors`` (n,); NaN for no rows or a non-finite error."""
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
    """OLS of y on x with an intercept (statsmodels): slope and intercept with their intervals
    (Student t, n − 2 df), Pearson r with its Fisher interval, r², the slope's two-sided p-value
    (the same test as Pearson's) and the leave-one-out RMSE and MAE.

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
        "loo_rmse": rmse(loo),
        "loo_mae": mae(loo),
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
        "rmse": rmse(errors),
        "mae": mae(errors),
        "mse": mse(errors),
        "n_without_outliers": int(keep.sum()),
        "mse_without_outliers": mse(errors[keep]),
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
