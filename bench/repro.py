"""Sequential `dvc repro` vs. `latentgeo repro --workers N` on the smoke pipeline, from scratch.

Each mode gets its own fresh copy of the working tree (as a clone sees it) with the smoke profile
and data/ in place (untimed, like an installed checkout); then only the pipeline is timed. Prints
each mode's wall time, the speed-up over the first mode, and whether the runs' results tables and
dvc.lock entries agree.

    python bench/repro.py [--modes dvc,2] [--threads T] [--repeats 1] [--keep]

A mode is `dvc` (plain `dvc repro`) or a worker count N (`latentgeo repro --workers N`);
`--modes 1,2` compares one and two workers. Repeats reverse the order of the modes each time
(the machine may be shared: compare the spread).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from pipeline_utils import VENV, copy_worktree, dvc, run  # noqa: E402

TABLES = ("results/table.csv", "results/measures_family.csv", "results/regression.json",
          "results/stitching/grid.csv", "results/stitching/similarity.csv")


def smoke_copy(dest: Path) -> Path:
    """A fresh copy of the tree on the smoke profile with data/ built: ready for `dvc repro`."""
    repo = copy_worktree(dest)
    latentgeo = str(VENV / "bin" / "latentgeo")
    run(repo, latentgeo, "params", "use", "smoke")
    run(repo, latentgeo, "data", "get", timeout=900)
    return repo


def timed(repo: Path, mode: str, workers: int, threads: int | None) -> float:
    start = time.monotonic()
    if mode == "dvc":
        dvc(repo, "repro", timeout=1800)
    else:
        cmd = [str(VENV / "bin" / "latentgeo"), "repro", "--workers", str(workers)]
        if threads:
            cmd += ["--threads", str(threads)]
        run(repo, *cmd, timeout=1800)
    seconds = time.monotonic() - start
    status = dvc(repo, "status").stdout
    if "up to date" not in status:
        raise SystemExit(f"{mode}: dvc status not clean afterwards:\n{status}")
    return seconds


def lock_signature(repo: Path) -> list:
    """dvc.lock in order, every hash included except the executed notebooks' (papermill writes
    run times into them, so two runs of the same mode differ there too)."""
    import yaml

    def entries(items):
        return [(e["path"], "-" if e["path"].startswith("executed/") else e.get("md5")) for e in items or []]

    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return [(name, s["cmd"], entries(s.get("deps")), entries(s.get("outs")), s.get("params"))
            for name, s in lock.items()]


def digest(repo: Path) -> dict[str, str]:
    return {t: hashlib.sha256((repo / t).read_bytes()).hexdigest()[:16] for t in TABLES if (repo / t).exists()}


def label(mode: str) -> str:
    return "dvc repro" if mode == "dvc" else f"latentgeo repro --workers {mode}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="dvc,2", help="comma-separated: dvc and/or worker counts")
    parser.add_argument("--threads", type=int, default=None, help="threads per stage (default: cores / workers)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies")
    args = parser.parse_args()
    modes = args.modes.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="bench-repro-"))
    times: dict[str, list[float]] = {m: [] for m in modes}
    try:
        for i in range(args.repeats):
            order = modes if i % 2 == 0 else modes[::-1]
            repos = {}
            for mode in order:
                repos[mode] = smoke_copy(tmp / f"{mode}-{i}")
                seconds = timed(repos[mode], "dvc" if mode == "dvc" else "latentgeo",
                                0 if mode == "dvc" else int(mode), args.threads)
                times[mode].append(seconds)
                print(f"run {i + 1}: {label(mode):<30} {seconds:7.1f} s", flush=True)
            first = repos[modes[0]]
            for mode in modes[1:]:
                same = digest(first) == digest(repos[mode])
                lock_same = lock_signature(first) == lock_signature(repos[mode])
                print(f"run {i + 1}: {label(mode)} vs {label(modes[0])}: results tables byte-identical: "
                      f"{'yes' if same else 'NO'}; dvc.lock entries identical (executed notebooks "
                      f"aside): {'yes' if lock_same else 'NO'}", flush=True)
            if not args.keep:
                for repo in repos.values():
                    shutil.rmtree(repo, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    base = min(times[modes[0]])
    for mode in modes:
        best = min(times[mode])
        print(f"{label(mode):<30} {best:7.1f} s (best of {len(times[mode])}; all: "
              f"{', '.join(f'{t:.1f}' for t in times[mode])})  speed-up vs {label(modes[0])}: {base / best:.2f}x")


if __name__ == "__main__":
    main()
