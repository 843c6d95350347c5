"""The quantizer-seed spread of the cell measures against their spread across models."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from latentgeo.analysis.seed_spread import COLUMNS, seed_spread_table
from latentgeo.errors import LatentgeoError


def _write(folder, model_id, alpha, patchiness, sd, point_dist_sd=None):
    record = {"model_id": model_id, "base_model": "m", "family": "perturbed" if alpha else "base",
              "kind": "perturbed", "alpha": alpha, "seed": 1}
    data = {"model": record, "inputs": {"quantizer_seeds": [1, 2, 3]},
            "pq": {"patchiness": patchiness, "point_dist": 2.0},
            "quantizer_seed_sd": {"pq": {"patchiness": sd, "point_dist": point_dist_sd}}}
    (folder / f"{model_id}.json").write_text(json.dumps(data))


def test_seed_sd_is_set_against_the_spread_across_models(tmp_path):
    values, sds = [1.0, 1.2, 1.6, 2.2], [0.01, 0.03, 0.02, 0.05]
    for i, (v, sd) in enumerate(zip(values, sds)):
        _write(tmp_path, f"m-a{i}-s1", float(i), v, sd)
    _write(tmp_path, "other-a0-s1", 0.0, 9.0, 9.0)  # another profile's leftover: not selected
    table = seed_spread_table(tmp_path, [f"m-a{i}-s1" for i in range(4)])
    assert list(table.columns) == list(COLUMNS) and list(table["measure"]) == ["pq_patchiness", "pq_point_dist"]
    row = table.iloc[0]
    between = float(np.std(values, ddof=1))  # plain reference
    assert row["models"] == 4
    assert row["median_seed_sd"] == pytest.approx(np.median(sds))
    assert row["max_seed_sd"] == pytest.approx(0.05)
    assert row["between_model_sd"] == pytest.approx(between)
    assert row["seed_to_model_ratio"] == pytest.approx(np.median(sds) / between)
    # point_dist: no seed defined its spread, and it does not vary across models: no ratio.
    dist = table.iloc[1]
    assert dist["models"] == 0 and math.isnan(dist["median_seed_sd"]) and math.isnan(dist["seed_to_model_ratio"])
    with pytest.raises(LatentgeoError, match="m-a9-s1"):
        seed_spread_table(tmp_path, ["m-a9-s1"])
