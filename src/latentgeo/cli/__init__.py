"""The ``latentgeo`` command line: a thin layer over the package's functions.

Each subcommand lives in its own module under :mod:`latentgeo.cli.commands` and exposes
``register(subparsers)``; modules are discovered, so adding a command touches no other file.
Errors the user can fix (:class:`~latentgeo.errors.LatentgeoError`) print one clear message and
exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from latentgeo import __version__
from latentgeo.cli import commands
from latentgeo.errors import LatentgeoError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="latentgeo",
        description="Latent-space geometry, translation and stitching of transformer encoders.",
    )
    parser.add_argument("--version", action="version", version=f"latentgeo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except LatentgeoError as err:
        print(f"latentgeo {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("latentgeo: interrupted; nothing partial was kept", file=sys.stderr)
        return 130
    return int(result or 0)

