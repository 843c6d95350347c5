"""bench/third_family.py: the new family's fold is a fit on the other families alone."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from bench_utils import bench_module


@pytest.fixture(scope="module")
def bench():
    return bench_module("third_family", "bench_third_family")


def three_families(seed: int = 3) -> pd.DataFrame:
    """Families a and b on one noise grid, c on a finer one where its score falls faster: what α
    alone mispredicts and a measure that follows the score (``tracks``) does not."""
    rng = np.random.default_rng(seed)
    frames = []
    for f, alphas, slope in (("a", [0, 1, 2, 4, 8], 0.08), ("b", [0, 1, 2, 4, 8], 0.09),
                             ("c", [0, 0.25, 0.5, 1, 2], 0.5)):
        alpha = np.array(alphas, float)
        score = 0.9 - slope * alpha + rng.normal(0, 0.01, alpha.size)
        frames.append(pd.DataFrame({
            "model": [f"{f}-{a}" for a in alphas], "family": ["base"] + ["perturbed"] * 4,
            "base_model": f, "alpha": alpha, "score_average": score,
            "tracks": score + rng.normal(0, 0.02, alpha.size), "noise": rng.normal(0, 1, alpha.size),
        }))
    return pd.concat(frames, ignore_index=True)


def reference_fold(table: pd.DataFrame, measure: str | None, left_out: str) -> float:
    """numpy lstsq of score on [1, log1p α (, measure)] over the other families, RMSE on ``left_out``."""
    def design(part):
        cols = [np.ones(len(part)), np.log1p(part["alpha"].to_numpy())]
        return np.column_stack(cols + ([part[measure].to_numpy()] if measure else []))

    train, test = table[table["base_model"] != left_out], table[table["base_model"] == left_out]
    coef = np.linalg.lstsq(design(train), train["score_average"].to_numpy(), rcond=None)[0]
    return math.sqrt(np.mean((test["score_average"].to_numpy() - design(test) @ coef) ** 2))


def test_the_new_familys_fold_is_a_fit_on_the_committed_families_alone(bench):
    table = three_families()
    settings = SimpleNamespace(score="score_average", measures=["tracks", "noise"], group=None,
                               controls=["log1p(alpha)"])
    two = bench.refit(table[table["base_model"] != "c"], settings)
    three = bench.refit(table, settings)
    report = pd.DataFrame(bench.out_of_family_report(two, three, "c")).set_index("measure")
    assert list(report.index) == two["ranking"]
    for measure in ("tracks", "noise"):
        assert report.loc[measure, "new family"] == pytest.approx(reference_fold(table, measure, "c"), rel=1e-9)
        assert report.loc[measure, "controls alone"] == pytest.approx(reference_fold(table, None, "c"), rel=1e-9)
        assert report.loc[measure, "partial_r (2)"] == two["measures"][measure]["partial_r"]
        assert report.loc[measure, "partial_r (3)"] == three["measures"][measure]["partial_r"]
    # α alone mispredicts the steeper family; the measure that follows the score does not
    assert report.loc["tracks", "new family"] < 0.25 * report.loc["tracks", "controls alone"]
    assert report.loc["noise", "new family"] > 0.5 * report.loc["noise", "controls alone"]


def test_family_scores_are_per_noise_level_and_family(bench):
    table = three_families()
    table.loc[len(table)] = {"model": "a-untrained", "family": "non-standard", "base_model": "a",
                             "alpha": np.nan, "score_average": 0.1, "tracks": 0.1, "noise": 0.0}
    scores = bench.family_scores(table, "score_average")
    assert list(scores.columns) == ["a", "b", "c"] and 0.25 in scores.index and scores.notna().sum().tolist() == [5, 5, 5]
    assert scores.loc[0.25, "c"] == table.set_index("model").loc["c-0.25", "score_average"]


def test_width_bound_measures_are_divided_by_their_familys_width(bench):
    table = three_families()
    table["spread_effective_rank"] = np.where(table["base_model"] == "c", 300.0, 200.0)
    out = bench.with_per_dimension(table, {"a": 384, "b": 384, "c": 768})
    assert "spread_twonn_id_per_dim" not in out and "spread_effective_rank_per_dim" not in table
    expected = np.where(table["base_model"] == "c", 300 / 768, 200 / 384)
    np.testing.assert_allclose(out["spread_effective_rank_per_dim"].to_numpy(), expected, rtol=1e-15)


def test_the_new_family_is_every_model_of_its_base_in_the_work_folder(bench):
    table = three_families()
    family = bench.family_in(table, "c")
    assert list(family["model"]) == ["c-0", "c-0.25", "c-0.5", "c-1", "c-2"]
    assert list(family.index) == list(range(5)) and bench.family_in(table, "d").empty
