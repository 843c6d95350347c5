"""bench/study_files.py: the study benchmarks read the pipeline's paths from dvc.yaml, not copies."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from bench_utils import bench_module as _bench_module

ROOT = Path(__file__).resolve().parents[1]
STUDY_BENCHMARKS = ("embed", "finetune", "finetune_seed", "measures_pinning", "quantizer_train_size", "sample_size",
                    "study_jobs", "third_family",
                    "tolerances")


def _study_files():
    return _bench_module("study_files")


def _declared_paths() -> set[str]:
    """Every out, dep, metric and plot of every stage in dvc.yaml, templates kept."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    paths = set()
    for spec in stages.values():
        body = spec.get("do", spec)
        for key in ("outs", "deps", "metrics", "plots"):
            for entry in body.get(key, []) or []:
                paths.add(next(iter(entry)) if isinstance(entry, dict) else entry)
    return paths


@pytest.mark.parametrize("template, folder", [
    ("embeddings/${key}.npy", "embeddings"),
    ("models/${item.member}", "models"),
    ("results/finetune/${item.member}/${item.task}.json", "results/finetune"),
    ("data/tasks/offline", "data/tasks/offline"),
])
def test_folder_of_a_templated_path(template, folder):
    assert _study_files().folder_of(template) == folder


def test_a_path_that_starts_with_a_template_has_no_folder():
    with pytest.raises(ValueError):
        _study_files().folder_of("${key}.npy")


def test_every_study_file_is_a_path_the_pipeline_declares():
    """Each path the benchmarks read is where dvc.yaml's stages write or read it: an out or dep
    of some stage, or the folder of one (templated outs such as models/${key})."""
    module = _study_files()
    files = module.study_files(ROOT)
    declared = _declared_paths()
    for name in ("models", "embeddings", "sequences", "tasks", "finetune", "measures", "table", "regression"):
        rel = files.lock_key(getattr(files, name))
        assert any(p == rel or p.startswith(rel + "/") for p in declared), (name, rel)
    assert files.lock_key(files.embeddings / "m.npy") == "embeddings/m.npy"
    assert module.study_files().table == Path("results/table.csv")


def test_an_unknown_stage_is_refused(tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages:\n  other:\n    cmd: echo\n")
    with pytest.raises(SystemExit, match="no stage 'embed'"):
        _study_files().study_files(tmp_path)


def test_the_shared_options(monkeypatch):
    module = _study_files()
    parser = argparse.ArgumentParser()
    module.add_study_arguments(parser)
    monkeypatch.setattr("sys.argv", ["bench"])
    args, files = module.parse_study_arguments(parser)
    assert (args.params, args.study, args.workers, args.csv) == ("params.yaml", ".", 2, None)
    monkeypatch.setattr("sys.argv", ["bench", "--study", str(ROOT)])
    args, files = module.parse_study_arguments(parser)
    assert args.params == str(ROOT / "params.yaml")  # the study's own profile
    assert files.measures == ROOT / "results" / "measures"
    monkeypatch.setattr("sys.argv", ["bench", "--study", str(ROOT), "--params", "other.yaml"])
    assert module.parse_study_arguments(parser)[0].params == "other.yaml"


@pytest.mark.parametrize("name", STUDY_BENCHMARKS)
def test_study_benchmarks_do_not_repeat_the_pipelines_paths(name):
    code = (ROOT / "bench" / f"{name}.py").read_text().split('"""', 2)[-1]  # after the docstring
    for copy in ("data/tasks/offline", "data/corpus/sequences.jsonl", 'default="results"',
                 'default="models"', 'default="embeddings"', 'results / "', '"results" /', 'Path("results")',
                 '"corpus" / "sequences.jsonl"', '"tasks" / "offline"'):
        assert copy not in code, (name, copy)


def _tolerances(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # as when run as a script: its sibling modules
    return _bench_module("tolerances", "bench_tolerances")


def test_tolerances_reads_the_built_data_where_dvc_yaml_says(tmp_path, monkeypatch):
    """bench/tolerances.py uses the checkout's data/ when built, else builds the same layout into
    its work folder (paths from dvc.yaml, never from a copy of the data build's layout)."""
    module = _tolerances(monkeypatch)
    study = tmp_path / "study"
    study.mkdir()
    (study / "dvc.yaml").write_text((ROOT / "dvc.yaml").read_text())
    monkeypatch.setattr(module, "FILES", module.study_files(study))
    built = []

    def fake_build(folder, **kwargs):
        built.append(Path(folder))
        (Path(folder) / "corpus").mkdir(parents=True)
        (Path(folder) / "corpus" / "sequences.jsonl").write_text("{}\n")
        (Path(folder) / "tasks" / "offline").mkdir(parents=True)

    monkeypatch.setattr("latentgeo.data.build.build_data", fake_build)
    work = tmp_path / "work"
    sequences, tasks = module.study_data(work)
    assert (sequences, tasks) == (work / "data" / "corpus" / "sequences.jsonl", work / "data" / "tasks" / "offline")
    assert built == [work / "data"]
    assert module.study_data(work) == (sequences, tasks) and len(built) == 1  # built once
    (study / "data" / "corpus").mkdir(parents=True)
    (study / "data" / "corpus" / "sequences.jsonl").write_text("{}\n")
    (study / "data" / "tasks" / "offline").mkdir(parents=True)
    assert module.study_data(work) == (study / "data" / "corpus" / "sequences.jsonl", study / "data" / "tasks" / "offline")
