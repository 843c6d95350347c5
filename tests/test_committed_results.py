"""The committed per-model results are exactly the committed profile's.

The stages that read ``results/measures`` and ``results/finetune`` take only the active profile's
models and ignore other files there (switching profiles leaves them behind), so results of a
profile that no longer exists would sit in the repository unread by any stage and mislead whoever
browses ``results/``. Files are listed from git, so a local run of another profile does not count.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"not a git checkout with history: {result.stderr.strip()}")
    return result.stdout


@pytest.fixture(scope="module")
def committed_profile() -> dict:
    return yaml.safe_load(git("show", "HEAD:params.yaml"))


def tracked(folder: str) -> set[str]:
    """Paths under ``folder`` that git tracks, relative to it."""
    return {line.removeprefix(f"{folder}/") for line in git("ls-files", folder).splitlines()}


def test_one_measures_file_per_model_and_nothing_else(committed_profile):
    expected = {f"{model}.json" for model in committed_profile["members"]}
    assert tracked("results/measures") == expected


def test_one_scores_file_per_model_and_task_and_nothing_else(committed_profile):
    tasks = committed_profile["finetune"]["tasks"]
    expected = {f"{model}/{task}.json" for model in committed_profile["members"] for task in tasks}
    assert tracked("results/finetune") == expected
