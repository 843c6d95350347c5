"""Benchmark: two measures cells side by side, as the runner's two workers run them, with and
without each pinned to a core of its own.

A measures cell is not one thread: its quantizers train on a background thread beside the main
thread's work, and point_dist spreads its cells over as many threads as the process may use
(:func:`latentgeo.geometry.measures.cells.point_dist`). With two workers on two cores, two cells
therefore run five or six busy threads on two cores. This script runs the measures stage's own
function (:func:`latentgeo.stages.measures.measures_file`, the profile's settings, one OpenMP thread
per process, as :mod:`study_jobs` runs it) on two committed samples at once, in two spawned
processes:

- ``shared``: both processes may use both cores (how the runner starts stages today);
- ``pinned``: each process confined to one core (``os.sched_setaffinity``), so its threads take
  turns on that core and point_dist runs on one thread.

It prints the wall time of each pair and the CPU seconds of each cell, the ratio of the two
modes' walls, and whether the two modes' measures are identical (they must be: no result depends
on the thread count). Run it on an otherwise idle machine; the order of the modes alternates over
``--rounds``.

    python bench/measures_pinning.py [--params params.yaml] [--study .]
        [--models minilm-l6-a1-s1 minilm-l6-a2-s1] [--rounds 1] [--work-dir bench-out/measures_pinning]

Needs the profile's committed samples (``latentgeo repro embed``), where ``--study``'s dvc.yaml
puts them (:mod:`study_files`).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from latentgeo.config.schema import load_params

from study_files import PARAMS_FILE, parse_study_arguments
from study_jobs import measure_job, run_pool

MODES = ("shared", "pinned")


def pinned_measure_job(job: dict) -> dict:
    """In a worker: :func:`study_jobs.measure_job`, first confined to ``job["cpu"]`` when given
    (before FAISS or any thread pool starts), and timed on the wall clock too."""
    if job.get("cpu") is not None:
        os.sched_setaffinity(0, {job["cpu"]})
    start = time.perf_counter()
    row = measure_job(job)
    return {**row, "wall_s": time.perf_counter() - start, "cpus": sorted(os.sched_getaffinity(0))}


def run_pair(mode: str, models: list[str], params_file: str, files, out_dir: Path) -> dict:
    """Both models' measures at once in two processes; the pair's wall time and each cell's row."""
    cpus = sorted(os.sched_getaffinity(0))
    if mode == "pinned" and len(cpus) < len(models):
        raise SystemExit(f"pinning {len(models)} cells needs {len(models)} cores; this process may use {cpus}")
    members = load_params(params_file).perturb.members()
    jobs = [{"model": m, "params": params_file, "embeddings": str(files.embeddings / f"{m}.npy"),
             "reference": str(files.embeddings / f"{members[m].reference}.npy"),
             "out": str(out_dir / f"{m}.json"), "cpu": cpus[i] if mode == "pinned" else None}
            for i, m in enumerate(models)]
    out_dir.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        Path(job["out"]).unlink(missing_ok=True)
    start = time.perf_counter()
    rows = run_pool(pinned_measure_job, jobs, len(jobs), mode)
    return {"wall_s": time.perf_counter() - start, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", help=f"the profile (default: STUDY/{PARAMS_FILE})")
    parser.add_argument("--study", default=".", help="the checkout whose committed samples are measured")
    parser.add_argument("--models", nargs=2, default=["minilm-l6-a1-s1", "minilm-l6-a2-s1"],
                        help="two model ids of the profile whose committed samples are measured")
    parser.add_argument("--rounds", type=int, default=1, help="pairs per mode (the order alternates)")
    parser.add_argument("--work-dir", default="bench-out/measures_pinning")
    args, files = parse_study_arguments(parser)
    missing = [m for m in args.models if not (files.embeddings / f"{m}.npy").is_file()]
    if missing:
        raise SystemExit(f"samples missing for {missing}: run `latentgeo repro embed` first")
    work = Path(args.work_dir)
    print(f"two measures cells at once ({', '.join(args.models)}), modes {MODES}, {args.rounds} round(s); "
          f"cores {sorted(os.sched_getaffinity(0))}; load average {os.getloadavg()[0]:.2f}")
    walls: dict[str, list[float]] = {mode: [] for mode in MODES}
    for r in range(args.rounds):
        for mode in (MODES if r % 2 == 0 else MODES[::-1]):
            pair = run_pair(mode, args.models, args.params, files, work / mode)
            walls[mode].append(pair["wall_s"])
            cells = "; ".join(f"{row['model']} {row['wall_s']:.0f} s wall, {row['cpu_s']:.0f} CPU-s "
                              f"on cores {row['cpus']}" for row in pair["rows"])
            print(f"round {r + 1} {mode:>6}: pair {pair['wall_s']:.0f} s ({cells})", flush=True)
    same = all(json.loads((work / "shared" / f"{m}.json").read_text())
               == json.loads((work / "pinned" / f"{m}.json").read_text()) for m in args.models)
    mean = {mode: sum(v) / len(v) for mode, v in walls.items()}
    print(f"\nmean pair wall: shared {mean['shared']:.0f} s, pinned {mean['pinned']:.0f} s: "
          f"pinned takes {mean['pinned'] / mean['shared']:.3f}x the shared time")
    print(f"measures identical between the modes: {same}")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
