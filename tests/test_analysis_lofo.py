"""Leave one family of models out (latentgeo.analysis.lofo), against a plain numpy lstsq loop."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from latentgeo.analysis.lofo import leave_one_family_out, lofo_table


def families_table(seed: int = 7) -> pd.DataFrame:
    """Three families of models (base_model a, b, c), each a noise sweep with its own offset;
    `signal` carries score information beyond log1p α, `noise` none, `gappy` has missing values,
    `only_a` is zero outside family a (constant without it); plus held-out non-standard rows."""
    rng = np.random.default_rng(seed)
    frames = []
    for f, offset in zip("abc", (0.0, 0.05, -0.04)):
        n = 9
        alpha = np.array([0, 0.5, 1, 2, 5, 10, 25, 50, 100], dtype=float)
        hidden = rng.normal(0, 1, n)
        frames.append(pd.DataFrame({
            "model": [f"{f}-{i}" for i in range(n)],
            "family": ["base"] + ["perturbed"] * (n - 1),
            "base_model": f,
            "alpha": alpha,
            "score_average": 0.8 + offset - 0.06 * np.log1p(alpha) + 0.03 * hidden + rng.normal(0, 0.01, n),
            "signal": hidden + rng.normal(0, 0.3, n),
            "noise": rng.normal(0, 1, n),
            "gappy": np.where(np.arange(n) % 4 == 1, np.nan, rng.normal(0, 1, n)),
            "only_a": rng.normal(0, 1, n) if f == "a" else np.zeros(n),
        }))
    held = pd.DataFrame({"model": ["a-untrained", "b-untrained"], "family": "non-standard",
                         "base_model": ["a", "b"], "alpha": np.nan, "score_average": [0.1, 0.2],
                         "signal": [5.0, -5.0], "noise": [0.0, 0.0], "gappy": [1.0, 1.0], "only_a": [3.0, 0.0]})
    return pd.concat([*frames, held], ignore_index=True)


def reference_lofo(table: pd.DataFrame, measure: str | None, control: bool = True) -> dict:
    """Plain reference: for each family, numpy lstsq of score on [1, log1p α, measure] over the
    other families' non-held-out rows, prediction of its rows; RMSE/MAE over all predictions."""
    rows = table[table["family"] != "non-standard"]
    if measure is not None:
        rows = rows[rows[measure].notna()]
    errors, per_family = [], {}
    for f in sorted(rows["base_model"].unique()):
        def design(part):
            cols = [np.ones(len(part))]
            if control:
                cols.append(np.log1p(part["alpha"].to_numpy()))
            if measure is not None:
                cols.append(part[measure].to_numpy())
            return np.column_stack(cols)
        train, test = rows[rows["base_model"] != f], rows[rows["base_model"] == f]
        coef = np.linalg.lstsq(design(train), train["score_average"].to_numpy(), rcond=None)[0]
        e = test["score_average"].to_numpy() - design(test) @ coef
        per_family[f] = (math.sqrt(np.mean(e**2)), np.mean(np.abs(e)))
        errors.append(e)
    e = np.concatenate(errors)
    return {"n": e.size, "rmse": math.sqrt(np.mean(e**2)), "mae": np.mean(np.abs(e)), "per_family": per_family,
            "errors": e}


def reference_sign_test(better: int, worse: int) -> float:
    """Exact two-sided sign test: the probability, at ½, of a split at least as uneven."""
    n, k = better + worse, min(better, worse)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def test_leave_one_family_out_matches_a_plain_lstsq_loop():
    table = families_table()
    result = leave_one_family_out(table, "score_average", ["signal", "noise", "gappy"],
                                  controls=["log1p(alpha)"])
    assert result["reason"] is None and result["families"] == ["a", "b", "c"]
    assert result["column"] == "base_model" and result["controls"] == ["log1p(alpha)"]
    assert result["fit_rows"] == "family != 'non-standard'"
    base = reference_lofo(table, None)
    assert result["baseline"]["n"] == base["n"] == 27
    assert result["baseline"]["rmse"] == pytest.approx(base["rmse"], rel=1e-10)
    assert result["baseline"]["mae"] == pytest.approx(base["mae"], rel=1e-10)
    for m in ("signal", "noise", "gappy"):
        fit, ref = result["measures"][m], reference_lofo(table, m)
        ref_base = reference_lofo(table[table[m].notna()], None)  # the baseline on the measure's rows
        assert fit["reason"] is None and fit["n"] == ref["n"]
        assert fit["rmse"] == pytest.approx(ref["rmse"], rel=1e-10)
        assert fit["mae"] == pytest.approx(ref["mae"], rel=1e-10)
        assert fit["baseline_rmse"] == pytest.approx(ref_base["rmse"], rel=1e-10)
        assert fit["baseline_mae"] == pytest.approx(ref_base["mae"], rel=1e-10)
        gap = np.abs(ref_base["errors"]) - np.abs(ref["errors"])  # same rows, same order
        assert (fit["better"], fit["worse"]) == ((gap > 0).sum(), (gap < 0).sum())
        assert fit["better"] + fit["worse"] == fit["n"]
        assert fit["sign_test_p"] == pytest.approx(reference_sign_test(fit["better"], fit["worse"]), rel=1e-12)
        for f, (rmse, mae) in ref["per_family"].items():
            assert fit["per_family"][f]["rmse"] == pytest.approx(rmse, rel=1e-10)
            assert fit["per_family"][f]["mae"] == pytest.approx(mae, rel=1e-10)
            assert fit["per_family"][f]["baseline_rmse"] == pytest.approx(ref_base["per_family"][f][0], rel=1e-10)
    assert result["measures"]["gappy"]["n"] == 27 - 6  # rows 1 and 5 of each family are missing
    # The informative measure beats the controls alone, on most left-out models; the invariant
    # MAE ≤ RMSE holds throughout.
    assert result["measures"]["signal"]["rmse"] < result["measures"]["signal"]["baseline_rmse"]
    assert result["measures"]["signal"]["better"] > result["measures"]["signal"]["worse"]
    assert "errors" not in result["baseline"] and "errors" not in result["measures"]["signal"]
    for fit in result["measures"].values():
        assert fit["mae"] <= fit["rmse"] + 1e-15


def test_leave_one_family_out_never_sees_heldout_rows_and_works_without_controls():
    table = families_table()
    first = leave_one_family_out(table, "score_average", ["signal"])
    moved = table.copy()
    held = moved["family"] == "non-standard"
    moved.loc[held, ["score_average", "signal"]] = [[9.0, 9.0], [-9.0, 9.0]]
    assert leave_one_family_out(moved, "score_average", ["signal"]) == first
    # Without controls the baseline is the other families' mean score.
    ref = reference_lofo(table, "signal", control=False)
    assert first["measures"]["signal"]["rmse"] == pytest.approx(ref["rmse"], rel=1e-10)
    assert first["baseline"]["rmse"] == pytest.approx(reference_lofo(table, None, control=False)["rmse"], rel=1e-10)


def test_leave_one_family_out_with_one_family_reports_a_reason_not_an_error():
    one = families_table()
    one = one[one["base_model"] == "a"]
    result = leave_one_family_out(one, "score_average", ["signal"], controls=["log1p(alpha)"])
    assert result["families"] == ["a"] and result["measures"] is None and result["baseline"] is None
    assert "1 family of models" in result["reason"] and "needs two or more" in result["reason"]
    assert lofo_table(result).empty
    missing = leave_one_family_out(one.drop(columns=["base_model"]), "score_average", ["signal"])
    assert missing["measures"] is None and "no 'base_model' column" in missing["reason"]


def test_leave_one_family_out_reports_a_measure_it_cannot_fit_and_goes_on():
    result = leave_one_family_out(families_table(), "score_average", ["only_a", "signal"],
                                  controls=["log1p(alpha)"])
    bad = result["measures"]["only_a"]
    assert bad["rmse"] is None and "without family 'a'" in bad["reason"]
    assert result["measures"]["signal"]["reason"] is None
    frame = lofo_table(result)
    assert frame["measure"].tolist() == ["signal", "only_a"]  # unfittable last
    assert frame["beats_baseline"].tolist() == [True, None]


def test_paired_sign_test_counts_closer_and_farther_models_and_drops_ties():
    from latentgeo.analysis.lofo import paired_sign_test

    base = np.array([0.3, -0.2, 0.1, 0.5, -0.4, 0.05])
    model = np.array([0.1, 0.25, -0.1, 0.2, 0.1, -0.02])  # |.| smaller, larger, tie, smaller ×3
    result = paired_sign_test(model, base)
    assert (result["better"], result["worse"]) == (4, 1)
    assert result["sign_test_p"] == pytest.approx(reference_sign_test(4, 1)) == pytest.approx(0.375)
    assert paired_sign_test(base, base) == {"better": 0, "worse": 0, "sign_test_p": 1.0}
    assert paired_sign_test(np.zeros(10), np.ones(10))["sign_test_p"] == pytest.approx(2 / 2**10)
