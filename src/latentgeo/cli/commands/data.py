"""``latentgeo data build|get``: the raw inputs under ``data/``."""

from __future__ import annotations

import argparse

from latentgeo.cli.commands import SUMMARIES, add_output_arguments
from latentgeo.config.schema import load_params
from latentgeo.data import SOURCES
from latentgeo.data.build import build_data, get_data


def _build(args: argparse.Namespace) -> int:
    manifest = build_data(args.out, source=args.source, overwrite=args.overwrite)
    for rel, info in manifest["files"].items():
        print(f"{args.out}/{rel}: {info['records']} records")
    return 0


def _get(args: argparse.Namespace) -> int:
    source = load_params(args.params).data.source
    get_data(args.out, source=source)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("data", help=SUMMARIES["data"])
    dsub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    build = dsub.add_parser("build", help="build data/ deterministically from its sources")
    add_output_arguments(build, "output folder (default: data)", default="data")
    build.add_argument("--source", choices=SOURCES, default="packaged",
                       help="packaged: PyPI-carried corpora (offline); hub: PTB + WikiText-2 (network); "
                       "paper-sequences: the paper's own 5,000 sequences (network, sha256-pinned)")
    build.set_defaults(func=_build)
    get = dsub.add_parser("get", help="make data/ match data.dvc: keep, dvc pull, or build locally")
    get.add_argument("--out", default="data")
    get.add_argument("--params", default="params.yaml", help="profile whose data.source applies")
    get.set_defaults(func=_get)
