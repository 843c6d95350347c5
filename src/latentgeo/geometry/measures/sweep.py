"""The cell measures of one latent sample at other quantizer sizes and sample sizes.

The paper measured point patchiness at one setting (M = 4 codebooks of k = 256 centroids, 5,000
sequences) and left open whether its relation to the score depends on it. :func:`cell_sweep`
re-measures a sample at

- other numbers of bins: ``nbits`` values at the main ``m``, and ``m`` values at the main ``nbits``
  (M codebooks of k = 2**nbits centroids; patchiness counts the k bins of each codebook);
- smaller samples: the vectors of the first ``n`` sequences, at the main ``m`` and ``nbits``
  (prefixes, so each smaller sample is contained in the larger ones).

Each point trains one quantizer per quantizer seed exactly as the main measures do (same kind,
seeds ``seed, seed + 1, …``, the same seeded training subsample rule), encodes every vector of the
(sub)sample and keeps every measure that needs only the codes (``cells.code_measures``: all but
``point_dist``, whose per-cell spectra cost more than the rest of a point together). A row holds
the means over the quantizer seeds and, with several seeds, the standard deviation of patchiness.
At the main setting on the whole sample the numbers are the main record's (the measures stage copies
them rather than training again; a test checks they agree).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from latentgeo.errors import LatentgeoError
from latentgeo.geometry.measures import cells
from latentgeo.geometry.measures import quantizers as qz
from latentgeo.geometry.measures.kinds import QUANTIZER_KINDS
from latentgeo.geometry.measures.compute import total_sq_norm

SWEEP_MEASURES = tuple(name for name in cells.CELL_MEASURES if name != "point_dist")


@dataclass(frozen=True)
class SweepPoint:
    """One setting: ``m`` codebooks of 2**``nbits`` centroids on the vectors of the first
    ``n_sequences`` sequences (None: the whole sample)."""

    m: int
    nbits: int
    n_sequences: int | None = None

    @property
    def k(self) -> int:
        return 2**self.nbits


def sweep_points(
    *, m: int, nbits: int, m_values: Sequence[int] = (), nbits_values: Sequence[int] = (),
    n_sequences: Sequence[int] = (),
) -> list[SweepPoint]:
    """The points of a sweep around the main setting (``m``, ``nbits``, whole sample), the main
    point first and each point once: bins (``nbits_values`` at ``m``, ``m_values`` at ``nbits``)
    on the whole sample, then sample prefixes (``n_sequences``) at the main setting."""
    points = [SweepPoint(m, nbits)]
    points += [SweepPoint(m, b) for b in nbits_values]
    points += [SweepPoint(mm, nbits) for mm in m_values]
    points += [SweepPoint(m, nbits, int(n)) for n in sorted(n_sequences)]
    return list(dict.fromkeys(points))


def prefix_rows(offsets: Sequence[int], n_sequences: int | None) -> int:
    """How many token vectors the first ``n_sequences`` sequences hold (all for None).
    ``offsets``: per-sequence row offsets of the sample, length sequences + 1 (embed's sidecar)."""
    if n_sequences is None:
        return int(offsets[-1])
    if not 1 <= n_sequences < len(offsets):
        raise LatentgeoError(
            f"sweep: n_sequences = {n_sequences}, but the sample holds {len(offsets) - 1} sequences"
        )
    return int(offsets[n_sequences])


def check_sweep(points: Sequence[SweepPoint], offsets: Sequence[int], d: int, kind: str) -> None:
    """Refuse, before any training, a point the sample cannot support: fewer vectors than k
    centroids, a dimension PQ cannot split into m parts, codes longer than 64 bits."""
    if kind not in QUANTIZER_KINDS:
        raise LatentgeoError(f"sweep: unknown quantizer {kind!r}; allowed: {QUANTIZER_KINDS}")
    for p in points:
        n = prefix_rows(offsets, p.n_sequences)
        where = f"sweep point m = {p.m}, nbits = {p.nbits}" + (
            f", first {p.n_sequences} sequences" if p.n_sequences else "")
        if p.m * p.nbits > 64:
            raise LatentgeoError(f"{where}: {p.m * p.nbits} bits per code; allowed: at most 64")
        if n < p.k:
            raise LatentgeoError(f"{where}: {n} vectors, fewer than k = {p.k} centroids")
        if kind == "pq" and d % p.m:
            raise LatentgeoError(f"{where}: d = {d} is not divisible by m = {p.m} (PQ splits vectors)")


def measure_point(
    X: np.ndarray, point: SweepPoint, *, kind: str, train_size: int | str, seeds: Sequence[int],
) -> dict:
    """The code-only cell measures of X (n, d) float32 at one point, averaged over ``seeds``.

    Returns ``{quantizer, m, nbits, k, n_sequences, n, train_size, <SWEEP_MEASURES>,
    patchiness_sd}`` (``patchiness_sd``: ddof = 1 over the seeds; None with one seed). The training
    rows are drawn with the first seed, as in the main measures, so every seed trains on the same
    vectors and only the quantizer's start differs.
    """
    n, d = X.shape
    rows = qz.train_indices(n, train_size, seeds[0])
    sq_norm = total_sq_norm(X)
    runs = []
    for s in seeds:
        q = qz.make_quantizer(kind, d, point.m, point.nbits, s)
        qz.train_quantizer(q, X, rows)
        encoded = qz.encode_sample(q, kind, X, point.m, point.nbits)
        runs.append(cells.code_measures(encoded, point.k, sq_norm))
    patchiness = [r["patchiness"] for r in runs]
    return {
        "quantizer": kind,
        "m": point.m,
        "nbits": point.nbits,
        "k": point.k,
        "n_sequences": point.n_sequences,
        "n": n,
        "train_size": n if rows is None else len(rows),
        **{name: float(np.mean([r[name] for r in runs])) for name in SWEEP_MEASURES},
        "patchiness_sd": float(np.std(patchiness, ddof=1)) if len(runs) > 1 else None,
    }


def cell_sweep(
    X: np.ndarray,
    offsets: Sequence[int],
    points: Sequence[SweepPoint],
    *,
    kind: str = "pq",
    train_size: int | str = "all",
    seeds: Sequence[int] = (qz.PAPER_SEED,),
    progress: bool = False,
) -> list[dict]:
    """:func:`measure_point` for every point, X (n, d) float32 cut to each point's sequences
    (``offsets``: per-sequence row offsets, length sequences + 1, last = n). Every point is checked
    before the first training."""
    from tqdm.auto import tqdm

    if int(offsets[-1]) != len(X):
        raise LatentgeoError(f"sweep: the offsets cover {offsets[-1]} vectors but the sample has {len(X)}")
    check_sweep(points, offsets, X.shape[1], kind)
    X = np.ascontiguousarray(X, dtype=np.float32)
    out = []
    for p in tqdm(points, desc=f"sweep {kind}", unit="point", disable=not progress):
        rows = prefix_rows(offsets, p.n_sequences)
        out.append(measure_point(X[:rows], p, kind=kind, train_size=train_size, seeds=seeds))
    return out
