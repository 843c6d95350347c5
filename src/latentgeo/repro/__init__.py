"""``latentgeo repro``: the DVC pipeline's stale stages on a Dask cluster, recorded by DVC.

DVC decides (its stage graph, its staleness test, its run-cache) and records (dvc.lock, cache) in
this process; Dask workers only run stage commands. Afterwards ``dvc status`` is clean and
``dvc repro`` has nothing to do, exactly as after a sequential ``dvc repro``. See docs/cluster.md.

    from latentgeo.repro import reproduce
    outcome = reproduce(["finetune"], workers=2)
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from latentgeo.config.schema import ClusterParams, load_params
from latentgeo.errors import LatentgeoError
from latentgeo.repro.cluster import (
    ClusterChoice,
    check_submit_command,
    open_client,
    resolve_cluster,
    usable_gpu_groups,
)
from latentgeo.repro.pipeline import lock_entry_names, make_plan, open_repo, orphan_lock_entries, remove_lock_entries
from latentgeo.repro.schedule import FAILED, RAN, RESTORED, SKIPPED, UP_TO_DATE, Outcome, Progress, Scheduler
from latentgeo.repro.worker import run_stage_command

# Imported inside the functions that use them (heavy, or rarely needed): distributed, dvc.

__all__ = ["reproduce", "cluster_section", "Outcome", "UP_TO_DATE", "RESTORED", "RAN", "FAILED", "SKIPPED"]


def cluster_section(params_file: str | os.PathLike):
    """The ``cluster:`` section of a profile (defaults when the file has none). The whole profile is
    validated, so an invalid section is refused with the key, value and what is allowed."""
    path = Path(params_file)
    if not path.is_file():
        return ClusterParams()
    return load_params(path).cluster


class _LazyClient:
    """Starts the cluster at the first stage that needs a worker, so a run with nothing stale
    costs no cluster start; an address is contacted up front (a dead one is refused at once)."""

    def __init__(self, choice: ClusterChoice, connect_timeout: float):
        self.choice, self.connect_timeout = choice, connect_timeout
        self.client = self.cluster = None
        if choice.kind == "address":
            self._open()
        elif choice.kind != "local":
            check_submit_command(choice.kind)  # before any stage runs

    def _open(self):
        if self.client is None:
            self.client, self.cluster = open_client(self.choice, connect_timeout=self.connect_timeout)
        return self.client

    def submit(self, spec, resources):
        return self._open().submit(run_stage_command, spec, pure=False, resources=resources,
                                   key=f"stage-{spec.name}-{uuid.uuid4().hex[:8]}")

    def capacity(self) -> int:
        """Stages that may run at once: the worker threads the scheduler knows now."""
        return sum(self._open().nthreads().values())

    def wait_any(self, futures, timeout: float = 1.0):
        from distributed import wait

        try:  # `wait` uses the default client: ours (set_as_default in open_client)
            done, _ = wait(futures, timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return set()
        return done

    def close(self):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def reproduce(targets: list[str] | None = None, *, root: str | os.PathLike = ".",
              cluster: str | None = None, workers: int | None = None, threads: int | None = None,
              params_file: str | os.PathLike | None = None, connect_timeout: float = 20.0,
              progress_stream=None, prune_lock: bool = False) -> Outcome:
    """Bring ``targets`` (default: all of dvc.yaml) up to date on a Dask cluster.

    Input is checked before any stage runs: ``workers`` ≥ 1, the profile's ``cluster:`` section,
    the targets (DVC must know them), a scheduler address (it must answer within
    ``connect_timeout`` s). Returns what happened to each stage; failures do not raise. After a
    successful run of the whole pipeline (no targets), the outcome lists the dvc.lock entries of
    stages that dvc.yaml no longer defines (:func:`~latentgeo.repro.pipeline.orphan_lock_entries`),
    which DVC keeps; with ``prune_lock`` they are removed."""
    root = Path(root)
    section = cluster_section(params_file or root / "params.yaml")
    choice = usable_gpu_groups(resolve_cluster(section, cluster=cluster, workers=workers, threads=threads))
    # DVC resolves targets (and the default dvc.yaml) against the working directory.
    with contextlib.chdir(root):
        return _reproduce_here(list(targets or []), choice, connect_timeout, progress_stream, prune_lock)


def _reproduce_here(targets: list[str], choice: ClusterChoice, connect_timeout: float,
                    progress_stream, prune_lock: bool) -> Outcome:
    from dvc.lock import LockError
    from dvc.repo import lock_repo

    repo = open_repo(".")
    # Ctrl-C creates this file; workers poll it (shared file system) and end their commands.
    stop_file = os.path.join(repo.root_dir, ".dvc", "tmp", "repro", f"stop-{uuid.uuid4().hex}")
    try:
        with lock_repo(repo), repo.scm_context(quiet=True):
            plan = make_plan(repo, targets)
            runner = _LazyClient(choice, connect_timeout)
            try:
                progress = Progress(len(plan.stages), stream=progress_stream)
                progress.line(f"{len(plan.stages)} stage(s) to check; {choice.describe()}")
                scheduler = Scheduler(repo, plan, submit=runner.submit, wait_any=runner.wait_any,
                                      capacity=runner.capacity, threads=choice.threads,
                                      gpu_groups=choice.gpu_groups, progress=progress, stop_file=stop_file)
                outcome = scheduler.run()
                if not targets and outcome.ok:  # the whole pipeline is as dvc.yaml says
                    orphans = orphan_lock_entries(repo)
                    outcome.orphans = lock_entry_names(repo, orphans)
                    if prune_lock and orphans:
                        remove_lock_entries(repo, orphans)
                        outcome.pruned = True
                return outcome
            finally:
                runner.close()
    except LockError as err:
        raise LatentgeoError(f"the DVC repository is locked by another process ({err})") from None
    finally:
        repo.close()
