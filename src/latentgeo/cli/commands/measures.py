"""``latentgeo measures``: the geometric measures of one latent sample (``.npy``) → JSON."""

from __future__ import annotations

import argparse
import sys
import time

from latentgeo.cli.commands import SUMMARIES, add_output_arguments, positive_int, positive_int_or_all
from latentgeo.geometry.measures.quantizers import PAPER_SEED as DEFAULT_SEED  # FAISS's own default seeds
from latentgeo.geometry.measures.compute import DEFAULT_TRAIN_SIZE
from latentgeo.stages.measures import measures_file


def _run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    report = measures_file(
        args.embeddings,
        args.out,
        quantizers=args.quantizers,
        m=args.m,
        nbits=args.nbits,
        train_size=args.train_size,
        seed=args.seed,
        quantizer_seeds=args.quantizer_seeds,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    inputs = report.record["inputs"]
    print(
        f"wrote {args.out}: n = {inputs['n']}, d = {inputs['d']}, quantizers {inputs['quantizers']} "
        f"(M = {inputs['m']}, k = {inputs['k']}, trained on {inputs['train_size']} vectors)"
    )
    times = ", ".join(f"{name} {sec:.1f}s" for name, sec in report.timings.items())
    print(
        f"time: {time.perf_counter() - start:.1f}s (steps, training beside the others: {times})",
        file=sys.stderr,
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "measures", help=SUMMARIES["measures"],
        description=(
            "Train FAISS quantizers on a sample of vectors, encode every vector, and write the "
            "paper's measures (reconstruction error and its distribution, point counts, "
            "centroids, point_dist, point patchiness paper-compatible and corrected) with EEE, "
            "VRM, IsoScore, effective rank, anisotropy and TwoNN intrinsic dimension to "
            "deterministic JSON."
        ),
    )
    parser.add_argument("--embeddings", required=True, help="sample of vectors, a 2-D .npy (n × d)")
    add_output_arguments(parser, "JSON file to write")
    parser.add_argument(
        "--quantizers",
        default="pq,lsq",
        help="comma list of pq, lsq, rq (default: pq,lsq, as the paper)",
    )
    parser.add_argument("--m", type=int, default=4, help="codebooks per quantizer (default 4)")
    parser.add_argument(
        "--nbits", type=int, default=8, help="bits per codebook, k = 2**nbits (default 8)"
    )
    parser.add_argument(
        "--train-size",
        type=positive_int_or_all,
        default=DEFAULT_TRAIN_SIZE,
        help=(
            f"train each quantizer on at most this many vectors, a seeded subsample (default "
            f"{DEFAULT_TRAIN_SIZE}, which keeps a 150K-vector sample within ~2 minutes on 2 cores); "
            "'all' trains on every vector, as the paper did. Every vector is encoded either way."
        ),
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=(
            f"seed of FAISS and all sampling (default {DEFAULT_SEED}: FAISS's own default seeds, "
            "which the paper ran with)"
        ),
    )
    parser.add_argument(
        "--quantizer-seeds", type=positive_int, default=1, metavar="S",
        help="train each quantizer S times (seeds SEED, SEED+1, ...): cell measures are the means, "
             "their spread goes to quantizer_seed_sd (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run)
