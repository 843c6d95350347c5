"""FAISS quantizers as the geometry paper used them: train, encode to integer codes, decode.

The paper trains ``faiss.ProductQuantizer(d, M=4, nbits=8)`` and the additive
``faiss.LocalSearchQuantizer(d, 4, 8)`` on the token vectors with FAISS's defaults; we keep those
defaults (so PQ's k-means still subsamples to 256 points per centroid internally, as in the paper)
and only seed them. ``faiss.ResidualQuantizer`` is offered beside them.

Codes come back unpacked, one integer per codebook: shape (n, M), values in 0..k−1, k = 2**nbits.
Encoding runs in fixed-size chunks so memory stays bounded on large samples and a progress bar can
follow it. The chunk size is a constant on purpose: LSQ's local search restarts its seeded random
generator on every call, so its codes depend on how the vectors are split into calls (never on the
thread count), and a fixed split keeps them identical from run to run and machine to machine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

QUANTIZER_KINDS = ("pq", "lsq", "rq")
QUANTIZER_NAMES = {
    "pq": "ProductQuantizer",
    "lsq": "LocalSearchQuantizer",
    "rq": "ResidualQuantizer",
}
TRAIN_THREADS = 1  # see train_quantizer
ENCODE_CHUNK = 16_384  # vectors per encode/decode call: ~32 MB of float32 at d = 512


@dataclass(frozen=True)
class EncodedSample:
    """What the cell measures need from one trained quantizer on one sample.

    codes: (n, M) int64, values in 0..k−1 — the cell of every vector in every codebook.
    sq_errors: (n,) float64 — ‖x − decode(encode(x))‖² per vector.
    centroids: (M, k, d_c) float64 — the codebook vectors (d_c = d/M for PQ, d for additive).
    """

    codes: np.ndarray
    sq_errors: np.ndarray
    centroids: np.ndarray


def train_indices(n: int, train_size: int | str, seed: int) -> np.ndarray | None:
    """Rows to train on: ``None`` for all ``n`` rows, else a sorted seeded sample of ``train_size``.

    ``train_size`` is ``"all"`` or a positive int; a size ≥ n means all rows. Sorting keeps the
    sample in file order, so the subsample is a pure function of (n, train_size, seed).
    """
    if train_size == "all" or int(train_size) >= n:
        return None
    rng = np.random.default_rng([seed, 0x7A1])  # a stream of its own, apart from other draws
    return np.sort(rng.choice(n, size=int(train_size), replace=False))


def make_quantizer(kind: str, d: int, m: int, nbits: int, seed: int):
    """An untrained FAISS quantizer of ``kind`` with ``m`` codebooks of ``2**nbits`` centroids.

    Seeds: PQ and RQ seed their k-means through ``cp.seed``; LSQ seeds codebook initialisation and
    the perturbations of its local search through ``random_seed``. Everything else stays at
    FAISS's defaults, as in the paper.
    """
    import faiss

    if kind == "pq":
        q = faiss.ProductQuantizer(d, m, nbits)
        q.cp.seed = int(seed)
    elif kind == "lsq":
        q = faiss.LocalSearchQuantizer(d, m, nbits)
        q.random_seed = int(seed)
    elif kind == "rq":
        q = faiss.ResidualQuantizer(d, m, nbits)
        q.cp.seed = int(seed)
    else:
        raise ValueError(f"unknown quantizer {kind!r}; allowed: {QUANTIZER_KINDS}")
    return q


@contextlib.contextmanager
def faiss_threads(n: int) -> Iterator[None]:
    """Run the block with FAISS (and its bundled OpenMP BLAS) on ``n`` threads, then restore."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def train_quantizer(q, X: np.ndarray, rows: np.ndarray | None) -> None:
    """Train ``q`` on ``X[rows]`` (all of ``X`` when ``rows`` is None). X: (n, d) float32.

    Training runs on one thread: LSQ's and RQ's trained codebooks depend on the number of OpenMP
    threads (parallel float reductions), so a fixed count is what makes the same file and seed give
    the same numbers on any machine. One thread is also the fastest choice on a busy 2-core machine,
    where OpenMP barriers wait on descheduled threads (3× slower with 2 threads was measured).
    Encoding does not depend on the thread count and keeps FAISS's default.
    """
    with faiss_threads(TRAIN_THREADS):
        q.train(np.ascontiguousarray(X if rows is None else X[rows], dtype=np.float32))


def codebook_centroids(q, kind: str, m: int, nbits: int) -> np.ndarray:
    """The trained codebooks as (M, k, d_c) float64 (PQ: d_c = d/M sub-vectors; additive: d_c = d)."""
    import faiss

    k = 1 << nbits
    if kind == "pq":
        flat = faiss.vector_to_array(q.centroids)
        return flat.reshape(m, k, int(q.dsub)).astype(np.float64)
    flat = faiss.vector_to_array(q.codebooks)
    return flat.reshape(m, k, int(q.d)).astype(np.float64)


def encode_sample(
    q, kind: str, X: np.ndarray, m: int, nbits: int, *, progress: bool = False
) -> EncodedSample:
    """Encode every row of ``X`` (n, d) float32 with the trained ``q`` (``m`` codebooks of
    ``2**nbits``); keep the unpacked codes, per-vector squared errors and the codebooks."""
    import faiss
    from tqdm.auto import tqdm

    n = X.shape[0]
    codes = np.empty((n, m), dtype=np.int64)
    sq_errors = np.empty(n, dtype=np.float64)
    starts = range(0, n, ENCODE_CHUNK)
    bar = tqdm(
        starts,
        desc=f"encode {kind}",
        unit="chunk",
        leave=False,
        disable=not progress or n <= ENCODE_CHUNK,
    )
    for start in bar:
        x = np.ascontiguousarray(X[start : start + ENCODE_CHUNK], dtype=np.float32)
        packed = q.compute_codes(x)
        codes[start : start + len(x)] = faiss.unpack_bitstrings(packed, m, nbits)
        diff = x.astype(np.float64) - q.decode(packed).astype(np.float64)
        sq_errors[start : start + len(x)] = np.einsum("ij,ij->i", diff, diff)
    return EncodedSample(
        codes=codes, sq_errors=sq_errors, centroids=codebook_centroids(q, kind, m, nbits)
    )
