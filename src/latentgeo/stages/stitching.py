"""Stage 6 (notebook 06_stitching): latent space translation and stitching across genuinely different sentence encoders.

The same texts (the first ``stitching.n_sentences`` of the offline BBC News topic task: train rows
then validation rows) are embedded by every encoder of ``stitching.encoders``. For every ordered
pair (source → target), every method and every pre-processing, a translation is fitted on the first
``stitching.anchors`` texts and judged on the rest (:mod:`latentgeo.translation.stitch`): reconstruction against
the mean and N(0,1) estimators, retrieval, and zero-shot stitched topic classification. An
anchor-count sweep (every method, the first listed pre-processing, one fixed evaluation set: the
texts after the largest count) and similarity indices per pair (linear/RBF CKA, mutual k-NN)
complete it. The first ``stitching.corpus_sentences`` sentences of the latent-sample corpus
(``data/corpus/sequences.jsonl``: unlabelled, shorter and more varied than the news texts) are
translated too, with the same anchor count, and judged by reconstruction and retrieval only.

The experiments are :mod:`latentgeo.translation.experiments`, the figures
:mod:`latentgeo.translation.figures`; this module reads the inputs, embeds, calls them, and writes.

Methods are named by how they are fitted (:data:`latentgeo.translation.methods.METHOD_FITS`, the
``fitted_by`` column of every table, the panel titles and legends of every figure): ``affine`` is
the closed-form least-squares map with a bias, ``affine-sgd`` the translation library's Adam
training of the same model, ``linear-ridge`` / ``affine-ridge`` ridge maps whose λ is
cross-validated on the anchors (the chosen λ is in the ``ridge_*`` columns).

Outputs (``out_dir``): ``embeddings/<encoder>.npy`` and ``labels.npy`` (reusable with
``latentgeo stitch``), ``metrics.json`` (settings, summary, every result nested), ``grid.csv``,
``sweep.csv``, ``similarity.csv``, and for the corpus ``corpus/embeddings/<encoder>.npy`` and
``corpus/grid.csv``. Figures (``figures_dir``): ``stitching_accuracy.png``,
``stitching_relative_mse.png``, ``stitching_anchor_sweep.png``, ``stitching_cka_vs_r2.png``,
``stitching_corpus_relative_mse.png``.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from latentgeo.errors import LatentgeoError
from latentgeo.io import read_jsonl, read_sequences, save_npy, timed, write_csv, write_json
from latentgeo.translation.experiments import (
    anchor_sweep,
    check_study_labels,
    similarity_table,
    stitching_grid,
    summarise,
)
from latentgeo.translation.figures import plot_anchor_sweep, plot_cka_vs_r2, plot_heatmaps
from latentgeo.translation.sentence import sentence_embeddings
from latentgeo.translation.methods import METHOD_FITS

# Imported inside the functions that use them (rarely needed): threadpoolctl.

TASK = "bbc-topic"
TASK_LABEL = "BBC News topic"
SUITE = "offline"
# Texts embedded per forward batch; BBC texts are ~80 words, so batches stay well below the
# token budget.
BATCH_SIZE = 32
# Columns that only some methods fill (the ridge fits' chosen λ): empty for the others.
METHOD_SPECIFIC_PREFIX = "ridge_"


@dataclass
class StitchingResult:
    """What the stage produced: tidy tables (``corpus_grid``: the label-free translation of the
    corpus sentences), figure paths and the seconds each step took (not written to the metrics:
    they vary)."""

    grid: pd.DataFrame
    sweep: pd.DataFrame
    similarity: pd.DataFrame
    summary: pd.DataFrame
    corpus_grid: pd.DataFrame
    corpus_summary: pd.DataFrame
    figures: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- inputs


def load_task_texts(tasks_dir: str | os.PathLike, n: int, task: str = TASK) -> tuple[list[str], np.ndarray]:
    """The first ``n`` texts and labels of ``<tasks_dir>/<task>/train.jsonl`` then ``validation.jsonl``."""
    folder = Path(tasks_dir) / task
    rows: list[dict] = []
    for split in ("train", "validation"):
        path = folder / f"{split}.jsonl"
        if not path.is_file():
            raise LatentgeoError(f"task file not found: {path} (build the data with `latentgeo data build`)")
        rows.extend(read_jsonl(path))
        if len(rows) >= n:
            break
    if len(rows) < n:
        raise LatentgeoError(f"{folder} holds {len(rows)} texts; stitching.n_sentences asks for {n}")
    rows = rows[:n]
    for i, row in enumerate(rows):
        if not isinstance(row.get("text"), str) or "label" not in row:
            raise LatentgeoError(f"{folder}: record {i} lacks a string 'text' or a 'label'")
    return [r["text"] for r in rows], np.asarray([r["label"] for r in rows])


def load_corpus_texts(sequences_file: str | os.PathLike, n: int) -> list[str]:
    """The first ``n`` sentences of a sequences file (:func:`latentgeo.io.read_sequences`)."""
    texts = read_sequences(sequences_file)
    if len(texts) < n:
        raise LatentgeoError(
            f"{sequences_file} holds {len(texts)} sentences; stitching.corpus_sentences asks for {n}"
        )
    blank = next((i for i, t in enumerate(texts[:n], 1) if not t.strip()), None)
    if blank is not None:
        raise LatentgeoError(f"{sequences_file}: sequence {blank} is blank")
    return texts[:n]


def embed_encoders(
    encoders: list[str], texts: list[str], out_dir: Path, *, progress: bool = True
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Sentence embeddings of ``texts`` per encoder, saved as ``out_dir/embeddings/<name>.npy``."""
    vectors, seconds = {}, {}
    for name in encoders:
        with timed(seconds, name):
            vectors[name] = sentence_embeddings(name, texts, batch_size=BATCH_SIZE, progress=progress)
        if not np.isfinite(vectors[name]).all():
            raise LatentgeoError(f"encoder {name} produced non-finite vectors")
        save_npy(out_dir / "embeddings" / f"{name}.npy", vectors[name])
    return vectors, seconds


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _one_blas_thread():
    """Hundreds of small SVD / least-squares fits: one BLAS thread each is faster than two fighting
    over busy cores (a 768 × 768 SVD took 5.6 s with 2 OpenBLAS threads on a loaded 2-core machine,
    0.56 s with 1)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _nested(df: pd.DataFrame, keys: list[str], drop: list[str] = ()) -> dict:
    """Rows of ``df`` as a dict nested by the ``keys`` columns (for metrics.json). Columns of one
    kind of method only (``ridge_*``) are left out of the other methods' records, not written null."""
    out: dict = {}
    for rec in df.to_dict("records"):
        node = out
        for key in keys[:-1]:
            node = node.setdefault(str(rec[key]), {})
        node[str(rec[keys[-1]])] = {
            c: v for c, v in rec.items()
            if c not in keys and c not in drop and not (c.startswith(METHOD_SPECIFIC_PREFIX) and pd.isna(v))
        }
    return out


# --------------------------------------------------------------------------- the stage


def run_stitching_study(
    params, texts: list[str], labels: np.ndarray, out_dir: str | os.PathLike, figures_dir: str | os.PathLike,
    corpus_texts: list[str], *, progress: bool = True,
) -> StitchingResult:
    """Embed, translate, judge, and draw; see the module docstring for what is written where.

    ``texts``/``labels``: ``stitching.n_sentences`` labelled texts; ``corpus_texts``:
    ``stitching.corpus_sentences`` unlabelled sentences.
    """
    cfg = params.stitching
    labels = np.asarray(labels)
    if len(texts) != len(labels):
        raise LatentgeoError(f"{len(texts)} texts but {len(labels)} labels")
    if len(texts) != cfg.n_sentences:
        raise LatentgeoError(f"{len(texts)} texts given; stitching.n_sentences is {cfg.n_sentences}")
    n_corpus = len(corpus_texts)
    if n_corpus != cfg.corpus_sentences:
        raise LatentgeoError(
            f"{n_corpus} corpus sentences given; stitching.corpus_sentences is {cfg.corpus_sentences}"
        )
    check_study_labels(labels, [cfg.anchors, *cfg.anchor_sweep])
    out_dir, figures_dir = Path(out_dir), Path(figures_dir)
    note = f"{TASK_LABEL}, {len(texts)} texts, {cfg.anchors} anchors"

    vectors, timings = embed_encoders(list(cfg.encoders), list(texts), out_dir, progress=progress)
    save_npy(out_dir / "labels.npy", labels)
    with timed(timings, "grid"), _one_blas_thread():
        grid = stitching_grid(vectors, labels, list(cfg.methods), list(cfg.preprocess), cfg.anchors, cfg.seed, progress=progress)
    sweep_prep = cfg.preprocess[0]
    with timed(timings, "sweep"), _one_blas_thread():
        sweep = anchor_sweep(
            vectors, labels, list(cfg.methods), sweep_prep, list(cfg.anchor_sweep), cfg.seed,
            grid=grid, progress=progress,
        )
    with timed(timings, "similarity"), _one_blas_thread():
        similarity = similarity_table(vectors)
    summary = summarise(grid)
    corpus_vectors, corpus_timings = embed_encoders(
        list(cfg.encoders), list(corpus_texts), out_dir / "corpus", progress=progress
    )
    timings.update({f"corpus:{k}": v for k, v in corpus_timings.items()})
    with timed(timings, "corpus:grid"), _one_blas_thread():
        corpus_grid = stitching_grid(
            corpus_vectors, None, list(cfg.methods), list(cfg.preprocess), cfg.anchors, cfg.seed,
            progress=progress,
        )
    corpus_summary = summarise(corpus_grid)
    write_csv(out_dir / "corpus" / "grid.csv", corpus_grid)

    write_csv(out_dir / "grid.csv", grid)
    write_csv(out_dir / "sweep.csv", sweep)
    write_csv(out_dir / "similarity.csv", similarity)
    write_json(out_dir / "metrics.json", {
        "profile": params.profile,
        "suite": SUITE,
        "task": TASK,
        "settings": {**cfg.model_dump(), "sweep_preprocess": sweep_prep},
        "dims": {name: int(v.shape[1]) for name, v in vectors.items()},
        "methods": {m: METHOD_FITS[m] for m in cfg.methods},
        "summary": _nested(summary, ["method", "preprocess"], ["fitted_by"]),
        "pairs": _nested(grid, ["source", "target", "method", "preprocess"], ["fitted_by"]),
        "sweep": _nested(sweep, ["n_anchors", "source", "target", "method"], ["preprocess", "fitted_by"]),
        "similarity": _nested(similarity, ["encoder_a", "encoder_b"]),
        "corpus": {
            "n_sentences": n_corpus,
            "summary": _nested(corpus_summary, ["method", "preprocess"], ["fitted_by"]),
            "pairs": _nested(corpus_grid, ["source", "target", "method", "preprocess"], ["fitted_by"]),
        },
    })

    figures = {
        "accuracy": plot_heatmaps(
            grid, "stitched_accuracy", "stitched accuracy", figures_dir / "stitching_accuracy.png",
            suite=SUITE, profile=params.profile, note=note, vmin=0.0, vmax=1.0,
        ),
        "relative_mse": plot_heatmaps(
            grid, "mse_rel_mean", "MSE / mean-estimator MSE", figures_dir / "stitching_relative_mse.png",
            suite=SUITE, profile=params.profile, note=note, vmin=0.0, vmax=max(1.0, float(grid["mse_rel_mean"].quantile(0.95))),
            cmap="magma_r",
        ),
        "cka_vs_r2": plot_cka_vs_r2(grid, similarity, figures_dir / "stitching_cka_vs_r2.png",
                                    suite=SUITE, profile=params.profile, note=note),
        "anchor_sweep": plot_anchor_sweep(
            sweep, figures_dir / "stitching_anchor_sweep.png", suite=SUITE, profile=params.profile,
            note=f"{TASK_LABEL}, pre-processing {sweep_prep}, {len(texts) - max(cfg.anchor_sweep)} evaluation texts",
            seed=cfg.seed,
        ),
        "corpus_relative_mse": plot_heatmaps(
            corpus_grid, "mse_rel_mean", "MSE / mean-estimator MSE",
            figures_dir / "stitching_corpus_relative_mse.png", suite=SUITE, profile=params.profile,
            note=f"corpus sentences (unlabelled), {n_corpus} sentences, {cfg.anchors} anchors",
            vmin=0.0, vmax=max(1.0, float(corpus_grid["mse_rel_mean"].quantile(0.95))), cmap="magma_r",
        ),
    }
    return StitchingResult(grid, sweep, similarity, summary, corpus_grid, corpus_summary, figures, timings)


def run_stitching_stage(
    params, tasks_dir: str | os.PathLike, out_dir: str | os.PathLike, figures_dir: str | os.PathLike,
    corpus_file: str | os.PathLike, *, progress: bool = True,
) -> StitchingResult:
    """The notebook's one call: read the BBC topic texts and the first
    ``stitching.corpus_sentences`` of ``corpus_file``, then :func:`run_stitching_study`."""
    cfg = params.stitching
    texts, labels = load_task_texts(tasks_dir, cfg.n_sentences)
    corpus_texts = load_corpus_texts(corpus_file, cfg.corpus_sentences)
    return run_stitching_study(
        params, texts, labels, out_dir, figures_dir, corpus_texts, progress=progress
    )
