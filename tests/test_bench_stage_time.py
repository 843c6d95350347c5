"""bench/stage_time.py reads what the runner prints and what papermill records; bench/measures_kernel.py
finds the notebook's measuring cell."""

from __future__ import annotations

import io
import time
import json
from pathlib import Path

import pytest
import yaml
from bench_utils import bench_module

from latentgeo.repro.schedule import RAN, UP_TO_DATE, Progress, ran_detail
from latentgeo.repro.worker import StageResult

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def stage_time():
    return bench_module("stage_time", "bench_stage_time")


def code_cell(source: str, seconds: float, tags: tuple[str, ...] = ()) -> dict:
    return {"cell_type": "code", "source": source, "outputs": [], "execution_count": 1,
            "metadata": {"tags": list(tags), "papermill": {"duration": seconds}}}


def write_notebook(path: Path, cells: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def runner_log(events: list[tuple[float, str, str, str]]) -> str:
    """The runner's own lines (its Progress class) for (clock, state, stage, detail) events."""
    stream = io.StringIO()
    progress = Progress(total=3, stream=stream)
    for clock, state, stage, detail in events:
        progress.t0 = time.monotonic() - clock  # the line prints this clock
        if state == "start":
            progress.start(stage)
        else:
            progress.settle(stage, state, detail)
    return stream.getvalue()


def test_reads_the_runner_lines_and_splits_notebook_time(stage_time, tmp_path):
    log = runner_log([
        (0.0, "start", "perturb@m1", ""),
        (0.1, "start", "perturb@m2", ""),
        (20.5, RAN, "perturb@m1", ran_detail(StageResult("perturb@m1", True, 20.0, "0", cpu_seconds=12.5))),
        (21.0, "start", "measures@m1", ""),
        (30.1, RAN, "perturb@m2", ran_detail(StageResult("perturb@m2", True, 30.0, "1", cpu_seconds=25.0))),
        (30.5, UP_TO_DATE, "data", ""),
        (121.0, RAN, "measures@m1", "100.0 s on worker 0"),  # a log from before CPU time was counted
    ])
    (tmp_path / "repro.log").write_text("a line DVC printed\n" + log)
    runs = stage_time.read_runner_log(tmp_path / "repro.log")
    assert [(r.name, r.start, r.seconds, r.worker, r.cpu_seconds) for r in runs] == [
        ("perturb@m1", 0.0, 20.0, "0", 12.5), ("perturb@m2", 0.1, 30.0, "1", 25.0),
        ("measures@m1", 21.0, 100.0, "0", None)]
    assert [r.runner_seconds for r in runs] == pytest.approx([0.5, 0.0, 0.0])
    span, idle = stage_time.worker_idle(runs)
    assert span == pytest.approx(121.0)
    assert idle == pytest.approx({"0": 1.0, "1": 91.0})

    write_notebook(tmp_path / "executed/measures/m1.ipynb", [
        code_cell("params_file = 'p'", 0.01, ("parameters",)),
        code_cell("params_file = 'q'", 0.01, ("injected-parameters",)),
        code_cell("import latentgeo", 6.0),
        code_cell("settings", 0.5),
        code_cell("report = measures_file(...)", 80.0),
        code_cell("fig = plot(report)", 3.5),
    ])
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {
        "measures@m1": {"cmd": "x", "outs": [{"path": "executed/measures/m1.ipynb"}, {"path": "r.json"}]}}}))
    notebooks = stage_time.executed_notebooks(tmp_path)
    assert notebooks == {"measures@m1": tmp_path / "executed/measures/m1.ipynb"}
    parts = stage_time.notebook_parts(notebooks["measures@m1"], 100.0)
    assert parts == pytest.approx({"outside": 10.0, "first": 6.0, "main": 80.0, "rest": 4.0})
    assert sum(parts.values()) == pytest.approx(100.0)


def test_a_log_without_runs_is_refused(stage_time, tmp_path):
    (tmp_path / "repro.log").write_text("Running stage 'perturb@m1':\n")
    with pytest.raises(SystemExit, match="no stage that ran"):
        stage_time.read_runner_log(tmp_path / "repro.log")


def test_measures_kernel_finds_the_measuring_cell_of_the_real_notebook(tmp_path):
    bench = bench_module("measures_kernel", "bench_measures_kernel")
    notebook = json.loads((ROOT / bench.NOTEBOOK).read_text())
    for cell in notebook["cells"]:  # what papermill adds when it runs the notebook
        cell.setdefault("metadata", {})["papermill"] = {"duration": 1.0}
    measuring = [c for c in notebook["cells"] if "".join(c["source"]).startswith(bench.MEASURES_CELL)]
    assert len(measuring) == 1 and measuring[0]["cell_type"] == "code"
    measuring[0]["metadata"]["papermill"]["duration"] = 187.5
    (tmp_path / "m.ipynb").write_text(json.dumps(notebook))
    assert bench.measures_cell_seconds(tmp_path / "m.ipynb") == 187.5
