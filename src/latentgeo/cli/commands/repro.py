"""``latentgeo repro``: the DVC pipeline's stale stages on a Dask cluster (docs/cluster.md)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys

from latentgeo.cli.commands import SUMMARIES, positive_int
from latentgeo.repro import FAILED, RAN, RESTORED, SKIPPED, UP_TO_DATE, reproduce

SIGTERM_EXIT = 128 + signal.SIGTERM  # the shell's convention for "ended by SIGTERM"


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: a batch system cancelling the job (Slurm's scancel, a
    wall-time limit) must also end the stages' commands and leave nothing half-written."""


def _raise_terminated(signum, frame):
    raise Terminated(f"signal {signum}")


@contextlib.contextmanager
def _sigterm_as_interrupt():
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _repro(args: argparse.Namespace) -> int:
    try:
        with _sigterm_as_interrupt():
            outcome = reproduce(args.targets, cluster=args.cluster, workers=args.workers,
                                threads=args.threads, params_file=args.params,
                                connect_timeout=args.connect_timeout, prune_lock=args.prune_lock)
    except Terminated:
        print("latentgeo repro: terminated (SIGTERM); running stages were stopped and their outputs "
              "removed, finished stages are recorded", file=sys.stderr)
        return SIGTERM_EXIT
    counts = ", ".join(f"{len(outcome.names(s))} {s}" for s in (RAN, RESTORED, UP_TO_DATE, FAILED, SKIPPED)
                       if outcome.names(s))
    print(f"{counts or 'nothing to do'} in {outcome.seconds:.1f} s")
    if outcome.orphans:
        shown = ", ".join(outcome.orphans[:3]) + (", …" if len(outcome.orphans) > 3 else "")
        if outcome.pruned:
            print(f"dvc.lock: removed {len(outcome.orphans)} entries of stages dvc.yaml no longer "
                  f"defines ({shown})")
        else:
            print(f"dvc.lock keeps {len(outcome.orphans)} entries of stages dvc.yaml no longer defines "
                  f"({shown}), as DVC does (a profile switched back to finds its stages up to date "
                  "through them); `latentgeo repro --prune-lock` removes them")
    for name, error in outcome.errors.items():
        print(f"\nstage {name} failed: {error}", file=sys.stderr)
    if not outcome.ok:
        print(f"latentgeo repro: {len(outcome.names(FAILED))} stage(s) failed, "
              f"{len(outcome.names(SKIPPED))} skipped; the others are recorded, rerun to continue",
              file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "repro", help=SUMMARIES["repro"],
        description="Run the stale stages of the DVC pipeline on a Dask cluster in dependency order; "
                    "DVC records each finished stage (dvc.lock, cache) as `dvc repro` would.")
    parser.add_argument("targets", nargs="*", metavar="TARGET",
                        help="stages, foreach groups or dvc.yaml files, as for `dvc repro` (default: all)")
    parser.add_argument("--workers", "-j", type=positive_int, default=None, metavar="N",
                        help="local: worker processes (default: cluster.workers, else 2, at most the "
                             "cores); jobqueue: batch jobs")
    parser.add_argument("--cluster", default=None, metavar="local|slurm|pbs|sge|lsf|ADDRESS",
                        help="where stages run (default: the profile's cluster section, else local); "
                             "ADDRESS is a running scheduler, tcp://host:port")
    parser.add_argument("--threads", type=positive_int, default=None, metavar="T",
                        help="threads per stage (default: cores / workers)")
    parser.add_argument("--params", default=None, metavar="FILE",
                        help="profile whose cluster section to use (default: params.yaml)")
    parser.add_argument("--connect-timeout", type=float, default=20.0, metavar="S",
                        help="give up on a scheduler address that does not answer within S s (default 20)")
    parser.add_argument("--prune-lock", action="store_true",
                        help="after a successful run of the whole pipeline, remove the dvc.lock entries "
                             "of stages dvc.yaml no longer defines (DVC keeps them; a profile switched "
                             "back to then restores its stages from DVC's run-cache, or reruns those "
                             "the run-cache no longer holds)")
    parser.set_defaults(func=_repro)
