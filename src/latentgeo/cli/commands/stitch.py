"""``latentgeo stitch``: translate one embedding space into another from parallel anchors, and judge it.

Rows of the two ``.npy`` files are paired items; the first ``--anchors`` rows fit the map, the
rest are evaluated (metrics as in :mod:`latentgeo.translation.stitch`). ``--method affine`` is the closed-form
least-squares affine map, ``affine-sgd`` the translation library's Adam training of the same model,
``linear-ridge`` / ``affine-ridge`` ridge maps whose λ is cross-validated on the anchors.
"""

from __future__ import annotations

import argparse

import numpy as np

from latentgeo.cli.commands import SUMMARIES, add_output_arguments
from latentgeo.errors import LatentgeoError
from latentgeo.io import check_output_path, load_npy, save_npy, write_json
from latentgeo.translation.stitch import check_stitch_inputs, stitch
from latentgeo.translation.methods import PREPROCESSING, TRANSLATION_METHODS


def _run(args: argparse.Namespace) -> int:
    outputs = [args.out] + ([args.translated] if args.translated else [])
    if len(set(map(str, outputs))) != len(outputs):
        raise LatentgeoError("--out and --translated name the same file")
    source, target = load_npy(args.source), load_npy(args.target)
    labels = load_npy(args.labels) if args.labels else None
    check_stitch_inputs(source, target, args.anchors, args.method, args.preprocess, labels, args.seed)
    for path in outputs:  # after the inputs pass, so a refused run creates no folder either
        check_output_path(path, overwrite=args.overwrite)

    metrics, translated = stitch(
        source, target, args.anchors, args.method, args.preprocess, labels, args.seed
    )
    metrics.update({"source": str(args.source), "target": str(args.target), "seed": args.seed})
    if args.labels:
        metrics["labels"] = str(args.labels)
    if args.translated:
        save_npy(args.translated, translated.astype(np.float32))
    write_json(args.out, metrics)
    shown = ("r2", "mse_rel_mean", "cosine", "top1", "stitched_accuracy", "target_accuracy")
    line = ", ".join(f"{k} = {metrics[k]:.4f}" for k in shown if metrics.get(k) is not None)
    if "ridge_lambda" in metrics:
        line += f", ridge_lambda = {metrics['ridge_lambda']:.3g} ({metrics['ridge_lambda_relative']:.1e} × s²_max)"
    print(line)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "stitch", help=SUMMARIES["stitch"],
        description=(
            "Rows of SOURCE and TARGET are paired items. The first N rows are anchors that fit the "
            "map; the rest are evaluated: MSE, R², MSE relative to the mean and N(0,1) estimators, "
            "mean cosine, top-1/top-5 retrieval, and with --labels stitched classification."
        ),
    )
    parser.add_argument("--source", required=True, help="source embeddings, .npy (rows × d_s)")
    parser.add_argument("--target", required=True, help="target embeddings, .npy (rows × d_t)")
    parser.add_argument("--anchors", required=True, type=int, metavar="N", help="first N rows are anchors")
    parser.add_argument(
        "--method", default="ortho",
        help=f"one of {', '.join(TRANSLATION_METHODS)} (default ortho). affine: closed-form least "
        "squares with bias; affine-sgd: the translation library's Adam fit (lr 1e-3, 300 steps); "
        "*-ridge: ridge, lambda by 5-fold cross-validation on the anchors",
    )
    parser.add_argument("--preprocess", default="standard", help=f"one of {', '.join(PREPROCESSING)} (default standard)")
    add_output_arguments(parser, "metrics JSON to write")
    parser.add_argument("--translated", help="also save the translated evaluation rows here (.npy, float32)")
    parser.add_argument("--labels", help="per-row labels, .npy (1-D): adds stitched classification")
    parser.add_argument(
        "--seed", type=int, default=0,
        help="seed of the MLP / SGD maps, the ridge folds and the classifier (0 .. 2^32 - 1)",
    )
    parser.set_defaults(func=_run)
