"""Geometric measures of a latent space: the geometry paper's full set, corrected variants, more.

* :mod:`.quantizers` — FAISS product / local-search / residual quantizers: train, encode, decode.
* :mod:`.cells` — reconstruction error and its distribution (IQR, skew, share below the mean),
  point-count measures, the centroid measure, point_dist, point patchiness (paper-compatible and
  corrected).
* :mod:`.spread` — EEE, VRM, IsoScore, effective rank, anisotropy.
* :mod:`.intrinsic` — TwoNN intrinsic dimension.
* :mod:`.stage` — :func:`compute_measures` / :func:`measure_space` on an array and
  :func:`measures_file` from a ``.npy`` file to deterministic JSON.
* :mod:`.plots` — figures of the stage.

Formulas: Marbut, Chandler & Wheeler (arXiv 2406.12159) and their code
(``VM_transfer/sample_build_and_metrics.py``); how each of our measures relates to theirs is in
the :mod:`.cells` and :mod:`.spread` docstrings and ``docs/measures.md``.
"""

from .stage import (
    DEFAULT_TRAIN_SIZE,
    SPREAD_MEASURES,
    MeasureReport,
    compute_measures,
    measure_space,
    measures_file,
    measures_table,
)

__all__ = [
    "DEFAULT_TRAIN_SIZE",
    "SPREAD_MEASURES",
    "MeasureReport",
    "compute_measures",
    "measure_space",
    "measures_file",
    "measures_table",
]
