"""The finetune stage (``notebooks/02_finetune.ipynb``, ``latentgeo finetune``): one model, one
task, one ``scores.json``, with the fine-tuning of :mod:`latentgeo.downstream.finetune`."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from latentgeo import __version__
from latentgeo.downstream.datasets_io import Loader, TaskData, load_task_data, subsample
from latentgeo.downstream.finetune import (
    FinetuneSettings,
    build_trainer,
    evaluate_splits,
    load_classifier,
    loss_curve,
    tokenize_split,
)
from latentgeo.downstream.metrics import score_of_splits
from latentgeo.downstream.precision import check_precision_supported
from latentgeo.downstream.tasks import Task, get_task
from latentgeo.errors import LatentgeoError
from latentgeo.io import atomic_output, check_output_path, write_json
from latentgeo.models.record import METADATA_FILE, model_record
from latentgeo.models.registry import load_tokenizer, resolve_model


def _save_classifier(classifier, tokenizer, folder: Path, record: dict) -> None:
    with atomic_output(folder, directory=True) as tmp:
        classifier.save_pretrained(tmp)  # safetensors
        tokenizer.save_pretrained(tmp)
        write_json(tmp / METADATA_FILE, record)


def finetune_task(
    model: str | os.PathLike,
    task: str | Task,
    data_dir: str | os.PathLike | None,
    out_json: str | os.PathLike,
    settings: FinetuneSettings,
    *,
    save_model: str | os.PathLike | None = None,
    overwrite: bool = False,
    loader: Loader | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Fine-tune ``model`` on ``task``, score it on the validation split(s), write ``out_json``.

    ``model``: a packaged name, a model folder (config + safetensors; its ``latentgeo.json`` is
    copied into the result) or a hub id. ``data_dir`` holds the offline suite (unused for GLUE,
    which loads through ``loader``, default :func:`datasets.load_dataset`). ``save_model``: a
    folder to save the fine-tuned classifier in (safetensors), off by default.

    Every input is checked before training: the output paths, the task, the precision, the model
    (resolvable, with weights) and the task data (fields, labels, non-empty splits). Returns the
    JSON record:
    ``model``, ``task``, ``suite``, ``metric``, ``score`` (the task metric on the task's
    ``score_split``: for MNLI ``validation_matched``, as the paper read run_glue.py's
    ``eval_accuracy``; GLUE reports MNLI-m and MNLI-mm side by side), ``score_split`` (only for
    tasks with several validation splits), ``metrics`` (per split: MNLI's mismatched accuracy is
    there too), ``chance``, ``train_size``, ``eval_size``, ``settings``, ``wall_time_s`` and
    ``log_history`` (the training loss per logging step).
    """
    start = time.perf_counter()
    out_json = check_output_path(out_json, overwrite=overwrite)
    if save_model is not None:
        save_model = check_output_path(save_model, overwrite=overwrite)
        if Path(save_model).resolve() == Path(out_json).resolve():
            raise LatentgeoError("--save-model and --out must be different paths")
    task = get_task(task) if isinstance(task, str) else task
    check_precision_supported(settings.precision)
    resolve_model(model)  # unknown names, folders without weights, hub ids offline: refused now
    record = model_record(model)
    data: TaskData = subsample(
        load_task_data(task, data_dir, loader), settings.train_size, settings.eval_size, settings.seed
    )
    tokenizer = load_tokenizer(model)

    train = tokenize_split(data.train, tokenizer, task, settings.max_length)
    evals = {s: tokenize_split(ds, tokenizer, task, settings.max_length) for s, ds in data.validation.items()}
    classifier = load_classifier(model, task, settings.seed)
    with tempfile.TemporaryDirectory(prefix="latentgeo-finetune-") as scratch:
        trainer = build_trainer(classifier, tokenizer, train, task, settings, scratch,
                                show_progress=show_progress)
        trainer.train()
        metrics = evaluate_splits(trainer, evals)
    score = score_of_splits(task, metrics)
    if save_model is not None:
        # A new model: its own id, and the record of the encoder it was fine-tuned from.
        saved = {"model_id": f"{record['model_id']}-ft-{task.name}", "finetuned_from": record,
                 "finetune": {"task": task.name, "suite": task.suite,
                              "settings": settings.record(), "score": score},
                 "latentgeo_version": __version__}
        _save_classifier(trainer.model, tokenizer, Path(save_model), saved)

    result = {
        "model": record,
        "task": task.name,
        "suite": task.suite,
        "metric": task.metric,
        "score": score,
        # Named only where there is a choice (MNLI), so single-split records stay as they were.
        **({"score_split": task.score_split} if len(task.validation_splits) > 1 else {}),
        "metrics": metrics,
        "chance": task.chance,
        "train_size": len(data.train),
        "eval_size": int(sum(len(ds) for ds in data.validation.values())),
        "settings": settings.record(),
        "wall_time_s": round(time.perf_counter() - start, 3),
        "log_history": loss_curve(trainer.state.log_history),
    }
    write_json(out_json, result)
    return result
