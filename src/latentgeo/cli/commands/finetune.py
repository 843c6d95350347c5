"""``latentgeo finetune``: fine-tune one model on one task and write its scores JSON."""

from __future__ import annotations

import argparse

from latentgeo.cli.commands import SUMMARIES, add_output_arguments, positive_int_or_all
from latentgeo.config.schema import PARAMS_FILE, PRECISIONS, load_params
from latentgeo.downstream.finetune import FinetuneSettings
from latentgeo.downstream.tasks import get_task
from latentgeo.errors import LatentgeoError
from latentgeo.io import check_output_path
from latentgeo.stages.finetune import finetune_task

# Default of the setting flags: tells "not given" apart from any value (None means 'all').
_UNSET = object()

# CLI flag → FinetuneSettings field; flags left out keep the profile's value.
_OVERRIDES = {
    "epochs": "epochs",
    "lr": "learning_rate",
    "batch_size": "batch_size",
    "gradient_accumulation": "gradient_accumulation",
    "max_length": "max_length",
    "train_size": "train_size",
    "eval_size": "eval_size",
    "seed": "seed",
    "precision": "precision",
}


def _run(args: argparse.Namespace) -> int:
    # Cheap checks first, so a typo costs no model loading.
    check_output_path(args.out, overwrite=args.overwrite)
    task = get_task(args.task)
    params = load_params(args.params).finetune
    overrides = {field: getattr(args, flag) for flag, field in _OVERRIDES.items()
                 if getattr(args, flag) is not _UNSET}
    for size in ("train_size", "eval_size"):  # "all": no cap
        if overrides.get(size) == "all":
            overrides[size] = None
    settings = FinetuneSettings.from_params(params, **overrides)
    if params.save_checkpoint and args.save_model is None:
        raise LatentgeoError(
            f"{args.params}: finetune.save_checkpoint is true; give the folder with --save-model DIR"
        )
    result = finetune_task(args.model, task, args.data_dir, args.out, settings,
                           save_model=args.save_model, overwrite=args.overwrite)
    print(f"{result['model']['model_id']} on {task.name} ({task.suite} suite): "
          f"{task.metric} = {result['score']:.4f} (chance {task.chance:.3f}), "
          f"{result['train_size']} train / {result['eval_size']} eval examples, "
          f"{result['wall_time_s']:.0f} s -> {args.out}")
    return 0



def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "finetune", help=SUMMARIES["finetune"],
        description="Fine-tune a sequence-classification head on an encoder with transformers' "
        "Trainer (dynamic padding, length-grouped batches, seeded) and write the validation "
        "scores as JSON. Settings default to the profile's finetune section; flags override.",
    )
    parser.add_argument("--model", required=True, help="packaged name, model folder or hub id")
    parser.add_argument("--task", required=True, help="task name, e.g. bbc-topic or cola")
    add_output_arguments(parser, "scores JSON to write")
    parser.add_argument("--data-dir", default="data/tasks/offline",
                        help="offline-suite folder (default: data/tasks/offline; unused for GLUE)")
    parser.add_argument("--params", default=PARAMS_FILE, help="profile (default: params.yaml)")
    parser.add_argument("--epochs", type=float, default=_UNSET)
    parser.add_argument("--lr", type=float, default=_UNSET, help="learning rate")
    parser.add_argument("--batch-size", type=int, default=_UNSET, help="examples per step")
    parser.add_argument("--gradient-accumulation", type=int, default=_UNSET)
    parser.add_argument("--max-length", type=int, default=_UNSET, help="tokens per sequence (pair)")
    parser.add_argument("--train-size", type=positive_int_or_all, default=_UNSET, help="cap on training examples, or all")
    parser.add_argument("--eval-size", type=positive_int_or_all, default=_UNSET, help="cap on examples per validation split, or all")
    parser.add_argument("--seed", type=int, default=_UNSET)
    # Checked by FinetuneSettings (not argparse choices), so a bad value gets the settings' message.
    parser.add_argument("--precision", default=_UNSET, metavar="{" + ",".join(PRECISIONS) + "}",
                        help="fp32, or bf16: bfloat16 matrix products under autocast")
    parser.add_argument("--save-model", default=None, metavar="DIR",
                        help="also save the fine-tuned classifier here (safetensors)")
    parser.set_defaults(func=_run)
