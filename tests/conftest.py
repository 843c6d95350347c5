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
    """A copy of the working tree after `make repro PROFILE=smoke` (shared by the e2e tests)."""
    from pipeline_utils import VENV, copy_worktree, run

    repo = copy_worktree(tmp_path_factory.mktemp("smoke") / "repo")
    run(repo, "make", "repro", "PROFILE=smoke", f"VENV={VENV}", "SKIP_INSTALL=1", timeout=900)
    return repo
