"""The stitching figures (latentgeo.translation.figures)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from latentgeo.translation import figures
from latentgeo.translation.figures import plot_heatmaps
from latentgeo.translation.methods import METHOD_LABELS


def test_heatmap_panels_say_how_each_method_is_fitted(monkeypatch, tmp_path):
    """affine (closed form) and affine-sgd (the library's Adam) must be told apart in the figures;
    the title names the suite and profile that made it."""
    rng = np.random.default_rng(4)
    grid = pd.DataFrame([
        {"source": s, "target": t, "method": m, "preprocess": "standard", "mse_rel_mean": rng.uniform()}
        for s, t in [("a", "b"), ("b", "a")] for m in ("affine", "affine-sgd", "affine-ridge")
    ])
    titles, suptitles = [], []

    def capture(fig, path):
        titles.extend(ax.get_title() for ax in fig.axes)
        suptitles.append(fig._suptitle.get_text())
        return path

    monkeypatch.setattr(figures, "save_figure", capture)
    plot_heatmaps(grid, "mse_rel_mean", "MSE ratio", tmp_path / "x.png", suite="offline", profile="test", note="n")
    wanted = {f"{METHOD_LABELS[m]} · standard" for m in ("affine", "affine-sgd", "affine-ridge")}
    assert {t for t in titles if t} >= wanted
    assert "Adam" in METHOD_LABELS["affine-sgd"] and "LS" in METHOD_LABELS["affine"]
    assert "offline" in suptitles[0] and "test" in suptitles[0]
