"""Benchmark: the CPU time the runner's own processes take while stages run, at Dask's default
settings and at the runner's (:data:`latentgeo.repro.cluster.RUNNER_DASK_CONFIG`).

`latentgeo repro` runs each stage as one Dask task that starts the stage's command and polls it.
Everything else in the Dask processes (event loops, heartbeats, profilers, monitors) takes CPU
from the stages themselves on a small machine. This script starts the local cluster as the runner
does (:func:`latentgeo.repro.cluster.open_client`, two workers), keeps every worker busy with a
stage that only sleeps (:func:`latentgeo.repro.worker.run_stage_command` on ``sleep``), waits on
them as the runner does (``distributed.wait``, one-second timeout), and counts the CPU seconds of

- the runner's process: its client, the scheduler and the nannies;
- each worker process, without its stage's command (``os.times`` in the worker).

It prints both per minute of wall time, for each setting, and their ratio. The order of the
settings alternates over ``--rounds``.

    python bench/runner_overhead.py [--workers 2] [--seconds 60] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import time

from distributed import wait

from latentgeo.repro.cluster import RUNNER_DASK_CONFIG, ClusterChoice, open_client
from latentgeo.repro.worker import StageCommand, run_stage_command

SETTINGS = {"dask-default": {}, "runner": RUNNER_DASK_CONFIG}


def own_cpu_seconds() -> float:
    """User + system CPU seconds of the calling process, its children not counted."""
    user, system, *_ = os.times()
    return user + system


def measure(setting: str, workers: int, seconds: float) -> dict:
    """Start a cluster with ``setting``'s Dask config, run one sleeping stage per worker, count CPU."""
    choice = ClusterChoice(kind="local", workers=workers, threads=1)
    client, cluster = open_client(choice, dask_config=SETTINGS[setting])
    try:
        client.wait_for_workers(workers)
        time.sleep(2.0)  # let start-up settle before counting
        runner_before = own_cpu_seconds()
        workers_before = client.run(own_cpu_seconds)
        start = time.perf_counter()
        futures = [client.submit(run_stage_command, StageCommand(name=f"sleep-{i}", commands=(f"sleep {seconds}",),
                                                                  wdir=".", outs=()), pure=False)
                   for i in range(workers)]
        pending = futures
        while pending:  # as the runner waits: one-second timeouts on the first to finish
            try:
                done, _ = wait(pending, timeout=1.0, return_when="FIRST_COMPLETED")
            except TimeoutError:
                continue
            pending = [f for f in pending if f not in done]
        wall = time.perf_counter() - start
        runner = own_cpu_seconds() - runner_before
        workers_after = client.run(own_cpu_seconds)
        per_worker = [workers_after[w] - workers_before[w] for w in sorted(workers_after)]
    finally:
        client.close()
        cluster.close()
    return {"setting": setting, "wall_s": wall, "runner_cpu_s": runner, "worker_cpu_s": per_worker}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long each sleeping stage runs")
    parser.add_argument("--rounds", type=int, default=2, help="runs per setting (the order alternates)")
    args = parser.parse_args()
    if args.workers < 1 or args.seconds <= 0 or args.rounds < 1:
        raise SystemExit("--workers, --seconds and --rounds must be positive")
    print(f"{args.workers} workers, sleeping stages of {args.seconds:g} s, {args.rounds} round(s); "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    names = list(SETTINGS)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            row = measure(name, args.workers, args.seconds)
            minutes = row["wall_s"] / 60
            total = row["runner_cpu_s"] + sum(row["worker_cpu_s"])
            rates[name].append(total / minutes)
            workers = ", ".join(f"{w / minutes:.2f}" for w in row["worker_cpu_s"])
            print(f"round {r + 1} {name:>12}: runner {row['runner_cpu_s'] / minutes:.2f} CPU-s a minute, "
                  f"workers {workers}; all {total / minutes:.2f} ({100 * total / row['wall_s']:.1f} % of a core)",
                  flush=True)
    mean = {name: sum(v) / len(v) for name, v in rates.items()}
    print(f"\nmean CPU-s a minute around the stages: Dask's defaults {mean['dask-default']:.2f}, "
          f"the runner's {mean['runner']:.2f}: {mean['dask-default'] / mean['runner']:.1f}x less")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
