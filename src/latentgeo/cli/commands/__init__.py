"""Subcommands of the ``latentgeo`` CLI: one module each, exposing ``register(subparsers)``.

Modules import the package at module level (``tests/test_architecture.py``); the heavy libraries
(torch, transformers, faiss, DVC) stay inside the package's functions, so ``latentgeo --help``
loads numpy, pandas and scipy but none of them.
"""

from __future__ import annotations

import argparse


def add_output_arguments(parser: argparse.ArgumentParser, out_help: str, *, default: str | None = None) -> None:
    """``--out`` and ``--overwrite``, alike in every command that writes: an existing output is
    never replaced unless asked (the handlers check this before any heavy work)."""
    if default is None:
        parser.add_argument("--out", required=True, help=out_help)
    else:
        parser.add_argument("--out", default=default, help=out_help)
    parser.add_argument("--overwrite", action="store_true", help="replace existing output(s)")


def positive_int(text: str) -> int:
    """An argparse type: a whole number ≥ 1 (workers, threads, how many changes to show)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
