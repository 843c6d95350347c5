"""Geometric measures of a latent space: the geometry paper's full set, corrected variants, more.

* :mod:`.kinds` — the quantizer kinds a profile may name.
* :mod:`.quantizers` — FAISS product / local-search / residual quantizers: train, encode, decode.
* :mod:`.cells` — reconstruction error and its distribution (IQR, skew, share below the mean),
  point-count measures, the centroid measure, point_dist, point patchiness (paper-compatible and
  corrected).
* :mod:`.spread` — EEE, VRM, IsoScore, effective rank, anisotropy.
* :mod:`.intrinsic` — TwoNN intrinsic dimension.
* :mod:`.validate` — checks of a sample and of the quantizer settings.
* :mod:`.compute` — all of them on one sample: :func:`~latentgeo.geometry.measures.compute.measure_space`.

The stage that runs them on a ``.npy`` sample and writes deterministic JSON
(:func:`~latentgeo.stages.measures.measures_file`) is :mod:`latentgeo.stages.measures`; its figures
are in :mod:`latentgeo.analysis.measure_plots`.

Formulas: Marbut, Chandler & Wheeler (arXiv 2406.12159) and their code
(``VM_transfer/sample_build_and_metrics.py``); how each of our measures relates to theirs is in
the :mod:`.cells` and :mod:`.spread` docstrings and ``docs/measures.md``.
"""
