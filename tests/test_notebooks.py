"""Notebook conventions: one `parameters` cell, no outputs, the python3 kernel, thin cells."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
STAGES = ["01_perturb", "02_finetune", "03_embed", "04_measures", "05_measures_family", "06_stitching",
          "07_regression", "08_paper_reanalysis"]


def test_one_notebook_per_stage():
    assert [p.stem for p in NOTEBOOKS] == STAGES


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_conventions(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert tagged[0].cell_type == "code"
    assert "params_file" in tagged[0].source
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "strip outputs"
            assert "sys.path" not in cell.source and "os.chdir" not in cell.source
    assert nb.cells[0].cell_type == "markdown", "open with a heading that says what the stage does"
    assert any("load_params(params_file)" in c.source for c in nb.cells if c.cell_type == "code")


def test_contributors_strip_outputs():
    assert "nbstripout" in (ROOT / ".pre-commit-config.yaml").read_text()
    assert "*.ipynb filter=nbstripout" in (ROOT / ".gitattributes").read_text()
