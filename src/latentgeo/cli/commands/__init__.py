"""Subcommands of the ``latentgeo`` CLI: one module each (named as its command), exposing
``register(subparsers)``.

The CLI imports only the module of the command being run (:func:`latentgeo.cli.build_parser`);
the overview (``latentgeo --help``) lists every command from :data:`SUMMARIES` without importing
any, so it answers at once although the commands reach numpy, scipy and pandas.
"""

from __future__ import annotations

import argparse

# One line per command: its help in `latentgeo --help`, and in its own parser.
SUMMARIES: dict[str, str] = {
    "data": "build or fetch the raw inputs (data/)",
    "embed": "sample a model's latent space: every token vector of a sequences file",
    "finetune": "fine-tune a model on a downstream task (GLUE or the offline suite)",
    "measures": "geometric measures of a latent sample (quantizer cells, spread, intrinsic dimension)",
    "params": "inspect and validate parameter profiles",
    "perturb": "build a perturbed or non-standard model folder",
    "reanalyse": "reanalyse the paper's published tables (r, partial r given log α, family fits)",
    "references": "get or verify the paper's published tables (pinned by sha256, never committed)",
    "regress": "OLS of a score on each measure of a table (r, partial r, CIs, leave-one-out, held-out)",
    "remote": "pull DVC outputs from remote storage, check the remote",
    "repro": "run the DVC pipeline's stale stages on a Dask cluster (like `dvc repro`, in parallel)",
    "stitch": "translate one embedding space into another from parallel anchors and judge the stitch",
    "table": "build the results table (one row per model: scores and measures)",
    "verify": "were the committed results reproduced? (identical / within tolerance / out, per result)",
}


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


def positive_int_or_all(text: str) -> int | str:
    """An argparse type: a whole number ≥ 1, or ``all`` (no cap): sample and training sizes."""
    if text.strip().lower() == "all":
        return "all"
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1 or 'all', got {text!r}") from None
