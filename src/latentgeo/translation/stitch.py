"""Judging a translation: reconstruction against controls, retrieval and stitched classification.

Rows of ``source`` and ``target`` are paired items; the first ``n_anchors`` rows fit the
translation, the rest are evaluated. With ŷ the translated evaluation rows and y the target's:

* ``mse``            mean over rows and dimensions of (ŷ − y)².
* ``r2``             1 − MSE / Var, Var the mean per-dimension variance of the target's evaluation
                     rows (the stitching study's R²; the MSE of predicting their own mean).
* ``mse_rel_mean``   MSE / MSE of the mean estimator (always predict the target anchors' mean).
* ``mse_rel_normal`` MSE / MSE of an N(0, 1) estimator, in expectation: mean(y²) + 1.
* ``cosine``         mean cosine similarity of ŷᵢ and yᵢ.
* ``top1``/``top5``  how often yᵢ is among the 1 / 5 target evaluation rows most cosine-similar to ŷᵢ.
* with labels: ``stitched_accuracy`` of a classifier trained on the target's anchors and applied
  to ŷ, beside ``target_accuracy`` (the same classifier on y) and ``chance_accuracy`` (always
  predicting the anchors' most frequent label).

Each record also says how the map was fitted (``fitted_by``, :data:`latentgeo.translation.methods.METHOD_FITS`)
and, for the ridge methods, what the fit chose (``ridge_lambda``, ``ridge_lambda_relative``, …:
:meth:`latentgeo.translation.translate.RidgeFit.record`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from latentgeo.errors import LatentgeoError
from latentgeo.io import MAX_SEED
from latentgeo.translation.similarity import linear_cka
from latentgeo.translation.methods import METHOD_FITS, MIN_ANCHORS
from latentgeo.translation.translate import MLPOptions, Translator, check_method

# Deferred to the functions that use them, so that importing this module stays light: sklearn.

RETRIEVAL_KS = (1, 5)
# Seeds reach numpy, torch and scikit-learn; the last takes 0 .. 2³² − 1.
# Row cap and anchor share of the stitchability measure (kept cheap: it runs once per model).
STITCHABILITY_MAX_ROWS = 5000
STITCHABILITY_ANCHOR_FRACTION = 0.5


def check_stitch_inputs(
    source: np.ndarray,
    target: np.ndarray,
    n_anchors: int,
    method: str,
    preprocess: str,
    labels: np.ndarray | None = None,
    seed: int = 0,
) -> None:
    """Every user-caused problem, found before any fitting: raises :class:`LatentgeoError`."""
    check_method(method, preprocess)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise LatentgeoError(f"seed {seed!r}; allowed: an integer in [0, {MAX_SEED}]")
    for name, arr in (("source", source), ("target", target)):
        if arr.ndim != 2:
            raise LatentgeoError(f"{name} must be a 2-D array (rows × dims), got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
            raise LatentgeoError(f"{name} must hold real numbers, got dtype {arr.dtype}")
        if not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr)).any(axis=1).sum())
            raise LatentgeoError(f"{name} holds NaN or infinite values (in {bad} rows)")
    n = source.shape[0]
    if target.shape[0] != n:
        raise LatentgeoError(
            f"row counts differ: source has {n} rows, target {target.shape[0]} (rows must be paired)"
        )
    need = MIN_ANCHORS[method]
    if n_anchors < need:
        raise LatentgeoError(f"{n_anchors} anchors; method {method!r} needs at least {need}")
    if n_anchors >= n:
        raise LatentgeoError(
            f"{n_anchors} anchors but only {n} rows: at least one row must be left to evaluate"
        )
    if labels is not None:
        if labels.ndim != 1:
            raise LatentgeoError(f"labels must be a 1-D array, got shape {labels.shape}")
        if labels.shape[0] != n:
            raise LatentgeoError(f"labels have {labels.shape[0]} entries but the embeddings {n} rows")
        if len(np.unique(labels[:n_anchors])) < 2:
            raise LatentgeoError("the anchors' labels hold a single class: no classifier can be trained")


def reconstruction_metrics(pred: np.ndarray, target: np.ndarray, anchor_mean: np.ndarray) -> dict:
    """MSE, R², MSE relative to the mean and N(0,1) estimators, and mean cosine (see module doc)."""
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    mse = float(np.mean((pred - target) ** 2))
    var = float(np.mean(target.var(axis=0)))
    mse_mean = float(np.mean((target - anchor_mean) ** 2))
    mse_normal = float(np.mean(target**2) + 1.0)
    norms = np.linalg.norm(pred, axis=1) * np.linalg.norm(target, axis=1)
    cos = np.sum(pred * target, axis=1) / np.maximum(norms, np.finfo(np.float64).tiny)
    return {
        "mse": mse,
        "r2": 1.0 - mse / var if var > 0 else float("nan"),
        "mse_rel_mean": mse / mse_mean if mse_mean > 0 else float("nan"),
        "mse_rel_normal": mse / mse_normal,
        "cosine": float(cos.mean()),
    }


def retrieval_metrics(pred: np.ndarray, target: np.ndarray, ks: Sequence[int] = RETRIEVAL_KS, chunk: int = 2048) -> dict:
    """top-k: share of rows i whose own target yᵢ ranks among the k most cosine-similar targets to ŷᵢ
    (ties count against). Processes ``chunk`` rows at a time to bound memory."""
    def unit(x):
        x = np.asarray(x, np.float64)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.finfo(np.float64).tiny)

    p, t = unit(pred), unit(target)
    ranks = np.empty(len(p), dtype=np.int64)
    for start in range(0, len(p), chunk):
        sims = p[start: start + chunk] @ t.T
        own = sims[np.arange(len(sims)), np.arange(start, start + len(sims))]
        ranks[start: start + len(sims)] = (sims >= own[:, None]).sum(axis=1)  # 1 = best
    return {f"top{k}": float(np.mean(ranks <= k)) for k in ks}


class TargetClassifier:
    """Multinomial logistic regression on the target's anchors, after centring on their mean and
    dividing by one scalar, their RMS distance from it (seeded).

    Not per-dimension standardisation: sentence encoders have dimensions that are constant up to
    float noise (all-MiniLM-L6-v2 and all-mpnet-base-v2 each have a few with std < 1e-6), which a
    per-dimension scaler would blow up by 10⁶, so that a translation's tiny error there would
    decide the class. One scalar keeps the geometry and puts every encoder on one scale for the
    classifier's regularisation.
    """

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, anchors: np.ndarray, labels: np.ndarray) -> TargetClassifier:
        from sklearn.linear_model import LogisticRegression

        x = np.asarray(anchors, np.float64)
        self.mean_ = x.mean(axis=0)
        self.scale_ = float(np.sqrt(np.mean(np.sum((x - self.mean_) ** 2, axis=1)))) or 1.0
        self.model_ = LogisticRegression(max_iter=2000, random_state=self.seed)
        self.model_.fit(self._scaled(x), labels)
        return self

    def _scaled(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float64) - self.mean_) / self.scale_

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model_.predict(self._scaled(x))


def fit_target_classifier(anchors: np.ndarray, labels: np.ndarray, seed: int = 0) -> TargetClassifier:
    """A :class:`TargetClassifier` trained on the target's anchors and their labels."""
    return TargetClassifier(seed).fit(anchors, labels)


def classification_metrics(clf, pred: np.ndarray, target: np.ndarray, labels: np.ndarray, anchor_labels: np.ndarray) -> dict:
    """Stitched accuracy (classifier on ŷ), the target's own accuracy (on y) and chance."""
    values, counts = np.unique(anchor_labels, return_counts=True)
    majority = values[np.argmax(counts)]
    return {
        "stitched_accuracy": float(np.mean(clf.predict(pred) == labels)),
        "target_accuracy": float(np.mean(clf.predict(target) == labels)),
        "chance_accuracy": float(np.mean(labels == majority)),
        "n_classes": int(len(np.unique(np.concatenate([anchor_labels, labels])))),
    }


def stitch(
    source: np.ndarray,
    target: np.ndarray,
    n_anchors: int,
    method: str = "ortho",
    preprocess: str = "standard",
    labels: np.ndarray | None = None,
    seed: int = 0,
    *,
    mlp: MLPOptions | None = None,
    classifier=None,
) -> tuple[dict, np.ndarray]:
    """Fit on the first ``n_anchors`` rows, translate the rest; return (metrics, ŷ float64).

    ``classifier`` lets a caller reuse one already trained on these target anchors and labels.
    """
    source, target = np.asarray(source), np.asarray(target)
    labels = None if labels is None else np.asarray(labels)
    check_stitch_inputs(source, target, n_anchors, method, preprocess, labels, seed)
    translator = Translator(method, preprocess, seed=seed, mlp=mlp or MLPOptions())
    translator.fit(source[:n_anchors], target[:n_anchors])
    pred = translator.transform(source[n_anchors:])
    y = np.asarray(target[n_anchors:], np.float64)
    metrics = {
        "method": method,
        "fitted_by": METHOD_FITS[method],
        "preprocess": preprocess,
        **translator.fit_record_,
        "n_anchors": int(n_anchors),
        "n_eval": int(len(y)),
        "d_source": int(source.shape[1]),
        "d_target": int(target.shape[1]),
        **reconstruction_metrics(pred, y, np.asarray(target[:n_anchors], np.float64).mean(axis=0)),
        **retrieval_metrics(pred, y),
    }
    if labels is not None:
        if classifier is None:
            classifier = fit_target_classifier(target[:n_anchors], labels[:n_anchors], seed)
        metrics.update(classification_metrics(classifier, pred, y, labels[n_anchors:], labels[:n_anchors]))
    return metrics, pred


def stitch_metrics(*args, **kwargs) -> dict:
    """The metrics of :func:`stitch` alone (same arguments)."""
    return stitch(*args, **kwargs)[0]


def stitchability_measures(
    model_vectors: np.ndarray,
    base_vectors: np.ndarray,
    seed: int = 0,
    *,
    max_rows: int = STITCHABILITY_MAX_ROWS,
    anchor_fraction: float = STITCHABILITY_ANCHOR_FRACTION,
    preprocess: str = "center",
) -> dict:
    """How well a (perturbed) model's token space translates onto its unperturbed base's.

    Rows are paired token vectors (same sequences, same tokenizer). A seeded subsample of at most
    ``max_rows`` rows is split at random into anchors (``anchor_fraction``) and evaluation rows.
    Returns ``ortho_r2`` and ``linear_r2`` (R² of the translated evaluation rows, ``preprocess``
    scaling) and ``linear_cka`` of the subsample: higher means the perturbed space is closer to a
    rotation / linear image of the base's. ``center`` is the default because it keeps an exact
    rotation of the base at R² = 1; per-dimension ``standard`` scaling and ``l2`` row normalisation
    do not (they score an exactly rotated, or identical, copy of the base below 1).
    """
    x, y = np.asarray(model_vectors), np.asarray(base_vectors)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise LatentgeoError(f"token vectors must be paired 2-D arrays, got {x.shape} and {y.shape}")
    rng = np.random.default_rng(seed)
    rows = rng.permutation(x.shape[0])[:max_rows]
    x, y = x[rows], y[rows]  # own dtype: it sets standard scaling's constant-dimension threshold
    n_anchors = int(round(anchor_fraction * len(rows)))
    check_stitch_inputs(x, y, n_anchors, "linear", preprocess, seed=seed)
    return {
        "ortho_r2": stitch_metrics(x, y, n_anchors, "ortho", preprocess, seed=seed)["r2"],
        "linear_r2": stitch_metrics(x, y, n_anchors, "linear", preprocess, seed=seed)["r2"],
        "linear_cka": linear_cka(x, y),
    }
