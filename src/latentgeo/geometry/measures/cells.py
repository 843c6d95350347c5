"""Measures of how a sample fills the cells of a trained quantizer (the geometry paper's set).

Inputs are what :func:`~latentgeo.geometry.measures.quantizers.encode_sample` returns: integer codes
(n, M) with values in 0..k−1, per-vector squared reconstruction errors (n,), and the codebooks
(M, k, d_c); :func:`point_dist` also reads the vectors themselves. Cell counts are built with one
``np.bincount`` over all codebooks at once; everything is computed in float64.

How each measure relates to the paper's code (Marbut, Chandler & Wheeler, arXiv 2406.12159;
``VM_transfer/sample_build_and_metrics.py``, class ``quantization`` and ``metric_run``, plus
``util/run_reconstruction_skew.py`` for the error distribution); see also ``docs/measures.md``:

* ``reconstruction_error`` — identical: Σ‖x − x̂‖² / Σ‖x‖² (paper: ``error``).
* ``reconstruction_iqr`` — identical to the paper's final form: IQR of the per-vector L2 errors
  e = ‖x − x̂‖ divided by max(e) (``iqr``; an intermediate script took the IQR over the error
  *components*, later overwritten by this form).
* ``reconstruction_skew`` — identical: the biased (Fisher–Pearson) skewness of e (``skew``).
* ``under_mu`` / ``under_mu2`` — identical: the share of vectors whose e lies strictly below the
  mean error μ, and below μ/2 (``under_mu``, ``under_mu2``).
* ``centroids`` — identical: per codebook the SQUARED distance of every centroid to its nearest
  other centroid (the paper's FAISS ``IndexFlatL2`` searched with k = 2, column 1), pooled over
  the M·k centroids, divided by the pooled maximum; the measure is the population variance of those
  values. We compute the distances in float64 rather than FAISS's float32.
* ``point_dist`` — identical: for every codebook and every cell the DISTINCT vectors assigned to
  it; for each cell with at least two, the EEE of those vectors (PCA components min(n_cell, d));
  the mean over all such cells of all codebooks. The paper's ``c_list[c-1]`` files code 0 under the
  last list: it relabels cells, it does not change which vectors share one. The paper skips cells
  whose EEE raises (sklearn's ``auc`` needs two components, so only d = 1 does); we skip those and
  cells without spread, and give ``None`` when no cell qualifies (the paper: NaN).
* ``patchiness`` — paper-compatible: the original code's per-codebook
  ``np.histogram(codes, bins=k)`` — bins spread evenly over the *observed* min..max code of that
  codebook, so when a codebook never uses its extreme codes the bins no longer line up with codes —
  concatenated over the M codebooks, with m = Σcounts / k (that is M × the mean cell count, since
  the sum runs over M codebooks). Kept because it is what the paper's r ≈ 0.90 was measured with.
* ``patchiness_corrected`` — deliberately corrected: bins fixed to the k codes 0..k−1 and m the
  true mean cell count N/k (the index the ecology literature defines).
* ``point_count_variance`` — deliberately corrected from the paper's ``point_counts[0]``: the same
  odds h/(1 − h)·(k − 1) and their variance averaged over codebooks, but over the k true code
  bins instead of the min..max histogram bins.
* ``point_count_kl`` — deliberately corrected from the paper's ``point_counts[1]``: KL of the cell
  fractions (true code bins) from the exact uniform 1/k. The paper compares its min..max histogram
  with the histogram of a fresh unseeded uniform draw, so its value changes from run to run.

Both patchiness forms use Lloyd's index of patchiness, (m + V/m − 1)/m with V the population
variance of the counts: ≈ 1 for cells filled at random (Poisson counts), 1 − 1/m for perfectly even
counts, > 1 when clumped.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import stats

from latentgeo.geometry.measures.quantizers import EncodedSample
from latentgeo.geometry.measures.spread import eee_sorted

# Deferred to the functions that use them, so that importing this module stays light: threadpoolctl.

CELL_MEASURES = (
    "reconstruction_error",
    "reconstruction_iqr",
    "reconstruction_skew",
    "under_mu",
    "under_mu2",
    "point_count_variance",
    "point_count_kl",
    "centroids",
    "point_dist",
    "patchiness",
    "patchiness_corrected",
)


def reconstruction_measures(sq_errors: np.ndarray, total_sq_norm: float) -> dict[str, float]:
    """The paper's reconstruction error and the measures of its per-vector distribution.

    sq_errors: (n,) ‖x − x̂‖² per vector; total_sq_norm: Σ‖x‖² over the same vectors.
    Returns reconstruction_error = Σ‖x − x̂‖² / Σ‖x‖² (relative, so unchanged by scaling every
    vector by one constant), and, with e = ‖x − x̂‖ the per-vector L2 error and μ its mean:
    reconstruction_iqr = IQR(e) / max(e), reconstruction_skew = the (biased, Fisher–Pearson)
    skewness of e, under_mu = share of e < μ and under_mu2 = share of e < μ/2.
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
    mu = e.mean()
    return {
        "reconstruction_error": float(sq.sum() / total_sq_norm),
        "reconstruction_iqr": iqr,
        "reconstruction_skew": skew,
        "under_mu": float(np.count_nonzero(e < mu) / len(e)),
        "under_mu2": float(np.count_nonzero(e < mu / 2) / len(e)),
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


# ---------------------------------------------------------------- centroids
def nearest_other_sq_distances(centroids: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """SQUARED Euclidean distance from each of k centroids (k, d_c) to its nearest *other*
    centroid: (k,) float64 (a duplicate centroid is at distance 0).

    Rows are processed in chunks so that 16-bit codebooks (k = 65,536) stay within memory.
    """
    c = np.asarray(centroids, dtype=np.float64)
    sq = np.einsum("ij,ij->i", c, c)
    out = np.empty(len(c))
    for start in range(0, len(c), chunk):
        block = c[start : start + chunk]
        d2 = sq[start : start + chunk, None] + sq[None, :] - 2.0 * block @ c.T
        d2[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf
        out[start : start + len(block)] = np.maximum(d2.min(axis=1), 0.0)
    return out


def centroid_nn_variance(centroids: np.ndarray) -> float:
    """The paper's centroid measure (``centroids``) from codebooks (M, k, d_c).

    Per codebook, every centroid's squared distance to its nearest other centroid; the M·k values
    pooled, divided by their maximum (so in [0, 1], unchanged by scaling), and their population
    variance returned: 0 when every centroid is equally far from its neighbour, larger when some
    crowd together while others stand apart. 0.0 when all centroids coincide (the paper: 0/0).
    """
    nn = np.concatenate([nearest_other_sq_distances(book) for book in np.asarray(centroids)])
    top = nn.max()
    return float((nn / top).var()) if top > 0 else 0.0


# ---------------------------------------------------------------- point_dist
@dataclass(frozen=True)
class DistinctRows:
    """The distinct vectors of a sample (n, d). first: (u,) int64, the row of each distinct
    vector's first occurrence; inverse: (n,) int64, the distinct-vector id of every row."""

    first: np.ndarray
    inverse: np.ndarray


def distinct_rows(X: np.ndarray) -> DistinctRows:
    """Exact distinct rows of X (n, d), as ``np.unique(X, axis=0)`` sees them (−0.0 equals 0.0).

    Each row is read as one opaque byte string and the n strings sorted once; −0.0 is first folded
    to 0.0 (x + 0.0 does it) so equal values have equal bytes. NaN never reaches here (refused).
    """
    X = np.ascontiguousarray(X)
    if X.dtype.kind == "f" and np.signbit(X[X == 0]).any():
        X = X + X.dtype.type(0)
    rows = X.view(np.dtype((np.void, X.dtype.itemsize * X.shape[1]))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    return DistinctRows(first.astype(np.int64), inverse.reshape(-1).astype(np.int64))


def cell_members(codes: np.ndarray, distinct: DistinctRows, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct vectors of every cell of ONE codebook.

    codes: (n,) cell of every row. Returns (rows, counts): rows (P,) int64, one row index per
    distinct (cell, vector) pair, grouped by cell in code order; counts (k,) how many distinct
    vectors each cell holds. Grouping pairs, not vectors, keeps a vector that was encoded into two
    cells (LSQ's local search can do that for identical inputs) in both.
    """
    u = len(distinct.first)
    pairs = np.unique(np.asarray(codes, dtype=np.int64) * u + distinct.inverse)
    counts = np.bincount(pairs // u, minlength=k)
    return distinct.first[pairs % u], counts


SMALL_CELL = 64  # cells of up to this many distinct vectors are batched by size into stacks
STACK_BYTES = 32 * 2**20  # cap on one stack of gathered cell vectors (float64)
COV_CHUNK = 16_384  # rows per step when a large cell's covariance is accumulated


def _spectra_of_equal_cells(X: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Descending covariance spectra of g cells of s ≤ d vectors each: rows (g, s) → (g, s).

    The Gram matrix R Rᵀ (s × s) of the centred vectors has the same nonzero eigenvalues as the
    covariance Rᵀ R (d × d) and the s eigenvalues sklearn's PCA would report (the last ≈ 0)."""
    R = X[rows].astype(np.float64)  # (g, s, d)
    R -= R.mean(axis=1, keepdims=True)
    lam = np.linalg.eigvalsh(R @ R.transpose(0, 2, 1))
    return np.maximum(lam[:, ::-1], 0.0)


def _spectrum_of_cell(X: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Descending covariance spectrum of one cell, (p,) with p = min(len(rows), d) components.

    Below d vectors the Gram matrix R Rᵀ is the smaller one, from d on the scatter matrix Rᵀ R
    (both 2-D products of R with its own transpose, which NumPy hands to BLAS's syrk: half the
    work of a general product). A cell of more than :data:`COV_CHUNK` vectors (a collapsed model may
    put most of its vectors in one) is gathered in chunks."""
    n_cell, d = len(rows), X.shape[1]
    if n_cell <= COV_CHUNK:
        R = X[rows].astype(np.float64)
        R -= R.mean(axis=0)
        lam = np.linalg.eigvalsh(R @ R.T if n_cell < d else R.T @ R)
    else:
        mean = np.zeros(d)
        for start in range(0, n_cell, COV_CHUNK):
            mean += X[rows[start : start + COV_CHUNK]].sum(axis=0, dtype=np.float64)
        mean /= n_cell
        scatter = np.zeros((d, d))
        for start in range(0, n_cell, COV_CHUNK):
            R = X[rows[start : start + COV_CHUNK]].astype(np.float64) - mean
            scatter += R.T @ R
        lam = np.linalg.eigvalsh(scatter)
    return np.maximum(lam[::-1], 0.0)


def _cell_eee(spectra: np.ndarray) -> np.ndarray:
    """EEE of each descending spectrum (g, p); NaN where a spectrum has no spread (total 0)."""
    total = spectra.sum(axis=1)
    out = np.full(len(spectra), np.nan)
    ok = total > 0
    if ok.any():
        out[ok] = eee_sorted(spectra[ok])
    return out


def _qualifies(counts: np.ndarray, d: int) -> np.ndarray:
    """Cells whose EEE the paper computes: ≥ 2 distinct vectors, and ≥ 2 components (d ≥ 2)."""
    return (counts >= 2) & (d >= 2)


def _cell_jobs(members: list[tuple[np.ndarray, np.ndarray]], d: int):
    """Units of work over every qualifying cell (≥ 2 distinct vectors, ≥ 2 components) of every
    codebook, in codebook then code order: (slot, rows) with rows (g, s) for a stack of small cells
    of equal size s, or (slot, rows (n_cell,)) for one larger cell; slot indexes the output."""
    slot = 0
    for rows, counts in members:
        starts = np.concatenate([[0], np.cumsum(counts)])
        cells = np.flatnonzero(_qualifies(counts, d))
        small = cells[counts[cells] <= min(SMALL_CELL, d - 1)]
        large = cells[counts[cells] > min(SMALL_CELL, d - 1)]
        # cell c's slot is its rank among this codebook's qualifying cells
        slots = dict(zip(cells.tolist(), range(slot, slot + len(cells)), strict=True))
        for size in np.unique(counts[small]):
            same = small[counts[small] == size]
            per_stack = max(1, STACK_BYTES // (int(size) * d * 8))
            for s0 in range(0, len(same), per_stack):
                group = same[s0 : s0 + per_stack]
                idx = starts[group][:, None] + np.arange(size)
                yield [slots[c] for c in group.tolist()], rows[idx]
        for c in large.tolist():
            yield [slots[c]], rows[starts[c] : starts[c + 1]]
        slot += len(cells)


def _default_workers() -> int:
    try:
        return max(1, min(4, len(os.sched_getaffinity(0))))
    except AttributeError:  # not Linux
        return max(1, min(4, os.cpu_count() or 1))


def point_dist(
    X: np.ndarray, codes: np.ndarray, k: int, distinct: DistinctRows | None = None,
    *, workers: int | None = None,
) -> float | None:
    """The paper's point_dist: the mean EEE of the distinct vectors of each cell.

    X: (n, d) the sample; codes: (n, M) cells, values 0..k−1; distinct: :func:`distinct_rows` of X
    (computed once per sample and shared by the quantizers; made here when not given). For every
    codebook and cell with at least two distinct vectors, the EEE (:func:`spread.eee_sorted`) of
    their min(n_cell, d) principal components; the mean over those cells of all codebooks, or None
    if there is none.

    Work: one eigenvalue problem per cell, of size min(n_cell, d) (the Gram matrix below d vectors).
    Small cells of equal size go to LAPACK as one stack; cells are spread over ``workers`` threads
    (default: the usable cores, at most 4) with BLAS held to one thread each, so results do not
    depend on either (each cell's value lands in its own slot, the mean is taken in cell order).
    """
    from threadpoolctl import threadpool_limits

    X = np.asarray(X)
    codes = np.asarray(codes)
    d = X.shape[1]
    distinct = distinct if distinct is not None else distinct_rows(X)
    members = [cell_members(codes[:, j], distinct, k) for j in range(codes.shape[1])]
    n_slots = sum(int(_qualifies(counts, d).sum()) for _, counts in members)
    if n_slots == 0:
        return None
    values = np.empty(n_slots)

    def run(job) -> None:
        slots, rows = job
        spectra = _spectra_of_equal_cells(X, rows) if rows.ndim == 2 else _spectrum_of_cell(X, rows)[None]
        values[slots] = _cell_eee(spectra)

    workers = workers or _default_workers()
    with threadpool_limits(limits=1, user_api="blas"):
        if workers == 1:
            for job in _cell_jobs(members, d):
                run(job)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for _ in pool.map(run, _cell_jobs(members, d)):
                    pass
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None


# ---------------------------------------------------------------- all of them
def code_measures(encoded: EncodedSample, k: int, total_sq_norm: float) -> dict[str, float]:
    """Every per-quantizer measure but ``point_dist``: those that need only the codes, the errors
    and the codebooks, not the vectors. total_sq_norm: Σ‖x‖² over the sample."""
    hist = code_histograms(encoded.codes, k)
    return {
        **reconstruction_measures(encoded.sq_errors, total_sq_norm),
        "point_count_variance": point_count_variance(hist),
        "point_count_kl": point_count_kl(hist),
        "centroids": centroid_nn_variance(encoded.centroids),
        "patchiness": patchiness_paper(encoded.codes, k),
        "patchiness_corrected": patchiness_corrected(hist),
    }


def cell_measures(
    encoded: EncodedSample,
    k: int,
    *,
    X: np.ndarray,
    total_sq_norm: float,
    distinct: DistinctRows | None = None,
) -> dict[str, float | None]:
    """Every per-quantizer measure of one encoded sample X (n, d), keyed as :data:`CELL_MEASURES`."""
    values = {
        **code_measures(encoded, k, total_sq_norm),
        "point_dist": point_dist(X, encoded.codes, k, distinct),
    }
    return {name: values[name] for name in CELL_MEASURES}
