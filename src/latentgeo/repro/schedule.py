"""The scheduling loop: DVC's plan, stale stages to Dask workers, results recorded in order.

A stage is *settled* once it is up to date, restored from the run-cache, ran and was recorded,
failed, or was skipped because something it depends on failed. A failure stops only the stages that
depend on it; every other stage still runs and is recorded, so rerunning continues where this run
stopped. Ctrl-C asks the workers to stop, removes the outputs of the stages in flight, records the
stages that had finished, and leaves the lock entries of the others untouched.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Callable

from latentgeo.repro import pipeline
from latentgeo.repro.worker import StageResult, remove_outputs

# Settled states.
UP_TO_DATE, RESTORED, RAN, FAILED, SKIPPED = "up to date", "restored", "ran", "failed", "skipped"
DONE_STATES = (UP_TO_DATE, RESTORED, RAN)
# After Ctrl-C, how long workers get to end their stage's processes and remove outputs (seconds).
STOP_GRACE_S = 15.0
# Seconds between rewrites of dvc.lock during a run. DVC parses and rewrites the whole file for
# each (~2 s of CPU for the default profile's 0.45 MB), which after every stage took ~5 % of a
# core from the stages. A stage's outputs and run-cache entry are saved the moment it settles; if
# the run is killed before its lock entry is written, the next run restores it from the run-cache
# in seconds. Ctrl-C, failures and the end of the run write every due entry at once.
LOCK_DUMP_INTERVAL_S = 300.0


@dataclass
class Outcome:
    """What one run did, by stage address."""

    states: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    orphans: list[str] = field(default_factory=list)  # lock entries of stages dvc.yaml no longer defines
    pruned: bool = False  # whether those entries were removed

    def names(self, state: str) -> list[str]:
        return [name for name, s in self.states.items() if s == state]

    @property
    def ok(self) -> bool:
        return not self.names(FAILED) and not self.names(SKIPPED)


def ran_detail(result: StageResult) -> str:
    """What the progress line says of a stage that ran: "239.1 s, 180.2 CPU-s on worker 0"."""
    cpu = f", {result.cpu_seconds:.1f} CPU-s" if result.cpu_seconds is not None else ""
    return f"{result.seconds:.1f} s{cpu} on worker {result.worker}"


class Progress:
    """One line per stage start and finish, with its time and the count settled / total."""

    def __init__(self, total: int, stream=None):
        self.total, self.settled = total, 0
        self.stream = stream or sys.stdout
        self.t0 = time.monotonic()

    def line(self, text: str) -> None:
        width = len(str(self.total))
        clock = time.monotonic() - self.t0
        print(f"[{self.settled:>{width}}/{self.total} {clock:7.1f}s] {text}", file=self.stream, flush=True)

    def start(self, name: str) -> None:
        self.line(f"start      {name}")

    def settle(self, name: str, state: str, detail: str = "") -> None:
        self.settled += 1
        self.line(f"{state:<10} {name}{'  ' + detail if detail else ''}")


class Scheduler:
    """Runs one :class:`~latentgeo.repro.pipeline.Plan`.

    ``submit(spec, resources)`` starts a stage's command somewhere and returns a future whose result
    is a :class:`StageResult`; ``wait_any(futures)`` returns those of ``futures`` that finished;
    ``stop()`` asks every running command to end (Ctrl-C); by default it creates ``stop_file``,
    which every worker polls (shared file system).

    ``capacity()`` says how many stages may run at once (the cluster's worker threads; asked anew
    each time, as batch workers join late). Stale stages wait here, first decided first, until a
    slot is free, rather than in Dask: Dask places a task on a worker when it is submitted, and
    with stage durations unknown to it, it once queued the 20-second regression stage behind the
    15-minute stitching stage while the other worker sat idle. None: no limit (every stale stage
    is submitted as soon as its upstream is settled)."""

    def __init__(self, repo, plan: pipeline.Plan, *, submit: Callable, wait_any: Callable,
                 stop: Callable[[], None] | None = None, threads: int = 1,
                 gpu_groups: frozenset[str] = frozenset(), progress: Progress | None = None,
                 stop_file: str | None = None, capacity: Callable[[], int] | None = None,
                 lock_interval_s: float = LOCK_DUMP_INTERVAL_S):
        self.repo, self.plan = repo, plan
        self.submit, self.wait_any, self.capacity = submit, wait_any, capacity
        self.stop = stop or self._create_stop_file
        self.threads, self.gpu_groups, self.stop_file = threads, gpu_groups, stop_file
        self.progress = progress or Progress(len(plan.stages))
        self.state: dict = {}  # Stage -> settled state
        self.running: dict = {}  # future -> Stage
        self.queue: list = []  # (Stage, StageCommand, resources) decided to run, waiting for a slot
        self.to_dump: set = set()  # settled stages whose lock entry is due
        self.next_dump = 0  # plan index up to which lock entries are written
        self.lock_interval_s = lock_interval_s
        self.dumped_at = time.monotonic()
        self.outcome = Outcome()

    def _create_stop_file(self) -> None:
        if self.stop_file:
            Path(self.stop_file).parent.mkdir(parents=True, exist_ok=True)
            Path(self.stop_file).touch()

    # -- settling ----------------------------------------------------------------------------
    def _settle(self, stage, state: str, detail: str = "", error: str | None = None) -> None:
        self.state[stage] = state
        self.outcome.states[stage.addressing] = state
        if error:
            self.outcome.errors[stage.addressing] = error
        if state in (RAN, RESTORED) or (state == UP_TO_DATE and detail == "recorded"):
            self.to_dump.add(stage)
        self.progress.settle(stage.addressing, state, detail)

    def _fail(self, stage, error: str) -> None:
        remove_outputs(pipeline.output_paths(stage))
        self._settle(stage, FAILED, error.splitlines()[0] if error else "", error=error)

    def _dump_in_plan_order(self, *, everything: bool = False) -> None:
        """Write lock entries of settled stages, in plan order, up to the first unsettled stage
        (``everything``: past it too, at the end of a run that stopped early)."""
        stages, due = self.plan.stages, []
        while self.next_dump < len(stages):
            stage = stages[self.next_dump]
            if stage not in self.state and not everything:
                break
            if stage in self.to_dump:
                due.append(stage)
                self.to_dump.discard(stage)
            self.next_dump += 1
        pipeline.dump_locks(due)

    def _dump_when_due(self) -> None:
        """:meth:`_dump_in_plan_order` at most once per ``lock_interval_s``."""
        if time.monotonic() - self.dumped_at >= self.lock_interval_s:
            self._dump_in_plan_order()
            self.dumped_at = time.monotonic()

    # -- deciding ----------------------------------------------------------------------------
    def _decide(self, stage) -> None:
        """Settle ``stage`` locally if possible, else queue it for a worker. Its upstream is settled."""
        upstream = self.plan.upstream[stage]
        failed_up = [u.addressing for u in upstream if self.state[u] in (FAILED, SKIPPED)]
        if failed_up:
            self._settle(stage, SKIPPED, f"(depends on failed {', '.join(failed_up)})")
            return
        try:
            if not pipeline.is_command_stage(stage):
                recorded = stage.reproduce(upstream=upstream) is not None  # data source / frozen
                self._settle(stage, UP_TO_DATE, "recorded" if recorded else "")
                return
            if not pipeline.needs_run(stage, upstream):
                self._settle(stage, UP_TO_DATE)
                return
            if pipeline.prepare_run(stage):
                self._settle(stage, RESTORED, "from the run-cache")
                return
        except Exception as err:  # noqa: BLE001 - DVC errors: this stage fails, others go on
            self._fail(stage, f"{type(err).__name__}: {err}")
            return
        gpu = pipeline.stage_group(stage) in self.gpu_groups
        spec = pipeline.stage_command(self.repo, stage, threads=self.threads, gpu=gpu,
                                      stop_file=self.stop_file)
        self.queue.append((stage, spec, {"GPU": 1} if gpu else None))

    def _decide_ready(self) -> None:
        """Decide every waiting stage whose upstream is settled, until none is left."""
        changed = True
        while changed:
            changed = False
            busy = self._undecidable()
            for stage in self.plan.stages:
                if stage in self.state or stage in busy:
                    continue
                if all(u in self.state for u in self.plan.upstream[stage]):
                    self._decide(stage)
                    changed = True
                    busy = self._undecidable()

    def _undecidable(self) -> set:
        """Stages decided but not settled: running, or queued for a slot."""
        return {*self.running.values(), *(queued for queued, _, _ in self.queue)}

    def _dispatch(self) -> None:
        """Submit queued stages, first decided first, while the cluster has a free slot (at least
        one stage always runs, so a run whose batch workers have not joined yet still starts)."""
        while self.queue and (self.capacity is None or len(self.running) < max(1, self.capacity())):
            stage, spec, resources = self.queue.pop(0)
            self.running[self.submit(spec, resources)] = stage
            self.progress.start(stage.addressing)

    # -- results -----------------------------------------------------------------------------
    def _finish(self, future) -> None:
        stage = self.running.pop(future)
        try:
            result: StageResult = future.result()
        except Exception as err:  # noqa: BLE001 - a worker lost or a task error
            self._fail(stage, f"worker error: {type(err).__name__}: {err}")
            return
        if not result.ok:
            tail = result.log_tail.strip().splitlines()[-15:]
            log = pipeline.log_path(self.repo, stage)
            self._fail(stage, f"command exited {result.returncode} after {result.seconds:.1f} s "
                              f"(log: {log})\n" + "\n".join(tail))
            return
        try:
            pipeline.record(stage)
        except Exception as err:  # noqa: BLE001 - e.g. a declared output the command did not write
            self._fail(stage, f"recording failed: {type(err).__name__}: {err}")
            return
        self._settle(stage, RAN, ran_detail(result))

    def _interrupt(self) -> None:
        """Ctrl-C: workers end their commands and remove outputs; the client makes sure of it."""
        if not self.running:
            return
        self.stop()
        deadline = time.monotonic() + STOP_GRACE_S
        pending = list(self.running)
        try:
            while pending and time.monotonic() < deadline:
                pending = [f for f in pending if f not in self.wait_any(pending, timeout=1.0)]
        except BaseException:  # noqa: BLE001 - a second Ctrl-C: skip the grace, still clean up
            pass
        for stage in self.running.values():
            remove_outputs(pipeline.output_paths(stage))  # shared file system: belt and braces
            self.outcome.states[stage.addressing] = "interrupted"
        self.running.clear()

    def run(self) -> Outcome:
        start = time.monotonic()
        try:
            self._decide_ready()
            self._dispatch()
            self._dump_in_plan_order()
            while self.running:
                for future in self.wait_any(list(self.running)):
                    self._finish(future)
                self._decide_ready()
                self._dispatch()
                self._dump_when_due()
        except BaseException:  # Ctrl-C, or the cluster lost: nothing half-written may remain
            self._interrupt()
            raise
        finally:
            self._dump_in_plan_order(everything=True)
            if self.stop_file and Path(self.stop_file).exists():
                Path(self.stop_file).unlink()
            self.outcome.seconds = time.monotonic() - start
        return self.outcome


__all__ = ["Outcome", "Progress", "Scheduler",
           "UP_TO_DATE", "RESTORED", "RAN", "FAILED", "SKIPPED"]
