"""``latentgeo params check|use|members``: validate a profile, make one active, regenerate its
``members`` mapping from its ``perturb`` grid."""

from __future__ import annotations

import argparse

from pathlib import Path

from latentgeo import io
from latentgeo.config.profiles import PROFILES_DIR, check_profile_name, use_profile
from latentgeo.config.schema import PARAMS_FILE, load_params, members_text
from latentgeo.cli.commands import SUMMARIES


def _check(args: argparse.Namespace) -> int:
    params = load_params(args.file)
    path = Path(args.file)
    if path.parent.name == PROFILES_DIR.name:  # a named profile, as `params use` will take it
        check_profile_name(params, path.stem)
    print(f"{args.file}: valid (profile {params.profile!r})")
    return 0


def _use(args: argparse.Namespace) -> int:
    use_profile(args.profile)
    note = "" if args.profile == "default" else "; `latentgeo params use default` restores the default"
    print(f"params.yaml now holds profile {args.profile!r}{note}")
    return 0


def _members(args: argparse.Namespace) -> int:
    path = Path(args.file)
    text = members_text(path)
    if not args.write:
        print(text, end="")
        return 0
    if text != path.read_text(encoding="utf-8"):
        with io.atomic_output(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    params = load_params(path)
    print(f"{path}: members holds the {len(params.members)} models of the perturb grid")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("params", help=SUMMARIES["params"])
    psub = parser.add_subparsers(dest="params_command", metavar="ACTION", required=True)
    check = psub.add_parser("check", help="validate a profile file against the schema")
    check.add_argument("file", nargs="?", default=PARAMS_FILE, help="profile (default: params.yaml)")
    check.set_defaults(func=_check)
    use = psub.add_parser("use", help="make a profile (default, smoke, paper, ...) the active params.yaml")
    use.add_argument("profile", help="profile name: default or a file stem under profiles/")
    use.set_defaults(func=_use)
    members = psub.add_parser(
        "members", help="regenerate a profile's members mapping from its perturb grid",
        description="Print FILE with its generated `members` mapping (one DVC cell per model) "
        "rebuilt from its `perturb` grid; with --write, rewrite FILE in place. Run it after "
        "editing perturb.base_models, alphas, seeds, nonstandard or scope.")
    members.add_argument("file", nargs="?", default=PARAMS_FILE, help="profile (default: params.yaml)")
    members.add_argument("--write", action="store_true", help="rewrite FILE instead of printing it")
    members.set_defaults(func=_members)
