"""The bins and sample-size sweep: each point is what the main measures would give at that setting,
the main point is copied, not retrained, and bad points are refused before any training."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from latentgeo.analysis.sweep import read_sweep_rows, setting_name, sweep_relations
from latentgeo.errors import LatentgeoError
from latentgeo.geometry.measures.compute import compute_measures
from latentgeo.geometry.measures.sweep import (
    SWEEP_MEASURES,
    SweepPoint,
    cell_sweep,
    check_sweep,
    prefix_rows,
    sweep_points,
)
from latentgeo.io import read_json
from latentgeo.stages.measures import measures_file

N_SEQ, PER_SEQ, D = 40, 15, 16


def sample(seed=0):
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(N_SEQ * PER_SEQ, D)) * rng.gamma(2.0, 1.0, size=D) + 0.5).astype(np.float32)
    offsets = list(range(0, N_SEQ * PER_SEQ + 1, PER_SEQ))
    return X, offsets


def write_sample(tmp_path, name="toy-a0-s1", seed=0):
    X, offsets = sample(seed)
    path = tmp_path / f"{name}.npy"
    np.save(path, X)
    path.with_suffix(".json").write_text(json.dumps({"offsets": offsets}))
    return path


def test_points_are_the_main_setting_then_bins_then_prefixes_each_once():
    points = sweep_points(m=4, nbits=8, m_values=[2, 4, 8], nbits_values=[4, 8], n_sequences=[1000, 250])
    assert points == [SweepPoint(4, 8), SweepPoint(4, 4), SweepPoint(2, 8), SweepPoint(8, 8),
                      SweepPoint(4, 8, 250), SweepPoint(4, 8, 1000)]
    assert sweep_points(m=4, nbits=8) == [SweepPoint(4, 8)]


def test_each_point_equals_the_main_measures_at_that_setting():
    """A point (m, nbits, first n sequences) gives exactly compute_measures' pq section on those
    vectors with that m and nbits (point_dist aside), seed for seed."""
    X, offsets = sample()
    points = [SweepPoint(2, 3), SweepPoint(4, 2, 10)]
    rows = cell_sweep(X, offsets, points, kind="pq", train_size="all", seeds=[5, 6])
    for point, row in zip(points, rows):
        n = prefix_rows(offsets, point.n_sequences)
        ref = compute_measures(X[:n], quantizers="pq", m=point.m, nbits=point.nbits, seed=5,
                               quantizer_seeds=2, progress=False)
        assert row["n"] == n == (N_SEQ if point.n_sequences is None else point.n_sequences) * PER_SEQ
        assert (row["m"], row["nbits"], row["k"]) == (point.m, point.nbits, 2**point.nbits)
        for name in SWEEP_MEASURES:
            assert row[name] == pytest.approx(ref["pq"][name], rel=1e-12), name
        assert row["patchiness_sd"] == pytest.approx(ref["quantizer_seed_sd"]["pq"]["patchiness"], rel=1e-9)
    assert "point_dist" not in rows[0]


def test_measures_file_copies_the_main_point_and_measures_the_others(tmp_path):
    path = write_sample(tmp_path)
    points = sweep_points(m=2, nbits=3, nbits_values=[2], n_sequences=[20])
    report = measures_file(path, tmp_path / "m.json", quantizers=("pq",), m=2, nbits=3, train_size=400,
                           seed=3, quantizer_seeds=2, progress=False, sweep=points, sweep_seeds=2)
    rows = read_json(tmp_path / "m.json")["sweep"]
    assert [(r["m"], r["nbits"], r["n_sequences"]) for r in rows] == [(2, 3, None), (2, 2, None), (2, 3, 20)]
    main = report.record["pq"]
    assert all(rows[0][name] == main[name] for name in SWEEP_MEASURES)
    # ... and the copy is what training again would give.
    again = cell_sweep(np.load(path), sample()[1], [SweepPoint(2, 3)], kind="pq", train_size=400, seeds=[3, 4])
    for name in SWEEP_MEASURES:
        assert again[0][name] == pytest.approx(rows[0][name], rel=1e-12)
    assert rows[0]["train_size"] == again[0]["train_size"] == 400 and rows[2]["train_size"] == 300


@pytest.mark.parametrize("point, message", [
    (SweepPoint(2, 10), "fewer than k = 1024"),
    (SweepPoint(3, 2), "not divisible by m = 3"),
    (SweepPoint(2, 2, 41), "holds 40 sequences"),
    (SweepPoint(16, 5), "at most 64"),
])
def test_bad_points_are_refused_before_training(tmp_path, point, message):
    path = write_sample(tmp_path)
    with pytest.raises(LatentgeoError, match=message):
        measures_file(path, tmp_path / "m.json", quantizers=("pq",), m=2, nbits=2, progress=False,
                      sweep=[SweepPoint(2, 2), point])
    assert not (tmp_path / "m.json").exists()


def test_a_sweep_without_offsets_is_refused(tmp_path):
    path = write_sample(tmp_path)
    path.with_suffix(".json").unlink()
    with pytest.raises(LatentgeoError, match="per-sequence offsets"):
        measures_file(path, tmp_path / "m.json", quantizers=("pq",), m=2, nbits=2, progress=False,
                      sweep=[SweepPoint(2, 2, 10)])
    with pytest.raises(LatentgeoError, match="covers 10 vectors|cover 10 vectors"):
        cell_sweep(np.zeros((20, 4), np.float32), [0, 10], [SweepPoint(2, 2)])
    with pytest.raises(LatentgeoError, match="unknown quantizer"):
        check_sweep([SweepPoint(2, 2)], [0, 20], 4, "opq")


def test_relations_per_setting_are_the_regression_of_the_score_on_that_column(tmp_path):
    """sweep_relations is regress() on one patchiness column per setting: r and partial r agree
    with a plain reference (numpy corrcoef, residuals on log1p α) on the fitted rows."""
    rng = np.random.default_rng(1)
    models = [f"toy-a{a}-s{s}" for a in (0, 1, 2, 4, 8) for s in (1, 2)][1:] + ["toy-untrained-s1"]
    alpha = np.array([float(m.split("-a")[1].split("-")[0]) if "-a" in m else np.nan for m in models])
    score = np.where(np.isnan(alpha), 0.2, 0.9 - 0.08 * np.nan_to_num(alpha) + rng.normal(0, 0.02, len(models)))
    table = pd.DataFrame({"model": models, "family": ["base" if a == 0 else "perturbed" if a == a else "non-standard"
                                                      for a in alpha],
                          "alpha": alpha, "score_average": score})
    rows = []
    for i, m in enumerate(models):
        for mm, nbits, nseq in ((4, 8, None), (2, 8, None), (4, 8, 250)):
            rows.append({"model": m, "quantizer": "pq", "m": mm, "nbits": nbits, "k": 2**nbits,
                         "n_sequences": nseq, "n": 1000 if nseq is None else 250, "train_size": 100,
                         "patchiness": 1 + 0.3 * score[i] + rng.normal(0, 0.01) * (mm + (nseq or 0) / 100),
                         "patchiness_sd": 0.001,
                         "setting": setting_name("pq", mm, nbits, nseq)})
    rows = pd.DataFrame(rows)
    rel = sweep_relations(rows, table, "score_average", controls=["log1p(alpha)"])
    assert list(rel["setting"]) == ["pq_m4_nbits8_whole", "pq_m2_nbits8_whole", "pq_m4_nbits8_seq250"]
    fit = table["family"] != "non-standard"
    for rec in rel.itertuples():
        x = rows[rows["setting"] == rec.setting].set_index("model").loc[table["model"], "patchiness"].to_numpy()
        y, a = table["score_average"].to_numpy(), np.log1p(table["alpha"].to_numpy())
        assert rec.n == fit.sum()
        assert rec.r == pytest.approx(np.corrcoef(x[fit], y[fit])[0, 1], rel=1e-9)
        design = np.column_stack([np.ones(fit.sum()), a[fit]])
        res = lambda v: v - design @ np.linalg.lstsq(design, v, rcond=None)[0]  # noqa: E731
        assert rec.partial_r == pytest.approx(np.corrcoef(res(x[fit]), res(y[fit]))[0, 1], rel=1e-9)
        assert rec.ci_low < rec.r < rec.ci_high and rec.partial_p_holm >= rec.partial_p_value
    assert rel.loc[2, "n_sequences"] == "250" and rel.loc[0, "n_sequences"] == "whole"


def test_read_sweep_rows_needs_the_same_settings_for_every_model(tmp_path):
    row = {"quantizer": "pq", "m": 4, "nbits": 8, "k": 256, "n_sequences": None, "n": 10, "train_size": 10,
           "patchiness": 1.0, "patchiness_sd": None}

    def write(model_id, **sections):
        model = {"model_id": model_id, "base_model": "toy", "family": "perturbed", "kind": "perturbed",
                 "alpha": 1.0, "seed": 1}
        (tmp_path / f"{model_id}.json").write_text(json.dumps({"model": model, "pq": {"patchiness": 1.0}, **sections}))

    write("toy-a1-s1", sweep=[row])
    write("toy-a2-s1", sweep=[row, {**row, "m": 2}])
    write("toy-a3-s1")
    assert list(read_sweep_rows(tmp_path, ["toy-a1-s1"])["setting"]) == ["pq_m4_nbits8_whole"]
    with pytest.raises(LatentgeoError, match="differ from the other models"):
        read_sweep_rows(tmp_path, ["toy-a1-s1", "toy-a2-s1"])
    with pytest.raises(LatentgeoError, match="has no sweep"):
        read_sweep_rows(tmp_path, ["toy-a3-s1"])
    with pytest.raises(LatentgeoError, match="toy-a4-s1"):
        read_sweep_rows(tmp_path, ["toy-a4-s1"])


@pytest.mark.parametrize("profile", ["params.yaml", "profiles/smoke.yaml", "profiles/paper.yaml"])
def test_measures_arguments_are_the_profile_settings_as_measures_file_keywords(profile):
    """The notebook and the tolerance benchmark call measures_file with measures_arguments: every
    key is one of its keywords and carries the profile's value, the sweep's points included."""
    import inspect
    from pathlib import Path

    from latentgeo.config.schema import load_params
    from latentgeo.stages.measures import measures_arguments

    root = Path(__file__).resolve().parents[1]
    settings = load_params(root / profile).measures
    kwargs = measures_arguments(settings)
    assert set(kwargs) <= set(inspect.signature(measures_file).parameters)
    assert kwargs["quantizers"] == tuple(settings.quantizers)
    assert (kwargs["m"], kwargs["nbits"], kwargs["train_size"], kwargs["seed"], kwargs["quantizer_seeds"]) == (
        settings.m, settings.nbits, settings.train_size, settings.seed, settings.quantizer_seeds)
    assert kwargs["sweep"] == sweep_points(m=settings.m, nbits=settings.nbits, m_values=settings.sweep.m,
                                           nbits_values=settings.sweep.nbits,
                                           n_sequences=settings.sweep.n_sequences)
    assert (kwargs["sweep_quantizer"], kwargs["sweep_seeds"]) == (settings.sweep.quantizer,
                                                                 settings.sweep.quantizer_seeds)
