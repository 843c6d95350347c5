"""The house style of every saved figure, and how it is written: byte-identical PNGs.

A figure is deterministic to the byte, so DVC sees an unchanged output when nothing changed: it is
built on the Agg canvas (no pyplot state), inside a fixed style (fonts shipped with matplotlib,
fixed sizes and dpi, whatever the user's matplotlibrc says), and its PNG carries no
software/version metadata. Every figure names the task suite and the profile that made it
(:func:`provenance`). Used by the results figures (:mod:`latentgeo.analysis.figures`), the
patchiness sweep and the stitching stage; a leaf, like :mod:`latentgeo.io`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from latentgeo.io import atomic_output

# Imported inside the functions that use them (heavy): matplotlib, seaborn.

DPI = 150
# Fonts and sizes pinned so the bytes do not depend on the user's matplotlibrc.
_RC = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 7,
    "figure.titlesize": 10,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "savefig.bbox": "standard",
    "svg.hashsalt": "latentgeo",
}


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """A fixed seaborn/matplotlib style for the duration of one figure."""
    import matplotlib
    import seaborn as sns

    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("paper"), **_RC}
    with matplotlib.rc_context(rc):
        yield


def new_figure(width: float, height: float):
    """A new figure on the Agg canvas, sized in inches, with a constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write the figure as PNG without version metadata, atomically."""
    path = Path(path)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    return path


def provenance(suite: str, profile: str, note: str | None = None) -> str:
    """The label every figure carries: which suite and profile produced it."""
    text = f"suite: {suite} · profile: {profile}"
    return f"{text} · {note}" if note else text
