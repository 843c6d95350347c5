"""``latentgeo embed``: token vectors (or mean-pooled sequence vectors) of a sequences file."""

from __future__ import annotations

import argparse

from latentgeo.cli.commands import SUMMARIES, add_output_arguments, positive_int
from latentgeo.stages.embed import embed_file, sidecar_path


def _embed(args: argparse.Namespace) -> int:
    result = embed_file(
        args.model, args.sequences, args.out, n_sequences=args.limit, layer=args.layer,
        pooling=args.pooling, batch_size=args.batch_size,
        max_tokens_per_batch=args.max_tokens_per_batch, device=args.device,
        progress=not args.quiet, overwrite=args.overwrite,
    )
    print(
        f"wrote {args.out} {tuple(result.vectors.shape)} float32 and {sidecar_path(args.out)}: "
        f"{result.n_sequences} sequences, {result.n_tokens} tokens, layer {result.layer}, "
        f"pooling {result.pooling}"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "embed", help=SUMMARIES["embed"],
        description=(
            "Encode each sequence as if alone (truncated to max_position_embeddings - 3 tokens), "
            "in length-sorted masked batches, and write X.npy (rows = token vectors, input order) "
            "plus the sidecar X.json (model, layer, pooling, per-sequence row offsets)."
        ),
    )
    parser.add_argument("--model", required=True, help="packaged name, model folder, or hub id")
    parser.add_argument("--sequences", required=True,
                        help="plain text (one sequence a line) or .jsonl with a 'text' field")
    add_output_arguments(parser, "output .npy (the sidecar .json goes beside it)")
    parser.add_argument("--layer", type=int, default=-1, help="hidden layer; -1 last (default), 0 embeddings")
    parser.add_argument("--pooling", choices=("none", "mean"), default="none",
                        help="none: every token vector (default); mean: one vector per sequence")
    parser.add_argument("--limit", type=positive_int, help="use only the first N sequences")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="sequences per batch (default 32)")
    parser.add_argument("--max-tokens-per-batch", type=positive_int, default=8192,
                        help="padded tokens per batch (default 8192)")
    parser.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_embed)
