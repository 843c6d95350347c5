"""The stitching experiments (latentgeo.translation.experiments) on small synthetic encoders."""

from __future__ import annotations

import numpy as np
import pandas as pd

from latentgeo.translation import experiments
from latentgeo.translation.experiments import anchor_sweep, stitching_grid, summarise
from latentgeo.translation.stitch import stitch
from latentgeo.translation.methods import METHOD_FITS


def method_grid(seed: int = 4) -> pd.DataFrame:
    """A grid of two pairs × the three affine methods, random metric values."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame([
        {"source": s, "target": t, "method": m, "preprocess": "standard", "mse_rel_mean": rng.uniform(),
         "stitched_accuracy": rng.uniform()}
        for s, t in [("a", "b"), ("b", "a")] for m in ("affine", "affine-sgd", "affine-ridge")
    ])


def test_anchor_sweep_reuses_the_grid_fits_at_its_largest_count(monkeypatch):
    """The sweep's largest count with the grid's anchors is the grid's own fit: taken from it, the
    sweep is the same table as fitted from scratch with half the fits; a grid of other counts is
    not used."""
    rng = np.random.default_rng(3)
    labels = np.arange(80) % 3
    base = rng.normal(size=(80, 6)) + labels[:, None]
    vectors = {"a": base @ rng.normal(size=(6, 5)), "b": np.tanh(base @ rng.normal(size=(6, 4))),
               "c": base + 0.3 * rng.normal(size=(80, 6))}
    methods, counts = ["ortho", "affine", "affine-ridge"], [20, 40]
    grid = stitching_grid(vectors, labels, methods, ["standard", "l2"], 40, 0, progress=False)
    other = stitching_grid(vectors, labels, methods, ["l2"], 30, 0, progress=False)

    fits = []

    def counted(*args, **kwargs):
        fits.append(args[2])  # n_anchors
        return stitch(*args, **kwargs)

    monkeypatch.setattr(experiments, "stitch", counted)
    fitted = anchor_sweep(vectors, labels, methods, "l2", counts, 0, progress=False)
    assert len(fitted) == len(fits) == 2 * 6 * 3 and list(fitted["n_anchors"].unique()) == [20, 40]
    fits.clear()
    reused = anchor_sweep(vectors, labels, methods, "l2", counts, 0, grid=grid, progress=False)
    pd.testing.assert_frame_equal(reused, fitted)
    assert fits == [20] * 18
    fits.clear()
    pd.testing.assert_frame_equal(
        anchor_sweep(vectors, labels, methods, "l2", counts, 0, grid=other, progress=False), fitted)
    assert len(fits) == 36


def test_summary_says_how_each_method_is_fitted():
    grid = method_grid()
    summary = summarise(grid)
    assert dict(zip(summary["method"], summary["fitted_by"])) == {
        m: METHOD_FITS[m] for m in ("affine", "affine-sgd", "affine-ridge")
    }
