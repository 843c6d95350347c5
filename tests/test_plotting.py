"""latentgeo.plotting: one fixed style for every saved figure, and PNGs identical to the byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from latentgeo.plotting import DPI, figure_style, new_figure, provenance, save_figure


def _draw(path: Path) -> bytes:
    with figure_style():
        fig = new_figure(3.0, 2.0)
        ax = fig.subplots()
        ax.plot([0, 1, 2], [0.5, 0.25, 0.75], marker="o", label="a line")
        ax.set_xlabel("noise level α (%)")
        ax.legend()
        fig.suptitle(provenance("offline", "smoke"))
        save_figure(fig, path)
    return path.read_bytes()


def test_provenance_label():
    assert provenance("offline", "default") == "suite: offline · profile: default"
    assert provenance("glue", "paper", "patchiness: paper form").endswith("· patchiness: paper form")


def test_the_same_figure_gives_the_same_bytes_without_a_software_tag(tmp_path):
    first, second = _draw(tmp_path / "a.png"), _draw(tmp_path / "b.png")
    assert first == second
    assert first.startswith(b"\x89PNG") and b"Software" not in first and b"atplotlib" not in first
    from PIL import Image

    with Image.open(tmp_path / "a.png") as image:
        assert image.size == (3 * DPI, 2 * DPI)


def test_the_users_matplotlib_settings_do_not_reach_the_figure(tmp_path):
    import matplotlib

    plain = _draw(tmp_path / "plain.png")
    with matplotlib.rc_context({"font.size": 20, "font.family": "serif", "lines.linewidth": 6,
                                "figure.dpi": 42, "savefig.dpi": 42}):
        assert _draw(tmp_path / "styled.png") == plain


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    with figure_style():
        fig = new_figure(2.0, 2.0)
        fig.subplots().plot([0, 1], [1, 0])

        def broken(*args, **kwargs):
            raise OSError("disk full")

        monkeypatch.setattr(fig, "savefig", broken)
        with pytest.raises(OSError, match="disk full"):
            save_figure(fig, tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []
