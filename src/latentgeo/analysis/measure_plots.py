"""Figures of the measures stage."""

from __future__ import annotations

import numpy as np

# Deferred to the functions that use them, so that importing this module stays light: matplotlib.


def plot_code_histograms(histograms: np.ndarray, *, title: str = "", ax=None):
    """Cell counts of each codebook against the code, one line per codebook.

    histograms: (M, k) counts (bins 0..k−1, as ``MeasureReport.histograms[kind]``). The dashed
    line is the mean count N/k that perfectly even use would give. Returns the figure.
    """
    import matplotlib.pyplot as plt

    hist = np.asarray(histograms)
    m, k = hist.shape
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 3.2), layout="constrained")
    else:
        fig = ax.figure
    codes = np.arange(k)
    for j in range(m):
        ax.step(codes, hist[j], where="mid", lw=0.9, label=f"codebook {j}")
    ax.axhline(hist[0].sum() / k, color="k", ls="--", lw=0.8, label="even use (N/k)")
    ax.set_xlabel("code (cell index)")
    ax.set_ylabel("vectors in cell")
    ax.set_xlim(-0.5, k - 0.5)
    ax.set_title(title)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def plot_codebook_usage(report, kind: str | None = None, *, ax=None):
    """:func:`plot_code_histograms` of one quantizer of a :class:`~latentgeo.geometry.measures.compute.MeasureReport`.

    ``kind`` defaults to ``lsq`` (the quantizer whose patchiness tracked downstream scores in the
    paper) when it was computed, else the first quantizer. The title names the model (from the
    record's ``model`` entry, else the source file) and both patchiness values.
    """
    kind = kind or ("lsq" if "lsq" in report.histograms else next(iter(report.histograms)))
    record = report.record
    name = (record.get("model") or {}).get("model_id") or record["inputs"].get("source", "sample")
    cells = record[kind]
    title = (
        f"{kind.upper()} code use, {name}: patchiness {cells['patchiness']:.3f} (paper), "
        f"{cells['patchiness_corrected']:.3f} (corrected)"
    )
    return plot_code_histograms(report.histograms[kind], title=title, ax=ax)
