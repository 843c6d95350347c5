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

Methods are named by how they are fitted (:data:`latentgeo.translation.translate.METHOD_FITS`, the
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
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from latentgeo.errors import LatentgeoError
from latentgeo.io import read_jsonl, read_sequences, save_npy, timed, write_csv, write_json
from latentgeo.plotting import figure_style, new_figure, provenance, save_figure
from latentgeo.translation.sentence import sentence_embeddings
from latentgeo.translation.similarity import linear_cka, mutual_knn, rbf_cka
from latentgeo.translation.stitch import fit_target_classifier, stitch
from latentgeo.translation.translate import METHOD_FITS, METHOD_LABELS

# Imported inside the functions that use them (heavy, or rarely needed): seaborn, threadpoolctl, tqdm.

TASK = "bbc-topic"
TASK_LABEL = "BBC News topic"
SUITE = "offline"
KNN_K = 10
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


# --------------------------------------------------------------------------- the experiments


@contextlib.contextmanager
def _one_blas_thread():
    """Hundreds of small SVD / least-squares fits: one BLAS thread each is faster than two fighting
    over busy cores (a 768 × 768 SVD took 5.6 s with 2 OpenBLAS threads on a loaded 2-core machine,
    0.56 s with 1)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _classifiers(vectors: dict[str, np.ndarray], labels: np.ndarray, rows: np.ndarray, seed: int) -> dict:
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
        clfs = _classifiers(vectors, labels, np.arange(n_anchors), seed)
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
    clfs = {n: _classifiers(vectors, labels, np.arange(n), seed) for n in fitted_counts}
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


# --------------------------------------------------------------------------- figures


def _pair_matrix(grid: pd.DataFrame, encoders: list[str], value: str) -> pd.DataFrame:
    m = grid.pivot(index="source", columns="target", values=value)
    return m.reindex(index=encoders, columns=encoders)


def _annotated_matrix(ax, matrix: pd.DataFrame, vmin: float | None, vmax: float | None, cmap: str):
    """A heatmap drawn with imshow and one text per cell (seaborn's heatmap is ~10× slower here)."""
    values = matrix.to_numpy(dtype=float)
    image = ax.imshow(np.ma.masked_invalid(values), vmin=vmin, vmax=vmax, cmap=cmap)
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            r, g, b, _ = image.cmap(image.norm(v))
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5  # perceived luminance of the cell
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white" if dark else "black")
    ax.set_xticks(range(values.shape[1]), matrix.columns, rotation=60, ha="right")
    ax.set_yticks(range(values.shape[0]), matrix.index)
    ax.grid(False)
    return image


def plot_heatmaps(
    grid: pd.DataFrame, value: str, label: str, path: Path, *, profile: str, note: str,
    vmin: float | None = None, vmax: float | None = None, cmap: str = "viridis",
) -> Path:
    """One source × target heatmap of ``value`` per method (columns) and pre-processing (rows)."""
    encoders = list(dict.fromkeys([*grid["source"], *grid["target"]]))
    methods, preps = list(dict.fromkeys(grid["method"])), list(dict.fromkeys(grid["preprocess"]))
    with figure_style():
        fig = new_figure(2.4 * len(methods) + 1.2, 2.5 * len(preps) + 0.9)
        axes = fig.subplots(len(preps), len(methods), squeeze=False)
        for (i, p), (j, m) in itertools.product(enumerate(preps), enumerate(methods)):
            ax = axes[i, j]
            sub = grid[(grid["method"] == m) & (grid["preprocess"] == p)]
            image = _annotated_matrix(ax, _pair_matrix(sub, encoders, value), vmin, vmax, cmap)
            ax.set_title(f"{METHOD_LABELS[m]} · {p}")
            ax.set_xlabel("target" if i == len(preps) - 1 else "")
            ax.set_ylabel("source" if j == 0 else "")
            if j:
                ax.set_yticklabels([])
            if i < len(preps) - 1:
                ax.set_xticklabels([])
        fig.colorbar(image, ax=axes, label=label, shrink=0.8)
        fig.suptitle(f"{label} per encoder pair (blank diagonal: same encoder)\n{provenance(SUITE, profile, note)}")
        return save_figure(fig, path)


def plot_anchor_sweep(sweep: pd.DataFrame, path: Path, *, profile: str, note: str, seed: int) -> Path:
    """Stitched accuracy vs anchors (log axis), mean over ordered pairs with a seeded 95 % band."""
    import seaborn as sns

    sweep = sweep.assign(method=sweep["method"].map(METHOD_LABELS))  # legend says how each is fitted
    with figure_style():
        fig = new_figure(6.0, 3.8)
        ax = fig.subplots()
        sns.lineplot(
            data=sweep, x="n_anchors", y="stitched_accuracy", hue="method", marker="o", ax=ax,
            errorbar=("ci", 95), n_boot=1000, seed=seed,
        )
        target = sweep.groupby("n_anchors")["target_accuracy"].mean()
        ax.plot(target.index, target.values, "k--", lw=1, label="target's own (mean)")
        ax.axhline(sweep["chance_accuracy"].mean(), color="grey", ls=":", lw=1, label="chance (majority)")
        ax.set_xscale("log")
        counts = sorted(sweep["n_anchors"].unique())
        ax.set_xticks(counts, [str(c) for c in counts])
        ax.minorticks_off()
        ax.set_xlabel("anchors (parallel texts, log scale)")
        ax.set_ylabel("stitched accuracy on the fixed evaluation set")
        ax.set_ylim(0, 1)
        ax.legend(loc="lower right")
        fig.suptitle(f"Zero-shot stitched accuracy vs. number of anchors\n{provenance(SUITE, profile)}\n{note}")
        return save_figure(fig, path)


def plot_cka_vs_r2(grid: pd.DataFrame, similarity: pd.DataFrame, path: Path, *, profile: str, note: str) -> Path:
    """Each ordered pair's linear CKA against its stitch R², per method (colour) and pre-processing."""
    import seaborn as sns

    cka = {frozenset((r.encoder_a, r.encoder_b)): r.linear_cka for r in similarity.itertuples()}
    data = grid.assign(
        linear_cka=[cka[frozenset((s, t))] for s, t in zip(grid["source"], grid["target"])],
        method=grid["method"].map(METHOD_LABELS),  # the legend says how each method is fitted
    )
    low = max(-1.0, float(data["r2"].min()) - 0.05)
    with figure_style():
        fig = new_figure(6.0, 4.0)
        ax = fig.subplots()
        sns.scatterplot(data=data, x="linear_cka", y="r2", hue="method", style="preprocess", ax=ax, s=30)
        ax.set_ylim(low, 1.0)
        ax.set_xlabel("linear CKA of the pair (all texts)")
        ax.set_ylabel("stitch R² on evaluation texts" + (" (clipped at −1)" if low == -1.0 else ""))
        ax.legend(loc="best", fontsize=6, ncols=2)
        fig.suptitle(f"Similarity index vs. translation quality\n{provenance(SUITE, profile)}\n{note}")
        return save_figure(fig, path)


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
            profile=params.profile, note=note, vmin=0.0, vmax=1.0,
        ),
        "relative_mse": plot_heatmaps(
            grid, "mse_rel_mean", "MSE / mean-estimator MSE", figures_dir / "stitching_relative_mse.png",
            profile=params.profile, note=note, vmin=0.0, vmax=max(1.0, float(grid["mse_rel_mean"].quantile(0.95))),
            cmap="magma_r",
        ),
        "cka_vs_r2": plot_cka_vs_r2(grid, similarity, figures_dir / "stitching_cka_vs_r2.png", profile=params.profile, note=note),
        "anchor_sweep": plot_anchor_sweep(
            sweep, figures_dir / "stitching_anchor_sweep.png", profile=params.profile,
            note=f"{TASK_LABEL}, pre-processing {sweep_prep}, {len(texts) - max(cfg.anchor_sweep)} evaluation texts",
            seed=cfg.seed,
        ),
        "corpus_relative_mse": plot_heatmaps(
            corpus_grid, "mse_rel_mean", "MSE / mean-estimator MSE",
            figures_dir / "stitching_corpus_relative_mse.png", profile=params.profile,
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
