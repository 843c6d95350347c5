"""Where a run's stage time goes: the runner's log and the executed notebooks, split per stage kind.

``latentgeo repro`` prints one line when a stage starts and one when it settles, with the seconds
its command took on its worker. Every stage's notebook, executed by papermill, records how long
each of its cells ran. Together they split a stage's seconds into

- ``outside``: the command's time outside the notebook's cells (shell, the launcher's imports,
  the kernel's start, papermill writing the executed notebook);
- ``first``: the notebook's first code cell after its parameters (its imports of the project's
  modules; torch and transformers load later, when the stage's functions first need them, so
  their import time falls in ``main``);
- ``main``: its longest cell (the stage's work: perturbing, embedding, measuring, fine-tuning);
- ``rest``: every other cell (reading settings, tables, figures);

and the run's wall time into each worker's busy time and its idle time (waiting for the runner to
hand it a stage: dependencies not yet met, or the runner busy recording the last one), and the
runner's own part of each stage (from its start line to its settled line, less the command: the
hand-over to the worker and the recording of outputs and lock entry). Where the
log has each stage's CPU seconds, it adds them per kind and the share of the two cores (or however
many) the run kept busy. It reads a
finished run and computes nothing itself: it is a profiler for `make repro`, not a benchmark.

    latentgeo repro 2>&1 | tee repro.log
    python bench/stage_time.py repro.log [--study .]

The executed notebooks are found through ``--study``'s dvc.lock (each stage's ``.ipynb`` output).
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from latentgeo.repro.schedule import RAN

# "[ 12/113   345.6s] ran        measures@minilm-l6-a1-s1  239.1 s, 180.2 CPU-s on worker 0"
# (the state is padded to ten characters: "start", "ran", "up to date", ...)
_LINE = re.compile(r"^\[\s*\d+/\d+\s+(?P<clock>[\d.]+)s\] (?P<state>.{10}) (?P<stage>\S+)(?P<detail>.*)$")
# (runs before the runner counted CPU time print "239.1 s on worker 0")
_RAN = re.compile(r"(?P<seconds>[\d.]+) s(?:, (?P<cpu>[\d.]+) CPU-s)? on worker (?P<worker>\S+)")
PARTS = ("outside", "first", "main", "rest")


@dataclass
class StageRun:
    """One stage that ran: its runner-side times and, once read, its notebook's split."""

    name: str
    start: float  # runner clock, s
    seconds: float  # the command's time on its worker, s
    worker: str
    settled: float  # runner clock when the runner had recorded it, s
    cpu_seconds: float | None = None  # CPU time of the command's processes, where the log has it
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def runner_seconds(self) -> float:
        """Start to settled, less the command: handing the stage to a worker and recording it."""
        return self.settled - self.start - self.seconds

    @property
    def kind(self) -> str:
        return self.name.split("@")[0]


def read_runner_log(path: Path) -> list[StageRun]:
    """Every stage the log shows running to completion, in the order they settled."""
    starts: dict[str, float] = {}
    runs = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _LINE.match(line.rstrip())
        if not match:
            continue
        state = match["state"].strip()
        if state == "start":
            starts[match["stage"]] = float(match["clock"])
        elif state == RAN and (ran := _RAN.search(match["detail"])):
            runs.append(StageRun(match["stage"], starts.get(match["stage"], float(match["clock"])),
                                 float(ran["seconds"]), ran["worker"], float(match["clock"]),
                                 float(ran["cpu"]) if ran["cpu"] is not None else None))
    if not runs:
        raise SystemExit(f"{path} shows no stage that ran (is it `latentgeo repro`'s output?)")
    return runs


def executed_notebooks(study: Path) -> dict[str, Path]:
    """Each stage's executed notebook, from the ``.ipynb`` among its outputs in dvc.lock."""
    lock = yaml.load((study / "dvc.lock").read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    found = {}
    for name, entry in lock.get("stages", {}).items():
        for out in entry.get("outs", []):
            if out["path"].endswith(".ipynb"):
                found[name] = study / out["path"]
    return found


def all_outside(seconds: float) -> dict[str, float]:
    """The split of a stage whose notebook recorded no cell times: all of it outside."""
    return {"outside": seconds, "first": 0.0, "main": 0.0, "rest": 0.0}


def notebook_parts(path: Path, seconds: float) -> dict[str, float]:
    """``seconds`` of a stage's command split as the module docstring says, from its notebook."""
    cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    tags = [set(c.get("metadata", {}).get("tags", [])) for c in cells]
    timed = [(i, float(c["metadata"].get("papermill", {}).get("duration") or 0.0)) for i, c in enumerate(cells)
             if not tags[i] & {"parameters", "injected-parameters"}]
    if not timed:
        return all_outside(seconds)
    first = timed[0][1]
    main = max(d for _, d in timed[1:]) if len(timed) > 1 else 0.0
    inside = sum(d for _, d in timed)
    return {"outside": seconds - inside, "first": first, "main": main, "rest": inside - first - main}


def worker_idle(runs: list[StageRun]) -> tuple[float, dict[str, float]]:
    """The run's span (first start to last finish, s) and each worker's time without a stage in it."""
    begin = min(r.start for r in runs)
    end = max(r.start + r.seconds for r in runs)
    busy: dict[str, float] = defaultdict(float)
    for r in runs:
        busy[r.worker] += r.seconds
    return end - begin, {w: (end - begin) - b for w, b in sorted(busy.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", type=Path, help="the output of `latentgeo repro`")
    parser.add_argument("--study", type=Path, default=Path("."), help="the checkout that ran it")
    args = parser.parse_args()
    runs = read_runner_log(args.log)
    notebooks = executed_notebooks(args.study)
    missing = 0
    for run in runs:
        path = notebooks.get(run.name)
        if path is None or not path.is_file():
            missing += 1
            run.parts = all_outside(run.seconds)
        else:
            run.parts = notebook_parts(path, run.seconds)
    by_kind: dict[str, list[StageRun]] = defaultdict(list)
    for run in runs:
        by_kind[run.kind].append(run)
    with_cpu = all(r.cpu_seconds is not None for r in runs)
    print(f"{'stage kind':<16}{'stages':>7}{'seconds':>9}{'each':>7}" + "".join(f"{p:>9}" for p in PARTS)
          + (f"{'CPU-s':>9}" if with_cpu else ""))
    groups = sorted(by_kind.items(), key=lambda kv: -sum(r.seconds for r in kv[1])) + [("all", runs)]
    for kind, mine in groups:
        total = sum(r.seconds for r in mine)
        parts = [sum(r.parts[p] for r in mine) for p in PARTS]
        cpu = f"{sum(r.cpu_seconds for r in mine):>9.0f}" if with_cpu else ""
        print(f"{kind:<16}{len(mine):>7}{total:>9.0f}{total / len(mine):>7.1f}"
              + "".join(f"{v:>9.0f}" for v in parts) + cpu)
    total = sum(r.seconds for r in runs)
    span, idle = worker_idle(runs)
    print(f"\nspan {span:.0f} s (first start to last finish), {total:.0f} stage-seconds: "
          f"{total / span:.2f} stages at a time on average")
    if with_cpu:
        cpu = sum(r.cpu_seconds for r in runs)
        print(f"{cpu:.0f} CPU-s in the stages: {cpu / span:.2f} cores busy on average")
    print("idle per worker: " + ", ".join(f"worker {w} {s:.0f} s" for w, s in idle.items()))
    runner = [r.runner_seconds for r in runs]
    print(f"runner's part (hand-over and recording): {sum(runner):.0f} s in all, "
          f"{sum(runner) / len(runner):.2f} s a stage, at most {max(runner):.1f} s")
    if missing:
        print(f"({missing} stage(s) without an executed notebook in {args.study}: all their time counted outside)")


if __name__ == "__main__":
    main()
