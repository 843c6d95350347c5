"""Shared test set-up: never touch the network, keep torch to the machine's cores, and run the
end-to-end tests' pipelines in the background while the rest of the suite runs."""

from __future__ import annotations

import os

# Set before transformers/datasets are imported anywhere: tests must never reach a hub.
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import signal
import subprocess
import threading
from pathlib import Path

import pytest

SMOKE, BRANCH = "smoke_repo", "smoke_branch_repo"  # the fixtures the background runs serve
TIMEOUT_S = 1200  # from the session's first test: the runs share the cores with the suite


def _needs(item: pytest.Item, *fixtures: str) -> bool:
    return any(name in getattr(item, "fixturenames", ()) for name in fixtures)


@pytest.hookimpl(trylast=True)  # after `-k`/`-m` have deselected: ``items`` is what will run
def pytest_collection_modifyitems(config, items):
    """The tests on the background runs' outputs run last, so that the suite's other tests run
    while the pipelines do (:class:`BackgroundRuns`). The sort is stable: every other order is kept.

    A test marked ``covered_by(name)`` is skipped, before its fixtures are set up, when the test
    ``name`` is in the same session: that one checks the same steps on real outputs. The marker is for
    pairs that need the same things: if that test then skips (a missing sshd), this one would have
    too, so the skip reason points to that test's result rather than claiming the steps ran.
    """
    items.sort(key=lambda item: _needs(item, SMOKE, BRANCH))
    selected = {item.originalname for item in items}
    for item in items:
        marker = item.get_closest_marker("covered_by")
        if marker is not None and marker.args[0] in selected:
            item.add_marker(pytest.mark.skip(reason=f"{marker.args[0]} is selected in this session and checks the "
                                                      "same steps: its own result (passed, or skipped and why) stands for this one"))


class BackgroundRuns:
    """On a background thread, one after the other, each in its own process group:

    1. ``smoke``: `make repro PROFILE=smoke` in a copy of the working tree, on another floating-point
       path than the committed smoke reference, as another machine would: ATen's scalar kernels
       (pipeline_utils.SMOKE_FLOAT_PATH) and one thread per stage on two worker processes, where
       the reference was made with the vectorised kernels by the sequential `dvc repro`, every core
       per stage (scripts/smoke_reference.py). Its closing `latentgeo verify` only reports
       (VERIFY=report); tests/test_verify.py judges it against the reference, so a stale reference
       fails that one test, not every e2e test.
    2. ``branch`` (when asked for): the plain sequential `dvc repro` of one model's branch of it
       (pipeline_utils.BRANCH_TARGETS) in a second copy, on the same path and thread count.

    The branch runs while the suite's last tests do: after the smoke run, one core would be idle.
    """

    def __init__(self, base: Path, *, branch: bool):
        from pipeline_utils import copy_worktree

        self.paths = {"smoke": copy_worktree(base / "repo"), "branch": base / "branch"}
        self.log = base / "runs.log"
        self._done = {step: threading.Event() for step in (["smoke", "branch"] if branch else ["smoke"])}
        self._errors: dict[str, str] = {}
        self._proc: subprocess.Popen | None = None
        self._stopping = False
        self._starting = threading.Lock()  # stop() never misses a command being started
        self._thread = threading.Thread(target=self._run, name="background-runs", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from pipeline_utils import (BRANCH_TARGETS, SMOKE_FLOAT_PATH, VENV, env, prepare_sequential_branch,
                                    sequential_branch_environment)

        try:
            self._command("smoke", ["make", "repro", "PROFILE=smoke", f"VENV={VENV}", "SKIP_INSTALL=1",
                                    "VERIFY=report"], {**env(), **SMOKE_FLOAT_PATH})
            if "branch" in self._done:
                if "smoke" in self._errors:
                    raise RuntimeError("the smoke pipeline failed, so its branch was not run")
                self.paths["branch"] = prepare_sequential_branch(self.paths["smoke"], self.paths["branch"])
                self._command("branch", [str(VENV / "bin" / "dvc"), "repro", *BRANCH_TARGETS],
                              {**env(), **sequential_branch_environment()})
        except Exception as err:  # noqa: BLE001 - reported by wait() to the tests that need it
            for step, done in self._done.items():
                if not done.is_set():
                    self._errors.setdefault(step, f"{type(err).__name__}: {err}")
        finally:
            for event in self._done.values():
                event.set()

    def _command(self, step: str, cmd: list[str], environ: dict[str, str]) -> None:
        with open(self.log, "ab") as out:
            out.write(f"\n=== {step}: {' '.join(cmd)}\n".encode())
            out.flush()
            with self._starting:
                if self._stopping:
                    raise RuntimeError("stopped")
                self._proc = subprocess.Popen(cmd, cwd=self.paths[step], env=environ, stdout=out,
                                              stderr=subprocess.STDOUT, start_new_session=True)
            code = self._proc.wait()
        if code != 0:
            self._errors[step] = f"{' '.join(cmd)} exited {code}"
        self._done[step].set()

    def wait(self, step: str, timeout: float) -> Path:
        """The repository of ``step`` once it has succeeded; an AssertionError with the log's tail if not."""
        if not self._done[step].wait(timeout):
            self.stop()
            raise AssertionError(f"the background {step} run ran past {timeout:.0f} s\n{self._tail()}")
        if step in self._errors:
            raise AssertionError(f"the background {step} run failed: {self._errors[step]}\n{self._tail()}")
        return self.paths[step]

    def stop(self) -> None:
        """End the run in progress and everything it started; start no other."""
        with self._starting:
            self._stopping = True
            proc = self._proc
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._thread.join(timeout=60)

    def _tail(self, chars: int = 8000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@pytest.fixture(scope="session", autouse=True)
def _background_runs(request, tmp_path_factory):
    """Starts the background runs with the session's first test when any selected test needs them
    (None otherwise); stops them at the session's end if they are still running (an early exit)."""
    items = request.session.items
    if not any(_needs(item, SMOKE, BRANCH) for item in items):
        yield None
        return
    runs = BackgroundRuns(tmp_path_factory.mktemp("smoke"), branch=any(_needs(item, BRANCH) for item in items))
    try:
        yield runs
    finally:
        runs.stop()


@pytest.fixture(scope="session")
def smoke_repo(_background_runs):
    """A copy of the working tree after `make repro PROFILE=smoke` (shared by the e2e tests; see
    :class:`BackgroundRuns` for the floating-point path it runs on)."""
    return _background_runs.wait("smoke", TIMEOUT_S)


@pytest.fixture(scope="session")
def smoke_branch_repo(_background_runs, smoke_repo):
    """A second copy after the plain sequential `dvc repro` of pipeline_utils.BRANCH_TARGETS."""
    return _background_runs.wait("branch", TIMEOUT_S)
