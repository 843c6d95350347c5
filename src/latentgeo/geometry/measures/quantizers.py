"""FAISS quantizers as the geometry paper used them: train, encode to integer codes, decode.

The paper trains ``faiss.ProductQuantizer(d, M=4, nbits=8)`` and the additive
``faiss.LocalSearchQuantizer(d, 4, 8)`` on the token vectors with FAISS's defaults; we keep those
defaults (so PQ's k-means still subsamples to 256 points per centroid internally, as in the paper)
and only seed them. ``faiss.ResidualQuantizer`` is offered beside them.

Seeds. The paper never set a seed, so it ran with FAISS's built-in ones (the same in FAISS 1.15
as in the 2024 releases the paper used): ``cp.seed = 1234`` for the k-means of PQ and RQ, and ``random_seed = 0x12345``
(74565) for LSQ, whose random initial codes, codebook perturbations and local-search moves all draw
from one ``std::mt19937`` seeded with it (LSQ runs no k-means). One ``seed`` drives all three
(:func:`faiss_seeds`): PQ and RQ take it as it is, LSQ takes it shifted by 0x12345 − 1234, so
``seed = 1234`` (:data:`PAPER_SEED`) gives exactly the untouched defaults for every quantizer,
and distinct seeds stay distinct. FAISS stores seeds in a C ``int``; seeds up to 2³² − 1 are
passed as the 32-bit pattern the generators see.

Codes come back unpacked, one integer per codebook: shape (n, M), values in 0..k−1, k = 2**nbits.
Every vector is encoded in ONE ``compute_codes`` call, as the paper did: LSQ restarts its seeded
generator on every call, so its codes depend on how the vectors are split into calls (never on the
thread count), and only the single call gives the paper's codes. FAISS splits the work internally
(LSQ: 10,000 vectors at a time; PQ: 262,144), so memory stays bounded; only the n × M codes are
kept. Decoding (for the errors) runs in fixed chunks of :data:`DECODE_CHUNK` vectors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from latentgeo.geometry.measures.kinds import QUANTIZER_KINDS

# Deferred to the functions that use them, so that importing this module stays light: faiss, tqdm.

TRAIN_THREADS = 1  # see train_quantizer
DECODE_CHUNK = 16_384  # vectors per decode call: ~32 MB of float32 at d = 512
PAPER_SEED = 1234  # FAISS's default k-means seed: with it every quantizer runs at FAISS's defaults
FAISS_PQ_SEED = 1234  # ClusteringParameters.seed, default of PQ's and RQ's k-means
FAISS_LSQ_SEED = 0x12345  # LocalSearchQuantizer.random_seed, its constructor's default


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


def _as_c_int(seed: int) -> int:
    """The C ``int`` FAISS stores for a seed in 0..2³²−1: the same 32 bits, read as signed."""
    seed = int(seed) % 2**32
    return seed - 2**32 if seed >= 2**31 else seed


def faiss_seeds(seed: int) -> dict[str, int]:
    """The FAISS seed of each quantizer kind for our ``seed`` (see the module docstring).

    ``faiss_seeds(1234) == {"pq": 1234, "rq": 1234, "lsq": 74565}``: FAISS's own defaults.
    """
    shifted = (int(seed) + FAISS_LSQ_SEED - FAISS_PQ_SEED) % 2**32
    return {"pq": _as_c_int(seed), "rq": _as_c_int(seed), "lsq": _as_c_int(shifted)}


def make_quantizer(kind: str, d: int, m: int, nbits: int, seed: int):
    """An untrained FAISS quantizer of ``kind`` with ``m`` codebooks of ``2**nbits`` centroids.

    Seeds (:func:`faiss_seeds`): PQ and RQ seed their k-means through ``cp.seed``; LSQ seeds codebook
    initialisation and the perturbations of its local search through ``random_seed``. Everything
    else stays at FAISS's defaults, as in the paper; ``seed = 1234`` leaves the seeds at theirs too.
    """
    import faiss

    if kind not in QUANTIZER_KINDS:
        raise ValueError(f"unknown quantizer {kind!r}; allowed: {QUANTIZER_KINDS}")
    faiss_seed = faiss_seeds(seed)[kind]
    if kind == "pq":
        q = faiss.ProductQuantizer(d, m, nbits)
        q.cp.seed = faiss_seed
    elif kind == "lsq":
        q = faiss.LocalSearchQuantizer(d, m, nbits)
        q.random_seed = faiss_seed
    else:
        q = faiss.ResidualQuantizer(d, m, nbits)
        q.cp.seed = faiss_seed
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
    ``2**nbits``) in one call (see the module docstring); keep the unpacked codes, the per-vector
    squared errors (decoded in chunks) and the codebooks."""
    import faiss
    from tqdm.auto import tqdm

    n = X.shape[0]
    packed = q.compute_codes(np.ascontiguousarray(X, dtype=np.float32))
    codes = faiss.unpack_bitstrings(packed, m, nbits).astype(np.int64)
    sq_errors = np.empty(n, dtype=np.float64)
    starts = range(0, n, DECODE_CHUNK)
    bar = tqdm(
        starts,
        desc=f"decode {kind}",
        unit="chunk",
        leave=False,
        disable=not progress or n <= DECODE_CHUNK,
    )
    for start in bar:
        x = X[start : start + DECODE_CHUNK].astype(np.float64)
        diff = x - q.decode(packed[start : start + DECODE_CHUNK]).astype(np.float64)
        sq_errors[start : start + len(x)] = np.einsum("ij,ij->i", diff, diff)
    return EncodedSample(
        codes=codes, sq_errors=sq_errors, centroids=codebook_centroids(q, kind, m, nbits)
    )
