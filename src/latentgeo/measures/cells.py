"""Measures of how a sample fills the cells of a trained quantizer (the geometry paper's set).

Inputs are what :func:`~latentgeo.measures.quantizers.encode_sample` returns: integer codes
(n, M) with values in 0..k−1, per-vector squared reconstruction errors (n,), and the codebooks
(M, k, d_c). Cell counts are built with one ``np.bincount`` over all codebooks at once; no loop
visits a cell. Everything is computed in float64.

Two patchiness variants are offered (see DESIGN.md, "Point patchiness"):

* ``patchiness`` (paper-compatible): the original code's per-codebook ``np.histogram(codes, bins=k)``
  — bins spread evenly over the *observed* min..max code of that codebook, so when a codebook never
  uses its extreme codes the bins no longer line up with codes — concatenated over the M codebooks,
  with m = Σcounts / k (that is M × the mean cell count, since the sum runs over M codebooks).
* ``patchiness_corrected``: bins fixed to the k codes 0..k−1 and m the true mean cell count N/k.

Both use Lloyd's index of patchiness, (m + V/m − 1)/m with V the population variance of the counts:
≈ 1 for cells filled at random (Poisson counts), 1 − 1/m for perfectly even counts, > 1 when clumped.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .quantizers import EncodedSample

CELL_MEASURES = (
    "reconstruction_error",
    "reconstruction_iqr",
    "reconstruction_skew",
    "point_count_variance",
    "point_count_kl",
    "centroid_spread",
    "patchiness",
    "patchiness_corrected",
)


def reconstruction_measures(sq_errors: np.ndarray, total_sq_norm: float) -> dict[str, float]:
    """The paper's reconstruction error and its two variants.

    sq_errors: (n,) ‖x − x̂‖² per vector; total_sq_norm: Σ‖x‖² over the same vectors.
    Returns reconstruction_error = Σ‖x − x̂‖² / Σ‖x‖² (relative, so unchanged by scaling every
    vector by one constant), reconstruction_iqr = IQR(e) / max(e) and reconstruction_skew =
    the (biased, Fisher–Pearson) skewness of e, with e = ‖x − x̂‖ the per-vector L2 error.
    """
    sq = np.asarray(sq_errors, dtype=np.float64)
    e = np.sqrt(sq)
    emax = float(e.max())
    if emax == 0.0:  # every vector reconstructed exactly: no spread of errors to describe
        iqr = skew = 0.0
    else:
        q25, q75 = np.percentile(e, [25, 75])
        iqr = float((q75 - q25) / emax)
        skew = float(stats.skew(e)) if np.ptp(e) > 0 else 0.0
    return {
        "reconstruction_error": float(sq.sum() / total_sq_norm),
        "reconstruction_iqr": iqr,
        "reconstruction_skew": skew,
    }


def code_histograms(codes: np.ndarray, k: int) -> np.ndarray:
    """Cell counts per codebook: (M, k) int64 from codes (n, M) with values in 0..k−1."""
    codes = np.asarray(codes, dtype=np.int64)
    m = codes.shape[1]
    flat = (codes + np.arange(m, dtype=np.int64) * k).ravel()
    return np.bincount(flat, minlength=m * k).reshape(m, k)


def paper_histograms(codes: np.ndarray, k: int) -> np.ndarray:
    """The original code's histograms: (M, k), ``np.histogram(codes[:, j], bins=k)`` per codebook.

    NumPy spreads the k bins evenly over the observed [min, max] of each codebook's codes (or over
    [c − 0.5, c + 0.5] if only the code c occurs). The loop runs over the M codebooks, not over
    cells, and calls NumPy exactly as the paper did so the counts match it bit for bit.
    """
    codes = np.asarray(codes)
    return np.stack([np.histogram(codes[:, j], bins=k)[0] for j in range(codes.shape[1])])


def lloyd_patchiness(counts: np.ndarray, mean: float) -> float:
    """Lloyd's index of patchiness (mean + V/mean − 1)/mean, V = population variance of counts."""
    counts = np.asarray(counts, dtype=np.float64).ravel()
    v = counts.var()
    return float((mean + v / mean - 1.0) / mean)


def patchiness_paper(codes: np.ndarray, k: int) -> float:
    """Paper-compatible point patchiness: concatenated :func:`paper_histograms`, m = Σcounts/k."""
    counts = paper_histograms(codes, k).ravel()
    return lloyd_patchiness(counts, counts.sum() / k)


def patchiness_corrected(hist: np.ndarray) -> float:
    """Corrected point patchiness from (M, k) code counts: bins 0..k−1, m = mean cell count."""
    hist = np.asarray(hist, dtype=np.float64)
    return lloyd_patchiness(hist, hist.mean())


def _cell_fractions(hist: np.ndarray) -> np.ndarray:
    hist = np.asarray(hist, dtype=np.float64)
    return hist / hist.sum(axis=1, keepdims=True)


def point_count_variance(hist: np.ndarray) -> float:
    """Variance of the scaled odds h/(1 − h)·(k − 1) of each cell, averaged over codebooks.

    hist: (M, k) counts; h = counts/N per codebook. Even use gives odds 1 everywhere (variance 0).
    """
    h = _cell_fractions(hist)
    k = h.shape[1]
    with np.errstate(divide="ignore"):  # h = 1 (every vector in one cell) gives infinite odds
        odds = h / (1.0 - h) * (k - 1)
    return float(odds.var(axis=1).mean())


def point_count_kl(hist: np.ndarray) -> float:
    """KL divergence (nats) of the cell fractions h from uniform, Σ h·log(h·k), averaged over codebooks."""
    h = _cell_fractions(hist)
    k = h.shape[1]
    terms = np.where(h > 0, h * np.log(np.where(h > 0, h, 1.0) * k), 0.0)  # 0·log 0 = 0
    return float(terms.sum(axis=1).mean())


def nearest_other_distances(centroids: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Euclidean distance from each of k centroids (k, d_c) to its nearest *other* centroid: (k,).

    Rows are processed in chunks so that 16-bit codebooks (k = 65,536) stay within memory.
    """
    c = np.asarray(centroids, dtype=np.float64)
    sq = np.einsum("ij,ij->i", c, c)
    out = np.empty(len(c))
    for start in range(0, len(c), chunk):
        block = c[start : start + chunk]
        d2 = sq[start : start + chunk, None] + sq[None, :] - 2.0 * block @ c.T
        d2[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf
        out[start : start + len(block)] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out


def centroid_spread(centroids: np.ndarray) -> float:
    """The centroid measure: nearest-other-centroid distances divided by their maximum, averaged.

    centroids: (M, k, d_c). Per codebook the k distances are normalised by their largest, their
    mean taken (1 when centroids are evenly spaced, small when a few lie far from a tight crowd),
    and the result averaged over codebooks.
    """
    values = []
    for book in np.asarray(centroids, dtype=np.float64):  # M codebooks, not cells
        nn = nearest_other_distances(book)
        top = nn.max()
        values.append(nn.mean() / top if top > 0 else 0.0)
    return float(np.mean(values))


def cell_measures(encoded: EncodedSample, total_sq_norm: float, k: int) -> dict[str, float]:
    """Every per-quantizer measure of one encoded sample, as scalar floats keyed by name."""
    hist = code_histograms(encoded.codes, k)
    return {
        **reconstruction_measures(encoded.sq_errors, total_sq_norm),
        "point_count_variance": point_count_variance(hist),
        "point_count_kl": point_count_kl(hist),
        "centroid_spread": centroid_spread(encoded.centroids),
        "patchiness": patchiness_paper(encoded.codes, k),
        "patchiness_corrected": patchiness_corrected(hist),
    }
