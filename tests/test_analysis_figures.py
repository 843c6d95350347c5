"""The regression figures: deterministic bytes, no version metadata, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from latentgeo.errors import LatentgeoError
from latentgeo.analysis.figures import (
    plot_measures_vs_alpha,
    plot_pearson_r,
    plot_score_vs_alpha,
    plot_score_vs_top_measures,
)
from latentgeo.analysis.regression import regress
from latentgeo.plotting import provenance

LABEL = {"suite": "offline", "profile": "smoke"}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """Two seeds per α (so seaborn draws bootstrap bands) plus two non-standard models."""
    rng = np.random.default_rng(0)
    alphas = [0.0, 0.5, 1.0, 5.0, 25.0, 100.0]
    rows = []
    for alpha in alphas:
        for seed in (1, 2):
            level = np.log1p(alpha)
            rows.append({"model": f"m-a{alpha:g}-s{seed}", "family": "base" if alpha == 0 else "perturbed",
                         "alpha": alpha, "seed": seed, "level": level})
    rows += [{"model": "m-untrained-s1", "family": "non-standard", "alpha": np.nan, "seed": 1, "level": 6.0},
             {"model": "m-shuffled-s1", "family": "non-standard", "alpha": np.nan, "seed": 1, "level": 5.5}]
    frame = pd.DataFrame(rows)
    n, level = len(frame), frame.pop("level").to_numpy()
    frame["suite"] = "offline"
    frame["score_bbc-topic"] = 0.9 - 0.1 * level + rng.normal(0, 0.02, n)
    frame["score_wiki-adjacency"] = 0.8 - 0.05 * level + rng.normal(0, 0.02, n)
    frame["score_average"] = frame[["score_bbc-topic", "score_wiki-adjacency"]].mean(axis=1)
    frame["lsq_patchiness"] = 1 + level + rng.normal(0, 0.1, n)
    frame["pq_patchiness"] = 1 + 0.2 * level + rng.normal(0, 0.3, n)
    frame["spread_isoscore"] = rng.uniform(0, 1, n)
    return frame


@pytest.fixture(scope="module")
def regression(table) -> dict:
    return regress(table, "score_average", group="family")


def _draw_all(table, regression, folder):
    return [
        plot_score_vs_alpha(table, folder / "a.png", seed=3, **LABEL),
        plot_measures_vs_alpha(table, folder / "b.png", seed=3, **LABEL),
        plot_score_vs_top_measures(table, regression, folder / "c.png", k=2, seed=3, **LABEL),
        plot_pearson_r(regression, folder / "d.png", note="patchiness: paper form", **LABEL),
    ]


@pytest.mark.slow  # draws every figure twice
def test_figures_are_identical_bytes_twice(table, regression, tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = _draw_all(table, regression, tmp_path / "one")
    second = _draw_all(table, regression, tmp_path / "two")
    for a, b in zip(first, second):
        data = a.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert data == b.read_bytes(), a.name
        assert b"Software" not in data and b"matplotlib" not in data.lower()
    # Only the finished files: no temporary left behind.
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["a.png", "b.png", "c.png", "d.png"]


def test_bootstrap_seed_reaches_the_bands(tmp_path):
    # Five seeds per α: the band's percentiles then depend on which resamples were drawn.
    rng = np.random.default_rng(1)
    alpha = np.repeat([0.0, 1.0, 10.0], 5)
    table = pd.DataFrame({"model": [f"m{i}" for i in range(15)], "family": "perturbed",
                          "alpha": alpha, "score_average": 1 - alpha / 20 + rng.normal(0, 0.05, 15)})
    a = plot_score_vs_alpha(table, tmp_path / "s0.png", seed=0, **LABEL).read_bytes()
    b = plot_score_vs_alpha(table, tmp_path / "s1.png", seed=1, **LABEL).read_bytes()
    again = plot_score_vs_alpha(table, tmp_path / "s0b.png", seed=0, **LABEL).read_bytes()
    assert a == again and a != b


def test_bad_inputs_are_refused(table, regression, tmp_path):
    with pytest.raises(LatentgeoError, match="measure columns \\['nope'\\]"):
        plot_measures_vs_alpha(table, tmp_path / "x.png", measures=["nope"], **LABEL)
    with pytest.raises(LatentgeoError, match="no 'alpha' column"):
        plot_score_vs_alpha(table.drop(columns="alpha"), tmp_path / "x.png", **LABEL)
    with pytest.raises(LatentgeoError, match="not in the table"):
        plot_score_vs_top_measures(table.drop(columns="lsq_patchiness"), regression,
                                   tmp_path / "x.png", **LABEL)
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    ("alphas", "ticks"),
    [
        ([0.0, 0.5, 1.0, 2.0, 10.0, 100.0], [0.0, 1.0, 10.0, 100.0]),  # 0.1 would sit on 0
        ([0.0, 0.01, 0.1, 1.0], [0.0, 0.01, 0.1, 1.0]),
        ([0.0, 0.5, 3.0, 25.0, 50.0, 100.0], [0.0, 1.0, 10.0, 100.0]),
        ([0.0, 1.0, 2.0, 4.0, 8.0], [0.0, 1.0, 2.0, 4.0, 8.0]),  # a small grid: each level
        ([0.0, 3.0, 25.0], [0.0, 3.0, 25.0]),
    ],
)
def test_alpha_axis_ticks_are_zero_and_the_levels_or_decades_of_the_log_part(alphas, ticks):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from latentgeo.analysis.figures import _alpha_axis

    ax = Figure().add_subplot()
    ax.plot(alphas, np.ones(len(alphas)))
    _alpha_axis(ax, np.asarray(alphas))
    assert list(ax.get_xticks()) == ticks
    labels = [ax.xaxis.get_major_formatter()(t, i) for i, t in enumerate(ticks)]
    assert labels == [f"{t:g}" for t in ticks]


def _sweep(seed: int, n: int = 30) -> pd.DataFrame:
    """A noise sweep: `tracker` follows log α only, `extra` carries score information beyond it."""
    rng = np.random.default_rng(seed)
    alpha = np.exp(rng.uniform(np.log(0.5), np.log(100), n))
    hidden = rng.normal(0, 1, n)
    return pd.DataFrame({
        "model": [f"s{i}" for i in range(n)], "family": "perturbed", "alpha": alpha,
        "score_average": 0.7 - 0.08 * np.log(alpha) + 0.03 * hidden + rng.normal(0, 0.01, n),
        "tracker": -np.log(alpha) + rng.normal(0, 0.05, n),
        "extra": hidden + rng.normal(0, 0.2, n),
        "noise": rng.normal(0, 1, n),
    })


def test_partial_r_vs_r_one_panel_or_beside_the_paper_byte_stable(tmp_path):
    """Ours alone, ours beside a reanalysis JSON (its `sweep` is a regression result) or beside a
    plain regression result; deterministic bytes; a second result of another shape is refused."""
    from latentgeo.analysis.figures import plot_partial_r_vs_r
    from latentgeo.io import dumps_json
    import json

    ours = regress(_sweep(1), "score_average", controls=["log1p(alpha)"])
    paper_sweep = regress(_sweep(2), "score_average", controls=["log(alpha)"])
    # As written to results/reanalysis/<source>.json: NaN as null, the sweep under "sweep".
    reanalysis = json.loads(dumps_json({"sweep": paper_sweep, "families": {}, "controls": ["log(alpha)"]}))
    kwargs = {"title": "t", "label": provenance("offline", "smoke")}
    single = plot_partial_r_vs_r(ours, tmp_path / "one.png", **kwargs)
    pair = plot_partial_r_vs_r(ours, tmp_path / "pair.png", paper=reanalysis, **kwargs)
    plain = plot_partial_r_vs_r(ours, tmp_path / "plain.png", paper=json.loads(dumps_json(paper_sweep)), **kwargs)
    for path in (single, pair, plain):
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and b"Software" not in data
    assert pair.read_bytes() == plain.read_bytes()  # the same sweep, however it is handed in
    assert pair.read_bytes() != single.read_bytes()
    again = plot_partial_r_vs_r(ours, tmp_path / "again.png", paper=reanalysis, **kwargs)
    assert again.read_bytes() == pair.read_bytes()
    # Two panels side by side: the pair is about twice as wide.
    from PIL import Image

    w1, h1 = Image.open(single).size
    w2, h2 = Image.open(pair).size
    assert h1 == h2 and w2 == pytest.approx(2 * w1, rel=0.02)
    # Without controls a panel says so instead of failing.
    assert plot_partial_r_vs_r(regress(_sweep(1), "score_average"), tmp_path / "none.png", **kwargs).is_file()
    with pytest.raises(LatentgeoError, match="neither a regression result nor a reanalysis"):
        plot_partial_r_vs_r(ours, tmp_path / "bad.png", paper={"table": []}, **kwargs)
    assert not (tmp_path / "bad.png").exists()


def test_overlapping_point_labels_are_stacked_apart():
    """Names of points on the same spot (a measure and its corrected variant) print over each other
    unless stacked: after stacking no two text boxes overlap, the first keeps its place without a
    leader line, the others move straight down with one; labels already clear stay put."""
    from matplotlib.text import Text

    from latentgeo.analysis.figures import _stack_overlapping_labels
    from latentgeo.plotting import figure_style, new_figure

    with figure_style():
        fig = new_figure(4.0, 4.0)
        ax = fig.add_subplot()
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        arrow = {"arrowstyle": "-"}
        names = ["patchiness", "patchiness_corrected", "point_count_kl", "far_away"]
        spots = [(0.5, 0.5), (0.5, 0.5), (0.51, 0.5), (0.1, 0.1)]
        labels = [ax.annotate(name, xy, xytext=(3, 2), textcoords="offset points", fontsize=6,
                              arrowprops=arrow) for name, xy in zip(names, spots)]
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        before = [Text.get_window_extent(a, renderer) for a in labels]
        assert before[0].overlaps(before[1])  # the defect this guards against
        _stack_overlapping_labels(labels)
        after = [Text.get_window_extent(a, renderer) for a in labels]
    for i in range(len(after)):
        for j in range(i + 1, len(after)):
            assert not after[i].overlaps(after[j]), (names[i], names[j])
    assert labels[0].xyann == (3, 2) and not labels[0].arrow_patch.get_visible()
    assert labels[3].xyann == (3, 2) and not labels[3].arrow_patch.get_visible()
    for moved in labels[1:3]:
        assert moved.xyann[0] == 3 and moved.xyann[1] < 2 and moved.arrow_patch.get_visible()
    assert labels[2].xyann[1] < labels[1].xyann[1]  # stacked below the one placed before it


def _two_families(table: pd.DataFrame) -> pd.DataFrame:
    """The fixture's table twice, as two families of base models with their non-standard models."""
    parts = []
    for base, shift in (("enc-a", 0.0), ("enc-b", 0.3)):
        part = table.copy()
        part["model"] = [f"{base}-{m.removeprefix('m-')}" for m in part["model"]]
        part["base_model"] = base
        for column in ("score_average", "lsq_patchiness"):
            part[column] = part[column] + shift
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def test_families_get_their_own_lines_and_panels(table, tmp_path):
    """With several base models, the α figures draw each family apart (the measures: a colour
    each, the scores: a panel each) and each non-standard model in its family's colour, in a line
    style per kind; a table without the column is one family."""
    from PIL import Image

    from latentgeo.analysis.figures import _base_models, _nonstandard_kind, _nonstandard_lines

    both = _two_families(table)
    assert _base_models(both) == ["enc-a", "enc-b"] and _base_models(table) == [None]
    others = both[both["family"] == "non-standard"]
    assert [_nonstandard_kind(row) for _, row in others.iterrows()] == ["untrained", "shuffled"] * 2
    lines = _nonstandard_lines(both, {"enc-a": "red", "enc-b": "blue"})
    assert [(colour, kind) for _, colour, _, kind in lines] == [
        ("red", "untrained"), ("red", "shuffled"), ("blue", "untrained"), ("blue", "shuffled")]
    assert lines[0][2] == lines[2][2] != lines[1][2]  # one style per kind, whatever the family
    one = Image.open(plot_score_vs_alpha(table, tmp_path / "one.png", **LABEL)).size
    two = Image.open(plot_score_vs_alpha(both, tmp_path / "two.png", **LABEL)).size
    assert two[1] == one[1] and two[0] > 1.5 * one[0]  # a panel per family, side by side
    pooled = plot_measures_vs_alpha(both.drop(columns="base_model"), tmp_path / "pooled.png", **LABEL)
    apart = plot_measures_vs_alpha(both, tmp_path / "apart.png", **LABEL)
    assert pooled.read_bytes() != apart.read_bytes()


def test_held_out_models_are_hollow_markers_one_shape_each(table, regression, monkeypatch, tmp_path):
    """Each non-standard model gets its own marker, named once in the legend; the markers are
    hollow, so two held-out models at the same place both stay visible."""
    from latentgeo.analysis import figures

    drawn = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, path: drawn.append(fig) or path)
    plot_score_vs_top_measures(table, regression, tmp_path / "c.png", k=2, **LABEL)
    fig = drawn[0]
    held = {"m-untrained-s1", "m-shuffled-s1"}
    legend = fig.legends[0]
    assert {t.get_text() for t in legend.get_texts()} == held
    assert len({h.get_marker() for h in legend.legend_handles}) == len(held)
    assert all(h.get_markerfacecolor() == "none" for h in legend.legend_handles)
    for ax in fig.axes[:2]:
        red = [c for c in ax.collections if len(c.get_offsets()) == 1 and len(c.get_facecolors()) == 0]
        assert len(red) == len(held)  # one hollow marker per held-out model in every panel
