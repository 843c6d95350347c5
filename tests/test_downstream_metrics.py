"""Task metrics against hand-computed values, scikit-learn, and the suite average (WNLI left out)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from latentgeo.downstream import metrics
from latentgeo.errors import LatentgeoError
from latentgeo.downstream.tasks import GLUE_TASKS, OFFLINE_TASKS

# A binary example counted by hand: TP = 3 (items 0, 4, 6), FP = 2 (1, 7), FN = 1 (3), TN = 2 (2, 5).
PRED = [1, 1, 0, 0, 1, 0, 1, 1]
GOLD = [1, 0, 0, 1, 1, 0, 1, 0]


def test_binary_metrics_match_hand_counts():
    assert metrics.accuracy(PRED, GOLD) == pytest.approx(5 / 8)
    assert metrics.f1_binary(PRED, GOLD) == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    # (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (6 − 2) / sqrt(5·4·4·3)
    assert metrics.matthews(PRED, GOLD) == pytest.approx(4 / math.sqrt(240))


def test_confusion_matrix_counts():
    counts = metrics.confusion_matrix(PRED, GOLD)
    np.testing.assert_array_equal(counts, [[2, 2], [1, 3]])  # rows: gold 0, 1; columns: predicted


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multiclass_matthews_and_f1_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 4, 200)
    pred = np.where(rng.random(200) < 0.6, gold, rng.integers(0, 4, 200))
    assert metrics.matthews(pred, gold) == pytest.approx(skm.matthews_corrcoef(gold, pred))
    g2, p2 = gold % 2, pred % 2
    assert metrics.f1_binary(p2, g2) == pytest.approx(skm.f1_score(g2, p2))
    assert metrics.accuracy(pred, gold) == pytest.approx(skm.accuracy_score(gold, pred))


def test_correlations_match_hand_values():
    # x̄ = 2.5, ȳ = 5: Σdxdy = 11, Σdx² = 5, Σdy² = 26 → r = 11 / sqrt(130); ranks agree → ρ = 1.
    x, y = [1, 2, 3, 4], [2, 4, 5, 9]
    assert metrics.pearson(x, y) == pytest.approx(11 / math.sqrt(130))
    assert metrics.spearman(x, y) == pytest.approx(1.0)
    # Ties take average ranks: x → [1, 2.5, 2.5, 4], y → [1, 3, 2, 4]; ρ = 4.5 / sqrt(4.5 · 5).
    assert metrics.spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / math.sqrt(22.5))


def test_degenerate_inputs_give_chance_not_nan():
    gold = [0, 1, 0, 1]
    assert metrics.matthews([1, 1, 1, 1], gold) == 0.0  # constant predictor
    assert metrics.matthews([0, 1, 0, 1], [1, 1, 1, 1]) == 0.0  # single-class labels
    assert metrics.f1_binary([0, 0], [0, 0]) == 0.0  # no positives at all
    assert metrics.pearson([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]) == 0.0
    assert metrics.spearman([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]) == 0.0


def test_task_metrics_combine_components():
    acc, f1 = 5 / 8, 2 / 3
    out = metrics.task_metrics("accuracy_f1", PRED, GOLD)
    assert out == pytest.approx({"accuracy": acc, "f1": f1, "accuracy_f1": (acc + f1) / 2})
    assert set(metrics.task_metrics("matthews", PRED, GOLD)) == {"matthews", "accuracy"}
    assert metrics.task_metrics("accuracy", PRED, GOLD)["accuracy"] == pytest.approx(acc)
    x, y = [1, 2, 3, 4], [2, 4, 5, 9]
    ps = metrics.task_metrics("pearson_spearman", x, y)
    assert ps["pearson_spearman"] == pytest.approx((11 / math.sqrt(130) + 1) / 2)


def test_every_registered_metric_is_computable():
    for task in [*GLUE_TASKS.values(), *OFFLINE_TASKS.values()]:
        out = metrics.task_metrics(task.metric, PRED, GOLD)
        assert task.metric in out


@pytest.mark.parametrize(
    "args, match",
    [
        (("accuracy", [1, 0], [1]), "2 predictions but 1 labels"),
        (("accuracy", [], []), "empty"),
        (("auc", [1], [1]), "unknown metric 'auc'"),
    ],
)
def test_bad_metric_inputs_are_refused(args, match):
    with pytest.raises(LatentgeoError, match=match):
        metrics.task_metrics(*args)


def test_glue_average_leaves_wnli_out():
    scores = {name: 0.8 for name in GLUE_TASKS}
    scores["wnli"] = 0.1
    assert metrics.suite_average(scores, "glue") == pytest.approx(0.8)
    scores["cola"] = 0.0
    counted = [v for k, v in scores.items() if k != "wnli"]
    assert metrics.suite_average(scores, "glue") == pytest.approx(np.mean(counted))


def test_offline_average_counts_every_task():
    scores = {"bbc-topic": 0.9, "wiki-acceptability": 0.3, "wiki-adjacency": 0.6}
    assert metrics.suite_average(scores, "offline") == pytest.approx(0.6)


def test_suite_average_refuses_bad_input():
    with pytest.raises(LatentgeoError, match="not in suite 'glue'"):
        metrics.suite_average({"bbc-topic": 0.5}, "glue")
    with pytest.raises(LatentgeoError, match="unknown suite"):
        metrics.suite_average({"cola": 0.5}, "superglue")
    with pytest.raises(LatentgeoError, match="no task"):
        metrics.suite_average({"wnli": 0.5}, "glue")


def test_mnli_is_scored_on_the_matched_split_as_the_paper():
    # The paper's glue_parse.py reads run_glue.py's "eval_accuracy", which for MNLI is the
    # accuracy on validation_matched (mismatched goes to "eval_accuracy_mm").
    mnli = GLUE_TASKS["mnli"]
    assert mnli.score_split == "validation_matched"
    assert set(mnli.validation_splits) == {"validation_matched", "validation_mismatched"}
    gold_m, pred_m = [0, 1, 2, 2, 1], [0, 1, 2, 0, 0]  # 3 of 5 right
    gold_mm, pred_mm = [2, 2, 1, 0], [2, 0, 0, 1]  # 1 of 4 right
    by_split = {"validation_matched": metrics.task_metrics("accuracy", pred_m, gold_m),
                "validation_mismatched": metrics.task_metrics("accuracy", pred_mm, gold_mm)}
    assert metrics.score_of_splits(mnli, by_split) == pytest.approx(3 / 5)
    with pytest.raises(LatentgeoError, match="no metrics for its scored split 'validation_matched'"):
        metrics.score_of_splits(mnli, {"validation_mismatched": by_split["validation_mismatched"]})
    with pytest.raises(LatentgeoError, match="has no 'accuracy'"):
        metrics.score_of_splits(mnli, {"validation_matched": {"f1": 0.5}})


@pytest.mark.parametrize("task", [t for t in [*GLUE_TASKS.values(), *OFFLINE_TASKS.values()]
                                  if t.name != "mnli"], ids=lambda t: t.name)
def test_single_split_tasks_score_their_only_split(task):
    assert task.validation_splits == ("validation",) and task.score_split == "validation"
    assert metrics.score_of_splits(task, {"validation": {task.metric: 0.25}}) == 0.25


def test_a_score_split_outside_the_validation_splits_is_refused():
    from latentgeo.downstream.tasks import Task

    with pytest.raises(ValueError, match="score_split 'test' is not one of"):
        Task("x", "glue", ("sentence",), 2, "accuracy", validation_splits=("validation",), score_split="test")
