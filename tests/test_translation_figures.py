"""The stitching figures (latentgeo.translation.figures)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

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
    fig = _drawn(monkeypatch, plot_heatmaps, grid, "mse_rel_mean", "MSE ratio", tmp_path / "x.png",
                 suite="offline", profile="test", note="n")
    wanted = {f"{METHOD_LABELS[m]} · standard" for m in ("affine", "affine-sgd", "affine-ridge")}
    assert {ax.get_title() for ax in fig.axes if ax.get_title()} >= wanted
    assert "Adam" in METHOD_LABELS["affine-sgd"] and "LS" in METHOD_LABELS["affine"]
    assert "offline" in fig._suptitle.get_text() and "test" in fig._suptitle.get_text()


def _grid(methods, preps, encoders=("minilm-l6", "paraphrase-minilm-l3", "mpnet-base", "wordllama", "spacy-md")):
    rng = np.random.default_rng(0)
    return pd.DataFrame([
        {"source": s, "target": t, "method": m, "preprocess": p, "stitched_accuracy": rng.uniform(),
         "r2": rng.uniform(-1, 1)}
        for s in encoders for t in encoders if s != t for m in methods for p in preps
    ])


def _drawn(monkeypatch, plot, *args, **kwargs):
    """Run a plotting function and return its figure, drawn, instead of writing it."""
    out = []

    def capture(fig, path):
        fig.canvas.draw()
        out.append(fig)
        return path

    monkeypatch.setattr(figures, "save_figure", capture)
    plot(*args, **kwargs)
    return out[0]


def test_heatmap_rows_titles_and_labels_stay_clear(monkeypatch, tmp_path):
    """The default's grid (6 methods × 2 pre-processings, 5 encoders): every panel title clears the
    panel above it, and nothing (rotated names, 'target') is cut off at the figure's edge."""
    methods = ["ortho", "linear", "lortho", "affine", "affine-ridge", "mlp"]
    fig = _drawn(monkeypatch, plot_heatmaps, _grid(methods, ["standard", "l2"]), "stitched_accuracy",
                 "stitched accuracy", tmp_path / "x.png", suite="offline", profile="test", note="n",
                 vmin=0.0, vmax=1.0)
    renderer = fig.canvas.get_renderer()
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 12
    rows = sorted({round(ax.get_position().y0, 3) for ax in panels}, reverse=True)
    for ax in panels:
        if round(ax.get_position().y0, 3) == rows[1]:
            above = min(other.get_window_extent(renderer).y0 for other in panels
                        if round(other.get_position().y0, 3) == rows[0])
            assert ax.title.get_window_extent(renderer).y1 < above
    whole = fig.get_tightbbox(renderer)  # inches
    width, height = fig.get_size_inches()
    assert whole.x0 >= 0 and whole.y0 >= 0 and whole.x1 <= width and whole.y1 <= height


def test_cka_figure_keeps_its_legend_off_the_points_and_explains_a_hidden_method(monkeypatch, tmp_path):
    grid = _grid(["ortho", "linear", "affine"], ["standard"])
    affine = grid["method"] == "affine"
    grid.loc[affine, "r2"] = grid.loc[grid["method"] == "linear", "r2"].to_numpy() + 1e-4
    encoders = sorted(set(grid["source"]))
    similarity = pd.DataFrame([{"encoder_a": a, "encoder_b": b, "linear_cka": 0.5}
                               for i, a in enumerate(encoders) for b in encoders[i + 1:]])
    fig = _drawn(monkeypatch, figures.plot_cka_vs_r2, grid, similarity, tmp_path / "x.png",
                 suite="offline", profile="test", note="n")
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    assert ax.get_legend().get_window_extent(renderer).x0 > ax.get_window_extent(renderer).x1
    notes = [t.get_text() for t in ax.texts]
    assert any(METHOD_LABELS["linear"] in t and "1e-04" in t for t in notes)


def test_coinciding_methods_reports_only_a_gap_below_tolerance():
    grid = _grid(["linear", "affine"], ["standard", "l2"])
    linear = grid["method"] == "linear"
    grid.loc[~linear, "r2"] = grid.loc[linear, "r2"].to_numpy() + 0.002
    assert figures._coinciding_methods(grid, "linear", "affine", "r2") == pytest.approx(0.002)
    grid.loc[~linear, "r2"] += 0.5
    assert figures._coinciding_methods(grid, "linear", "affine", "r2") is None
    assert figures._coinciding_methods(grid, "linear", "lortho", "r2") is None
