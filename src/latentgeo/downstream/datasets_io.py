"""Task data for fine-tuning: GLUE through ``datasets`` and the offline suite from JSON Lines.

Both paths end in the same :class:`TaskData` (``datasets.Dataset`` splits holding exactly the
task's text fields and ``label``), checked before any training: the text fields exist and hold
strings, labels are class ids ``0..num_labels−1`` (real numbers for regression), no split is
empty. Anything wrong raises :class:`~latentgeo.errors.LatentgeoError` naming the file or split,
the record and the problem.

* **GLUE** (the paper's protocol): ``datasets.load_dataset("nyu-mll/glue", config)``. The loader is
  a parameter so that tests run this very code on small files in GLUE's column layout (through
  ``datasets``' ``json`` builder); without network the default fails at once with a clear message.
* **Offline suite** (``latentgeo data build``): ``<data_dir>/<task>/<split>.jsonl``, one JSON
  object per line with the task's text fields and an integer ``label``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from latentgeo.downstream.tasks import Task
from latentgeo.errors import LatentgeoError
from latentgeo.io import read_jsonl
from latentgeo.models.hub import require_hub

# Deferred to the functions that use them, so that importing this module stays light: datasets.

if TYPE_CHECKING:  # pragma: no cover
    import datasets

GLUE_HUB_ID = "nyu-mll/glue"
TRAIN_SPLIT = "train"

# ``loader(path, name)`` returns a mapping split name → ``datasets.Dataset``
# (``datasets.load_dataset``'s signature and result).
Loader = Callable[..., Any]


@dataclass(frozen=True)
class TaskData:
    """A task's checked splits: ``train`` and one dataset per ``task.validation_splits``."""

    task: Task
    train: datasets.Dataset
    validation: dict[str, datasets.Dataset]

    def sizes(self) -> dict[str, int]:
        """Examples per split, e.g. ``{"train": 600, "validation": 300}``."""
        return {TRAIN_SPLIT: len(self.train), **{k: len(v) for k, v in self.validation.items()}}


def label_problem(label: Any, task: Task) -> str | None:
    """Why ``label`` is not valid for ``task`` (None if it is).

    Classification: an integer (not a bool) in ``0..num_labels−1``. Regression: a finite number.
    """
    if task.is_regression:
        if isinstance(label, bool) or not isinstance(label, (int, float, np.integer, np.floating)):
            return f"label {label!r} is not a number (task {task.name} is a regression)"
        if not math.isfinite(float(label)):
            return f"label {label!r} is not finite"
        return None
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)):
        return f"label {label!r} is not an integer class id; allowed: 0..{task.num_labels - 1}"
    if not 0 <= int(label) < task.num_labels:
        return f"label {label!r} is out of range; allowed: 0..{task.num_labels - 1}"
    return None


def check_records(rows: list[dict], task: Task, where: str) -> None:
    """Check JSON records of one split: non-empty, text fields are strings, labels valid."""
    if not rows:
        raise LatentgeoError(f"{where}: the split is empty (no records)")
    for i, row in enumerate(rows, 1):
        for field in (*task.text_fields, "label"):
            if field not in row:
                raise LatentgeoError(
                    f"{where}: record {i} has no field {field!r}; task {task.name} needs "
                    f"{list(task.text_fields) + ['label']}"
                )
        for field in task.text_fields:
            if not isinstance(row[field], str):
                raise LatentgeoError(f"{where}: record {i}: field {field!r} is not a string")
        problem = label_problem(row["label"], task)
        if problem:
            raise LatentgeoError(f"{where}: record {i}: {problem}")


def check_split(ds: datasets.Dataset, task: Task, where: str) -> None:
    """The same checks as :func:`check_records`, column-wise on a ``datasets.Dataset``."""
    missing = [f for f in (*task.text_fields, "label") if f not in ds.column_names]
    if missing:
        raise LatentgeoError(
            f"{where}: columns {missing} are missing; found {ds.column_names}, task {task.name} "
            f"needs {list(task.text_fields) + ['label']}"
        )
    if len(ds) == 0:
        raise LatentgeoError(f"{where}: the split is empty (no records)")
    for field in task.text_fields:
        bad = next((i for i, v in enumerate(ds[field]) if not isinstance(v, str)), None)
        if bad is not None:
            raise LatentgeoError(f"{where}: record {bad + 1}: field {field!r} is not a string")
    for i, label in enumerate(ds["label"]):
        problem = label_problem(label, task)
        if problem:
            raise LatentgeoError(f"{where}: record {i + 1}: {problem}")


def _restrict(ds: datasets.Dataset, task: Task) -> datasets.Dataset:
    """Keep only the task's text fields and ``label`` (drops e.g. GLUE's ``idx``)."""
    return ds.select_columns([*task.text_fields, "label"])


def load_glue(task: Task, loader: Loader | None = None) -> TaskData:
    """A GLUE task's train and validation splits through ``datasets``.

    ``loader`` defaults to :func:`datasets.load_dataset` (called as
    ``loader("nyu-mll/glue", config)``); before it runs, the hub is probed and an offline
    machine gets :class:`~latentgeo.errors.OfflineError` at once instead of a long retry.
    """
    if task.suite != "glue" or task.hub_config is None:
        raise LatentgeoError(f"task {task.name!r} is not a GLUE task (suite {task.suite!r})")
    if loader is None:
        require_hub(f"GLUE task {task.name!r} (data set {GLUE_HUB_ID})")
        from datasets import load_dataset as loader  # type: ignore[assignment]
    splits = loader(GLUE_HUB_ID, task.hub_config)
    needed = (TRAIN_SPLIT, *task.validation_splits)
    missing = [s for s in needed if s not in splits]
    if missing:
        raise LatentgeoError(
            f"GLUE {task.hub_config}: splits {missing} are missing; found {sorted(splits)}"
        )
    checked = {}
    for split in needed:
        check_split(splits[split], task, f"GLUE {task.hub_config}/{split}")
        checked[split] = _restrict(splits[split], task)
    return TaskData(task, checked[TRAIN_SPLIT], {s: checked[s] for s in task.validation_splits})


def offline_task_files(task: Task, data_dir: str | os.PathLike) -> dict[str, Path]:
    """Where an offline task's splits live: ``<data_dir>/<task>/<split>.jsonl``."""
    folder = Path(data_dir) / task.name
    return {s: folder / f"{s}.jsonl" for s in (TRAIN_SPLIT, *task.validation_splits)}


def _dataset_from_records(rows: list[dict], task: Task) -> datasets.Dataset:
    import datasets

    features = {f: datasets.Value("string") for f in task.text_fields}
    features["label"] = datasets.Value("float32" if task.is_regression else "int64")
    columns = {f: [row[f] for row in rows] for f in (*task.text_fields, "label")}
    return datasets.Dataset.from_dict(columns, features=datasets.Features(features))


def read_offline_task(task: Task, data_dir: str | os.PathLike) -> TaskData:
    """Read and check an offline-suite task from ``data_dir`` (see :func:`offline_task_files`)."""
    if task.suite != "offline":
        raise LatentgeoError(f"task {task.name!r} is not an offline-suite task (suite {task.suite!r})")
    files = offline_task_files(task, data_dir)
    absent = [str(p) for p in files.values() if not p.is_file()]
    if absent:
        raise LatentgeoError(
            f"task files not found: {absent}; build the offline suite with "
            "`latentgeo data build` (or `latentgeo data get`) or pass the right --data-dir"
        )
    splits = {}
    for split, path in files.items():
        rows = read_jsonl(path)
        check_records(rows, task, str(path))
        splits[split] = _dataset_from_records(rows, task)
    return TaskData(task, splits[TRAIN_SPLIT], {s: splits[s] for s in task.validation_splits})


def load_task_data(
    task: Task, data_dir: str | os.PathLike | None = None, loader: Loader | None = None
) -> TaskData:
    """A task's checked data from its suite: GLUE through ``loader``, offline from ``data_dir``."""
    if task.suite == "glue":
        return load_glue(task, loader)
    if data_dir is None:
        raise LatentgeoError(f"task {task.name!r} is in the offline suite: give its data folder")
    return read_offline_task(task, data_dir)


def subsample_indices(n: int, size: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a seeded uniform sample of ``size`` out of ``n`` (all if None or ≥ n)."""
    if size is None or size >= n:
        return np.arange(n)
    if size <= 0:
        raise LatentgeoError(f"sample size must be positive, got {size}")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=size, replace=False))


def subsample(data: TaskData, train_size: int | None, eval_size: int | None, seed: int) -> TaskData:
    """``data`` with seeded subsets of its splits (sizes None keep a split whole).

    The training sample is drawn with ``seed`` and every validation split with ``seed + 1``
    (independent draws), so the scored examples depend on neither the training size nor the
    model: every model of a grid is scored on the same examples.
    """
    train = data.train.select(subsample_indices(len(data.train), train_size, seed))
    validation = {
        name: ds.select(subsample_indices(len(ds), eval_size, seed + 1))
        for name, ds in data.validation.items()
    }
    return TaskData(data.task, train, validation)
