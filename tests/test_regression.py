"""OLS per measure against plain numpy/scipy references, and the ``latentgeo regress`` CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from latentgeo.cli import main
from latentgeo.errors import LatentgeoError
from latentgeo.regression import fisher_ci, regress

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


def test_fisher_ci_by_hand():
    r, n = 0.6, 30
    z, se = np.arctanh(r), 1 / np.sqrt(n - 3)
    expected = np.tanh([z - 1.959963984540054 * se, z + 1.959963984540054 * se])
    assert fisher_ci(r, n) == pytest.approx(tuple(expected), rel=1e-12)
    assert all(np.isnan(fisher_ci(0.5, 3)))


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


def test_group_model_matches_lstsq_and_formula():
    import statsmodels.formula.api as smf

    table = synthetic_table(n=30, seed=1, nonstandard=4)
    result = regress(table, "score_average", measures=["lsq_patchiness"], group="family")
    g = result["measures"]["lsq_patchiness"]["group_fit"]
    assert g["levels"] == ["base", "non-standard", "perturbed"] and g["reference"] == "base"
    assert g["n"] == 30  # the group model uses every family, the held-out one included
    fam = table["family"].to_numpy()
    design = np.column_stack([
        np.ones(30), table["lsq_patchiness"], fam == "non-standard", fam == "perturbed"
    ]).astype(float)
    coef, *_ = np.linalg.lstsq(design, table["score_average"].to_numpy(), rcond=None)
    assert g["intercept"] == pytest.approx(coef[0], rel=1e-9)
    assert g["slope"] == pytest.approx(coef[1], rel=1e-9)
    assert g["group_effects"] == pytest.approx({"non-standard": coef[2], "perturbed": coef[3]}, rel=1e-8)
    formula = smf.ols("score_average ~ lsq_patchiness + C(family)", data=table).fit()
    assert g["r2"] == pytest.approx(formula.rsquared, rel=1e-10)
    assert g["r2_adj"] == pytest.approx(formula.rsquared_adj, rel=1e-10)
    lo, hi = formula.conf_int().loc["lsq_patchiness"]
    assert (g["slope_ci_low"], g["slope_ci_high"]) == pytest.approx((lo, hi), rel=1e-9)
    assert g["p_value"] == pytest.approx(formula.pvalues["lsq_patchiness"], rel=1e-6)


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
    assert result["measures"]["lsq_patchiness"]["group_fit"]["n"] == 20
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
