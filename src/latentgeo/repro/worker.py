"""What a Dask worker does with one stage: run its command as ``dvc repro`` would, nothing else.

The worker never touches DVC's lock or cache (the client records every stage, in one process).
It runs the stage's command lines through the shell DVC would use, in the stage's working
directory, with the environment DVC gives a stage plus the thread caps of this cluster, and logs
to a file beside the repository (shared file system). When the command fails, or the client asks
everyone to stop, the command's process tree is ended and the stage's declared outputs are removed,
so nothing half-written survives.

This module imports nothing heavy: it is unpickled on every worker.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# Imported inside the functions that use them (heavy, or rarely needed): dask, distributed, dvc, psutil.

# Variables that bound a stage's thread pools: OpenMP (torch's intra-op pool, FAISS), MKL,
# OpenBLAS, numexpr. (Code that calls torch.set_num_threads itself overrides them.)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
# How often a worker looks at its command and at the stop event (seconds).
POLL_S = 0.25
# Grace between SIGTERM and SIGKILL for a stage's process tree (seconds).
TERMINATE_GRACE_S = 5.0


@dataclass(frozen=True)
class StageCommand:
    """One stage, as a worker needs it: plain data, pickled to the worker.

    ``outs`` are absolute paths of every declared output (removed when the stage fails);
    ``env`` is added to the worker's own environment (DVC_ROOT, DVC_STAGE, thread caps)."""

    name: str
    commands: tuple[str, ...]
    wdir: str
    outs: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    log_file: str | None = None
    gpu: bool = False
    stop_file: str | None = None  # on the shared file system: when it exists, end the command


@dataclass(frozen=True)
class StageResult:
    """What a worker reports: ``seconds`` of wall time; ``cpu_seconds``, user + system CPU time
    of the command's processes (see :func:`children_cpu_seconds`)."""

    name: str
    ok: bool
    seconds: float
    worker: str
    returncode: int | None = None
    log_tail: str = ""
    stopped: bool = False
    cpu_seconds: float | None = None


def children_cpu_seconds() -> float:
    """User + system CPU seconds of this process's ended children, and of theirs that were waited
    for (the shell, papermill, the notebook's kernel), so far. Its change over one stage is that
    stage's CPU time when the process runs one stage at a time, as every worker of
    `latentgeo repro` does (one thread each). Beside the wall time it tells computing from
    waiting: a one-thread stage whose CPU time falls short of its wall time waited for a core."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def thread_environment(threads: int) -> dict[str, str]:
    """The variables that cap a stage's thread pools at ``threads``."""
    if threads < 1:
        raise ValueError(f"threads must be ≥ 1, got {threads}")
    return {var: str(threads) for var in THREAD_VARIABLES}


def nanny_variables() -> tuple[str, ...]:
    """Variables a Dask nanny puts into its worker process (``distributed.nanny.pre-spawn-environ``:
    MALLOC_TRIM_THRESHOLD_=65536, OMP_NUM_THREADS=1, ...). They are Dask's choices for Dask's own
    work, not the stage's: a stage must see the environment `dvc repro` would give it."""
    try:
        import dask

        return tuple(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    except ImportError:
        return ()


def stage_environment(
    worker_env: dict[str, str], stage_env: dict[str, str], python_bin: str | None = None
) -> dict[str, str]:
    """The stage's environment: the worker's, minus the nanny's additions, plus ``stage_env``,
    with ``python_bin`` (default: the folder of the worker's own Python) first on PATH.

    (Left in, Dask's MALLOC_TRIM_THRESHOLD_ would override the notebook launcher's allocator
    settings, which only fill in unset variables: fine-tuning ~8 % slower. The PATH entry makes
    the stages' ``python -m latentgeo...`` the worker's interpreter, with the project installed,
    even when `latentgeo repro` was started as .venv/bin/latentgeo without activating .venv.)"""
    env = {k: v for k, v in worker_env.items() if k not in nanny_variables()}
    env.update(stage_env)
    python_bin = python_bin or os.path.dirname(sys.executable)
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p]
    if python_bin and (not path or path[0] != python_bin):
        env["PATH"] = os.pathsep.join([python_bin, *path])
    return env


def worker_slot(worker_name: object) -> int:
    """The index of a worker among its node's workers: LocalCluster names them 0, 1, …;
    dask-jobqueue ``<cluster>-<job>-<process>``; anything else is slot 0."""
    match = re.search(r"(\d+)$", str(worker_name))
    return int(match.group(1)) if match else 0


def shell_argv(command: str) -> list[str]:
    """The argv DVC uses for one command line: ``$SHELL -c`` (bash/zsh without rc files)."""
    try:
        from dvc.stage.run import _make_cmd, get_executable  # the exact rules of `dvc repro`

        return _make_cmd(get_executable(), command)
    except ImportError:  # a worker without DVC: POSIX shell
        return ["/bin/sh", "-c", command]


def remove_outputs(paths: tuple[str, ...] | list[str]) -> None:
    """Delete files and directories (missing ones are fine)."""
    for path in paths:
        p = Path(path)
        if p.is_symlink() or p.is_file():
            p.unlink()
        elif p.is_dir():
            shutil.rmtree(p, ignore_errors=True)


def _end_process_tree(proc: subprocess.Popen) -> None:
    """SIGTERM the command and every descendant (papermill's kernel lives in its own session),
    then SIGKILL what is left after the grace period."""
    import psutil

    try:
        parent = psutil.Process(proc.pid)
        procs = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        procs = []
    for p in procs:
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=TERMINATE_GRACE_S)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait()


def _log_tail(path: str | None, n_chars: int = 4000) -> str:
    if not path or not os.path.exists(path):
        return ""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - n_chars))
        return f.read().decode("utf-8", "replace")


def ignore_sigint() -> None:
    """Run in each local worker process: a terminal's Ctrl-C reaches the whole foreground process
    group, and a worker killed by it could not end its stage's processes (their own session) nor
    remove their outputs. The client handles Ctrl-C and tells the workers (stop file)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_stage_command(spec: StageCommand) -> StageResult:
    """Run ``spec``'s command lines in order; on failure or stop remove its outputs.

    Runs inside a Dask task (or directly, for tests). The process tree runs in its own session,
    so a terminal's Ctrl-C reaches the client, which asks workers to stop by creating
    ``spec.stop_file`` (the shared file system every worker sees: no extra channel to the
    scheduler that could itself be gone)."""
    start, cpu_start = time.monotonic(), children_cpu_seconds()
    worker_name = "local"
    try:
        from distributed import get_worker

        worker_name = str(get_worker().name)
    except (ImportError, ValueError):  # not on a Dask worker
        pass
    env = stage_environment(dict(os.environ), spec.env)
    if spec.gpu and "CUDA_VISIBLE_DEVICES" not in os.environ:
        # One GPU per GPU stage: this worker's slot among its node's workers.
        env["CUDA_VISIBLE_DEVICES"] = str(worker_slot(worker_name))
    log_path = spec.log_file
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    returncode: int | None = 0
    stopped = False
    with open(log_path or os.devnull, "wb") as log:
        for command in spec.commands:
            log.write(f"> {command}\n".encode())
            log.flush()
            proc = subprocess.Popen(shell_argv(command), cwd=spec.wdir, env=env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
            while proc.poll() is None:
                if spec.stop_file and os.path.exists(spec.stop_file):
                    _end_process_tree(proc)
                    stopped = True
                    break
                time.sleep(POLL_S)
            returncode = proc.returncode
            if stopped or returncode != 0:
                break
    ok = returncode == 0 and not stopped
    if not ok:
        remove_outputs(spec.outs)
    return StageResult(name=spec.name, ok=ok, seconds=time.monotonic() - start, worker=worker_name,
                       returncode=returncode, log_tail="" if ok else _log_tail(log_path),
                       stopped=stopped, cpu_seconds=children_cpu_seconds() - cpu_start)
