"""The results table (joining fine-tuning scores and measures) and the regression stage."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from latentgeo.cli import main
from latentgeo.config.schema import load_params
from latentgeo.errors import LatentgeoError
from latentgeo.analysis.regression import regress
from latentgeo.analysis.table import build_results_table, flatten_measures, write_results_table
from latentgeo.downstream.tasks import SUITES
from latentgeo.io import csv_text

TASKS = ("bbc-topic", "wiki-acceptability", "wiki-adjacency")
REPO = Path(__file__).resolve().parents[1]


def _record(model_id: str, family: str, alpha: float | None, seed: int, kind: str) -> dict:
    return {
        "model_id": model_id, "base_model": "minilm-l6", "family": family, "kind": kind,
        "alpha": alpha, "seed": seed, "scope": "encoder-weights", "rule": "test",
        "latentgeo_version": "0.1.0",
    }


def fixture_models() -> list[dict]:
    """A small family: base, 7 perturbed models over two seeds, 2 non-standard models."""
    models = [_record("minilm-l6-a0-s1", "base", 0.0, 1, "perturbed")]
    for alpha in (1.0, 5.0, 25.0, 100.0):
        for seed in (1, 2):
            if alpha == 100.0 and seed == 2:
                continue
            models.append(_record(f"minilm-l6-a{alpha:g}-s{seed}", "perturbed", alpha, seed, "perturbed"))
    models.append(_record("minilm-l6-untrained-s1", "non-standard", None, 1, "untrained"))
    models.append(_record("minilm-l6-shuffled-embeddings-s1", "non-standard", None, 1,
                          "shuffled-embeddings"))
    return models


def _stage_path(model: dict) -> str:
    """Where the pipeline puts a model's outputs: ``<group>/<short id>`` (dvc.yaml)."""
    group = "nonstandard" if model["family"] == "non-standard" else "perturbed"
    return f"{group}/{model['model_id'].removeprefix('minilm-l6-')}"


def write_fixture(root: Path, models: list[dict] | None = None) -> tuple[Path, Path]:
    """Write ``finetune/<group>/<short id>/<task>.json`` and ``measures/<group>/<short id>.json``
    (the pipeline's layout, where paths do not spell the model id) with known numbers.

    The average score falls linearly with ``lsq.patchiness`` (= log1p α, plus a little
    seed-dependent wobble); the non-standard models sit low on both.
    """
    finetune, measures = root / "finetune", root / "measures"
    for i, model in enumerate(models or fixture_models()):
        alpha = model["alpha"]
        level = math.log1p(alpha) if alpha is not None else 5.0 + 0.1 * i
        wobble = 0.01 * ((7 * i) % 5 - 2)
        folder = finetune / _stage_path(model)
        folder.mkdir(parents=True, exist_ok=True)
        for t, task in enumerate(TASKS):
            score = 0.9 - 0.12 * level + wobble + 0.02 * t
            (folder / f"{task}.json").write_text(json.dumps({
                "model": model, "task": task, "suite": "offline", "metric": "accuracy",
                "score": score, "metrics": {"accuracy": score}, "chance": SUITES["offline"][task].chance,
            }))
        measure_file = measures / f"{_stage_path(model)}.json"
        measure_file.parent.mkdir(parents=True, exist_ok=True)
        measure_file.write_text(json.dumps({
            "model": model,
            "inputs": {"n": 1000, "distinct_vectors": 1000 - 100 * (model["family"] == "non-standard"),
                       "sequences": "data/corpus/sequences.jsonl"},
            "pq": {"patchiness": 1.0 + 0.3 * level - wobble, "reconstruction_error": 0.1 * level + 0.05,
                   "m": 4, "variant": "paper"},
            "lsq": {"patchiness": 2.0 + level + wobble, "error": {"iqr": 0.5 + 0.01 * i},
                    "point_dist": 0.9 - 0.05 * level, "centroids": 0.01 * ((5 * i) % 3)},
            "spread": {"isoscore": 0.2 + 0.05 * ((3 * i) % 4), "eee": None if i == 2 else 0.3 * level},
            # the bins / sample-size sweep: the main setting, and half the bins with less signal
            "sweep": [{"quantizer": "pq", "m": m, "nbits": 8, "k": 256, "n_sequences": None, "n": 1000,
                       "train_size": 1000, "patchiness": 1.0 + 0.3 * level * 4 / m - wobble, "patchiness_sd": None}
                      for m in (4, 2)],
        }))
    return finetune, measures


def test_flatten_measures_keeps_numeric_leaves_only():
    flat = flatten_measures({
        "model": {"alpha": 1.0}, "inputs": {"n": 3}, "version": "x", "count": 3,
        "pq": {"a": 1, "b": None, "c": "paper", "d": True, "e": [1, 2], "f": {"g": 2.5}},
    })
    assert set(flat) == {"pq_a", "pq_b", "pq_f_g"}
    assert flat["pq_a"] == 1.0 and math.isnan(flat["pq_b"]) and flat["pq_f_g"] == 2.5


def test_build_results_table_columns_rows_and_values(tmp_path):
    finetune, measures = write_fixture(tmp_path)
    table = build_results_table(finetune, measures)
    assert list(table.columns[:6]) == ["model", "family", "base_model", "alpha", "seed", "suite"]
    assert list(table.columns[6:11]) == [f"score_{t}" for t in TASKS] + ["score_average", "score_normalised"]
    assert list(table.columns[11:]) == sorted([
        "lsq_centroids", "lsq_error_iqr", "lsq_patchiness", "lsq_point_dist", "pq_m",
        "pq_patchiness", "pq_reconstruction_error", "spread_eee", "spread_isoscore",
    ])
    assert len(table) == 10
    # Sorted: base, then perturbed by α and seed, then the non-standard models by name.
    assert table["family"].tolist() == ["base"] + ["perturbed"] * 7 + ["non-standard"] * 2
    swept = table[table["family"] == "perturbed"]
    assert swept["alpha"].tolist() == [1, 1, 5, 5, 25, 25, 100]
    assert swept["seed"].tolist() == [1, 2, 1, 2, 1, 2, 1]
    assert table["model"].iloc[-2:].tolist() == [
        "minilm-l6-shuffled-embeddings-s1", "minilm-l6-untrained-s1"
    ]
    assert table["alpha"].iloc[-2:].isna().all()
    # The offline suite averages all its tasks.
    expected = table[[f"score_{t}" for t in TASKS]].mean(axis=1)
    np.testing.assert_allclose(table["score_average"], expected, rtol=0, atol=1e-15)
    assert table["spread_eee"].isna().sum() == 1  # a null measure stays missing
    assert (table["suite"] == "offline").all()


def test_table_csv_is_deterministic_and_round_trips(tmp_path):
    finetune, measures = write_fixture(tmp_path)
    first = csv_text(build_results_table(finetune, measures))
    second = csv_text(build_results_table(finetune, measures))
    assert first == second
    out = write_results_table(build_results_table(finetune, measures), tmp_path / "t.csv")
    back = pd.read_csv(out)
    assert back.shape == (10, 20)
    assert "\r" not in out.read_text()
    with pytest.raises(LatentgeoError, match="already exists"):
        write_results_table(back, out)


def test_model_ids_select_exactly_the_profile_rows(tmp_path):
    finetune, measures = write_fixture(tmp_path)
    wanted = ["minilm-l6-a0-s1", "minilm-l6-a5-s2", "minilm-l6-untrained-s1"]
    table = build_results_table(finetune, measures, wanted)
    assert sorted(table["model"]) == sorted(wanted)
    assert table.equals(build_results_table(finetune, measures).set_index("model").loc[
        table["model"]].reset_index()[table.columns])
    with pytest.raises(LatentgeoError, match=r"no fine-tuning results for models \['minilm-l6-a3-s1'\]"):
        build_results_table(finetune, measures, [*wanted, "minilm-l6-a3-s1"])
    (measures / "perturbed/a5-s2.json").unlink()
    with pytest.raises(LatentgeoError, match=r"no measures for models \['minilm-l6-a5-s2'\]"):
        build_results_table(finetune, measures, wanted)
    # A model outside the selection may lack its measures: it is not part of this table.
    assert len(build_results_table(finetune, measures, wanted[:1])) == 1


def test_tasks_select_exactly_the_profile_score_columns(tmp_path):
    """A smoke run in a clone of the study finds the default profile's other task files beside
    its own: with the profile's tasks they never enter the table or the average."""
    finetune, measures = write_fixture(tmp_path)
    full = build_results_table(finetune, measures)
    one = build_results_table(finetune, measures, tasks=[TASKS[1]])
    assert [c for c in one.columns if c.startswith("score_")] == [
        f"score_{TASKS[1]}", "score_average", "score_normalised"]
    np.testing.assert_array_equal(one["score_average"], full[f"score_{TASKS[1]}"])
    # wiki-acceptability's chance (MCC) is 0: normalised, its score is unchanged.
    np.testing.assert_array_equal(one["score_normalised"], full[f"score_{TASKS[1]}"])
    assert one.drop(columns=[f"score_{TASKS[1]}", "score_average", "score_normalised"]).equals(
        full.drop(columns=[c for c in full.columns if c.startswith("score_")]))
    (finetune / "perturbed/a5-s2" / f"{TASKS[0]}.json").unlink()
    with pytest.raises(LatentgeoError, match=rf"'minilm-l6-a5-s2' has no fine-tuning result for tasks \['{TASKS[0]}'\]"):
        build_results_table(finetune, measures, tasks=[TASKS[0], TASKS[1]])
    assert len(build_results_table(finetune, measures, tasks=[TASKS[1]])) == 10


def test_profile_model_ids_match_the_perturb_stage_ids():
    from latentgeo.geometry.family import profile_members

    def profile_model_ids(*args, **kwargs):
        return list(profile_members(*args, **kwargs))

    # The noise-free base once per family (with the first seed), then α > 0 × seed, then each
    # non-standard kind once (first seed).
    ids = profile_model_ids(["minilm-l6", "paraphrase-minilm-l3"], [0, 0.5, 100], [1, 2], ["untrained"])
    assert ids == [
        "minilm-l6-a0-s1", "minilm-l6-a0.5-s1", "minilm-l6-a0.5-s2",
        "minilm-l6-a100-s1", "minilm-l6-a100-s2", "minilm-l6-untrained-s1",
        "paraphrase-minilm-l3-a0-s1", "paraphrase-minilm-l3-a0.5-s1", "paraphrase-minilm-l3-a0.5-s2",
        "paraphrase-minilm-l3-a100-s1", "paraphrase-minilm-l3-a100-s2",
        "paraphrase-minilm-l3-untrained-s1",
    ]
    assert profile_model_ids(["minilm-l6"], [0, 5], [3], scope="all-weights") == [
        "minilm-l6-a0-s3-allw", "minilm-l6-a5-s3-allw"]
    smoke = load_params(REPO / "profiles" / "smoke.yaml").perturb
    assert smoke.model_ids() == ["minilm-l6-a0-s1", "minilm-l6-a5-s1", "minilm-l6-a100-s1",
                                 "minilm-l6-untrained-s1"]


def test_model_with_scores_but_no_measures_is_named(tmp_path):
    finetune, measures = write_fixture(tmp_path)
    (measures / "perturbed/a5-s2.json").unlink()
    with pytest.raises(LatentgeoError, match=r"scores but no measures file: \['minilm-l6-a5-s2'\]"):
        build_results_table(finetune, measures)


def test_model_with_measures_but_no_scores_is_named(tmp_path):
    finetune, measures = write_fixture(tmp_path)
    for f in (finetune / "perturbed/a1-s1").iterdir():
        f.unlink()
    with pytest.raises(LatentgeoError, match=r"measures but no fine-tuning scores: \['minilm-l6-a1-s1'\]"):
        build_results_table(finetune, measures)


def test_missing_task_and_inconsistent_record_are_named(tmp_path):
    finetune, measures = write_fixture(tmp_path)
    (finetune / "perturbed/a25-s1/wiki-adjacency.json").unlink()
    with pytest.raises(LatentgeoError, match=r"'minilm-l6-a25-s1' has no fine-tuning result for tasks \['wiki-adjacency'\]"):
        build_results_table(finetune, measures)

    finetune, measures = write_fixture(tmp_path / "b")
    path = measures / "perturbed/a5-s1.json"
    data = json.loads(path.read_text())
    data["model"]["alpha"] = 6.0
    path.write_text(json.dumps(data))
    with pytest.raises(LatentgeoError, match=r"'minilm-l6-a5-s1': alpha is 5.0 .* but 6.0"):
        build_results_table(finetune, measures)


def test_two_files_for_one_model_are_refused(tmp_path):
    finetune, measures = write_fixture(tmp_path)
    copy = measures / "elsewhere" / "a5-s1.json"
    copy.parent.mkdir()
    copy.write_text((measures / "perturbed/a5-s1.json").read_text())
    with pytest.raises(LatentgeoError, match=r"'minilm-l6-a5-s1' has two measures files"):
        build_results_table(finetune, measures)
    copy.unlink()
    extra = finetune / "old" / "bbc-topic.json"
    extra.parent.mkdir()
    extra.write_text((finetune / "perturbed/a5-s1/bbc-topic.json").read_text())
    with pytest.raises(LatentgeoError, match=r"'minilm-l6-a5-s1' has two results for task 'bbc-topic'"):
        build_results_table(finetune, measures)


def test_bad_family_and_empty_folders(tmp_path):
    finetune, measures = write_fixture(tmp_path)
    path = measures / "perturbed/a5-s1.json"
    data = json.loads(path.read_text())
    data["model"]["family"] = "weird"
    path.write_text(json.dumps(data))
    with pytest.raises(LatentgeoError, match="family 'weird'"):
        build_results_table(finetune, measures)
    (tmp_path / "empty").mkdir()
    with pytest.raises(LatentgeoError, match="no fine-tuning results"):
        build_results_table(tmp_path / "empty", measures)
    with pytest.raises(LatentgeoError, match="not found"):
        build_results_table(tmp_path / "nowhere", measures)


def test_table_cli_writes_csv_and_refuses_bad_input(tmp_path, capsys):
    finetune, measures = write_fixture(tmp_path)
    out = tmp_path / "results" / "table.csv"
    argv = ["table", "--finetune-dir", str(finetune), "--measures-dir", str(measures), "--out", str(out)]
    assert main(argv) == 0
    assert pd.read_csv(out).shape == (10, 20)
    capsys.readouterr()

    # --params keeps the models that profile builds (smoke: α 0, 5, 100; seed 1; untrained).
    smoke = tmp_path / "smoke.csv"
    params = REPO / "profiles" / "smoke.yaml"
    assert main([*argv[:-2], "--params", str(params), "--out", str(smoke)]) == 0
    assert sorted(pd.read_csv(smoke)["model"]) == [
        "minilm-l6-a0-s1", "minilm-l6-a100-s1", "minilm-l6-a5-s1", "minilm-l6-untrained-s1"
    ]
    capsys.readouterr()

    (measures / "nonstandard/untrained-s1.json").unlink()
    bad = tmp_path / "bad.csv"
    argv[-1] = str(bad)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "minilm-l6-untrained-s1" in err and "Traceback" not in err
    assert not bad.exists()


@pytest.mark.slow  # runs a stage with its figures
def test_regression_stage_writes_every_output(tmp_path):
    finetune, measures = write_fixture(tmp_path)
    from latentgeo.stages.regression import FIGURE_NAMES, run_regression_stage

    params = load_params(REPO / "profiles" / "smoke.yaml")
    # The profile names seed 1 only: the fixture's seed-2 models stand for another profile's
    # leftovers in the same folders and must not reach the table.
    params = params.model_copy(update={
        "regression": params.regression.model_copy(update={"group": "family", "top_measures": 2}),
        "perturb": params.perturb.model_copy(update={
            "base_models": ["minilm-l6"], "alphas": [0.0, 1.0, 5.0, 25.0, 100.0], "seeds": [1],
            "nonstandard": ["untrained", "shuffled-embeddings"],
        }),
    })
    out = tmp_path / "out"
    result = run_regression_stage(
        params, finetune, measures, out / "table.csv", out / "regression.json", out / "plots",
        out / "figures", out / "patchiness_sweep.csv",
    )
    reg = json.loads((out / "regression.json").read_text())
    assert reg["profile"] == "smoke" and reg["suite"] == "offline"
    assert reg["holdout"]["n"] == 2
    # pq_m is constant (a setting, not a measure): skipped, not fatal, in the default mode.
    assert "pq_m" in reg["skipped"]
    strengths = [abs(reg["measures"][m]["r"]) for m in reg["ranking"]]
    assert strengths == sorted(strengths, reverse=True)
    assert reg["measures"]["lsq_patchiness"]["r"] < -0.95
    assert "group_fit" in reg["measures"]["lsq_patchiness"]
    curve = pd.read_csv(out / "plots" / "score_vs_alpha.csv")
    assert list(curve.columns[:4]) == ["model", "family", "alpha", "seed"]
    assert "score_average" in curve.columns and len(curve) == 5
    assert len(result.table) == 7 and not result.table["model"].str.endswith("-s2").any()
    pearson = pd.read_csv(out / "plots" / "pearson_r.csv")
    assert list(pearson.columns[:5]) == ["measure", "n", "r", "ci_low", "ci_high"]
    assert pearson["r"].is_monotonic_decreasing
    assert sorted(p.name for p in (out / "figures").iterdir()) == sorted(FIGURE_NAMES.values())
    # The sweep: one row per setting, fitted as the main analysis (main setting = pq_patchiness).
    sweep = pd.read_csv(out / "patchiness_sweep.csv")
    assert list(sweep["setting"]) == ["pq_m4_nbits8_whole", "pq_m2_nbits8_whole"]
    assert sweep.loc[0, "r"] == pytest.approx(reg["measures"]["pq_patchiness"]["r"], rel=1e-9)
    assert sweep.loc[0, "partial_r"] == pytest.approx(reg["measures"]["pq_patchiness"]["partial_r"], rel=1e-9)
    assert (sweep["n"] == reg["measures"]["pq_patchiness"]["n"]).all()
    assert result.pearson.shape[0] == len(reg["measures"])
    assert (out / "table.csv").read_text() == csv_text(result.table)
    # The profile's score keeps the analysis and keys it always had; two keys are added beside it.
    assert set(reg) == {"score", "group", "confidence", "n_rows", "label_column", "fit_rows", "holdout",
                        "outliers", "controls", "measures", "ranking", "skipped", "suite", "profile",
                        "patchiness_variant", "secondary_score", "leave_one_family_out"}
    assert reg["score"] == "score_average"
    other = reg["secondary_score"]
    assert other["score"] == "score_normalised" and set(other["measures"]) == set(reg["measures"])
    direct = regress(result.table, "score_normalised", group="family", controls=params.regression.controls)
    for name, fit in other["measures"].items():
        assert set(fit) == {"n", "r", "r_ci_low", "r_ci_high", "p_value", "p_value_holm", "partial_n",
                            "partial_r", "partial_p_value", "partial_p_holm", "partial_undefined"}
        for key in ("r", "r_ci_low", "partial_r", "partial_p_holm"):
            got = math.nan if fit[key] is None else fit[key]  # JSON writes NaN as null
            assert got == pytest.approx(direct["measures"][name][key], nan_ok=True, abs=1e-12)
    assert list(result.secondary.columns) == ["measure", "r", "partial_r", "partial_p_holm", "r_score_normalised",
                                              "partial_r_score_normalised", "partial_p_holm_score_normalised"]
    # One family of models (minilm-l6): no leave-one-family-out, and a reason instead of numbers.
    lofo = reg["leave_one_family_out"]
    assert lofo["families"] == ["minilm-l6"] and lofo["measures"] is None and lofo["baseline"] is None
    assert "leaving one out needs two or more" in lofo["reason"]
    assert result.lofo.empty


def test_regression_notebook_is_thin_and_parameterised():
    nb = json.loads((REPO / "notebooks" / "07_regression.ipynb").read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    assert "".join(tagged[0]["source"]).splitlines() == [
        'params_file = "params.yaml"',
        'finetune_dir = "results/finetune"',
        'measures_dir = "results/measures"',
        'table_out = "results/table.csv"',
        'regression_out = "results/regression.json"',
        'plots_dir = "results/plots"',
        'figures_dir = "figures"',
        'sweep_out = "results/patchiness_sweep.csv"',
    ]
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    assert any("load_params(params_file)" in "".join(c["source"]) for c in code)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def _family_params(**perturb):
    params = load_params(REPO / "profiles" / "smoke.yaml")
    return params.model_copy(update={"perturb": params.perturb.model_copy(update={
        "base_models": ["minilm-l6"], "alphas": [0.0, 1.0, 5.0, 25.0, 100.0], "seeds": [1],
        "nonstandard": ["untrained", "shuffled-embeddings"], **perturb,
    })})


def test_measures_table_is_the_results_table_without_scores(tmp_path):
    from latentgeo.analysis.table import build_measures_table

    finetune, measures = write_fixture(tmp_path)
    full = build_results_table(finetune, measures)
    table = build_measures_table(measures)
    assert list(table.columns[:4]) == ["model", "family", "alpha", "seed"]
    expected = full.drop(columns=["suite", "base_model", *[c for c in full.columns if c.startswith("score_")]])
    pd.testing.assert_frame_equal(table, expected)
    # No scores needed: the measures of a family whose fine-tuning has not run are readable.
    assert len(build_measures_table(measures, ["minilm-l6-a0-s1", "minilm-l6-untrained-s1"])) == 2
    with pytest.raises(LatentgeoError, match=r"no measures for models \['minilm-l6-a3-s1'\]"):
        build_measures_table(measures, ["minilm-l6-a3-s1"])


@pytest.mark.slow  # runs a stage with its figures
def test_measures_family_stage_writes_table_figure_and_headline(tmp_path):
    from latentgeo.stages.measures_family import FIGURE_NAME, headline_table, run_measures_family_stage

    _, measures = write_fixture(tmp_path)
    params = _family_params()
    out = tmp_path / "out"
    result = run_measures_family_stage(params, measures, out / "family.csv", out / "figures", out / "spread.csv",
                                       out / "collapse.csv")
    # Exactly the profile's 7 models (the fixture's seed-2 models belong to no profile here).
    assert len(result.table) == 7 and not result.table["model"].str.endswith("-s2").any()
    assert (out / "family.csv").read_text() == csv_text(result.table)
    # The fixture's samples used one quantizer seed: the spread table has its columns, no rows.
    assert result.seed_spread.empty and (out / "spread.csv").read_text().startswith("measure,models,")
    assert result.figure == out / "figures" / FIGURE_NAME and result.figure.stat().st_size > 10_000
    # The collapse diagnostic: the profile's models in its order, distinct rows from each record.
    assert list(result.collapse["model"]) == params.perturb.model_ids()
    assert (out / "collapse.csv").read_text() == csv_text(result.collapse)
    nonstandard = result.collapse["family"] == "non-standard"
    assert (result.collapse.loc[nonstandard, "distinct_fraction"] == 0.9).all()
    assert (result.collapse.loc[~nonstandard, "distinct_vectors"] == 1000).all()
    assert list(result.headline.columns) == [
        "model", "family", "alpha", "lsq_patchiness", "pq_patchiness", "lsq_point_dist",
        "pq_reconstruction_error", "spread_isoscore", "spread_eee",
    ]
    np.testing.assert_array_equal(result.headline["lsq_patchiness"], result.table["lsq_patchiness"])
    # Same inputs, same bytes; a rerun replaces the stage's own outputs.
    first = result.figure.read_bytes()
    again = run_measures_family_stage(params, measures, out / "family.csv", out / "figures", out / "spread.csv",
                                      out / "collapse.csv")
    assert again.figure.read_bytes() == first
    # The corrected variant is shown under the same column name.
    corrected = result.table.assign(lsq_patchiness_corrected=result.table["lsq_patchiness"] * 2)
    shown = headline_table(corrected, "corrected")
    np.testing.assert_array_equal(shown["lsq_patchiness"], corrected["lsq_patchiness_corrected"])
    # Never the paper form under the corrected name: a missing corrected column is left out.
    assert "pq_patchiness" not in shown.columns
    with pytest.raises(LatentgeoError, match="minilm-l6-a3-s1"):
        run_measures_family_stage(_family_params(alphas=[0.0, 3.0]), measures, out / "x.csv", out / "f", out / "s.csv",
                                  out / "c.csv")
    assert not (out / "x.csv").exists()


def test_normalised_score_is_the_chance_corrected_average_by_hand(tmp_path):
    """score_normalised = mean over tasks of (score − chance) / (1 − chance), with each task's
    chance as its result file records it (here the offline registry's 0.2, 0 and 7/12)."""
    finetune, measures = write_fixture(tmp_path)
    table = build_results_table(finetune, measures)
    chance = {"bbc-topic": 0.2, "wiki-acceptability": 0.0, "wiki-adjacency": 0.5 * (0.5 + 2 / 3)}
    by_hand = sum((table[f"score_{t}"] - c) / (1 - c) for t, c in chance.items()) / 3
    np.testing.assert_allclose(table["score_normalised"], by_hand, rtol=0, atol=1e-14)
    # Not the raw average: the tasks' chance levels differ.
    assert not np.allclose(table["score_normalised"], table["score_average"])
    assert (table["base_model"] == "minilm-l6").all()


def test_normalised_average_invariants_and_glue_leaves_wnli_out():
    from latentgeo.analysis.table import normalised_average

    chance = {"sst2": 0.5, "cola": 0.0, "wnli": 0.5}
    assert normalised_average({"sst2": 0.5, "cola": 0.0, "wnli": 1.0}, chance, "glue") == 0.0
    assert normalised_average({"sst2": 1.0, "cola": 1.0, "wnli": 0.0}, chance, "glue") == 1.0
    assert normalised_average({"sst2": 0.25, "cola": 0.5}, chance, "glue") == pytest.approx((-0.5 + 0.5) / 2)
    with pytest.raises(LatentgeoError, match=r"no chance level for tasks \['cola'\]"):
        normalised_average({"sst2": 0.5, "cola": 0.0}, {"sst2": 0.5}, "glue")
    with pytest.raises(LatentgeoError, match=r"\[0, 1\)"):
        normalised_average({"sst2": 0.5}, {"sst2": 1.0}, "glue")


@pytest.mark.parametrize("chance, message", [
    (None, r"chance None is not a number in \[0, 1\)"),
    (1.0, r"chance 1.0 is not a number in \[0, 1\)"),
    ("0.2", r"chance '0.2' is not a number"),
])
def test_a_result_without_a_usable_chance_is_refused(tmp_path, chance, message):
    finetune, measures = write_fixture(tmp_path)
    path = finetune / "perturbed/a5-s1/bbc-topic.json"
    data = json.loads(path.read_text())
    data["chance"] = chance
    path.write_text(json.dumps(data))
    with pytest.raises(LatentgeoError, match=message):
        build_results_table(finetune, measures)


def test_two_chance_levels_for_one_task_are_refused(tmp_path):
    finetune, measures = write_fixture(tmp_path)
    path = finetune / "perturbed/a5-s1/bbc-topic.json"
    data = json.loads(path.read_text())
    data["chance"] = 0.25
    path.write_text(json.dumps(data))
    with pytest.raises(LatentgeoError, match="task 'bbc-topic': chance 0.2 in .* but 0.25 in"):
        build_results_table(finetune, measures)
