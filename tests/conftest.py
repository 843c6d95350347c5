"""Shared test set-up: never touch the network, keep torch to the machine's cores."""

from __future__ import annotations

import os

# Set before transformers/datasets are imported anywhere: tests must never reach a hub.
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


import pytest


@pytest.fixture(scope="session")
def smoke_repo(tmp_path_factory):
    """A copy of the working tree after `make repro PROFILE=smoke` (shared by the e2e tests).

    It runs on another floating-point path than the committed smoke reference, as another machine
    would: ATen's scalar kernels (pipeline_utils.SMOKE_FLOAT_PATH) and one thread per stage on two
    worker processes, where the reference was made with the vectorised kernels by the sequential
    `dvc repro`, every core per stage (scripts/smoke_reference.py). Its closing `latentgeo verify`
    only reports (VERIFY=report); tests/test_verify.py judges it against the reference, so a stale
    reference fails that one test, not every e2e test."""
    from pipeline_utils import SMOKE_FLOAT_PATH, VENV, copy_worktree, run

    repo = copy_worktree(tmp_path_factory.mktemp("smoke") / "repo")
    run(repo, "make", "repro", "PROFILE=smoke", f"VENV={VENV}", "SKIP_INSTALL=1", "VERIFY=report",
        timeout=900, extra_env=SMOKE_FLOAT_PATH)
    return repo
