"""How far the quantizer's random start moves each cell measure, against how far models differ.

k-means (PQ) and LSQ start from random codebooks, and a cell measure such as patchiness moves
with that start alone. With ``measures.quantizer_seeds`` > 1 every measures file holds, beside the
mean over the seeds, its standard deviation (``quantizer_seed_sd``). :func:`seed_spread_table`
sets the typical seed SD of each cell measure against the SD of that measure across the profile's
models: a ratio near 1 means a model's value is mostly the quantizer's luck.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from latentgeo.analysis.table import read_measure_results, select_models

COLUMNS = ("measure", "models", "median_seed_sd", "max_seed_sd", "between_model_sd", "seed_to_model_ratio")


def seed_spread_table(measures_dir: str | os.PathLike, model_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per cell measure that has a seed spread (``<quantizer>_<name>``), sorted by name:
    over the models (``model_ids``, or every file under ``measures_dir``), the median and largest
    SD over quantizer seeds, the SD of the (seed-mean) measure across models (ddof = 1), and the
    ratio of the median seed SD to that. Empty (columns only) when every sample used one seed.
    """
    entries = read_measure_results(measures_dir)
    if model_ids is not None:
        entries = select_models(entries, model_ids, "measures")
    names = sorted({n for e in entries.values() for n in e["seed_sd"]})
    rows = []
    for name in names:
        sds = np.array([e["seed_sd"].get(name, math.nan) for e in entries.values()], dtype=float)
        values = np.array([e["measures"].get(name, math.nan) for e in entries.values()], dtype=float)
        sds, values = sds[np.isfinite(sds)], values[np.isfinite(values)]
        between = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
        median = float(np.median(sds)) if len(sds) else math.nan
        rows.append({
            "measure": name,
            "models": len(sds),
            "median_seed_sd": median,
            "max_seed_sd": float(np.max(sds)) if len(sds) else math.nan,
            "between_model_sd": between,
            "seed_to_model_ratio": median / between if between > 0 else math.nan,
        })
    return pd.DataFrame(rows, columns=list(COLUMNS))
