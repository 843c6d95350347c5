"""Benchmark: one measures cell in a plain process and in the stage's notebook kernel, with and
without the launcher's allocator settings.

The measures stage's ``measures_file`` cell ran ~10 % slower inside the notebook kernel than the
same function in a plain process (``bench/measures_pinning.py``, one pair). The kernel differs from
a plain process in two ways that could cost compute: the launcher's glibc allocator settings
(:data:`latentgeo.run_notebook.KERNEL_MALLOC_ENV`, chosen for fine-tuning) and the kernel itself
(progress bars sent as messages, the kernel's own threads). This script separates them by running
one model's cell four ways, each in a fresh process, one after the other on an otherwise idle
machine, all with the runner's one-thread-per-stage environment:

- ``process``: :func:`latentgeo.stages.measures.measures_file` called in ``python``, glibc's default
  allocator settings;
- ``process+malloc``: the same with the launcher's allocator settings;
- ``kernel``: the stage's own command (``python -m latentgeo.run_notebook`` on
  ``notebooks/04_measures.ipynb``), allocator settings included;
- ``kernel-malloc``: the same command with the allocator settings left out.

For each it prints the wall time of the whole command, the CPU seconds of the process (kernel
included), and for the notebook modes the ``measures_file`` cell's own time as papermill recorded
it; then whether the four runs' measures are identical (they must be). The order of the modes
alternates over ``--rounds``.

    python bench/measures_kernel.py [--params params.yaml] [--study .] [--model minilm-l6-a1-s1]
        [--rounds 1] [--modes process process+malloc kernel kernel-malloc]
        [--work-dir bench-out/measures_kernel]

Needs the model's sample and its family base's (``latentgeo repro embed@MODEL``), where
``--study``'s dvc.yaml puts them (:mod:`study_files`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from latentgeo.config.schema import load_params
from latentgeo.repro.worker import children_cpu_seconds, thread_environment
from latentgeo.run_notebook import KERNEL_MALLOC_ENV

from study_files import parse_study_arguments

MODES = ("process", "process+malloc", "kernel", "kernel-malloc")
NOTEBOOK = "notebooks/04_measures.ipynb"
MEASURES_CELL = "report = measures_file("  # how the notebook's measuring cell begins

# The plain-process modes: the notebook's call, without the notebook (no progress bars: a plain
# process has no kernel to send them to, and tqdm's own cost is what the kernel modes measure).
PROCESS_SCRIPT = """
import sys
from latentgeo.config.schema import load_params
from latentgeo.stages.measures import measures_arguments, measures_file
params, embeddings, reference, out = sys.argv[1:]
measures_file(embeddings, out, reference=reference, progress=False, overwrite=True,
              **measures_arguments(load_params(params).measures))
"""

# The kernel without the launcher's allocator settings: the launcher, its table emptied.
KERNEL_NO_MALLOC_SCRIPT = """
import sys
import latentgeo.run_notebook as launcher
launcher.KERNEL_MALLOC_ENV = {}
launcher.main(sys.argv[1:])
"""


def mode_command(mode: str, study: Path, params: str, embeddings: str, reference: str,
                 out: Path) -> list[str]:
    """The argv that runs one mode's cell (``study``'s notebook), writing its measures to ``out``."""
    if mode.startswith("process"):
        return [sys.executable, "-c", PROCESS_SCRIPT, params, embeddings, reference, str(out)]
    notebook_args = [str(study / NOTEBOOK), str(out.with_suffix(".ipynb")), "-p", "params_file", params,
                     "-p", "embeddings", embeddings, "-p", "reference", reference, "-p", "out", str(out)]
    if mode == "kernel":
        return [sys.executable, "-m", "latentgeo.run_notebook", *notebook_args]
    return [sys.executable, "-c", KERNEL_NO_MALLOC_SCRIPT, *notebook_args]


def mode_environment(mode: str) -> dict[str, str]:
    """The runner's stage environment (one thread), with or without the allocator settings."""
    env = {k: v for k, v in os.environ.items() if k not in KERNEL_MALLOC_ENV}
    env.update(thread_environment(1))
    if mode == "process+malloc":
        env.update(KERNEL_MALLOC_ENV)  # the kernel modes get them (or not) from the launcher
    return env


def measures_cell_seconds(executed: Path) -> float:
    """The measuring cell's duration as papermill recorded it in the executed notebook."""
    for cell in json.loads(executed.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "code" and "".join(cell["source"]).startswith(MEASURES_CELL):
            return float(cell["metadata"]["papermill"]["duration"])
    raise SystemExit(f"{executed} has no cell beginning {MEASURES_CELL!r}")


def run_mode(mode: str, study: Path, params: str, embeddings: str, reference: str, out: Path) -> dict:
    """One fresh process (and kernel) for ``mode``: wall, CPU seconds of its process tree, cell."""
    out.parent.mkdir(parents=True, exist_ok=True)
    before = children_cpu_seconds()
    start = time.perf_counter()
    subprocess.run(mode_command(mode, study, params, embeddings, reference, out), env=mode_environment(mode),
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    cpu = children_cpu_seconds() - before
    cell = measures_cell_seconds(out.with_suffix(".ipynb")) if mode.startswith("kernel") else None
    return {"mode": mode, "wall_s": wall, "cpu_s": cpu, "cell_s": cell}


def measures_of(path: Path) -> dict:
    """The measures a run wrote, without the record's run-dependent fields (timings, paths)."""
    record = json.loads(path.read_text(encoding="utf-8"))
    return {k: v for k, v in record.items() if k not in ("seconds", "timing", "inputs", "environment")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", help="the profile (default: STUDY/params.yaml)")
    parser.add_argument("--study", default=".", help="the checkout whose committed sample is measured")
    parser.add_argument("--model", default="minilm-l6-a1-s1", help="a model id of the profile")
    parser.add_argument("--rounds", type=int, default=1, help="runs per mode (the order alternates)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--work-dir", default="bench-out/measures_kernel")
    args, files = parse_study_arguments(parser)
    member = load_params(args.params).perturb.members().get(args.model)
    if member is None:
        raise SystemExit(f"{args.model!r} is not a model of {args.params}")
    embeddings, reference = (str((files.embeddings / f"{m}.npy").resolve()) for m in (args.model, member.reference))
    params, study = str(Path(args.params).resolve()), Path(args.study).resolve()
    missing = [p for p in (embeddings, reference) if not Path(p).is_file()]
    if missing:
        raise SystemExit(f"samples missing: {missing}: run `latentgeo repro embed@{args.model}` first")
    work = Path(args.work_dir).resolve()
    print(f"one measures cell ({args.model}), modes {args.modes}, {args.rounds} round(s), one thread; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    for r in range(args.rounds):
        for mode in (args.modes if r % 2 == 0 else args.modes[::-1]):
            row = run_mode(mode, study, params, embeddings, reference, work / mode / f"{args.model}.json")
            rows.append(row)
            cell = f", measures cell {row['cell_s']:.1f} s" if row["cell_s"] is not None else ""
            print(f"round {r + 1} {mode:>14}: {row['wall_s']:.1f} s wall, {row['cpu_s']:.1f} CPU-s{cell}; "
                  f"load average {os.getloadavg()[0]:.2f}", flush=True)
    print()
    for mode in args.modes:
        mine = [row for row in rows if row["mode"] == mode]
        walls = [row["wall_s"] for row in mine]
        cells = [row["cell_s"] for row in mine if row["cell_s"] is not None]
        cell = f", measures cell mean {sum(cells) / len(cells):.1f} s" if cells else ""
        print(f"{mode:>14}: wall mean {sum(walls) / len(walls):.1f} s "
              f"(min {min(walls):.1f}), CPU mean {sum(r['cpu_s'] for r in mine) / len(mine):.1f} s{cell}")
    results = [measures_of(work / mode / f"{args.model}.json") for mode in args.modes]
    print(f"measures identical across the modes: {all(r == results[0] for r in results)}")


if __name__ == "__main__":
    main()
