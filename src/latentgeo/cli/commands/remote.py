"""``latentgeo remote pull|check``: the DVC remote, with one clear line when it cannot help."""

from __future__ import annotations

import argparse
import sys

from latentgeo.errors import LatentgeoError
from latentgeo.remote import default_remote, probe, pull
from latentgeo.cli.commands import SUMMARIES


def _pull(args: argparse.Namespace) -> int:
    report = pull(args.targets, probe_timeout=args.probe_timeout, timeout=args.timeout)
    for note in report.notes:
        print(note, file=sys.stderr)
    if report.status == "corrupted":
        # Not a fallback case: a remote that serves wrong bytes must be repaired, so fail loudly.
        raise LatentgeoError(report.message)
    print(report.message)
    return 0


def _check(args: argparse.Namespace) -> int:
    try:
        remote = default_remote()
    except Exception as err:  # noqa: BLE001 - NotDvcRepoError, ConfigError
        raise LatentgeoError(f"the DVC configuration is unusable ({err})") from None
    if remote is None:
        raise LatentgeoError("no default DVC remote is configured (see docs/remote-storage.md)")
    why = probe(remote, timeout=args.probe_timeout)
    if why is not None:
        raise LatentgeoError(f"{remote} unreachable ({why})")
    print(f"{remote} answers; verify = {str(remote.verify).lower()}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("remote", help=SUMMARIES["remote"])
    rsub = parser.add_subparsers(dest="remote_command", metavar="ACTION", required=True)
    pull = rsub.add_parser("pull", help="pull what the default remote has; say in one line what it lacks "
                                        "(exit 0; exit 2 only when an object fails its hash check)")
    pull.add_argument("targets", nargs="*", help=".dvc files, stages or outputs (default: all)")
    pull.add_argument("--probe-timeout", type=float, default=30.0, metavar="S",
                      help="give up on a remote that does not answer within S seconds (default 30)")
    pull.add_argument("--timeout", type=float, default=None, metavar="S",
                      help="bound the whole transfer to S seconds (default: no bound)")
    pull.set_defaults(func=_pull)
    check = rsub.add_parser("check", help="contact the default remote once (exit 2 when it does not answer)")
    check.add_argument("--probe-timeout", type=float, default=30.0, metavar="S")
    check.set_defaults(func=_check)
