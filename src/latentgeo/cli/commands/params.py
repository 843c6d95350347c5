"""``latentgeo params check [FILE]``: validate a profile before any heavy work."""

from __future__ import annotations

import argparse

from latentgeo.config.profiles import use_profile
from latentgeo.config.schema import PARAMS_FILE, load_params


def _check(args: argparse.Namespace) -> int:
    params = load_params(args.file)
    print(f"{args.file}: valid (profile {params.profile!r})")
    return 0


def _use(args: argparse.Namespace) -> int:
    use_profile(args.profile)
    note = "" if args.profile == "default" else "; `latentgeo params use default` restores the default"
    print(f"params.yaml now holds profile {args.profile!r}{note}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("params", help="inspect and validate parameter profiles")
    psub = parser.add_subparsers(dest="params_command", metavar="ACTION", required=True)
    check = psub.add_parser("check", help="validate a profile file against the schema")
    check.add_argument("file", nargs="?", default=PARAMS_FILE, help="profile (default: params.yaml)")
    check.set_defaults(func=_check)
    use = psub.add_parser("use", help="make a profile (default, smoke, paper, ...) the active params.yaml")
    use.add_argument("profile", help="profile name: default or a file stem under profiles/")
    use.set_defaults(func=_use)
