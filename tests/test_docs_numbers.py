"""The README's numbers, and docs/results.md's per-measure table, are the committed study's: each
quoted value is read from the result file that `latentgeo verify` judges
(results/regression.json), at the precision the document prints.

When a rerun changes the committed results, this fails until the documents say what they say now.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from latentgeo.analysis.regression import holm_survivors

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


@pytest.fixture(scope="module")
def regression() -> dict:
    path = ROOT / "results" / "regression.json"
    if not path.is_file():
        pytest.skip("results/regression.json is not in this checkout")
    return json.loads(path.read_text())


def quoted(pattern: str) -> str:
    """The one group of ``pattern`` in the README (whitespace in the pattern matches line breaks)."""
    match = re.search(pattern.replace(" ", r"\s+"), README)
    assert match, f"the README no longer says {pattern!r}"
    return match.group(1)


def test_variance_explained_by_the_noise_level(regression):
    assert quoted(r"log\(1 \+ α\) alone explains R² = ([0-9.]+)") == f"{regression['controls']['r2']:.2f}"


def test_how_many_measures_keep_a_partial_r_that_survives_holm(regression):
    words = {"six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
    n_measures = int(quoted(r"Of (\d+) measures,"))
    survivors = words[quoted(r"measures, (\w+) keep a partial r")]
    assert n_measures == len(regression["measures"])
    assert survivors == len(holm_survivors(regression))


@pytest.mark.parametrize("phrase, measure", [
    (r"product-quantizer patchiness ([+−-][0-9.]+)", "pq_patchiness"),
    (r"IsoScore ([+−-][0-9.]+), …", "spread_isoscore"),
])
def test_partial_r_of_the_strongest_measures(regression, phrase, measure):
    assert measure in holm_survivors(regression)
    assert float(quoted(phrase).replace("−", "-")) == pytest.approx(regression["measures"][measure]["partial_r"], abs=0.005)


def test_only_isoscore_transfers_between_families(regression):
    """Of the Holm survivors, only IsoScore predicts the left-out family clearly better than the
    noise level alone: at least 10 % lower RMSE (lsq_under_mu's 5 % is well inside the
    leave-one-family-out tolerance of tolerances/default.yaml)."""
    lofo = regression["leave_one_family_out"]
    baseline = lofo["baseline"]["rmse"]
    transfer = {name for name in holm_survivors(regression) if lofo["measures"][name]["rmse"] < 0.9 * baseline}
    assert transfer == {"spread_isoscore"}
    assert quoted(r"better than α alone \(RMSE ([0-9.]+) vs") == f"{lofo['measures']['spread_isoscore']['rmse']:.3f}"
    assert quoted(r"better than α alone \(RMSE [0-9.]+ vs ([0-9.]+);") == f"{baseline:.3f}"
    closer = quoted(r"vs [0-9.]+; closer for (\d+) of \d+ models\)")
    assert int(closer) == lofo["measures"]["spread_isoscore"]["better"]
    assert int(quoted(r"closer for \d+ of (\d+) models\)")) == lofo["measures"]["spread_isoscore"]["n"]


def results_table_rows() -> dict[str, list[str]]:
    """docs/results.md's per-measure table: the cells of each row, keyed by its first `name`."""
    lines = (ROOT / "docs" / "results.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| measure | r | 95 % CI |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("| `"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[re.match(r"`([a-z0-9_]+)`", cells[0]).group(1)] = dict(zip(header, cells, strict=True))
    return rows


def test_the_results_tables_leave_one_family_out_columns(regression):
    """Every row's left-out RMSE and its count of models predicted closer than α alone."""
    rows = results_table_rows()
    assert len(rows) >= 10
    lofo = regression["leave_one_family_out"]
    for name, cells in rows.items():
        fit = lofo["measures"][name]
        rmse_col = next(c for c in cells if c.startswith("leave-one-family-out RMSE"))
        assert cells[rmse_col].strip("*") == f"{fit['rmse']:.3f}", name
        closer_col = next(c for c in cells if c.startswith("left-out models closer"))
        assert f"of {fit['n']})" in closer_col
        assert int(cells[closer_col]) == fit["better"], name


def test_the_papers_headline_measure(regression):
    fit = regression["measures"]["lsq_patchiness"]
    assert quoted(r"additive-quantizer patchiness \(r = \+([0-9.]+)\)") == f"{fit['r']:.2f}"
    assert quoted(r"has partial r \+([0-9.]+):") == f"{fit['partial_r']:.2f}"
