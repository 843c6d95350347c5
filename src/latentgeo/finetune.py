"""Downstream fine-tuning: a classification head on a (perturbed) encoder, trained with ``Trainer``.

The protocol is the paper's (Hugging Face ``run_glue.py``): ``AutoModelForSequenceClassification``
on the encoder, AdamW with a linear schedule, evaluation on the validation split(s), the task's
GLUE metric. Two things make it fast on a CPU without changing what is learned: *dynamic padding*
(each batch is padded to its own longest sequence, :class:`~transformers.DataCollatorWithPadding`)
and *length-grouped batches* (the ``group_by_length`` sampler puts sequences of similar length
together, so little padding is left at all). Everything is seeded: the head's initialisation,
the data order and the train/eval subsamples.

``precision: bf16`` is mixed precision as ``Trainer`` does it (``bf16=True``): the matrix products
of forward and backward (projections, feed-forward, attention) run in bfloat16 under autocast,
while weights, optimiser state, layer norms and the loss stay float32. On CPUs with native bfloat16 dot products (AVX512-BF16, AMX)
the products are about twice as fast as float32; without them they are emulated and slower, which
:func:`check_precision_supported` warns about.

:func:`finetune_task` is the stage (``latentgeo finetune``, ``notebooks/02_finetune.ipynb``): it
checks every input before training, then writes one ``scores.json`` atomically.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from .config import PRECISIONS
from .datasets_io import Loader, TaskData, load_task_data, subsample
from .errors import LatentgeoError
from .io import atomic_output, check_output_path, read_json, write_json
from .metrics import score_of_splits, task_metrics
from .tasks import Task, get_task

if TYPE_CHECKING:  # pragma: no cover
    import datasets
    from matplotlib.figure import Figure

    from .config import FinetuneParams

MODEL_RECORD = "latentgeo.json"
# Points of the learning curve: the loss is logged about this many times per run.
LOG_POINTS = 50


@dataclass(frozen=True)
class FinetuneSettings:
    """Hyper-parameters of one fine-tuning run (the ``finetune`` section of a profile).

    ``batch_size`` is per step; the effective batch is ``batch_size × gradient_accumulation``.
    ``train_size``/``eval_size`` cap the examples used (a seeded sample; None: all).
    ``precision``: ``fp32``, or ``bf16`` for bfloat16 matrix products under autocast.
    """

    learning_rate: float
    epochs: float
    batch_size: int
    gradient_accumulation: int = 1
    max_length: int = 128
    train_size: int | None = None
    eval_size: int | None = None
    seed: int = 0
    precision: str = "fp32"

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.learning_rate < 1:
            problems.append(f"learning_rate = {self.learning_rate} (allowed: 0 < lr < 1)")
        if not self.epochs > 0:
            problems.append(f"epochs = {self.epochs} (allowed: > 0)")
        for name in ("batch_size", "gradient_accumulation"):
            if getattr(self, name) < 1:
                problems.append(f"{name} = {getattr(self, name)} (allowed: ≥ 1)")
        if self.max_length < 8:
            problems.append(f"max_length = {self.max_length} (allowed: ≥ 8)")
        for name in ("train_size", "eval_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name} = {value} (allowed: ≥ 1, or all)")
        if self.seed < 0:
            problems.append(f"seed = {self.seed} (allowed: ≥ 0)")
        if self.precision not in PRECISIONS:
            problems.append(f"precision = {self.precision!r} (allowed: {', '.join(PRECISIONS)})")
        if problems:
            raise LatentgeoError("invalid fine-tuning settings: " + "; ".join(problems))

    @classmethod
    def from_params(cls, finetune: FinetuneParams, **overrides: Any) -> FinetuneSettings:
        """Settings from a profile's ``finetune`` section, with ``overrides`` (e.g. CLI flags)
        replacing single keys. Unknown keys are refused."""
        values = {f.name: getattr(finetune, f.name) for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - set(values))
        if unknown:
            raise LatentgeoError(f"unknown fine-tuning settings {unknown}; allowed: {sorted(values)}")
        values.update(overrides)
        return cls(**values)

    def record(self) -> dict[str, Any]:
        """The settings as written into ``scores.json``."""
        return {
            "learning_rate": self.learning_rate,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "gradient_accumulation": self.gradient_accumulation,
            "max_length": self.max_length,
            "seed": self.seed,
            "precision": self.precision,
        }


def native_bf16_cpu() -> bool | None:
    """Whether this CPU has native bfloat16 dot products (AVX512-BF16 or AMX); None: unknown.

    The probes are private torch functions (``torch.cpu._is_avx512_bf16_supported``, present since
    torch 2.1), hence the fallback to "unknown" rather than a guess.
    """
    import torch

    probes = [getattr(torch.cpu, name, None)
              for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    answers = [bool(probe()) for probe in probes if probe is not None]
    return any(answers) if answers else None


def check_precision_supported(precision: str) -> None:
    """Refuse ``bf16`` on a GPU without bfloat16; warn when a CPU would only emulate it.

    Called before any data or model is loaded. On a CPU, emulated bfloat16 gives the same kind of
    result but runs slower than float32, so it is a warning, not an error.
    """
    if precision != "bf16":
        return
    import torch

    if torch.cuda.is_available():
        if not torch.cuda.is_bf16_supported():
            raise LatentgeoError(
                f"precision bf16: GPU {torch.cuda.get_device_name()} has no bfloat16 support; "
                "set finetune.precision: fp32 (or --precision fp32)"
            )
    elif native_bf16_cpu() is False:
        warnings.warn(
            "precision bf16: this CPU has no native bfloat16 dot products (AVX512-BF16 or AMX), "
            "so bfloat16 is emulated and slower than float32 here; set finetune.precision: fp32 "
            "(or --precision fp32) for speed",
            stacklevel=2,
        )


def model_record(model: str | os.PathLike) -> dict[str, Any]:
    """The model's metadata: its folder's ``latentgeo.json`` if present, else ``{"model_id": name}``."""
    path = Path(model)
    if path.is_dir() and (path / MODEL_RECORD).is_file():
        record = read_json(path / MODEL_RECORD)
        if not isinstance(record, dict) or "model_id" not in record:
            raise LatentgeoError(f"{path / MODEL_RECORD} has no 'model_id'")
        return record
    return {"model_id": str(model)}


def tokenize_split(
    ds: datasets.Dataset, tokenizer, task: Task, max_length: int, *, pad_to_max_length: bool = False
) -> datasets.Dataset:
    """Token ids of a split (text fields removed, ``label`` kept), truncated to ``max_length``.

    Pairs are truncated longest-first, as ``run_glue.py`` does. Without ``pad_to_max_length``
    sequences keep their own length (padding happens per batch, in the collator).
    """

    def encode(batch: dict[str, list]) -> dict[str, list]:
        texts = [batch[f] for f in task.text_fields]
        return tokenizer(
            *texts,
            truncation=True,
            max_length=max_length,
            padding="max_length" if pad_to_max_length else False,
        )

    # A fixed fingerprint: ``datasets`` would otherwise hash the tokenizer (about 1 s per call)
    # only to name a cache file that ``keep_in_memory`` never writes.
    fingerprint = f"{ds._fingerprint}-{task.name}-{max_length}-{int(pad_to_max_length)}"
    out = ds.map(encode, batched=True, remove_columns=list(task.text_fields), keep_in_memory=True,
                 new_fingerprint=fingerprint, desc=f"tokenizing {task.name}")
    if task.is_regression:
        import datasets as hf_datasets

        out = out.cast_column("label", hf_datasets.Value("float32"))
    return out


def _predictions(task: Task, logits: Any) -> np.ndarray:
    """Class ids (argmax over the last axis) or, for regression, the single output."""
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    logits = np.asarray(logits)
    return logits.reshape(-1) if task.is_regression else logits.argmax(axis=-1)


def make_compute_metrics(task: Task):
    """A ``Trainer`` ``compute_metrics`` callback scoring with the task's metric."""

    def compute(eval_pred) -> dict[str, float]:
        return task_metrics(task.metric, _predictions(task, eval_pred.predictions), eval_pred.label_ids)

    return compute


def load_classifier(model: str | os.PathLike, task: Task, seed: int):
    """``AutoModelForSequenceClassification`` on the encoder, its new head initialised from ``seed``."""
    from transformers import AutoModelForSequenceClassification, set_seed

    from .models import _from_pretrained, resolve_model

    set_seed(seed)  # the classification head is new: its initial weights come from this seed
    kwargs: dict[str, Any] = {"num_labels": task.num_labels}
    if task.is_regression:
        kwargs["problem_type"] = "regression"
    return _from_pretrained(AutoModelForSequenceClassification, resolve_model(model), **kwargs)


def build_trainer(
    classifier,
    tokenizer,
    train: datasets.Dataset,
    task: Task,
    settings: FinetuneSettings,
    output_dir: str | os.PathLike,
    *,
    group_by_length: bool = True,
    show_progress: bool = True,
):
    """A ``Trainer`` for tokenised ``train`` with the stage's loop: dynamic padding per batch,
    length-grouped batches (unless ``group_by_length`` is False: uniform random order), seeded,
    CPU-friendly (no worker processes), no checkpoints, no external loggers, in
    ``settings.precision``. ``show_progress=False``: no progress bars and no printed log lines.

    ``output_dir`` is required by ``Trainer`` but receives nothing (``save_strategy="no"``).
    """
    try:
        import accelerate  # noqa: F401  (Trainer needs it; fail with a message, not a traceback)
    except ImportError:
        raise LatentgeoError(
            "fine-tuning needs the 'accelerate' package (transformers' Trainer uses it): "
            "pip install 'accelerate>=1.1'"
        ) from None
    import torch
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, set_seed

    set_seed(settings.seed)
    steps_per_epoch = -(-len(train) // (settings.batch_size * settings.gradient_accumulation))
    total_steps = max(1, int(np.ceil(steps_per_epoch * settings.epochs)))
    args = TrainingArguments(
        output_dir=str(output_dir),
        learning_rate=settings.learning_rate,
        num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=max(settings.batch_size, 32),
        gradient_accumulation_steps=settings.gradient_accumulation,
        seed=settings.seed,
        data_seed=settings.seed,
        train_sampling_strategy="group_by_length" if group_by_length else "random",
        eval_strategy="no",  # scored once, after training, on the validation split(s)
        save_strategy="no",
        logging_strategy="steps",
        logging_steps=max(1, total_steps // LOG_POINTS),
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        bf16=settings.precision == "bf16",  # autocast around forward (and so backward) passes
        dataloader_num_workers=0,
        disable_tqdm=not show_progress,
    )
    trainer = Trainer(
        model=classifier,
        args=args,
        train_dataset=train,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=make_compute_metrics(task),
    )
    if not show_progress:
        # Without progress bars Trainer prints every log entry instead; the log is kept in
        # ``trainer.state.log_history`` either way.
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    return trainer


def loss_curve(log_history: list[dict]) -> list[dict[str, float]]:
    """The training-loss points of a ``Trainer`` log: ``[{"step", "epoch", "loss", "learning_rate"}]``."""
    keys = ("step", "epoch", "loss", "learning_rate")
    return [{k: entry[k] for k in keys if k in entry} for entry in log_history if "loss" in entry]


def evaluate_splits(trainer, tokenized: dict[str, datasets.Dataset]) -> dict[str, dict]:
    """Every validation split's metrics (task metric and components, loss, size ``n``)."""
    out = {}
    for split, ds in tokenized.items():
        raw = trainer.evaluate(eval_dataset=ds, metric_key_prefix="eval")
        # Timing entries (runtime, samples per second) would make the scores non-reproducible.
        metrics = {k.removeprefix("eval_"): float(v) for k, v in raw.items()
                   if k.startswith("eval_") and not k.endswith(("_runtime", "_per_second"))}
        metrics["n"] = len(ds)
        out[split] = metrics
    return out


def _save_classifier(classifier, tokenizer, folder: Path, record: dict) -> None:
    with atomic_output(folder, directory=True) as tmp:
        classifier.save_pretrained(tmp)  # safetensors
        tokenizer.save_pretrained(tmp)
        write_json(tmp / MODEL_RECORD, record)


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
    from .models import load_tokenizer, resolve_model

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


def plot_finetune_result(result: dict[str, Any]) -> Figure:
    """Learning curve (training loss vs. optimiser step) beside the score and its chance level.

    ``result`` is a ``scores.json`` record of :func:`finetune_task`. The title names the model,
    the task and its suite, so a figure never hides which suite produced a score.
    """
    import matplotlib.pyplot as plt  # pyplot, so that a notebook shows the figure inline

    fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained",
                                            width_ratios=(2.2, 1))
    curve = result["log_history"]
    ax_loss.plot([p["step"] for p in curve], [p["loss"] for p in curve], marker=".", color="C0")
    ax_loss.set_xlabel("optimiser step")
    ax_loss.set_ylabel("training loss (cross-entropy)" if result["metric"] != "pearson_spearman"
                       else "training loss (MSE)")
    ax_loss.set_title("learning curve")
    ax_loss.grid(alpha=0.3)
    ax_score.bar(["model", "chance"], [result["score"], result["chance"]], color=["C0", "0.7"])
    ax_score.set_ylabel(f"{result['metric']} on validation")
    ax_score.set_ylim(min(0.0, result["score"]) - 0.05, 1.0)
    ax_score.axhline(result["chance"], color="0.4", lw=0.8, ls="--")
    ax_score.set_title(f"score {result['score']:.3f}")
    fig.suptitle(f"{result['model']['model_id']} fine-tuned on {result['task']} "
                 f"({result['suite']} suite)")
    return fig
