"""Load a benchmark script of bench/ as a module, for the tests of its pure functions."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def bench_module(name: str, module_name: str | None = None):
    """bench/<name>.py as a module, registered (dataclasses look their module up) under
    ``module_name`` (default ``name``). While it loads, bench/ is on sys.path, as when it runs as a
    script: its sibling modules (study_files, study_jobs) import."""
    spec = importlib.util.spec_from_file_location(module_name or name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    added = str(BENCH) not in sys.path
    if added:
        sys.path.insert(0, str(BENCH))
    try:
        spec.loader.exec_module(module)
    finally:
        if added:
            sys.path.remove(str(BENCH))
    return module
