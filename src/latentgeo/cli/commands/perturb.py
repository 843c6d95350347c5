"""``latentgeo perturb``: build one member of the model family (noisy, untrained, shuffled...)."""

from __future__ import annotations

import argparse

from latentgeo.cli.commands import SUMMARIES, add_output_arguments
from latentgeo.errors import LatentgeoError
from latentgeo.geometry.family import (
    DEFAULT_SCOPE,
    HUB_NONSTANDARD,
    KINDS,
    PERTURBED,
    SCOPES,
    check_alpha,
    check_kind,
)
from latentgeo.stages.perturb import build_family_member


def _perturb(args: argparse.Namespace) -> int:
    check_kind(args.kind)
    if args.kind in HUB_NONSTANDARD:
        if args.model is not None:
            raise LatentgeoError(f"--model does not apply to kind {args.kind!r} (its model is fixed)")
    elif args.model is None:
        raise LatentgeoError(f"--model is required for kind {args.kind!r}")
    if args.kind == PERTURBED:
        if args.alpha is None:
            raise LatentgeoError("--alpha is required for kind 'perturbed' (percent, 0..100)")
        check_alpha(args.alpha)
    record = build_family_member(
        args.model, args.kind, args.alpha, args.seed, args.scope, args.out, overwrite=args.overwrite
    )
    print(f"wrote {args.out} ({record['model_id']}, family {record['family']})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "perturb", help=SUMMARIES["perturb"],
        description=(
            "Write a model folder (safetensors, config, tokenizer, latentgeo.json). kind "
            "'perturbed' applies W <- (1 - a/100) W + (a/100) eps, eps ~ N(0, 1), seeded, to every "
            "encoder weight; 'untrained' re-initialises the base config; 'shuffled-embeddings' "
            "permutes the input embedding rows; 'shuffled-embeddings-paper' repeats the paper's "
            "random.shuffle of the 2-D embedding array (duplicates rows, seeded); the other kinds "
            "load the paper's hub models."
        ),
    )
    parser.add_argument("--model", help="base model: packaged name, folder, or hub id")
    parser.add_argument("--alpha", type=float, help="noise level in percent, 0..100 (kind perturbed)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the noise / init / permutation (default 1)")
    add_output_arguments(parser, "output folder (must not exist with other content)")
    parser.add_argument("--scope", choices=SCOPES, default=DEFAULT_SCOPE,
                        help=f"which weights get noise (default {DEFAULT_SCOPE}, the paper's)")
    parser.add_argument("--kind", choices=KINDS, default=PERTURBED, help=f"default {PERTURBED}")
    parser.set_defaults(func=_perturb)
