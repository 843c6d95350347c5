"""Helpers for the end-to-end tests: a throw-away copy of the working tree that runs the pipeline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)
# The test suite's smoke runs take another floating-point path than the committed smoke reference
# (made by scripts/smoke_reference.py with ATen's vectorised kernels), as another machine would:
# ATen's scalar kernels change the last bits of every token vector. Every smoke run of the suite
# uses it, so the parallel and the sequential run stay comparable byte for byte.
SMOKE_FLOAT_PATH = {"ATEN_CPU_CAPABILITY": "default"}
# One model's branch of the smoke pipeline, which the suite also runs with the plain sequential
# `dvc repro` (tests/test_repro.py compares the two runs): the base model's, whose measures need no
# other model's token vectors (a perturbed model measures its stitchability onto the base's), so
# the branch is four stages: perturb, embed, measures and one fine-tuning cell.
BRANCH_MODEL, BRANCH_TASK = "minilm-l6-a0-s1", "bbc-topic"
BRANCH_TARGETS = (f"measures@{BRANCH_MODEL}", f"finetune@{BRANCH_MODEL}-{BRANCH_TASK}")


def tracked_files(root: Path = ROOT) -> list[str]:
    """Files git would hand a fresh clone: tracked ones plus new files not ignored."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=root, capture_output=True, text=True, check=True).stdout
    return sorted({f for f in out.split("\0") if f and (root / f).is_file()})


def copy_worktree(dest: Path) -> Path:
    """Copy the working tree (as a clone would see it, uncommitted edits included) and commit it."""
    for rel in tracked_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "-c", "user.email=test@example.invalid", "-c", "user.name=test", "commit", "-qm", "snapshot")
    return dest


def git(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PATH"] = f"{VENV / 'bin'}:{e['PATH']}"
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        e[var] = "1"
    e["DVC_NO_ANALYTICS"] = "1"
    e.setdefault("LATENTGEO_CACHE", str(Path.home() / ".cache" / "latentgeo"))
    return e


def run(cwd: Path, *cmd: str, timeout: float = 600, check: bool = True,
        extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), cwd=cwd, env={**env(), **(extra_env or {})}, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}"
                             f"\n--- stderr\n{proc.stderr[-6000:]}")
    return proc


def dvc(cwd: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return run(cwd, str(VENV / "bin" / "python"), "-m", "dvc", *args, **kw)


def prepare_sequential_branch(smoke_repo: Path, dest: Path) -> Path:
    """A fresh copy of the working tree, ready for the sequential `dvc repro` of the branch: the
    smoke profile, ``smoke_repo``'s data/ (built there by `latentgeo data get`; test_data checks
    the build is byte-identical: copied, not built again), and no dvc.lock (the committed one is
    the default study's; without it, the new one lists exactly the stages the run made)."""
    repo = copy_worktree(dest)
    (repo / "dvc.lock").unlink(missing_ok=True)
    run(repo, str(VENV / "bin" / "latentgeo"), "params", "use", "smoke")
    shutil.copytree(smoke_repo / "data", repo / "data")
    return repo


def sequential_branch_environment() -> dict[str, str]:
    """What the branch's `dvc repro` runs under beside :func:`env`: the smoke run's floating-point
    path and the thread count each of its stages had on `latentgeo repro`'s workers (fine-tuning
    losses differ in the 7th digit between 1 and 2 torch threads, so the modes are compared at
    equal threads)."""
    from latentgeo.config.schema import ClusterParams
    from latentgeo.repro.cluster import resolve_cluster
    from latentgeo.repro.worker import thread_environment

    return {**SMOKE_FLOAT_PATH, **thread_environment(resolve_cluster(ClusterParams()).threads)}
