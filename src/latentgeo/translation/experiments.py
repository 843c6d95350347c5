"""The stitching experiments over a set of encoders that embedded the same texts.

``vectors`` maps each encoder to its (n_texts, d_encoder) float array, rows aligned across
encoders; ``labels`` are the texts' classes (n_texts,), or None for unlabelled texts. The first
``n_anchors`` rows are the parallel anchors of every fit; the rest are judged
(:func:`latentgeo.translation.stitch.stitch`). Here: the grid of every ordered pair × method ×
pre-processing, the anchor-count sweep, the similarity indices per pair, and their summary. The
stitching stage (:mod:`latentgeo.stages.stitching`) embeds, calls these, and writes the files.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from latentgeo.errors import LatentgeoError
from latentgeo.translation.similarity import linear_cka, mutual_knn, rbf_cka
from latentgeo.translation.stitch import fit_target_classifier, stitch
from latentgeo.translation.methods import METHOD_FITS

# Imported inside the functions that use them (rarely needed): tqdm.

KNN_K = 10  # neighbours of the mutual k-NN similarity


def target_classifiers(vectors: dict[str, np.ndarray], labels: np.ndarray, rows: np.ndarray, seed: int) -> dict:
    """One target classifier per encoder, trained on the given anchor rows (shared by all pairs)."""
    return {name: fit_target_classifier(v[rows], labels[rows], seed) for name, v in vectors.items()}


def stitching_grid(
    vectors: dict[str, np.ndarray],
    labels: np.ndarray | None,
    methods: list[str],
    preprocesses: list[str],
    n_anchors: int,
    seed: int,
    *,
    progress: bool = True,
) -> pd.DataFrame:
    """Every ordered pair × method × pre-processing: one row of :func:`latentgeo.translation.stitch.stitch` metrics.

    Without ``labels`` the rows hold reconstruction and retrieval metrics only.
    """
    from tqdm.auto import tqdm

    if labels is None:
        clfs = dict.fromkeys(vectors)
    else:
        clfs = target_classifiers(vectors, labels, np.arange(n_anchors), seed)
    combos = [
        (s, t, m, p)
        for s, t in itertools.permutations(vectors, 2)
        for m in methods
        for p in preprocesses
    ]
    rows = []
    for s, t, m, p in tqdm(combos, desc="stitch", unit="fit", disable=not progress):
        metrics, _ = stitch(vectors[s], vectors[t], n_anchors, m, p, labels, seed, classifier=clfs[t])
        rows.append({"source": s, "target": t, **metrics})
    return pd.DataFrame(rows)


def anchor_sweep(
    vectors: dict[str, np.ndarray],
    labels: np.ndarray,
    methods: list[str],
    preprocess: str,
    counts: list[int],
    seed: int,
    *,
    grid: pd.DataFrame | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Stitched accuracy and R² vs the number of anchors, on one fixed evaluation set (the rows
    after the largest count), for every ordered pair and method.

    ``grid``: rows of :func:`stitching_grid` on the same vectors, labels and seed. Where they hold
    the largest count with ``preprocess``, those fits are the sweep's own (same anchors, same
    evaluation rows, same classifiers), so they are taken from it instead of fitted again.
    """
    from tqdm.auto import tqdm

    counts = sorted(set(counts))
    top = counts[-1]
    pairs = list(itertools.permutations(vectors, 2))
    reused = _grid_rows(grid, pairs, methods, preprocess, top, len(labels) - top)
    fitted_counts = counts[:-1] if reused is not None else counts
    combos = [(n, s, t, m) for n in fitted_counts for s, t in pairs for m in methods]
    clfs = {n: target_classifiers(vectors, labels, np.arange(n), seed) for n in fitted_counts}
    rows = []
    for n, s, t, m in tqdm(combos, desc="anchor sweep", unit="fit", disable=not progress):
        keep = np.r_[0:n, top: len(labels)]
        metrics, _ = stitch(
            vectors[s][keep], vectors[t][keep], n, m, preprocess, labels[keep], seed, classifier=clfs[n][t]
        )
        rows.append({"source": s, "target": t, **metrics})
    sweep = pd.DataFrame(rows)
    if reused is not None:
        sweep = pd.concat([sweep, reused], ignore_index=True) if rows else reused
    return sweep


def _grid_rows(grid: pd.DataFrame | None, pairs: list[tuple[str, str]], methods: list[str],
               preprocess: str, n_anchors: int, n_eval: int) -> pd.DataFrame | None:
    """The grid's rows for ``n_anchors`` anchors, ``n_eval`` evaluation rows and ``preprocess``,
    one per pair × method in sweep order, or None when the grid lacks any of them."""
    if grid is None or not len(grid):
        return None
    if (grid["n_anchors"] != n_anchors).any() or (grid["n_eval"] != n_eval).any():
        return None
    picked = grid[grid["preprocess"] == preprocess].set_index(["source", "target", "method"])
    wanted = [(s, t, m) for s, t in pairs for m in methods]
    if not picked.index.is_unique or not set(wanted) <= set(picked.index):
        return None
    return picked.loc[wanted].reset_index()[list(grid.columns)]


def similarity_table(vectors: dict[str, np.ndarray], *, k: int = KNN_K) -> pd.DataFrame:
    """Linear CKA, RBF CKA and mutual k-NN for every unordered pair, on all texts."""
    rows = []
    for a, b in itertools.combinations(vectors, 2):
        x, y = vectors[a], vectors[b]
        rows.append({
            "encoder_a": a,
            "encoder_b": b,
            "linear_cka": linear_cka(x, y),
            "rbf_cka": rbf_cka(x, y),
            f"mutual_knn_{k}": mutual_knn(x, y, k=k),
        })
    return pd.DataFrame(rows)


def summarise(grid: pd.DataFrame) -> pd.DataFrame:
    """Mean over ordered pairs of the headline metrics, per method × pre-processing (the
    classification columns only where the grid had labels), with how each method is fitted
    (``fitted_by``) and, where the grid has ridge fits, the median over pairs of the chosen λ
    relative to s²_max (``ridge_lambda_relative_median``; empty for the other methods)."""
    headline = ["stitched_accuracy", "target_accuracy", "r2", "mse_rel_mean", "cosine", "top1"]
    cols = [c for c in headline if c in grid.columns]
    groups = grid.groupby(["method", "preprocess"], sort=False)
    summary = groups[cols].mean()
    if "ridge_lambda_relative" in grid.columns:
        summary["ridge_lambda_relative_median"] = groups["ridge_lambda_relative"].median()
    summary = summary.reset_index()
    summary.insert(1, "fitted_by", summary["method"].map(METHOD_FITS))
    return summary


def check_study_labels(labels: np.ndarray, anchor_counts: list[int]) -> None:
    """Each anchor count's first rows must hold two classes or more (the target classifiers are
    trained on them): checked before any embedding, so a bad task file fails at once."""
    for n in sorted(set(anchor_counts)):
        if len(np.unique(labels[:n])) < 2:
            raise LatentgeoError(
                f"the first {n} texts (the anchors of that count) hold a single label: "
                "no target classifier can be trained on them"
            )
