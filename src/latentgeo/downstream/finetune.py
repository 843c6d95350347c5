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
:func:`~latentgeo.downstream.precision.check_precision_supported` warns about.

The stage (:func:`latentgeo.stages.finetune.finetune_task`, ``latentgeo finetune``,
``notebooks/02_finetune.ipynb``) checks every input before training, then writes one
``scores.json`` atomically.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from latentgeo.downstream.metrics import task_metrics
from latentgeo.downstream.precision import PRECISIONS
from latentgeo.downstream.tasks import Task
from latentgeo.errors import LatentgeoError
from latentgeo.models.registry import _from_pretrained, resolve_model

# Imported inside the functions that use them (heavy, or rarely needed): accelerate, datasets, matplotlib, torch, transformers.

if TYPE_CHECKING:  # pragma: no cover
    import datasets
    from matplotlib.figure import Figure

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
    def from_params(cls, finetune: Any, **overrides: Any) -> FinetuneSettings:
        """Settings from a profile's ``finetune`` section (:class:`latentgeo.config.schema.FinetuneParams`), with ``overrides`` (e.g. CLI flags)
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
