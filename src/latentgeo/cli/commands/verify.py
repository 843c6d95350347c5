"""``latentgeo verify``: the workspace's results against the committed ones, within stated tolerances."""

from __future__ import annotations

import argparse

from latentgeo.cli.commands import SUMMARIES, positive_int
from latentgeo.verify import OUT, verify_study
from latentgeo.verify.sources import repository_root
from latentgeo.verify.tolerances import default_tolerance_path, read_profile

PROFILE_LINES = 8  # profile differences shown before "and N more"


def _verify(args: argparse.Namespace) -> int:
    if args.no_reference_ok and args.tolerances is None:
        root = repository_root(".")
        profile = read_profile(root)
        if not default_tolerance_path(root, profile.name).is_file():
            print(f"not verified: profile {profile.name!r} has no committed reference "
                  f"(no tolerances/{profile.name}.yaml)")
            return 0
    outcome = verify_study(".", rev=args.against, tolerances=args.tolerances)
    changes = outcome.profile_changes
    if changes:
        print(f"warning: the profile differs from the one that made the reference "
              f"({len(changes)} value(s)); results will differ by design:")
        for key, (old, new) in list(changes.items())[:PROFILE_LINES]:
            print(f"  {key}: {old} → {new}")
        if len(changes) > PROFILE_LINES:
            print(f"  ... and {len(changes) - PROFILE_LINES} more")
    for verdict in outcome.verdicts:
        if not args.quiet or verdict.status == OUT:
            print(verdict.describe(limit=args.show))
    print(outcome.summary())
    return 0 if outcome.reproduced else 1


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "verify", help=SUMMARIES["verify"],
        description=(
            "Compare the workspace's results (tables CSV, metrics JSON, the CSV data behind the "
            "figures; never image bytes) with those committed at REV, value by value, against the "
            "tolerances stated in tolerances/<profile>.yaml (measured: docs/reproducibility.md). "
            "Prints one verdict per result (identical; within tolerance, by how much; out of "
            "tolerance, by how much and which tolerance) and one line for the whole study. A result "
            "on one side only, or a different row or column set, is out. Exit status: 0 reproduced "
            "(identical or within tolerance), 1 not reproduced, 2 bad input (unknown REV, missing "
            "or invalid tolerance file)."
        ),
    )
    parser.add_argument("--against", default="HEAD", metavar="REV",
                        help="the revision whose committed results are the reference (default: HEAD)")
    parser.add_argument("--tolerances", metavar="FILE",
                        help="tolerance file (default: tolerances/<profile>.yaml for params.yaml's profile)")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the results out of tolerance, then the study's verdict")
    parser.add_argument("--show", type=positive_int, default=3, metavar="N",
                        help="changes shown per result out of tolerance (default: 3)")
    parser.add_argument("--no-reference-ok", action="store_true",
                        help="a profile without a committed reference is 'not verified' (exit 0), not an error")
    parser.set_defaults(func=_verify)

