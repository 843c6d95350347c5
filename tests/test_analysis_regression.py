"""OLS per measure against plain numpy/scipy references, and the ``latentgeo regress`` CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from latentgeo.cli import main
from latentgeo.errors import LatentgeoError
from latentgeo.analysis.regression import regress

TRUE_SLOPE, TRUE_INTERCEPT = -2.0, 3.0


def synthetic_table(n: int = 40, seed: int = 0, nonstandard: int = 0) -> pd.DataFrame:
    """score = 3 − 2·x + noise, plus an unrelated measure and a constant one."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 2, n)
    score = TRUE_INTERCEPT + TRUE_SLOPE * x + rng.normal(0, 0.1, n)
    family = ["base"] + ["perturbed"] * (n - 1 - nonstandard) + ["non-standard"] * nonstandard
    return pd.DataFrame({
        "model": [f"m{i:02d}" for i in range(n)],
        "family": family,
        "alpha": np.linspace(0, 100, n),
        "seed": 1,
        "score_task": score + 0.1,
        "score_average": score,
        "lsq_patchiness": x,
        "noise_measure": rng.normal(size=n),
        "pq_m": 4.0,
    })


def reference_fit(x: np.ndarray, y: np.ndarray) -> dict:
    """Simple regression by scipy.stats.linregress and textbook formulas."""
    n = x.size
    lr = stats.linregress(x, y)
    t = stats.t.ppf(0.975, n - 2)
    return {
        "n": n,
        "slope": lr.slope,
        "intercept": lr.intercept,
        "r": np.corrcoef(x, y)[0, 1],
        "r2": lr.rvalue**2,
        "p_value": lr.pvalue,
        "slope_ci_low": lr.slope - t * lr.stderr,
        "slope_ci_high": lr.slope + t * lr.stderr,
        "intercept_ci_low": lr.intercept - t * lr.intercept_stderr,
        "intercept_ci_high": lr.intercept + t * lr.intercept_stderr,
    }


def hand_loo(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Leave each row out, refit with np.polyfit, predict it: errors y_i − ŷ_(−i)."""
    errors = []
    for i in range(x.size):
        keep = np.arange(x.size) != i
        slope, intercept = np.polyfit(x[keep], y[keep], 1)
        errors.append(y[i] - (intercept + slope * x[i]))
    return np.array(errors)


def test_simple_fit_matches_numpy_scipy_and_recovers_slope():
    table = synthetic_table()
    result = regress(table, "score_average", measures=["lsq_patchiness", "noise_measure"])
    x, y = table["lsq_patchiness"].to_numpy(), table["score_average"].to_numpy()
    fit = result["measures"]["lsq_patchiness"]
    ref = reference_fit(x, y)
    for key, value in ref.items():
        assert fit[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert fit["slope_ci_low"] < TRUE_SLOPE < fit["slope_ci_high"]
    assert fit["r_ci_low"] < fit["r"] < fit["r_ci_high"]
    scipy_ci = stats.pearsonr(x, y).confidence_interval(0.95)
    assert (fit["r_ci_low"], fit["r_ci_high"]) == pytest.approx((scipy_ci.low, scipy_ci.high), rel=1e-9)
    assert fit["n_dropped"] == 0 and fit["dropped"] == []
    # No family == "non-standard" rows: every row is fitted, nothing held out.
    assert result["holdout"] is None and result["fit_rows"] == "all"
    assert result["ranking"] == ["lsq_patchiness", "noise_measure"]


def test_leave_one_out_matches_a_hand_loop():
    table = synthetic_table(n=15, seed=3)
    fit = regress(table, "score_average", measures=["lsq_patchiness"])["measures"]["lsq_patchiness"]
    errors = hand_loo(table["lsq_patchiness"].to_numpy(), table["score_average"].to_numpy())
    assert fit["loo_rmse"] == pytest.approx(np.sqrt(np.mean(errors**2)), rel=1e-10)
    assert fit["loo_mae"] == pytest.approx(np.mean(np.abs(errors)), rel=1e-10)


def test_missing_values_are_dropped_and_counted():
    table = synthetic_table(n=20)
    table.loc[[2, 5], "lsq_patchiness"] = np.nan
    table.loc[7, "score_average"] = np.nan
    result = regress(table, "score_average", measures=["lsq_patchiness", "noise_measure"])
    fit = result["measures"]["lsq_patchiness"]
    assert fit["n"] == 17 and fit["n_dropped"] == 3
    assert fit["dropped"] == ["m02", "m05", "m07"]
    clean = table.dropna(subset=["lsq_patchiness", "score_average"])
    ref = reference_fit(clean["lsq_patchiness"].to_numpy(), clean["score_average"].to_numpy())
    assert fit["slope"] == pytest.approx(ref["slope"], rel=1e-10)
    assert fit["r"] == pytest.approx(ref["r"], rel=1e-10)
    # Each measure drops only what it needs.
    assert result["measures"]["noise_measure"]["n_dropped"] == 1


def grouped_table(seed: int = 1) -> pd.DataFrame:
    """30 training rows in three sources + 5 held-out rows: four of seen sources, one of a new one."""
    rng = np.random.default_rng(seed)
    n_train = 30
    source = np.array(["small", "base", "roberta"] * 10)
    x = rng.uniform(0, 2, n_train)
    offset = {"small": 0.0, "base": 0.4, "roberta": -0.3}
    score = 1.0 - 0.5 * x + np.array([offset[s] for s in source]) + rng.normal(0, 0.05, n_train)
    train = pd.DataFrame({
        "model": [f"m{i:02d}" for i in range(n_train)], "family": "perturbed", "source": source,
        "score_average": score, "lsq_patchiness": x,
    })
    held = pd.DataFrame({
        "model": ["untrained", "chin", "rand", "fc", "newcomer"],
        "family": "non-standard",
        "source": ["base", "base", "roberta", "small", "xlnet"],
        "score_average": [0.55, 0.68, 0.56, 0.77, 0.5],
        "lsq_patchiness": [3.0, 0.8, 2.5, 0.4, 1.0],
    })
    return pd.concat([train, held], ignore_index=True)


def test_group_model_is_fitted_on_training_rows_only():
    import statsmodels.formula.api as smf

    table = grouped_table()
    result = regress(table, "score_average", measures=["lsq_patchiness"], group="source")
    g = result["measures"]["lsq_patchiness"]["group_fit"]
    train = table[table["family"] != "non-standard"]
    assert g["n"] == 30 and g["levels"] == ["base", "roberta", "small"] and g["reference"] == "base"
    src = train["source"].to_numpy()
    design = np.column_stack([np.ones(30), train["lsq_patchiness"], src == "roberta", src == "small"]).astype(float)
    coef, *_ = np.linalg.lstsq(design, train["score_average"].to_numpy(), rcond=None)
    assert g["intercept"] == pytest.approx(coef[0], rel=1e-9)
    assert g["slope"] == pytest.approx(coef[1], rel=1e-9)
    assert g["group_effects"] == pytest.approx({"roberta": coef[2], "small": coef[3]}, rel=1e-8)
    formula = smf.ols("score_average ~ lsq_patchiness + C(source)", data=train).fit()
    assert g["r2"] == pytest.approx(formula.rsquared, rel=1e-10)
    assert g["r2_adj"] == pytest.approx(formula.rsquared_adj, rel=1e-10)
    lo, hi = formula.conf_int().loc["lsq_patchiness"]
    assert (g["slope_ci_low"], g["slope_ci_high"]) == pytest.approx((lo, hi), rel=1e-9)
    assert g["p_value"] == pytest.approx(formula.pvalues["lsq_patchiness"], rel=1e-6)

    # Held-out rows are predicted by the fit where their level was seen (R: predict(mod_m, alt)).
    held = table[table["family"] == "non-standard"]
    out = g["heldout"]
    seen = held[held["source"] != "xlnet"]
    expected = formula.predict(seen)
    assert [p["model"] for p in out["predictions"]] == seen["model"].tolist()
    np.testing.assert_allclose([p["predicted"] for p in out["predictions"]], expected, rtol=1e-10)
    assert [p["group"] for p in out["predictions"]] == seen["source"].tolist()
    assert out["unpredictable"] == [{"model": "newcomer", "group": "xlnet"}]
    errors = seen["score_average"].to_numpy() - expected.to_numpy()
    assert out["mse"] == pytest.approx(np.mean(errors**2), rel=1e-10)
    # The R script's outlier list drops untrained and rand here.
    keep = ~seen["model"].isin(["untrained", "rand"]).to_numpy()
    assert out["mse_without_outliers"] == pytest.approx(np.mean(errors[keep] ** 2), rel=1e-10)
    assert out["outliers_excluded"] == ["untrained", "rand"] and out["n_without_outliers"] == 2


def test_group_model_never_sees_heldout_rows():
    table = grouped_table()
    before = regress(table, "score_average", measures=["lsq_patchiness"], group="source")
    changed = table.copy()
    held = changed["family"] == "non-standard"
    changed.loc[held, "score_average"] = [9.0, -4.0, 7.0, 100.0, 3.0]
    changed.loc[held, "lsq_patchiness"] = [50.0, -20.0, 0.0, 8.0, 1e3]
    after = regress(changed, "score_average", measures=["lsq_patchiness"], group="source")
    for key in ("n", "slope", "intercept", "r2", "group_effects", "p_value"):
        assert after["measures"]["lsq_patchiness"]["group_fit"][key] == before["measures"]["lsq_patchiness"]["group_fit"][key]
        if key in before["measures"]["lsq_patchiness"]:
            assert after["measures"]["lsq_patchiness"][key] == before["measures"]["lsq_patchiness"][key]


def test_plain_heldout_mse_with_and_without_outliers_by_hand():
    table = grouped_table()
    result = regress(table, "score_average", measures=["lsq_patchiness"], outliers=["chin", "fc"])
    train = table[table["family"] != "non-standard"]
    held = table[table["family"] == "non-standard"]
    slope, intercept = np.polyfit(train["lsq_patchiness"], train["score_average"], 1)
    errors = held["score_average"].to_numpy() - (intercept + slope * held["lsq_patchiness"].to_numpy())
    out = result["measures"]["lsq_patchiness"]["heldout"]
    assert out["n"] == 5 and out["mse"] == pytest.approx(np.mean(errors**2), rel=1e-9)
    keep = ~held["model"].isin(["chin", "fc"]).to_numpy()
    assert out["mse_without_outliers"] == pytest.approx(np.mean(errors[keep] ** 2), rel=1e-9)
    assert out["outliers_excluded"] == ["chin", "fc"]
    assert result["outliers"] == ["chin", "fc"]


def test_group_model_in_our_pipeline_cannot_predict_an_unseen_family():
    # results/table.csv with group=family: the held-out level 'non-standard' never occurs in the
    # training rows, so the group model predicts nothing (R's predict() would refuse the level).
    table = synthetic_table(n=30, seed=1, nonstandard=4)
    g = regress(table, "score_average", measures=["lsq_patchiness"], group="family")[
        "measures"]["lsq_patchiness"]["group_fit"]
    assert g["n"] == 26 and g["levels"] == ["base", "perturbed"]
    assert g["heldout"]["n"] == 0 and len(g["heldout"]["unpredictable"]) == 4


def test_nonstandard_models_are_predicted_from_the_other_rows():
    table = synthetic_table(n=25, seed=2, nonstandard=3)
    result = regress(table, "score_average", measures=["lsq_patchiness"])
    assert result["holdout"] == {"column": "family", "value": "non-standard", "n": 3}
    fit = result["measures"]["lsq_patchiness"]
    train = table[table["family"] != "non-standard"]
    held = table[table["family"] == "non-standard"]
    x, y = train["lsq_patchiness"].to_numpy(), train["score_average"].to_numpy()
    assert fit["n"] == 22 and fit["slope"] == pytest.approx(reference_fit(x, y)["slope"], rel=1e-10)
    slope, intercept = np.polyfit(x, y, 1)
    x0, y0 = held["lsq_patchiness"].to_numpy(), held["score_average"].to_numpy()
    predicted = intercept + slope * x0
    out = fit["heldout"]
    assert out["n"] == 3
    assert [p["model"] for p in out["predictions"]] == held["model"].tolist()
    np.testing.assert_allclose([p["predicted"] for p in out["predictions"]], predicted, rtol=1e-10)
    np.testing.assert_allclose([p["error"] for p in out["predictions"]], y0 - predicted, rtol=1e-8)
    assert out["rmse"] == pytest.approx(np.sqrt(np.mean((y0 - predicted) ** 2)), rel=1e-8)
    assert out["mae"] == pytest.approx(np.mean(np.abs(y0 - predicted)), rel=1e-8)
    # The 95 % prediction interval for a new observation, by the textbook formula.
    n, resid = x.size, y - (intercept + slope * x)
    s = np.sqrt(resid @ resid / (n - 2))
    half = stats.t.ppf(0.975, n - 2) * s * np.sqrt(1 + 1 / n + (x0 - x.mean()) ** 2 / np.sum((x - x.mean()) ** 2))
    np.testing.assert_allclose([p["pi_high"] - p["predicted"] for p in out["predictions"]], half, rtol=1e-8)
    # Without a hold-out every row is fitted.
    everything = regress(table, "score_average", measures=["lsq_patchiness"], holdout=None)
    assert everything["measures"]["lsq_patchiness"]["n"] == 25
    assert "heldout" not in everything["measures"]["lsq_patchiness"]


def test_default_measures_skip_design_score_and_unfittable_columns():
    result = regress(synthetic_table(), "score_average")
    assert sorted(result["measures"]) == ["lsq_patchiness", "noise_measure"]
    assert list(result["skipped"]) == ["pq_m"] and "constant" in result["skipped"]["pq_m"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"score": "score_missing"}, "score column 'score_missing' is not in the table"),
        ({"measures": ["nope"]}, "measure column 'nope' is not in the table"),
        ({"measures": ["model"]}, "measure column 'model' is not numeric"),
        ({"measures": ["pq_m"]}, "measure 'pq_m' is constant"),
        ({"group": "team"}, "group column 'team' is not in the table"),
    ],
)
def test_bad_inputs_raise_naming_the_column(kwargs, message):
    args = {"score": "score_average", "measures": ["lsq_patchiness"], **kwargs}
    with pytest.raises(LatentgeoError, match=message):
        regress(synthetic_table(), args.pop("score"), **args)


def test_too_few_rows_is_refused():
    table = synthetic_table(n=6)
    table.loc[:3, "lsq_patchiness"] = np.nan
    with pytest.raises(LatentgeoError, match=r"measure 'lsq_patchiness' has 2 usable rows .* need at least 3"):
        regress(table, "score_average", measures=["lsq_patchiness"])


# -------------------------------------------------------------------------------------- CLI


def test_cli_writes_json(tmp_path, capsys):
    path = tmp_path / "t.csv"
    synthetic_table(n=20, nonstandard=2).to_csv(path, index=False)
    out = tmp_path / "r.json"
    assert main(["regress", "--table", str(path), "--score", "score_average",
                 "--group", "family", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["ranking"][0] == "lsq_patchiness"
    # The group model is fitted on the 18 training rows; the 2 held-out rows are only predicted.
    assert result["measures"]["lsq_patchiness"]["group_fit"]["n"] == 18
    assert "lsq_patchiness" in capsys.readouterr().out
    # Same input, same bytes; an existing output needs --overwrite.
    first = out.read_bytes()
    assert main(["regress", "--table", str(path), "--score", "score_average", "--group", "family",
                 "--out", str(out)]) == 2
    assert main(["regress", "--table", str(path), "--score", "score_average", "--group", "family",
                 "--out", str(out), "--overwrite"]) == 0
    assert out.read_bytes() == first


@pytest.mark.parametrize(
    ("edit", "extra", "column"),
    [
        (None, ["--score", "score_nope"], "score_nope"),
        (None, ["--score", "score_average", "--measure", "lsq_nope"], "lsq_nope"),
        (None, ["--score", "score_average", "--measure", "pq_m"], "pq_m"),
        ("few", ["--score", "score_average", "--measure", "lsq_patchiness"], "lsq_patchiness"),
        (None, ["--score", "score_average", "--group", "team"], "team"),
    ],
)
def test_cli_bad_input_exits_2_naming_the_column(tmp_path, capsys, edit, extra, column):
    table = synthetic_table(n=10)
    if edit == "few":
        table.loc[2:, "lsq_patchiness"] = np.nan
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    out = tmp_path / "r.json"
    assert main(["regress", "--table", str(path), *extra, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert f"'{column}'" in captured.err and "Traceback" not in captured.err
    assert captured.out == ""
    assert not out.exists() and list(tmp_path.iterdir()) == [path]


def test_cli_missing_table(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["regress", "--table", str(tmp_path / "none.csv"), "--score", "s", "--out", str(out)]) == 2
    assert "table not found" in capsys.readouterr().err
    assert not out.exists()


# ------------------------------------------------------------------ controls and partial r


def alpha_table(n: int = 40, seed: int = 4) -> pd.DataFrame:
    """A noise sweep: the score falls with log α; `tracker` follows log α only, `extra` adds
    information beyond it; two held-out rows without α."""
    rng = np.random.default_rng(seed)
    alpha = np.exp(rng.uniform(np.log(0.5), np.log(100), n))
    hidden = rng.normal(0, 1, n)
    score = 0.7 - 0.08 * np.log(alpha) + 0.03 * hidden + rng.normal(0, 0.01, n)
    frame = pd.DataFrame({
        "model": [f"s{i:02d}" for i in range(n)],
        "family": "perturbed",
        "alpha": alpha,
        "score_average": score,
        "tracker": -np.log(alpha) + rng.normal(0, 0.05, n),
        "extra": hidden + rng.normal(0, 0.2, n),
        "noise": rng.normal(0, 1, n),
    })
    held = pd.DataFrame({"model": ["untrained", "rand"], "family": "non-standard", "alpha": np.nan,
                         "score_average": [0.5, 0.55], "tracker": [0.0, 1.0], "extra": [0.0, 0.1],
                         "noise": [0.0, 0.0]})
    return pd.concat([frame, held], ignore_index=True)


def residual_partial_r(x, y, c):
    """Plain reference: correlate the residuals of x and y after least squares on [1, c]."""
    design = np.column_stack([np.ones(len(x)), c])
    rx = x - design @ np.linalg.lstsq(design, x, rcond=None)[0]
    ry = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    return np.corrcoef(rx, ry)[0, 1]


def hand_holm(p):
    """Holm's step-down by hand: sort, multiply the i-th smallest by (m − i), running max, cap 1."""
    p = np.asarray(p, dtype=float)
    order = np.argsort(p)
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (len(p) - rank) * p[i])
        adjusted[i] = min(1.0, running)
    return adjusted


def test_partial_r_matches_residual_reference_and_coefficient_test():
    import statsmodels.formula.api as smf

    table = alpha_table()
    result = regress(table, "score_average", measures=["tracker", "extra", "noise"],
                     controls=["log(alpha)"])
    train = table[table["family"] != "non-standard"].copy()
    train["log_alpha"] = np.log(train["alpha"])
    y = train["score_average"].to_numpy()
    for m in ("tracker", "extra", "noise"):
        fit = result["measures"][m]
        ref = residual_partial_r(train[m].to_numpy(), y, train[["log_alpha"]].to_numpy())
        assert fit["partial_r"] == pytest.approx(ref, rel=1e-9, abs=1e-12), m
        assert fit["partial_n"] == 40 and fit["partial_df"] == 37
        # One t-test: the measure's coefficient in score ~ controls + measure.
        full = smf.ols(f"score_average ~ log_alpha + {m}", data=train).fit()
        assert fit["partial_slope"] == pytest.approx(full.params[m], rel=1e-9)
        assert fit["partial_slope_p_value"] == pytest.approx(full.pvalues[m], rel=1e-7)
        assert fit["partial_p_value"] == pytest.approx(fit["partial_slope_p_value"], rel=1e-7, abs=1e-300)
        assert fit["r2_controls_and_measure"] == pytest.approx(full.rsquared, rel=1e-10)
        assert fit["r2_controls"] == pytest.approx(
            smf.ols("score_average ~ log_alpha", data=train).fit().rsquared, rel=1e-10)
        # partial r² = the share of the remaining variance the measure explains.
        gain = (fit["r2_controls_and_measure"] - fit["r2_controls"]) / (1 - fit["r2_controls"])
        assert fit["partial_r"] ** 2 == pytest.approx(gain, rel=1e-8)
    # The tracker's r is high, its partial r small; the extra measure's is the other way round.
    assert abs(result["measures"]["tracker"]["r"]) > 0.9
    assert abs(result["measures"]["tracker"]["partial_r"]) < abs(result["measures"]["extra"]["partial_r"])
    alone = result["controls"]["fits"]["log(alpha)"]
    assert alone["n"] == 40
    assert alone["r"] == pytest.approx(np.corrcoef(train["log_alpha"], y)[0, 1], rel=1e-10)
    # Holm across the three measures, by hand, for the partial and the plain p-values.
    names = ["tracker", "extra", "noise"]
    for key, holm in (("partial_p_value", "partial_p_holm"), ("p_value", "p_value_holm")):
        expected = hand_holm([result["measures"][m][key] for m in names])
        np.testing.assert_allclose([result["measures"][m][holm] for m in names], expected, rtol=1e-12)


def test_two_controls_and_log1p():
    table = alpha_table()
    table.loc[0, "alpha"] = 0.0  # log1p is defined at 0
    result = regress(table, "score_average", measures=["extra"], controls=["log1p(alpha)", "noise"])
    train = table[table["family"] != "non-standard"]
    c = np.column_stack([np.log1p(train["alpha"]), train["noise"]])
    ref = residual_partial_r(train["extra"].to_numpy(), train["score_average"].to_numpy(), c)
    fit = result["measures"]["extra"]
    assert fit["partial_r"] == pytest.approx(ref, rel=1e-9) and fit["partial_df"] == 40 - 2 - 2
    assert result["controls"]["exprs"] == ["log1p(alpha)", "noise"]


def test_control_columns_are_not_default_measures_and_rows_missing_a_control_are_dropped():
    table = alpha_table()
    table.loc[[3, 7], "alpha"] = np.nan
    result = regress(table, "score_average", controls=["log(alpha)"])
    assert "alpha" not in result["measures"] and sorted(result["measures"]) == ["extra", "noise", "tracker"]
    fit = result["measures"]["extra"]
    assert fit["n"] == 40 and fit["partial_n"] == 38  # the plain fit keeps the rows without α


def test_partial_r_is_undefined_not_fatal_with_too_few_rows():
    table = alpha_table(n=3)
    result = regress(table, "score_average", measures=["extra"], controls=["log(alpha)"])
    fit = result["measures"]["extra"]
    assert fit["n"] == 3 and math.isnan(fit["partial_r"]) and math.isnan(fit["partial_p_holm"])
    assert "needs more than 3 rows" in fit["partial_undefined"]


@pytest.mark.parametrize(
    ("controls", "measures", "edit", "message"),
    [
        (["log(nope)"], ["extra"], None, "control column 'nope' is not in the table"),
        (["log(alpha)"], ["extra"], "zero", r"control 'log\(alpha\)': log needs positive values.*row 's05'"),
        (["log1p(alpha)"], ["extra"], "minus_one", r"control 'log1p\(alpha\)': log1p needs values above -1"),
        (["score_average"], ["extra"], None, "control 'score_average' uses the score column"),
        (["log(extra)"], ["extra"], None, "control 'log\\(extra\\)' uses 'extra', which is also a measure"),
        (["exp(alpha)"], ["extra"], None, r"cannot parse control 'exp\(alpha\)'"),
        (["log(alpha"], ["extra"], None, r"cannot parse control 'log\(alpha'"),
        (["log()"], ["extra"], None, r"cannot parse control 'log\(\)'"),
        (["log(log(alpha))"], ["extra"], None, "cannot parse control"),
        ([" "], ["extra"], None, "cannot parse control"),
    ],
)
def test_bad_controls_are_refused_naming_them(controls, measures, edit, message):
    table = alpha_table()
    if edit == "zero":
        table.loc[5, "alpha"] = 0.0
    if edit == "minus_one":
        table.loc[5, "alpha"] = -1.0
    with pytest.raises(LatentgeoError, match=message):
        regress(table, "score_average", measures=measures, controls=controls)


def test_control_parsing():
    from latentgeo.analysis.controls import parse_control

    assert parse_control("alpha") == parse_control(" alpha ")
    assert parse_control("log( alpha )").expr == "log(alpha)"
    c = parse_control("log1p(a-patchiness)")
    assert (c.column, c.transform) == ("a-patchiness", "log1p")
    np.testing.assert_allclose(c.apply(np.array([0.0, 1.0])), [0.0, np.log(2.0)])


# --------------------------------------------------------------------------------- row labels


def test_an_unnamed_first_column_of_unique_strings_names_the_rows(tmp_path):
    from latentgeo.analysis.regression import label_column, read_table

    table = alpha_table(n=10).set_index("model").rename_axis(None)
    path = tmp_path / "published.csv"
    table.to_csv(path)  # written from the index: blank first header, as the paper's tables
    assert path.read_text().startswith(",family,")
    read = read_table(path)
    assert label_column(read) == "Unnamed: 0"
    result = regress(read, "score_average", measures=["extra"])
    assert result["label_column"] == "Unnamed: 0"
    assert [p["model"] for p in result["measures"]["extra"]["heldout"]["predictions"]] == ["untrained", "rand"]
    # An unnamed first column of numbers (a written RangeIndex) names nothing and is no measure.
    numbered = alpha_table(n=10).drop(columns="model")
    numbered.to_csv(path)
    read = read_table(path)
    assert label_column(read) is None
    result = regress(read, "score_average")
    assert "Unnamed: 0" not in result["measures"]
    assert result["measures"]["extra"]["heldout"]["predictions"][0]["model"] == "10"
    # Repeated names cannot label rows: positions instead.
    dup = alpha_table(n=10)
    dup["model"] = "same"
    dup.rename(columns={"model": "Unnamed: 0"}).to_csv(path, index=False)
    assert label_column(read_table(path)) is None


# ---------------------------------------------------------------------------- CLI controls


def test_cli_control_reports_partial_r(tmp_path, capsys):
    path = tmp_path / "t.csv"
    alpha_table().to_csv(path, index=False)
    out = tmp_path / "r.json"
    assert main(["regress", "--table", str(path), "--score", "score_average", "--control", "log(alpha)",
                 "--outlier", "rand", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["controls"]["exprs"] == ["log(alpha)"]
    assert result["measures"]["tracker"]["heldout"]["outliers_excluded"] == ["rand"]
    printed = capsys.readouterr().out
    assert "log(alpha): r = " in printed and "partial r of" in printed


@pytest.mark.parametrize(
    ("control", "fragment"),
    [
        ("log(nope)", "'nope'"),
        ("log(alpha)", "log needs positive values"),
        ("log1p(alpha)", "log1p needs values above -1"),
        ("score_average", "uses the score column"),
        ("sqrt(alpha)", "cannot parse control 'sqrt(alpha)'"),
    ],
)
def test_cli_bad_control_exits_2_before_writing(tmp_path, capsys, control, fragment):
    table = alpha_table()
    table.loc[5, "alpha"] = -2.0
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    out = tmp_path / "r.json"
    assert main(["regress", "--table", str(path), "--score", "score_average", "--measure", "extra",
                 "--control", control, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert fragment in captured.err and "Traceback" not in captured.err and captured.out == ""
    assert not out.exists()


# ------------------------------------------------------------------ the partial-r figure


@pytest.mark.slow  # draws the figure in every case, twice
def test_partial_r_figure_is_written_in_every_case_and_byte_stable(tmp_path):
    from latentgeo.analysis.figures import plot_partial_vs_r

    cases = {
        "full": regress(alpha_table(), "score_average", controls=["log(alpha)"]),
        "undefined": regress(alpha_table(n=3), "score_average", measures=["extra"], controls=["log(alpha)"]),
        "none": regress(alpha_table(), "score_average"),
    }
    for name, result in cases.items():
        data = plot_partial_vs_r(result, tmp_path / f"{name}.png", title="t", label="l").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000, name
    again = plot_partial_vs_r(cases["full"], tmp_path / "again.png", title="t", label="l")
    assert again.read_bytes() == (tmp_path / "full.png").read_bytes()


def test_holm_survivors_are_the_measures_below_the_level():
    from latentgeo.analysis.regression import holm_survivors

    result = {"measures": {"a": {"partial_p_holm": 0.001}, "b": {"partial_p_holm": 0.05},
                           "c": {"partial_p_holm": None}, "d": {}, "e": {"partial_p_holm": 0.2}}}
    assert holm_survivors(result) == {"a"}  # 0.05 itself is not below the level
    assert holm_survivors(result, level=0.25) == {"a", "b", "e"}
