"""Checks on settings and samples, run before any quantizer is trained.

Every problem raises :class:`~latentgeo.errors.LatentgeoError` with a message that names it, so
the command line can exit with status 2 and write nothing.
"""

from __future__ import annotations

import numpy as np

from latentgeo.errors import LatentgeoError
from latentgeo.geometry.measures.kinds import QUANTIZER_KINDS
from latentgeo.io import MAX_SEED

# VRM's entropy estimate (scipy's differential_entropy) needs 2·floor(√n + 0.5) < n, i.e. n ≥ 5;
# TwoNN needs 3.
MIN_VECTORS = 5


def parse_quantizers(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``"pq,lsq"`` or ``["pq", "lsq"]`` → ``("pq", "lsq")``, refusing unknown or repeated names."""
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [str(n).strip().lower() for n in names if str(n).strip()]
    if not names:
        raise LatentgeoError(f"no quantizer given; allowed: {', '.join(QUANTIZER_KINDS)}")
    unknown = [n for n in names if n not in QUANTIZER_KINDS]
    if unknown:
        raise LatentgeoError(
            f"unknown quantizer(s) {', '.join(unknown)}; allowed: {', '.join(QUANTIZER_KINDS)}"
        )
    if len(set(names)) != len(names):
        raise LatentgeoError(f"quantizers repeat a name: {','.join(names)}")
    return tuple(names)


def parse_train_size(value: int | str) -> int | str:
    """``"all"`` or a positive integer (given as int or text)."""
    if isinstance(value, str):
        if value.strip().lower() == "all":
            return "all"
        try:
            value = int(value)
        except ValueError:
            raise LatentgeoError(f"train size {value!r} is neither 'all' nor an integer") from None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise LatentgeoError(f"train size {value!r} must be 'all' or a positive integer")
    return int(value)


def check_settings(
    quantizers, m: int, nbits: int, train_size, seed: int
) -> tuple[tuple[str, ...], int | str]:
    """Validate the quantizer settings; return the parsed (quantizers, train_size)."""
    kinds = parse_quantizers(quantizers)
    if not isinstance(m, (int, np.integer)) or m < 1 or m > 64:
        raise LatentgeoError(f"m = {m!r} codebooks; allowed: an integer in 1..64")
    if not isinstance(nbits, (int, np.integer)) or not 1 <= nbits <= 16:
        raise LatentgeoError(
            f"nbits = {nbits!r}; allowed: an integer in 1..16 (k = 2**nbits centroids)"
        )
    if m * nbits > 64:
        raise LatentgeoError(f"m × nbits = {m * nbits} bits per code; allowed: at most 64")
    size = parse_train_size(train_size)
    if size != "all" and size < 2**nbits:
        raise LatentgeoError(
            f"train size {size} is below k = 2**{nbits} = {2**nbits}: each codebook's k-means "
            "needs at least k training vectors"
        )
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise LatentgeoError(f"seed = {seed!r}; allowed: an integer in 0..{MAX_SEED}")
    return kinds, size


def _first_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask.any(axis=1) if mask.ndim == 2 else mask)[0])


def check_sample(
    X: np.ndarray, *, quantizers, m: int, nbits: int, name: str = "embeddings"
) -> np.ndarray:
    """Validate a sample of vectors and return it as C-contiguous float32 (n, d).

    Refuses: a non-numeric array, anything but 2-D, an empty array, NaN or infinite values
    (also after conversion to float32), fewer vectors than k = 2**nbits (or than 5, which VRM's
    entropy estimate needs), a dimension PQ cannot split into m equal parts, identical vectors (a
    constant sample) and all-zero vectors (no direction, so no cosine).
    """
    X = np.asarray(X)
    if X.dtype.kind not in "fiu":
        raise LatentgeoError(f"{name}: expected a numeric (float) array, got dtype {X.dtype}")
    if X.ndim != 2:
        raise LatentgeoError(
            f"{name}: expected a 2-D array (vectors × dimensions), got {X.ndim}-D shape {X.shape}"
        )
    n, d = X.shape
    if n == 0 or d == 0:
        raise LatentgeoError(f"{name}: the array is empty (shape {X.shape})")
    bad = ~np.isfinite(X) if X.dtype.kind == "f" else None
    if bad is not None and bad.any():
        n_nan = int(np.isnan(X).sum())
        raise LatentgeoError(
            f"{name}: {n_nan} NaN and {int(bad.sum()) - n_nan} infinite values "
            f"(first in vector {_first_row(bad)}); the measures need finite vectors"
        )
    with np.errstate(over="ignore"):  # reported below, naming the problem
        X32 = np.ascontiguousarray(X, dtype=np.float32)
    if X.dtype != np.float32:
        bad = ~np.isfinite(X32)
        if bad.any():
            raise LatentgeoError(
                f"{name}: {int(bad.sum())} values overflow float32 (first in vector {_first_row(bad)})"
            )
    kinds = parse_quantizers(quantizers)
    k = 2**nbits
    if n < max(k, MIN_VECTORS):
        raise LatentgeoError(
            f"{name}: only {n} vectors, fewer than k = 2**{nbits} = {k} centroids per codebook"
            + ("" if n >= MIN_VECTORS else f" (and the spread measures need at least {MIN_VECTORS})")
            + "; give more vectors or a smaller --nbits"
        )
    if "pq" in kinds and d % m:
        raise LatentgeoError(
            f"{name}: dimension d = {d} is not divisible by m = {m}: the product quantizer splits "
            "every vector into m equal sub-vectors; choose m dividing d or drop pq"
        )
    if not (X32 != X32[0]).any():
        raise LatentgeoError(
            f"{name}: all {n} vectors are identical (a constant sample has no geometry)"
        )
    zero = ~X32.any(axis=1)
    if zero.any():
        raise LatentgeoError(
            f"{name}: {int(zero.sum())} vectors are all zeros (first: vector {_first_row(zero)}); "
            "a zero vector has no direction (cosine similarity is undefined)"
        )
    return X32
