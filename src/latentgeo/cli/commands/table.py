"""``latentgeo table``: join fine-tuning scores and measures into results/table.csv."""

from __future__ import annotations

import argparse

from latentgeo.analysis.table import build_results_table, measure_columns, score_columns, write_results_table
from latentgeo.cli.commands import SUMMARIES, add_output_arguments
from latentgeo.config.schema import load_params
from latentgeo.io import check_output_path


def _table(args: argparse.Namespace) -> int:
    models = tasks = None
    if args.params:
        params = load_params(args.params)
        models, tasks = params.perturb.model_ids(), params.finetune.tasks
    check_output_path(args.out, overwrite=args.overwrite)
    table = build_results_table(args.finetune_dir, args.measures_dir, models, tasks)
    write_results_table(table, args.out, overwrite=args.overwrite)
    print(f"{args.out}: {len(table)} models, {len(score_columns(table))} score columns, "
          f"{len(measure_columns(table))} measure columns")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("table", help=SUMMARIES["table"])
    parser.add_argument("--finetune-dir", required=True,
                        help="folder of <model_id>/<task>.json fine-tuning results")
    parser.add_argument("--measures-dir", required=True, help="folder of <model_id>.json measures")
    parser.add_argument("--params", default=None,
                        help="keep exactly the models and tasks of this params file (default: every "
                             "model and task found)")
    add_output_arguments(parser, "output CSV (e.g. results/table.csv)")
    parser.set_defaults(func=_table)
