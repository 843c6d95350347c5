"""The results table: one row per model, its downstream scores beside its geometric measures.

Inputs are the outputs of two earlier stages, joined on ``model_id``:

* ``<finetune_dir>/**/<task>.json``: one fine-tuning result, with keys ``model`` (the model
  record of ``latentgeo.json``), ``task``, ``suite``, ``score`` (the task's metric) and ``chance``
  (the metric's chance level, :attr:`latentgeo.downstream.tasks.Task.chance`);
* ``<measures_dir>/**/*.json``: one model's measures, with keys ``model``, ``inputs`` and one
  section per family of measures (``pq``, ``lsq``, ``spread``, ...) holding scalar leaves.

Files are found at any depth (the pipeline writes ``<group>/<short id>/<task>.json`` and
``<group>/<short id>.json``) and identified by the ``model_id`` of their record, not their path:
the record is the one source of truth, and two files claiming the same model (and task) are an
error rather than a silent overwrite.

Columns of the table, in order: ``model``, ``family``, ``base_model`` (the family of models a
row was perturbed from, e.g. ``minilm-l6``), ``alpha``, ``seed``, ``suite``, ``score_<task>`` for
every task (registry order), ``score_average`` (the suite average, WNLI left out for GLUE:
:func:`latentgeo.downstream.metrics.suite_average`), ``score_normalised`` (the same tasks'
average of (score − chance) / (1 − chance): chance 0, perfect 1, so tasks with different chance
levels count alike: :func:`normalised_average`), then every numeric measure leaf as
``<section>_<name>`` (nested names joined by ``_``), sorted by name. Rows are sorted by family
(base, perturbed, non-standard), α, seed and model, so the same inputs give the same bytes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from latentgeo.downstream.metrics import suite_average
from latentgeo.downstream.tasks import SUITES
from latentgeo.errors import LatentgeoError
from latentgeo.io import check_output_path, read_json, write_csv
from latentgeo.models.record import FAMILIES, check_model_record

ID_COLUMNS = ("model", "family", "base_model", "alpha", "seed", "suite")
SCORE_AVERAGE = "score_average"
SCORE_NORMALISED = "score_normalised"
# Columns that summarise the task scores (the rest of ``score_*`` are one task each).
SUMMARY_SCORES = (SCORE_AVERAGE, SCORE_NORMALISED)
# Keys of a measures file that are not measures: the model record, what the sample was, and the
# spread of the cell measures over quantizer seeds (how far to trust them, not a measure).
NON_MEASURE_SECTIONS = ("model", "inputs", "quantizer_seed_sd")
# Fields of the model record that the fine-tuning and measure outputs must agree on.
RECORD_FIELDS = ("model_id", "base_model", "family", "kind", "alpha", "seed")
_KNOWN_TASKS = {name for tasks in SUITES.values() for name in tasks}


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def flatten_measures(record: Mapping, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a (nested) measures mapping as ``{"<section>_<name>": float}``.

    Top-level keys ``model`` and ``inputs`` and top-level scalars (versions, counts of the
    file itself) are skipped; inside sections, strings, booleans and lists are settings or
    per-item data, not measures, and are skipped too; ``null`` becomes NaN (a measure that could
    not be computed).
    """
    out: dict[str, float] = {}
    for key, value in record.items():
        if not prefix and (key in NON_MEASURE_SECTIONS or not isinstance(value, Mapping)):
            continue
        name = f"{prefix}_{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten_measures(value, name))
        elif value is None:
            out[name] = math.nan
        elif _is_number(value):
            out[name] = float(value)
    return out


def _model_record(data: object, path: Path) -> dict:
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise LatentgeoError(f"{path}: expected a JSON object with a 'model' record")
    return check_model_record(data["model"], path)


def _check_same_record(model_id: str, a: dict, b: dict, where_a: str, where_b: str) -> None:
    for key in RECORD_FIELDS:
        if key in a and key in b and a[key] != b[key]:
            raise LatentgeoError(
                f"model {model_id!r}: {key} is {a[key]!r} in {where_a} but {b[key]!r} in {where_b}"
            )


def read_finetune_results(finetune_dir: str | os.PathLike) -> dict[str, dict]:
    """Scores per model from every ``<task>.json`` under ``finetune_dir`` (any depth).

    Returns ``{model_id: {"record": model record, "suite": str, "scores": {task: float},
    "chances": {task: float}}}``. Only files named after a known task are read (folders may hold
    logs or checkpoints). A task's ``chance`` must be a number in [0, 1) (the normalised score
    divides by 1 − chance) and the same in every model's file of that task.
    """
    root = Path(finetune_dir)
    if not root.is_dir():
        raise LatentgeoError(f"fine-tuning results folder not found: {root}")
    out: dict[str, dict] = {}
    chances: dict[str, tuple[float, Path]] = {}
    for path in sorted(p for p in root.rglob("*.json") if p.stem in _KNOWN_TASKS):
        data = read_json(path)
        record = _model_record(data, path)
        model_id = record["model_id"]
        if data.get("task") != path.stem:
            raise LatentgeoError(f"{path}: task {data.get('task')!r} does not match the file name")
        suite = data.get("suite")
        if suite not in SUITES or path.stem not in SUITES[suite]:
            raise LatentgeoError(f"{path}: task {path.stem!r} is not in suite {suite!r}")
        score = data.get("score")
        if score is not None and not _is_number(score):
            raise LatentgeoError(f"{path}: score {score!r} is not a number")
        chance = _chance(data.get("chance"), path)
        seen = chances.setdefault(path.stem, (chance, path))
        if seen[0] != chance:
            raise LatentgeoError(f"task {path.stem!r}: chance {seen[0]!r} in {seen[1]} but {chance!r} in {path}")
        entry = out.setdefault(model_id, {"record": record, "suite": suite, "scores": {},
                                          "chances": {}, "files": {}, "source": path})
        _check_same_record(model_id, entry["record"], record, str(entry["source"]), str(path))
        if entry["suite"] != suite:
            raise LatentgeoError(
                f"model {model_id!r}: suite {entry['suite']!r} in {entry['source']} "
                f"but {suite!r} in {path}"
            )
        if path.stem in entry["files"]:
            raise LatentgeoError(
                f"model {model_id!r} has two results for task {path.stem!r}: "
                f"{entry['files'][path.stem]} and {path}"
            )
        entry["files"][path.stem] = path
        entry["scores"][path.stem] = math.nan if score is None else float(score)
        entry["chances"][path.stem] = chance
    if not out:
        raise LatentgeoError(f"no fine-tuning results (<task>.json files) under {root}")
    return out


def _chance(value: object, path: Path) -> float:
    """A fine-tuning result's ``chance``, checked: a number in [0, 1)."""
    if not _is_number(value) or not 0.0 <= float(value) < 1.0:
        raise LatentgeoError(f"{path}: chance {value!r} is not a number in [0, 1) "
                             "(rerun the fine-tuning stage: results record their task's chance level)")
    return float(value)


def normalised_average(scores: Mapping[str, float], chances: Mapping[str, float], suite: str) -> float:
    """Mean over the suite's counted tasks (those of :func:`~latentgeo.downstream.metrics.suite_average`,
    i.e. WNLI left out for GLUE) of (score − chance) / (1 − chance): 0 at chance, 1 when perfect,
    below 0 when worse than chance. ``chances`` must hold every task of ``scores``, each in [0, 1)."""
    missing = sorted(set(scores) - set(chances))
    if missing:
        raise LatentgeoError(f"no chance level for tasks {missing}")
    bad = {t: c for t, c in chances.items() if t in scores and not 0.0 <= c < 1.0}
    if bad:
        raise LatentgeoError(f"chance levels must be in [0, 1), got {bad}")
    # suite_average picks the counted tasks and refuses unknown ones; it averages what it is given.
    return suite_average(
        {t: (float(s) - chances[t]) / (1.0 - chances[t]) for t, s in scores.items()}, suite
    )


def read_measure_results(measures_dir: str | os.PathLike) -> dict[str, dict]:
    """Measures per model from every ``*.json`` under ``measures_dir`` (any depth).

    Returns ``{model_id: {"record": model record, "measures": {column: float}, "seed_sd": {column:
    float}, "source": path, "data": the file's whole JSON}}``; ``seed_sd`` is the cell measures'
    spread over quantizer seeds (empty for a sample measured with one seed). ``data`` serves the
    sections no column holds (``inputs``, ``sweep``): every measures file is parsed here, once.
    """
    root = Path(measures_dir)
    if not root.is_dir():
        raise LatentgeoError(f"measures folder not found: {root}")
    out: dict[str, dict] = {}
    for path in sorted(root.rglob("*.json")):
        data = read_json(path)
        record = _model_record(data, path)
        model_id = record["model_id"]
        if model_id in out:
            raise LatentgeoError(
                f"model {model_id!r} has two measures files: {out[model_id]['source']} and {path}"
            )
        measures = flatten_measures(data)
        if not measures:
            raise LatentgeoError(f"{path}: no numeric measures found (sections such as 'pq', 'lsq')")
        out[model_id] = {"record": record, "measures": measures, "source": path, "data": data,
                         "seed_sd": flatten_measures(data.get("quantizer_seed_sd") or {})}
    if not out:
        raise LatentgeoError(f"no measure files (*.json) under {root}")
    return out


def _check_joinable(scores: dict[str, dict], measures: dict[str, dict]) -> None:
    """Every model must have both scores and measures, and one suite and task set for all."""
    only_scores = sorted(set(scores) - set(measures))
    only_measures = sorted(set(measures) - set(scores))
    if only_scores:
        raise LatentgeoError(f"models with fine-tuning scores but no measures file: {only_scores}")
    if only_measures:
        raise LatentgeoError(f"models with measures but no fine-tuning scores: {only_measures}")
    suites = sorted({e["suite"] for e in scores.values()})
    if len(suites) > 1:
        raise LatentgeoError(f"fine-tuning results mix suites {suites}; one table holds one suite")
    all_tasks = set().union(*(e["scores"] for e in scores.values()))
    for model_id, entry in sorted(scores.items()):
        missing = sorted(all_tasks - set(entry["scores"]))
        if missing:
            raise LatentgeoError(f"model {model_id!r} has no fine-tuning result for tasks {missing}")
        _check_same_record(
            model_id, entry["record"], measures[model_id]["record"],
            str(entry["source"]), str(measures[model_id]["source"]),
        )


def _task_order(suite: str, tasks: set[str]) -> list[str]:
    return [t for t in SUITES[suite] if t in tasks]


def sort_table(table: pd.DataFrame) -> pd.DataFrame:
    """Rows by family (base, perturbed, non-standard), α (missing last), seed and model."""
    family_rank = table["family"].map({f: i for i, f in enumerate(FAMILIES)})
    order = (
        table.assign(_family=family_rank)
        .sort_values(["_family", "alpha", "seed", "model"], na_position="last", kind="mergesort")
        .index
    )
    return table.loc[order].reset_index(drop=True)


def select_models(found: dict[str, dict], model_ids: Sequence[str], what: str) -> dict[str, dict]:
    """The entries of ``found`` for exactly ``model_ids``, in that order; a missing one is an error."""
    if len(set(model_ids)) != len(model_ids):
        raise LatentgeoError(f"model ids are not unique: {list(model_ids)}")
    missing = [m for m in model_ids if m not in found]
    if missing:
        raise LatentgeoError(
            f"no {what} for models {missing} (found: {sorted(found)}); run `dvc repro` for this profile"
        )
    return {m: found[m] for m in model_ids}


def _select_tasks(scores: dict[str, dict], tasks: Sequence[str]) -> dict[str, dict]:
    """Keep only ``tasks``' scores of every model; each model must have all of them."""
    for model_id, entry in scores.items():
        missing = [t for t in tasks if t not in entry["scores"]]
        if missing:
            raise LatentgeoError(f"model {model_id!r} has no fine-tuning result for tasks {missing}; "
                                 "run `dvc repro` for this profile")
    return {m: {**e, "scores": {t: e["scores"][t] for t in tasks}} for m, e in scores.items()}


def _measure_names(measures: dict[str, dict]) -> list[str]:
    """Every measure column of the models, sorted; names that would shadow the table's own
    columns are refused."""
    names = sorted(set().union(*(e["measures"] for e in measures.values())))
    clash = [c for c in names if c in ID_COLUMNS or c.startswith("score_")]
    if clash:
        raise LatentgeoError(f"measure names {clash} clash with the table's own columns")
    return names


def _id_fields(model_id: str, record: dict) -> dict:
    """The ``model``, ``family``, ``alpha`` (NaN when absent) and ``seed`` cells of a row."""
    alpha = record.get("alpha")
    return {"model": model_id, "family": record["family"],
            "alpha": math.nan if alpha is None else float(alpha), "seed": record.get("seed")}


def _typed_table(rows: list[dict], id_columns: Sequence[str], value_columns: Sequence[str]) -> pd.DataFrame:
    """Rows as a sorted table: α and every value column float64, seed a nullable integer."""
    table = pd.DataFrame(rows, columns=[*id_columns, *value_columns])
    table["alpha"] = table["alpha"].astype("float64")
    table["seed"] = table["seed"].astype("Int64")
    for column in value_columns:
        table[column] = table[column].astype("float64")
    return sort_table(table)


def build_results_table(
    finetune_dir: str | os.PathLike,
    measures_dir: str | os.PathLike,
    model_ids: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Join fine-tuning scores and measures into one row per model (columns: module docstring).

    With ``model_ids`` (the active profile's models, :func:`latentgeo.geometry.family.profile_members`)
    the table holds exactly those rows: each must have scores and measures, and files of other
    models (left by an earlier profile in the same folders) are ignored. Without it, every model
    found is a row. Likewise ``tasks`` (the profile's ``finetune.tasks``) keeps exactly those
    score columns, and the suite average is taken over them: a task file left by another profile
    (the default study's results beside a smoke run's) never enters the table.
    """
    scores = read_finetune_results(finetune_dir)
    measures = read_measure_results(measures_dir)
    if model_ids is not None:
        scores = select_models(scores, model_ids, "fine-tuning results")
        measures = select_models(measures, model_ids, "measures")
    if tasks is not None:
        scores = _select_tasks(scores, tasks)
    _check_joinable(scores, measures)
    suite = next(iter(scores.values()))["suite"]
    tasks = _task_order(suite, set().union(*(e["scores"] for e in scores.values())))
    score_names = [*(f"score_{t}" for t in tasks), SCORE_AVERAGE, SCORE_NORMALISED]
    measure_names = _measure_names(measures)
    rows = []
    for model_id, entry in scores.items():
        rows.append({
            **_id_fields(model_id, entry["record"]),
            "base_model": entry["record"].get("base_model"),
            "suite": suite,
            **{f"score_{t}": entry["scores"][t] for t in tasks},
            SCORE_AVERAGE: suite_average(entry["scores"], suite),
            SCORE_NORMALISED: normalised_average(entry["scores"], entry["chances"], suite),
            **measures[model_id]["measures"],
        })
    return _typed_table(rows, ID_COLUMNS, [*score_names, *measure_names])


def build_measures_table(
    measures_dir: str | os.PathLike, model_ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """The family's measures side by side: one row per model, no scores (stage 4's family view).

    Columns: ``model``, ``family``, ``alpha``, ``seed``, then every numeric measure leaf as
    ``<section>_<name>``, sorted by name; rows sorted as in :func:`sort_table`. ``model_ids``
    selects the rows as in :func:`build_results_table`.
    """
    measures = read_measure_results(measures_dir)
    if model_ids is not None:
        measures = select_models(measures, model_ids, "measures")
    rows = [{**_id_fields(model_id, e["record"]), **e["measures"]} for model_id, e in measures.items()]
    id_columns = [c for c in ID_COLUMNS if c not in ("suite", "base_model")]
    return _typed_table(rows, id_columns, _measure_names(measures))


def measure_columns(table: pd.DataFrame) -> list[str]:
    """The measure columns of a results table: everything after the id and score columns."""
    return [c for c in table.columns if c not in ID_COLUMNS and not str(c).startswith("score_")]


def score_columns(table: pd.DataFrame) -> list[str]:
    """``score_<task>`` columns followed by ``score_average`` and ``score_normalised`` when present."""
    tasks = [c for c in table.columns if str(c).startswith("score_") and c not in SUMMARY_SCORES]
    return tasks + [c for c in SUMMARY_SCORES if c in table.columns]


def write_results_table(table: pd.DataFrame, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write the table as CSV (:func:`latentgeo.io.write_csv`), atomically. Returns the path."""
    return write_csv(check_output_path(path, overwrite=overwrite), table)
