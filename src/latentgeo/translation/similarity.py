"""Similarity indices between two representations of the same items (rows paired).

* :func:`linear_cka` ‖AᵀB‖²_F / (‖AᵀA‖_F ‖BᵀB‖_F) on column-centred A (n × d_a), B (n × d_b);
  invariant to orthogonal transforms and isotropic scaling of either side.
* :func:`rbf_cka` CKA with Gaussian kernels (Kornblith et al. 2019), bandwidth by the median
  heuristic: σ = ``fraction`` × the median off-diagonal pairwise distance of each side.
* :func:`mutual_knn` the mean fraction of each item's k nearest neighbours shared by the two
  spaces (Huh et al. 2024's mutual k-NN alignment), cosine neighbourhoods by default.

All work in float64 and return a float in [0, 1]. Kernel and neighbour forms build n × n matrices:
subsample beforehand for large n.
"""

from __future__ import annotations

import numpy as np

from latentgeo.errors import LatentgeoError


def _paired(a: np.ndarray, b: np.ndarray, min_rows: int = 2) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2:
        raise LatentgeoError(f"expected 2-D arrays (items × dims), got shapes {a.shape} and {b.shape}")
    if a.shape[0] != b.shape[0]:
        raise LatentgeoError(f"row counts differ: {a.shape[0]} vs {b.shape[0]} (rows must be paired)")
    if a.shape[0] < min_rows:
        raise LatentgeoError(f"need at least {min_rows} rows, got {a.shape[0]}")
    return a, b


def linear_cka(a: np.ndarray, b: np.ndarray) -> float:
    """Linear CKA of paired rows; 0 when either side is constant."""
    a, b = _paired(a, b)
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    denom = np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)
    if denom == 0:
        return 0.0
    return float(np.linalg.norm(a.T @ b) ** 2 / denom)


def _squared_distances(x: np.ndarray) -> np.ndarray:
    sq = np.einsum("ij,ij->i", x, x)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)


def rbf_gram(x: np.ndarray, fraction: float = 1.0) -> np.ndarray:
    """Gaussian kernel exp(−‖xᵢ−xⱼ‖² / (2σ²)), σ = ``fraction`` × median off-diagonal distance."""
    d2 = _squared_distances(x)
    off = d2[~np.eye(len(x), dtype=bool)]
    median = np.median(np.sqrt(off))
    if median == 0:
        return np.ones_like(d2)
    return np.exp(-d2 / (2.0 * (fraction * median) ** 2))


def _centre_gram(k: np.ndarray) -> np.ndarray:
    return k - k.mean(axis=0) - k.mean(axis=1)[:, None] + k.mean()


def gram_cka(k: np.ndarray, l: np.ndarray) -> float:
    """CKA of two n × n Gram matrices: ⟨HKH, HLH⟩ / (‖HKH‖ ‖HLH‖)."""
    kc, lc = _centre_gram(k), _centre_gram(l)
    denom = np.linalg.norm(kc) * np.linalg.norm(lc)
    return 0.0 if denom == 0 else float(np.sum(kc * lc) / denom)


def rbf_cka(a: np.ndarray, b: np.ndarray, fraction: float = 1.0) -> float:
    """RBF-kernel CKA of paired rows, bandwidths by the median heuristic (each side its own)."""
    a, b = _paired(a, b, min_rows=3)
    return gram_cka(rbf_gram(a, fraction), rbf_gram(b, fraction))


def knn_indices(x: np.ndarray, k: int, metric: str = "cosine") -> np.ndarray:
    """Indices (n × k) of each row's k nearest other rows (self excluded), ties broken by index."""
    if metric == "cosine":
        xn = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.finfo(np.float64).tiny)
        dist = -(xn @ xn.T)
    elif metric == "euclidean":
        dist = _squared_distances(x)
    else:
        raise LatentgeoError(f"unknown metric {metric!r}; allowed: ['cosine', 'euclidean']")
    np.fill_diagonal(dist, np.inf)
    return np.argsort(dist, axis=1, kind="stable")[:, :k]


def mutual_knn(a: np.ndarray, b: np.ndarray, k: int = 10, metric: str = "cosine") -> float:
    """Mean over items of |kNN_A(i) ∩ kNN_B(i)| / k."""
    a, b = _paired(a, b)
    if not 1 <= k < a.shape[0]:
        raise LatentgeoError(f"k = {k} neighbours; allowed: 1..{a.shape[0] - 1} for {a.shape[0]} rows")
    na, nb = knn_indices(a, k, metric), knn_indices(b, k, metric)
    shared = [len(np.intersect1d(na[i], nb[i], assume_unique=True)) for i in range(len(na))]
    return float(np.mean(shared) / k)
