"""Measures of how widely a sample spreads through its space (no quantizer involved).

All work from the sample's covariance, computed once in float64 by :func:`principal_axes` in row
chunks (a 150,000 × 512 float32 sample is never copied whole to float64):

* EEE — explained-variance measure: the cumulative PCA explained variance minus that of a uniform
  spectrum, integrated with the trapezoid rule and divided by total·d/2. 0 for an isotropic sample,
  → 1 as all variance falls on one axis.
* VRM — Vasicek-entropy ratio: rescale the centred sample so its total variance is d (that of a
  d-dimensional standard normal), estimate the entropy of each principal coordinate with Vasicek's
  spacing estimator, and divide their sum by d·½·log(2πe), the entropy of N(0, I_d) — the largest
  any distribution of that total variance can have. ≈ 1 for an isotropic Gaussian, lower as the
  sample concentrates. (Summing marginal entropies of the decorrelated coordinates is the usual
  Vasicek extension to d dimensions; it makes the ratio invariant to rotations.)
* IsoScore — the ``isoscore`` package (2.x), from the same covariance (samples × dims).
* effective rank — exp of the Shannon entropy of the normalised covariance eigenvalues
  (Roy & Vetterli 2007); between 1 and d.
* anisotropy — mean cosine similarity of seeded random pairs of distinct vectors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ROW_CHUNK = 16_384
DEFAULT_ANISOTROPY_PAIRS = 100_000


@dataclass(frozen=True)
class PrincipalAxes:
    """mean: (d,); cov: (d, d) sample covariance (N − 1); eigvals: (d,) descending, ≥ 0;
    eigvecs: (d, d), column j the axis of eigvals[j]. All float64."""

    mean: np.ndarray
    cov: np.ndarray
    eigvals: np.ndarray
    eigvecs: np.ndarray


def principal_axes(X: np.ndarray, chunk: int = ROW_CHUNK) -> PrincipalAxes:
    """Mean, covariance and its eigen-decomposition of X (n, d), two passes in float64 chunks."""
    n, d = X.shape
    total = np.zeros(d)
    for start in range(0, n, chunk):
        total += X[start : start + chunk].sum(axis=0, dtype=np.float64)
    mean = total / n
    cov = np.zeros((d, d))
    for start in range(0, n, chunk):
        xc = X[start : start + chunk].astype(np.float64) - mean
        cov += xc.T @ xc
    cov /= n - 1
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1]
    return PrincipalAxes(mean, cov, np.maximum(vals[order], 0.0), vecs[:, order])


def eee(eigvals: np.ndarray) -> float:
    """Explained-variance measure from covariance eigenvalues (d,), any order."""
    lam = np.sort(np.asarray(eigvals, dtype=np.float64))[::-1]
    d, total = len(lam), lam.sum()
    cumulative = np.cumsum(lam)
    uniform = total * np.arange(1, d + 1) / d
    return float(np.trapezoid(cumulative - uniform) / (total * d / 2.0))


def vasicek_entropy(sorted_rows: np.ndarray, window: int) -> np.ndarray:
    """Vasicek's spacing estimate of differential entropy (nats) of each row of (c, n), sorted
    ascending along the last axis: the mean over i of log(n/(2m)·(X₍ᵢ₊ₘ₎ − X₍ᵢ₋ₘ₎)), with indices
    clamped to 1..n. Returns (c,). Needs n > 2m."""
    s = np.atleast_2d(sorted_rows)
    n, m = s.shape[-1], window
    spacings = np.concatenate(
        [
            s[:, m : 2 * m] - s[:, :1],  # i < m: the lower index clamps to the minimum
            s[:, 2 * m :] - s[:, : n - 2 * m],  # interior
            s[:, n - 1 :]
            - s[:, n - 2 * m : n - m],  # i ≥ n − m: the upper index clamps to the maximum
        ],
        axis=1,
    )
    with np.errstate(divide="ignore"):  # repeated values give log 0 = −inf: no density there
        return np.log(n / (2.0 * m) * spacings).mean(axis=1)


def vasicek_window(n: int) -> int:
    """The customary spacing m = round(√n / 2), at least 1 (and below n/2, as the estimator needs)."""
    return max(1, min(int(round(math.sqrt(n) / 2)), (n - 1) // 2))


def vrm(X: np.ndarray, axes: PrincipalAxes, *, block: int = 128, chunk: int = ROW_CHUNK) -> float:
    """Vasicek-entropy ratio of X (n, d); see the module docstring. Principal coordinates are made
    ``block`` at a time so memory stays at n × block float64."""
    n, d = X.shape
    scale = math.sqrt(d / axes.eigvals.sum())  # total variance → d, a standard normal's
    window = vasicek_window(n)
    entropy = 0.0
    for b0 in range(0, d, block):
        vt = np.ascontiguousarray(axes.eigvecs[:, b0 : b0 + block].T) * scale
        # coordinates stored one principal axis per row, so each sort runs over contiguous memory
        zt = np.empty((vt.shape[0], n))
        for start in range(0, n, chunk):
            xc = X[start : start + chunk].astype(np.float64) - axes.mean
            zt[:, start : start + chunk] = vt @ xc.T
        zt.sort(axis=1)
        entropy += float(vasicek_entropy(zt, window).sum())
    return entropy / (d * 0.5 * math.log(2 * math.pi * math.e))


def isoscore(cov: np.ndarray) -> float:
    """IsoScore of a sample from its (d, d) covariance, via the ``isoscore`` package.

    ``IsoScore.IsoScore(points)`` takes points as (samples, dims) and starts with
    ``torch.cov(points.T)``; ``IsoScore_cov`` is the same computation from that covariance, which
    we already hold in float64 (the tests check the two agree).
    """
    from IsoScore import IsoScore

    return float(IsoScore.IsoScore_cov(np.asarray(cov, dtype=np.float64)))


def effective_rank(eigvals: np.ndarray) -> float:
    """exp(H(p)), p = λ/Σλ over the covariance eigenvalues (zeros contribute nothing)."""
    lam = np.maximum(np.asarray(eigvals, dtype=np.float64), 0.0)
    p = lam[lam > 0] / lam.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def random_pairs(n: int, pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``pairs`` seeded index pairs (i, j) of distinct rows of an n-row sample, drawn uniformly."""
    rng = np.random.default_rng([seed, 0xA11])  # a stream of its own, apart from other draws
    i = rng.integers(0, n, size=pairs)
    j = rng.integers(0, n - 1, size=pairs)
    j += j >= i  # skip i itself: j is uniform over the other n − 1 rows
    return i, j


def anisotropy(X: np.ndarray, pairs: int, seed: int, chunk: int = ROW_CHUNK) -> float:
    """Mean cosine similarity of ``pairs`` seeded random pairs of distinct rows of X (n, d)."""
    i, j = random_pairs(X.shape[0], pairs, seed)
    total = 0.0
    for start in range(0, pairs, chunk):
        a = X[i[start : start + chunk]].astype(np.float64)
        b = X[j[start : start + chunk]].astype(np.float64)
        cos = np.einsum("ij,ij->i", a, b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        total += cos.sum()
    return float(total / pairs)
