"""The regressions' statistics (latentgeo.analysis.statistics), each against a plain numpy/scipy
reference written here, in float64, and against the identities that tie them together."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from latentgeo.analysis.statistics import (
    fisher_ci,
    fit_group,
    fit_line,
    fit_with_controls,
    group_design,
    heldout_errors,
    holm_adjust,
    loo_residuals,
    partial_correlation,
    predict_heldout,
)
from latentgeo.errors import LatentgeoError


def sample(n: int = 30, seed: int = 0):
    """x, y and two covariates; y depends on x and on the first covariate."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(n, 2))
    x = 0.7 * c[:, 0] + rng.normal(size=n)
    y = 0.5 * x - 0.8 * c[:, 0] + rng.normal(scale=0.5, size=n)
    return x, y, c


def reference_partial(x, y, c):
    """Residuals of x and y on [1, c] by numpy lstsq, their Pearson r, and its t-test p-value."""
    design = np.column_stack([np.ones(len(x)), c])
    rx = x - design @ np.linalg.lstsq(design, x, rcond=None)[0]
    ry = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    r = np.corrcoef(rx, ry)[0, 1]
    df = len(x) - 2 - c.shape[1]
    t = r * math.sqrt(df / (1 - r * r))
    return r, 2 * stats.t.sf(abs(t), df), df


def test_fisher_ci_by_hand():
    r, n = 0.6, 30
    z, se = np.arctanh(r), 1 / np.sqrt(n - 3)
    expected = np.tanh([z - 1.959963984540054 * se, z + 1.959963984540054 * se])
    assert fisher_ci(r, n) == pytest.approx(tuple(expected), rel=1e-12)
    assert all(np.isnan(fisher_ci(0.5, 3)))
    assert fisher_ci(1.0, 10) == (1.0, 1.0) and fisher_ci(-1.0, 10) == (-1.0, -1.0)


def test_loo_residuals_match_refitting_without_each_row():
    x, y, c = sample(n=12, seed=1)
    design = np.column_stack([np.ones(12), x, c[:, 0]])
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    fast = loo_residuals(design, y, y - design @ coef)
    for i in range(12):
        keep = np.arange(12) != i
        refit = np.linalg.lstsq(design[keep], y[keep], rcond=None)[0]
        assert fast[i] == pytest.approx(y[i] - design[i] @ refit, rel=1e-10)
    # A row only it determines (its own dummy column) has leverage 1: no prediction, NaN.
    dummy = np.zeros(12)
    dummy[3] = 1.0
    lone = np.column_stack([design, dummy])
    coef = np.linalg.lstsq(lone, y, rcond=None)[0]
    errors = loo_residuals(lone, y, y - lone @ coef)
    assert math.isnan(errors[3]) and np.isfinite(np.delete(errors, 3)).all()


def test_partial_correlation_matches_residual_reference():
    x, y, c = sample()
    for k in (1, 2):
        r, p, df = partial_correlation(x, y, c[:, :k])
        ref_r, ref_p, ref_df = reference_partial(x, y, c[:, :k])
        assert (r, p, df) == pytest.approx((ref_r, ref_p, ref_df), rel=1e-10)
    # With no covariate at all it is Pearson's r and test.
    r, p, df = partial_correlation(x, y, np.empty((x.size, 0)))
    pearson = stats.pearsonr(x, y)
    assert (r, p, df) == pytest.approx((pearson.statistic, pearson.pvalue, x.size - 2), rel=1e-10)


def test_partial_correlation_refuses_what_is_undefined():
    x, y, c = sample(n=5)
    with pytest.raises(LatentgeoError, match="needs more than 4 rows"):
        partial_correlation(x[:4], y[:4], c[:4])
    with pytest.raises(LatentgeoError, match="measure is a linear function of the controls"):
        partial_correlation(2.0 * c[:, 0] + 1.0, y, c)


def test_fit_with_controls_tests_the_partial_r_as_the_measures_coefficient():
    x, y, c = sample(seed=2)
    fit = fit_with_controls(x, y, c)
    # One hypothesis, two routes: the residual correlation's t-test and the coefficient's.
    assert fit["partial_slope_p_value"] == pytest.approx(fit["partial_p_value"], rel=1e-8)
    full = np.column_stack([np.ones(x.size), c, x])
    assert fit["partial_slope"] == pytest.approx(np.linalg.lstsq(full, y, rcond=None)[0][-1], rel=1e-10)
    assert fit["r2_controls"] <= fit["r2_controls_and_measure"] <= 1.0
    # Frisch–Waugh: r2 added by the measure = partial r² × what the controls left unexplained.
    added = fit["r2_controls_and_measure"] - fit["r2_controls"]
    assert added == pytest.approx(fit["partial_r"] ** 2 * (1 - fit["r2_controls"]), rel=1e-10)


def test_fit_line_matches_scipy_and_predicts_with_intervals():
    x, y, _ = sample(seed=3)
    fit = fit_line(x, y)
    ref = stats.linregress(x, y)
    assert (fit["slope"], fit["intercept"], fit["r"], fit["p_value"]) == pytest.approx(
        (ref.slope, ref.intercept, ref.rvalue, ref.pvalue), rel=1e-10)
    new_x, new_y = np.array([-1.0, 0.0, 2.5]), np.array([0.1, 0.2, 0.3])
    out = predict_heldout(fit, new_x, new_y, ["a", "untrained", "c"])
    predicted = ref.intercept + ref.slope * new_x
    assert [row["predicted"] for row in out["predictions"]] == pytest.approx(predicted, rel=1e-10)
    for row in out["predictions"]:
        assert row["pi_low"] < row["predicted"] < row["pi_high"]
        assert row["error"] == pytest.approx(row["observed"] - row["predicted"], rel=1e-12)
    assert out["outliers_excluded"] == ["untrained"] and out["n_without_outliers"] == 2


def test_holm_by_hand_and_nan_does_not_count():
    p = {"a": 0.01, "b": 0.04, "c": 0.03, "d": math.nan}
    # Sorted 0.01, 0.03, 0.04 times 3, 2, 1, made monotone: 0.03, 0.06, 0.06.
    adjusted = holm_adjust(p)
    assert adjusted["a"] == pytest.approx(0.03) and adjusted["c"] == pytest.approx(0.06)
    assert adjusted["b"] == pytest.approx(0.06) and math.isnan(adjusted["d"])
    assert holm_adjust({"a": 0.6, "b": 0.7}) == pytest.approx({"a": 1.0, "b": 1.0})


def test_group_design_is_treatment_coding_and_fit_group_matches_lstsq():
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    groups = ["b", "a", "c", "b", "a", "c", "b", "a"]
    design, levels = group_design(x, groups)
    assert levels == ["a", "b", "c"] and design.shape == (8, 4)
    assert design[:, 2].tolist() == [1, 0, 0, 1, 0, 0, 1, 0] and design[:, 3].tolist() == [0, 0, 1, 0, 0, 1, 0, 0]
    y = 1.0 + 0.5 * x + np.array([0.3, 0.0, -0.2, 0.3, 0.0, -0.2, 0.3, 0.0]) + 0.01 * np.sin(np.arange(8))
    fit = fit_group(x, y, groups)
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    assert fit["slope"] == pytest.approx(coef[1], rel=1e-10) and fit["reference"] == "a"
    assert fit["group_effects"] == pytest.approx({"b": coef[2], "c": coef[3]}, rel=1e-10)
    with pytest.raises(LatentgeoError, match="only one level"):
        fit_group(x, y, ["a"] * 8)


def test_heldout_errors_without_outliers():
    out = heldout_errors([1.0, 2.0, 3.0], [1.5, 2.0, 1.0], ["m1", "rand", "m3"])
    assert out["mse"] == pytest.approx((0.25 + 0 + 4) / 3) and out["rmse"] == pytest.approx(math.sqrt(4.25 / 3))
    assert out["mae"] == pytest.approx(2.5 / 3)
    assert out["mse_without_outliers"] == pytest.approx((0.25 + 4) / 2) and out["outliers_excluded"] == ["rand"]
    assert math.isnan(heldout_errors([], [], [])["mse"])
