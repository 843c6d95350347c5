"""End to end: the real dvc.yaml and notebooks on the smoke profile, in a copy of the tree.

This is `make repro PROFILE=smoke` from a fresh checkout (the environment is the one running the
tests, handed over with VENV=, so nothing is installed twice). Takes a few minutes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipeline_utils import VENV, dvc, run

pytestmark = [pytest.mark.pipeline, pytest.mark.slow]

FIGURES = ["score_vs_alpha.png", "measures_vs_alpha.png", "score_vs_top_measures.png", "pearson_r.png"]


def test_smoke_pipeline_outputs(smoke_repo: Path):
    repo = smoke_repo
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["profile"] == "smoke"
    for name in FIGURES:
        assert (repo / "figures" / name).stat().st_size > 1000, name
    assert list((repo / "figures").glob("stitching_*.png"))
    table = (repo / "results" / "table.csv").read_text().splitlines()
    n_models = len(params["members"])
    assert len(table) == 1 + n_models
    header = table[0].split(",")
    assert {"model", "family", "alpha", "seed", "score_average", "lsq_patchiness"} <= set(header)
    # The family view of stage 4: the same models, their measures only.
    family = (repo / "results" / "measures_family.csv").read_text().splitlines()
    assert len(family) == 1 + n_models and "score_average" not in family[0]
    assert [r.split(",")[0] for r in family[1:]] == [r.split(",")[0] for r in table[1:]]
    regression = json.loads((repo / "results" / "regression.json").read_text())
    assert regression
    for stage in ("perturb", "embed", "measures", "finetune"):
        assert list((repo / "executed").rglob("*.ipynb")), stage


def test_smoke_pipeline_is_clean_and_idempotent(smoke_repo: Path):
    status = dvc(smoke_repo, "status")
    assert "up to date" in status.stdout, status.stdout
    # How long the no-op takes is measured by bench/noop_repro.py, not asserted here.
    again = dvc(smoke_repo, "repro")
    assert "Running stage" not in again.stdout, again.stdout


def test_changing_a_regression_parameter_reruns_only_regression(smoke_repo: Path):
    params_file = smoke_repo / "params.yaml"
    original = params_file.read_text()
    try:
        params_file.write_text(original.replace("top_measures: 4", "top_measures: 3"))
        assert params_file.read_text() != original
        changed = dvc(smoke_repo, "status", "--json")
        stages = set(json.loads(changed.stdout))
        assert stages == {"regression"}, stages
    finally:
        params_file.write_text(original)


def test_params_use_refuses_unknown_profile(smoke_repo: Path):
    proc = run(smoke_repo, str(VENV / "bin" / "latentgeo"), "params", "use", "nope", check=False)
    assert proc.returncode == 2 and "unknown profile" in proc.stderr
