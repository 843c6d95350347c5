"""Benchmark: how long DVC takes to find that nothing needs to run (a no-op `dvc repro`).

Runs on the working tree as it is, which must be up to date (`make repro` first). Prints the
median wall time of `dvc status` and of a no-op `dvc repro` over a few repeats, next to two
baselines measured in the same process: DVC's start-up alone (`dvc --version`) and the cost of
parsing dvc.lock once with ruamel.yaml's pure-Python loader against its C loader
(ruamel.yaml.clib), which DVC uses for every YAML file it reads (dvc.lock and params.yaml once
per stage).

    python bench/noop_repro.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DVC = str(Path(sys.executable).with_name("dvc"))


def timed(*args: str) -> tuple[float, str]:
    """Wall seconds and stdout of one command run in the repository root."""
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True,
                          env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    return time.perf_counter() - start, proc.stdout


def yaml_parse_seconds(text: str, *, pure: bool) -> float:
    """Seconds to parse ``text`` as DVC does (typ="safe"), with or without the C loader."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=pure)
    start = time.perf_counter()
    yaml.load(text)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    _, status = timed(DVC, "status")
    if "up to date" not in status:
        raise SystemExit(f"the pipeline is not up to date (run `make repro` first):\n{status}")
    n_stages = sum(1 for line in (ROOT / "dvc.lock").read_text().splitlines()
                   if line.startswith("  ") and not line.startswith("   ") and line.rstrip().endswith(":"))
    print(f"{ROOT.name}: {n_stages} stages in dvc.lock ({(ROOT / 'dvc.lock').stat().st_size / 1e3:.0f} kB); "
          f"load average {os.getloadavg()[0]:.2f}")

    startup = statistics.median(timed(DVC, "--version")[0] for _ in range(args.repeats))
    status_s = statistics.median(timed(DVC, "status")[0] for _ in range(args.repeats))
    repro_times = []
    for _ in range(args.repeats):
        seconds, out = timed(DVC, "repro")
        if "Running stage" in out:
            raise SystemExit(f"`dvc repro` ran a stage: the benchmark needs an up-to-date tree\n{out}")
        repro_times.append(seconds)
    repro_s = statistics.median(repro_times)

    lock = (ROOT / "dvc.lock").read_text()
    try:
        import _ruamel_yaml  # noqa: F401  (the C extension of ruamel.yaml.clib)
        c_s = statistics.median(yaml_parse_seconds(lock, pure=False) for _ in range(args.repeats))
    except ImportError:
        c_s = float("nan")
    pure_s = statistics.median(yaml_parse_seconds(lock, pure=True) for _ in range(args.repeats))

    print(f"dvc --version (start-up)      {startup:6.2f} s")
    print(f"dvc status                    {status_s:6.2f} s")
    print(f"dvc repro, nothing to run     {repro_s:6.2f} s   ({repro_s / startup:.1f}x start-up; target < 10 s)")
    print(f"parse dvc.lock once: pure-Python loader {pure_s:.2f} s, C loader {c_s:.2f} s ({pure_s / c_s:.1f}x)")


if __name__ == "__main__":
    main()
