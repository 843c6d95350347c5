"""Shared test set-up: never touch the network, keep torch to the machine's cores, and run the
smoke pipeline of the end-to-end tests in the background while the rest of the suite runs."""

from __future__ import annotations

import os

# Set before transformers/datasets are imported anywhere: tests must never reach a hub.
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import signal
import subprocess
from pathlib import Path

import pytest

SMOKE_FIXTURE = "smoke_repo"
SMOKE_TIMEOUT_S = 1200  # from the session's first test: the run shares the cores with the suite


def _needs_smoke(item: pytest.Item) -> bool:
    return SMOKE_FIXTURE in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config, items):
    """The tests on the smoke pipeline's outputs run last, so that the suite's other tests run
    while the pipeline does (:func:`_smoke_run`). The sort is stable: every other order is kept."""
    items.sort(key=_needs_smoke)


class BackgroundSmokeRun:
    """`make repro PROFILE=smoke` in a copy of the working tree, in its own process group.

    It runs on another floating-point path than the committed smoke reference, as another machine
    would: ATen's scalar kernels (pipeline_utils.SMOKE_FLOAT_PATH) and one thread per stage on two
    worker processes, where the reference was made with the vectorised kernels by the sequential
    `dvc repro`, every core per stage (scripts/smoke_reference.py). Its closing `latentgeo verify`
    only reports (VERIFY=report); tests/test_verify.py judges it against the reference, so a stale
    reference fails that one test, not every e2e test."""

    def __init__(self, repo: Path, log: Path):
        from pipeline_utils import SMOKE_FLOAT_PATH, VENV, env

        self.repo, self.log = repo, log
        with open(log, "wb") as out:
            self._proc = subprocess.Popen(
                ["make", "repro", "PROFILE=smoke", f"VENV={VENV}", "SKIP_INSTALL=1", "VERIFY=report"],
                cwd=repo, env={**env(), **SMOKE_FLOAT_PATH}, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # one group: stop() ends make, the runner and its stages
            )

    def wait(self, timeout: float) -> Path:
        """The repository once the run has succeeded; an AssertionError with the log's tail if not."""
        try:
            code = self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"the smoke pipeline ran past {timeout:.0f} s\n{self._tail()}") from None
        if code != 0:
            raise AssertionError(f"make repro PROFILE=smoke exited {code}\n{self._tail()}")
        return self.repo

    def stop(self) -> None:
        """End the run and everything it started, if it is still running."""
        if self._proc.poll() is not None:
            return
        os.killpg(self._proc.pid, signal.SIGTERM)
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()

    def _tail(self, chars: int = 8000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@pytest.fixture(scope="session", autouse=True)
def _smoke_run(request, tmp_path_factory):
    """Starts the smoke pipeline with the session's first test when any selected test needs it
    (None otherwise); stops it at the session's end if it is still running (an early exit)."""
    if not any(_needs_smoke(item) for item in request.session.items):
        yield None
        return
    from pipeline_utils import copy_worktree

    base = tmp_path_factory.mktemp("smoke")
    run = BackgroundSmokeRun(copy_worktree(base / "repo"), base / "make-repro.log")
    try:
        yield run
    finally:
        run.stop()


@pytest.fixture(scope="session")
def smoke_repo(_smoke_run):
    """A copy of the working tree after `make repro PROFILE=smoke` (shared by the e2e tests; see
    :class:`BackgroundSmokeRun` for the floating-point path it runs on)."""
    return _smoke_run.wait(SMOKE_TIMEOUT_S)
