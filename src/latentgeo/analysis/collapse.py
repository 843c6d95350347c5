"""A collapse diagnostic: how many of a model's token vectors are distinct.

A collapsed model maps many tokens to the same vector (the paper's "shuffled embeddings" model
keeps about half its input rows distinct; heavy noise can make whole layers constant). Every
measure of such a sample is computed on duplicates: cells with one repeated point, a covariance
of lower rank. The measures stage counts the distinct rows of each sample (``inputs.distinct_vectors``
of its record, the rows ``point_dist`` deduplicates); :func:`collapse_table` lists them per model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd

from latentgeo.analysis.table import read_measure_results, select_models
from latentgeo.errors import LatentgeoError

COLUMNS = ("model", "base_model", "family", "alpha", "seed", "n_vectors", "distinct_vectors", "distinct_fraction")


def collapse_table(measures_dir: str | os.PathLike, model_ids: Sequence[str]) -> pd.DataFrame:
    """One row per model of ``model_ids`` (their measures files under ``measures_dir``, found as
    the results table finds them), in that order: its sample size, its distinct token vectors and
    their fraction (1: no two vectors equal)."""
    entries = select_models(read_measure_results(measures_dir), model_ids, "measures")
    rows = []
    for model_id in model_ids:
        path, data = entries[model_id]["source"], entries[model_id]["data"]
        inputs, model = data.get("inputs", {}), data.get("model", {})
        if "distinct_vectors" not in inputs or "n" not in inputs:
            raise LatentgeoError(f"{path}: inputs.n / inputs.distinct_vectors missing (rerun the measures stage)")
        n, distinct = int(inputs["n"]), int(inputs["distinct_vectors"])
        alpha = model.get("alpha")
        rows.append({
            "model": model_id,
            "base_model": model.get("base_model"),
            "family": model.get("family"),
            "alpha": float("nan") if alpha is None else float(alpha),
            "seed": model.get("seed"),
            "n_vectors": n,
            "distinct_vectors": distinct,
            "distinct_fraction": distinct / n,
        })
    return pd.DataFrame(rows, columns=list(COLUMNS))
