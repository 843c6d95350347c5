"""Downstream task metrics (GLUE's) and the suite average.

Every function takes 1-D arrays of equal length: ``predictions`` (class ids, or real values for
regression) and ``labels`` (the gold class ids or values), and returns a plain ``float``.
Conventions for degenerate inputs follow scikit-learn where it has one and are documented per
function: a score that would be 0/0 is reported as 0.0 (the chance value of the correlation-type
metrics), never NaN, so that averages over tasks stay defined.

The task-level metric names (``accuracy``, ``matthews``, ``accuracy_f1``, ``pearson_spearman``)
are those of :class:`latentgeo.downstream.tasks.Task.metric`; :func:`task_metrics` computes the named one
together with its components; :func:`score_of_splits` picks a task's score among its validation
splits (MNLI: the matched one, as the paper).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import stats

from latentgeo.downstream.tasks import SUITES, Task
from latentgeo.errors import LatentgeoError


def _pair(predictions, labels) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(predictions).reshape(-1)
    y = np.asarray(labels).reshape(-1)
    if p.shape != y.shape:
        raise LatentgeoError(f"{p.size} predictions but {y.size} labels; they must match")
    if p.size == 0:
        raise LatentgeoError("no predictions to score (empty evaluation set)")
    return p, y


def accuracy(predictions, labels) -> float:
    """Fraction of predictions equal to their label, in [0, 1]."""
    p, y = _pair(predictions, labels)
    return float(np.mean(p == y))


def f1_binary(predictions, labels, positive: int = 1) -> float:
    """F1 of the ``positive`` class: 2·TP / (2·TP + FP + FN), in [0, 1].

    0.0 when there is no positive prediction and no positive label (scikit-learn's
    ``zero_division=0``).
    """
    p, y = _pair(predictions, labels)
    tp = np.sum((p == positive) & (y == positive))
    fp = np.sum((p == positive) & (y != positive))
    fn = np.sum((p != positive) & (y == positive))
    denom = 2 * tp + fp + fn
    return float(2 * tp / denom) if denom else 0.0


def confusion_matrix(predictions, labels) -> np.ndarray:
    """Counts ``C[i, j]`` of items with label class i predicted as class j, shape (K, K).

    The K classes are the sorted union of the values seen in labels and predictions.
    """
    p, y = _pair(predictions, labels)
    classes, inverse = np.unique(np.concatenate([y, p]), return_inverse=True)
    yi, pi = inverse[: y.size], inverse[y.size :]
    counts = np.zeros((classes.size, classes.size), dtype=np.int64)
    np.add.at(counts, (yi, pi), 1)
    return counts


def matthews(predictions, labels) -> float:
    """Matthews correlation coefficient (multi-class form of Gorodkin 2004), in [−1, 1].

    With confusion matrix C, s = ΣC, c = trace C, t = row sums (true), p = column sums
    (predicted): MCC = (c·s − t·p) / sqrt((s² − p·p)(s² − t·t)). For two classes this is
    (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)). 0.0 when a constant predictor or a
    single-class label set makes the denominator 0 (as scikit-learn).
    """
    counts = confusion_matrix(predictions, labels).astype(np.float64)
    s = counts.sum()
    c = np.trace(counts)
    t = counts.sum(axis=1)
    p = counts.sum(axis=0)
    denom = np.sqrt((s * s - p @ p) * (s * s - t @ t))
    return float((c * s - t @ p) / denom) if denom > 0 else 0.0


def _correlation(kind: str, predictions, labels) -> float:
    p, y = _pair(predictions, labels)
    p, y = p.astype(np.float64), y.astype(np.float64)
    if p.size < 2 or np.ptp(p) == 0 or np.ptp(y) == 0:
        # Undefined (0/0): a constant prediction carries no information, i.e. chance level.
        return 0.0
    fn = stats.pearsonr if kind == "pearson" else stats.spearmanr
    return float(fn(p, y)[0])


def pearson(predictions, labels) -> float:
    """Pearson correlation of predictions and labels; 0.0 if either is constant."""
    return _correlation("pearson", predictions, labels)


def spearman(predictions, labels) -> float:
    """Spearman rank correlation (ties get average ranks); 0.0 if either is constant."""
    return _correlation("spearman", predictions, labels)


def task_metrics(metric: str, predictions, labels) -> dict[str, float]:
    """The task metric named ``metric`` and its components, e.g. for ``accuracy_f1``
    ``{"accuracy": …, "f1": …, "accuracy_f1": mean of the two}``.

    Classification predictions are class ids; regression (``pearson_spearman``) predictions
    are real values. The key ``metric`` always holds the task's score.
    """
    if metric == "accuracy":
        return {"accuracy": accuracy(predictions, labels)}
    if metric == "matthews":
        return {"matthews": matthews(predictions, labels), "accuracy": accuracy(predictions, labels)}
    if metric == "accuracy_f1":
        acc, f1 = accuracy(predictions, labels), f1_binary(predictions, labels)
        return {"accuracy": acc, "f1": f1, "accuracy_f1": (acc + f1) / 2}
    if metric == "pearson_spearman":
        r, rho = pearson(predictions, labels), spearman(predictions, labels)
        return {"pearson": r, "spearman": rho, "pearson_spearman": (r + rho) / 2}
    raise LatentgeoError(
        f"unknown metric {metric!r}; allowed: accuracy, matthews, accuracy_f1, pearson_spearman"
    )


def score_of_splits(task: Task, metrics_by_split: Mapping[str, Mapping[str, float]]) -> float:
    """A task's score from the metrics of its validation splits: ``task.metric`` on
    ``task.score_split``.

    ``metrics_by_split`` maps split names to metric dicts (:func:`task_metrics` output, e.g. the
    ``metrics`` of a ``scores.json``). For MNLI that is ``validation_matched``, the paper's
    ``eval_accuracy`` (GLUE's MNLI-m); the mismatched split is scored too but not used here.
    A missing split or metric is refused.
    """
    split = task.score_split
    if split not in metrics_by_split:
        raise LatentgeoError(
            f"task {task.name}: no metrics for its scored split {split!r}; got {sorted(metrics_by_split)}"
        )
    if task.metric not in metrics_by_split[split]:
        raise LatentgeoError(
            f"task {task.name}: split {split!r} has no {task.metric!r}; got {sorted(metrics_by_split[split])}"
        )
    return float(metrics_by_split[split][task.metric])


def suite_average(scores: Mapping[str, float], suite: str) -> float:
    """Mean of the task scores of ``suite``, leaving out tasks with ``in_average`` False (WNLI).

    ``scores`` maps task names of the suite to their score; tasks of the suite that are absent
    are not counted (a profile may run a subset). A name outside the suite, or no task left to
    average, is refused.
    """
    if suite not in SUITES:
        raise LatentgeoError(f"unknown suite {suite!r}; allowed: {sorted(SUITES)}")
    tasks = SUITES[suite]
    unknown = sorted(set(scores) - set(tasks))
    if unknown:
        raise LatentgeoError(f"tasks {unknown} are not in suite {suite!r}; allowed: {sorted(tasks)}")
    counted = [float(v) for name, v in scores.items() if tasks[name].in_average]
    if not counted:
        raise LatentgeoError(f"no task of suite {suite!r} that counts in its average was given")
    return float(np.mean(counted))
