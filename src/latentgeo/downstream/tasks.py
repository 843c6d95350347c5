"""The registry of downstream tasks: their suite, text fields, labels and metric.

Two suites exist. ``glue`` is the paper's benchmark (loaded through ``datasets`` with network);
``offline`` is this repository's stand-in built from packaged corpora by ``latentgeo data build``
(see :mod:`latentgeo.data.offline_tasks`). A score always carries the name of its suite.
"""

from __future__ import annotations

from dataclasses import dataclass

from latentgeo.errors import LatentgeoError


@dataclass(frozen=True)
class Task:
    """One task: where its data lives and how it is scored.

    ``num_labels`` is 1 for regression (STS-B). ``metric`` names a function of
    :mod:`latentgeo.downstream.metrics`. ``validation_splits`` lists the evaluation splits (MNLI has two):
    all are evaluated and recorded. ``score_split`` is the one whose metric is the task's score
    (:func:`latentgeo.downstream.metrics.score_of_splits`); it defaults to the first of
    ``validation_splits``.
    """

    name: str
    suite: str
    text_fields: tuple[str, ...]
    num_labels: int
    metric: str
    hub_config: str | None = None
    validation_splits: tuple[str, ...] = ("validation",)
    in_average: bool = True
    score_split: str | None = None

    def __post_init__(self) -> None:
        if self.score_split is None:
            object.__setattr__(self, "score_split", self.validation_splits[0])
        elif self.score_split not in self.validation_splits:
            raise ValueError(f"task {self.name}: score_split {self.score_split!r} is not one of "
                             f"{self.validation_splits}")

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1

    @property
    def chance(self) -> float:
        """Expected score of a constant or random predictor under this task's metric."""
        if self.metric in ("matthews", "pearson_spearman"):
            return 0.0
        if self.metric == "accuracy_f1":
            return 0.5 * (0.5 + 2 / 3)  # always-positive on balanced binary labels
        return 1.0 / self.num_labels


GLUE_TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task("cola", "glue", ("sentence",), 2, "matthews", "cola"),
        Task("sst2", "glue", ("sentence",), 2, "accuracy", "sst2"),
        Task("mrpc", "glue", ("sentence1", "sentence2"), 2, "accuracy_f1", "mrpc"),
        Task("qqp", "glue", ("question1", "question2"), 2, "accuracy_f1", "qqp"),
        Task("stsb", "glue", ("sentence1", "sentence2"), 1, "pearson_spearman", "stsb"),
        # MNLI's score is accuracy on validation_matched, as in the paper: run_glue.py writes the
        # matched accuracy as eval_accuracy (the mismatched one as eval_accuracy_mm) and the
        # paper's glue_parse.py reads eval_accuracy. GLUE itself reports MNLI-m and MNLI-mm side
        # by side; both splits are evaluated and kept in each scores.json ("metrics"), so the
        # mismatched accuracy, or the mean of the two, can be had from the same run.
        Task(
            "mnli", "glue", ("premise", "hypothesis"), 3, "accuracy", "mnli",
            validation_splits=("validation_matched", "validation_mismatched"),
            score_split="validation_matched",
        ),
        Task("qnli", "glue", ("question", "sentence"), 2, "accuracy", "qnli"),
        Task("rte", "glue", ("sentence1", "sentence2"), 2, "accuracy", "rte"),
        # The paper (and GLUE practice) leaves WNLI out of the average.
        Task("wnli", "glue", ("sentence1", "sentence2"), 2, "accuracy", "wnli", in_average=False),
    ]
}

OFFLINE_TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        # BBC News topic (business, entertainment, politics, sport, tech): SST-2-like single text.
        Task("bbc-topic", "offline", ("text",), 5, "accuracy"),
        # Real Wikipedia sentence vs. the same sentence with some words reordered: CoLA-like.
        Task("wiki-acceptability", "offline", ("sentence",), 2, "matthews"),
        # Two adjacent Wikipedia sentences vs. two unrelated ones: MRPC-like pair task.
        Task("wiki-adjacency", "offline", ("sentence1", "sentence2"), 2, "accuracy_f1"),
    ]
}

SUITES: dict[str, dict[str, Task]] = {"glue": GLUE_TASKS, "offline": OFFLINE_TASKS}


def get_task(name: str, suite: str | None = None) -> Task:
    """Look a task up by name (optionally within one suite); unknown names are refused."""
    suites = [suite] if suite else list(SUITES)
    for s in suites:
        if s not in SUITES:
            raise LatentgeoError(f"unknown suite {s!r}; allowed: {sorted(SUITES)}")
        if name in SUITES[s]:
            return SUITES[s][name]
    allowed = sorted(n for s in suites for n in SUITES[s])
    raise LatentgeoError(f"unknown task {name!r}; allowed: {allowed}")
