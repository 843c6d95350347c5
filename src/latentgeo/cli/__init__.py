"""The ``latentgeo`` command line: a thin layer over the package's functions.

Each subcommand lives in its own module under :mod:`latentgeo.cli.commands` (named as the
command) and exposes ``register(subparsers)``; its one-line summary is in
:data:`latentgeo.cli.commands.SUMMARIES`. Only the module of the command being run is imported, so
``latentgeo --help`` and light commands do not pay for the others' libraries.
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


def command_names() -> list[str]:
    """Every subcommand, from the modules of :mod:`latentgeo.cli.commands` (none is imported)."""
    return sorted(info.name for info in pkgutil.iter_modules(commands.__path__))


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The CLI's parser. With ``argv`` naming a command, that command's module is imported and
    registered in full; every other command appears with its summary only (enough for the
    overview and for argparse's "invalid choice" message). ``argv=None`` registers all in full."""
    parser = argparse.ArgumentParser(
        prog="latentgeo",
        description="Latent-space geometry, translation and stitching of transformer encoders.",
    )
    parser.add_argument("--version", action="version", version=f"latentgeo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    names = command_names()
    wanted = names if argv is None else [a for a in argv if not a.startswith("-")][:1]
    for name in names:
        if name in wanted:
            importlib.import_module(f"{commands.__name__}.{name}").register(sub)
        else:
            sub.add_parser(name, help=commands.SUMMARIES[name])
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
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

