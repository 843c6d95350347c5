"""Benchmark: the install step of `make repro` / `make test` with and without byte-compiling.

``make install`` creates ``.venv`` and installs the pinned wheels (``requirements.lock``,
``requirements-nodeps.txt``) with pip. By default pip byte-compiles every ``.py`` file it installs
(torch, transformers, dvc, scipy, ... tens of thousands of files), although a pipeline run imports
a small part of them; with ``--no-compile`` Python compiles a module the first time it is imported
and keeps the ``.pyc`` beside it (``__pycache__``), as it does for any package.

Where ``PYTHONDONTWRITEBYTECODE`` is set (as on this project's machines), Python writes no ``.pyc``
on import, so without pip's compiling every import compiles again, in every stage's kernel. The
``--no-compile`` setting is therefore measured twice: with the caller's environment, and with the
variable removed (bytecode written on first import).

For each setting this script creates a fresh virtual environment in a temporary folder, times the
pip command ``make install`` runs (wheels come from pip's cache after the first round, as on a
machine that installed once; run it once beforehand to warm the cache), then times the imports a
stage's kernel does, twice in fresh interpreters: the first pays for compiling what was not
compiled at install, the second is the steady state. The settings alternate over ``--rounds``.

    python bench/install_time.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# setting -> (pip's extra flags, whether the imports run with PYTHONDONTWRITEBYTECODE removed)
SETTINGS = {
    "compile (pip's default)": ([], False),
    "--no-compile": (["--no-compile"], False),
    "--no-compile, bytecode written": (["--no-compile"], True),
}
# What the stages' kernels import between them (torch, transformers, faiss, the measures' libraries,
# the notebooks' plotting) and what the runner imports (dvc, distributed, papermill).
IMPORTS = ("import torch, transformers, faiss, numpy, scipy, pandas, sklearn, statsmodels, seaborn, "
           "matplotlib.pyplot, datasets, dvc.repo, distributed, papermill, nbclient, ipykernel.kernelapp")


def timed_run(cmd: list[str], **kwargs) -> float:
    """Wall seconds of ``cmd`` (checked)."""
    start = time.perf_counter()
    subprocess.run(cmd, check=True, **kwargs)
    return time.perf_counter() - start


def measure(setting: str, root: Path) -> dict:
    """Install the lock into a fresh venv under ``root`` with ``setting``'s pip flags; time it and
    two rounds of the stages' imports."""
    flags, write_bytecode = SETTINGS[setting]
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    install = timed_run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                         *flags, "-r", str(REPO / "requirements.lock"),
                         "-r", str(REPO / "requirements-nodeps.txt")],
                        stderr=subprocess.DEVNULL)
    env = {**os.environ, "MPLBACKEND": "Agg"}
    if write_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    first = timed_run([python, "-c", IMPORTS], env=env)
    second = timed_run([python, "-c", IMPORTS], env=env)
    pyc = sum(1 for _ in venv.rglob("*.pyc"))
    return {"install": install, "first_import": first, "import": second, "pyc_files": pyc}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}; "
          f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '(unset)')}")
    results: dict[str, list[dict]] = {s: [] for s in SETTINGS}
    for r in range(args.rounds):
        order = list(SETTINGS) if r % 2 == 0 else list(reversed(SETTINGS))
        for setting in order:
            with tempfile.TemporaryDirectory(prefix="install-bench-") as tmp:
                res = measure(setting, Path(tmp))
            results[setting].append(res)
            print(f"round {r + 1} {setting:>31}: install {res['install']:6.1f} s, first imports "
                  f"{res['first_import']:5.1f} s, then {res['import']:5.1f} s; {res['pyc_files']} .pyc files",
                  flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    mean = {s: {k: sum(r[k] for r in rs) / len(rs) for k in rs[0]} for s, rs in results.items()}
    base = mean["compile (pip's default)"]
    for setting, m in mean.items():
        print(f"mean {setting:>31}: install {m['install']:6.1f} s ({m['install'] / base['install']:.2f}x pip's "
              f"default), first imports {m['first_import']:5.1f} s, then {m['import']:5.1f} s "
              f"({m['import'] / base['import']:.2f}x)")


if __name__ == "__main__":
    main()
