"""Intrinsic dimension by TwoNN (Facco et al. 2017), through scikit-dimension.

TwoNN needs each point's distances to its first and second nearest neighbours, r1 and r2: the
ratios μ = r2/r1 follow a Pareto law whose shape is the intrinsic dimension. scikit-dimension's
``TwoNN`` would find the neighbours with a dense n × n distance matrix, hopeless at 150,000 points,
so we find them ourselves — exactly, in float64, on a seeded subsample of at most ``sample``
points — and hand (r1, r2) to ``skdim.id.TwoNN(dist=True)``, which does the fit (its default: the
linear fit of Facco et al. with the largest 10 % of ratios discarded). The tests check it against
a plain reimplementation of that fit and against known dimensions.
"""

from __future__ import annotations

import warnings

import numpy as np

# Deferred to the functions that use them, so that importing this module stays light: skdim.

DEFAULT_TWONN_SAMPLE = 5_000


def twonn_rows(n: int, sample: int, seed: int) -> np.ndarray | None:
    """Sorted seeded subsample of ``sample`` of n rows, or None when n ≤ sample (use all)."""
    if n <= sample:
        return None
    rng = np.random.default_rng([seed, 0x2AA])  # a stream of its own, apart from other draws
    return np.sort(rng.choice(n, size=sample, replace=False))


def two_nearest_distances(points: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Exact distances (float64) from each of n points (n, d) to its 1st and 2nd nearest other point.

    Returns r1, r2, each (n,). Needs n ≥ 3. Works through the n × n squared-distance matrix a block
    of rows at a time (``chunk`` × n float64 in memory).
    """
    p = np.asarray(points, dtype=np.float64)
    n = len(p)
    sq = np.einsum("ij,ij->i", p, p)
    r1, r2 = np.empty(n), np.empty(n)
    for start in range(0, n, chunk):
        block = p[start : start + chunk]
        d2 = sq[start : start + chunk, None] + sq[None, :] - 2.0 * block @ p.T
        d2[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf  # not itself
        two = np.sort(np.partition(d2, 1, axis=1)[:, :2], axis=1)
        two = np.sqrt(np.maximum(two, 0.0))
        r1[start : start + len(block)], r2[start : start + len(block)] = two[:, 0], two[:, 1]
    return r1, r2


def twonn_from_distances(r1: np.ndarray, r2: np.ndarray) -> float:
    """TwoNN dimension from nearest-neighbour distances via scikit-dimension (duplicates dropped).

    Points with r1 = 0 (an exact duplicate elsewhere) have no ratio; we drop them here rather than
    let scikit-dimension warn about them on every run.
    """
    import skdim

    keep = r1 > 0
    dist = np.column_stack([r1[keep], r2[keep]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # sklearn deprecations inside skdim
        return float(skdim.id.TwoNN(dist=True).fit(dist).dimension_)


def twonn_dimension(X: np.ndarray, *, sample: int = DEFAULT_TWONN_SAMPLE, seed: int = 0) -> float:
    """TwoNN intrinsic dimension of X (n, d) on a seeded subsample of at most ``sample`` rows."""
    rows = twonn_rows(X.shape[0], sample, seed)
    points = X if rows is None else X[rows]
    return twonn_from_distances(*two_nearest_distances(points))
