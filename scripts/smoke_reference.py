"""Regenerate the smoke profile's committed reference (``make smoke-reference``).

Runs ``make repro PROFILE=smoke WORKERS=0`` (the sequential ``dvc repro``, every core per stage)
in a throw-away copy of the working tree, then replaces the reference folder named by
``tolerances/smoke.yaml`` (tests/reference/smoke) with the run's result files — those the tolerance
file's ``results`` globs select, small CSV and JSON only — and the ``params.yaml`` that made them.
``latentgeo verify`` on a smoke run compares against this folder. Rerun it whenever the code
changes what the smoke pipeline writes, and commit the folder with that change. The test suite's
smoke run uses two worker processes with one thread each: another floating-point path (thread
count), so tests/test_verify.py checks the stated tolerances, not byte identity.

    python scripts/smoke_reference.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from pipeline_utils import VENV, copy_worktree, run, tracked_files  # noqa: E402

from latentgeo.io import atomic_output  # noqa: E402
from latentgeo.verify.sources import pipeline_outputs, produced_by  # noqa: E402
from latentgeo.verify.tolerances import load_tolerances  # noqa: E402


def snapshot(repo: Path, dest: Path, tolerances_file: Path) -> list[str]:
    """Copy ``repo``'s result files (by the tolerance file's globs) and params.yaml into ``dest``
    atomically (the old folder is replaced only when the new one is complete)."""
    tol = load_tolerances(tolerances_file)
    files = [f for f in tracked_files(repo) if tol.is_result(f)]
    if tol.only_pipeline_outputs:  # not the other profile's results the copy also holds
        outputs = pipeline_outputs(repo)
        files = [f for f in files if produced_by(f, outputs)]
    if not files:
        raise SystemExit(f"no result files in {repo} match {list(tol.results)}")
    with atomic_output(dest, directory=True) as tmp:
        for rel in [*files, "params.yaml"]:
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(repo / rel, target)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", help="run in this folder and keep it (default: a temporary folder)")
    args = parser.parse_args()
    tolerances_file = ROOT / "tolerances" / "smoke.yaml"
    dest = ROOT / load_tolerances(tolerances_file).reference
    with tempfile.TemporaryDirectory(prefix="latentgeo-smoke-reference-") as tmp:
        repo = copy_worktree(Path(args.keep or tmp) / "repo")
        start = time.perf_counter()
        run(repo, "make", "repro", "PROFILE=smoke", f"VENV={VENV}", "SKIP_INSTALL=1", "WORKERS=0", "VERIFY=report",
            timeout=3600)
        files = snapshot(repo, dest, tolerances_file)
    print(f"{dest.relative_to(ROOT)}: {len(files)} result files and params.yaml from a smoke run of "
          f"{time.perf_counter() - start:.0f} s; commit them with the change that made them")


if __name__ == "__main__":
    main()
