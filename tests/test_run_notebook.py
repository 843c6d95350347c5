"""The stages' papermill launcher: papermill's CLI with unused optional imports blocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_notebook

from latentgeo.run_notebook import (
    KERNEL_ARGUMENTS,
    KERNEL_MALLOC_ENV,
    KERNEL_WARNING_FILTER,
    UNUSED_OPTIONAL_MODULES,
    set_kernel_malloc_env,
    set_kernel_warning_filter,
)

REPO = Path(__file__).resolve().parents[1]


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)


def test_blocked_modules_fail_to_import_and_papermill_still_imports():
    code = (
        "import sys, json\n"
        "from latentgeo.run_notebook import block_unused_imports\n"
        "blocked = block_unused_imports()\n"
        "import papermill.cli, papermill.iorw as io\n"
        "failed = []\n"
        "for name in blocked:\n"
        "    try:\n"
        "        __import__(name)\n"
        "    except ImportError:\n"
        "        failed.append(name)\n"
        "print(json.dumps({'blocked': blocked, 'failed': failed,\n"
        "                  'loaded': sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "                                   ('gcsfs', 'pyarrow', 'rfc3987_syntax') and sys.modules[m])}))\n"
    )
    out = json.loads(_python(code).stdout)
    assert out["blocked"] == list(UNUSED_OPTIONAL_MODULES)
    assert out["failed"] == out["blocked"]
    assert out["loaded"] == []  # none of them was imported behind the block


def _launch(tmp_path: Path, cells: list, *args: str) -> tuple[nbformat.NotebookNode, str]:
    """Run a notebook of ``cells`` through the launcher as the stages do (papermill ``args``
    appended); returns the executed notebook and the launcher's stderr."""
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"},
        "language_info": {"name": "python"}})
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    run = subprocess.run([sys.executable, "-m", "latentgeo.run_notebook", "--kernel", "python3",
                          "--log-level", "WARNING", "--no-progress-bar", str(src), str(out), *args],
                         capture_output=True, text=True, check=True)
    return nbformat.read(out, as_version=4), run.stderr


@pytest.mark.slow  # runs a notebook
def test_launcher_runs_a_parameterised_notebook(tmp_path):
    executed, stderr = _launch(tmp_path, [
        new_code_cell("x = 1\nMALLOC = []", metadata={"tags": ["parameters"]}),
        new_code_cell("print(x * 10)"),
        # what ipykernel logs when the interrupt jupyter_client sends at every shutdown lands while
        # the kernel finishes its last message (a race, seen on a loaded machine): nothing failed
        new_code_cell("get_ipython().kernel.log.error('KeyboardInterrupt caught in kernel.')"),
        new_code_cell("import os; print({k: os.environ.get(k) for k in sorted(MALLOC)})"),
    ], "-p", "x", "7", "-y", json.dumps({"MALLOC": sorted(KERNEL_MALLOC_ENV)}))
    assert executed.cells[-3].outputs[0]["text"] == "70\n"
    # the kernel was started with the allocator settings
    expected = {k: os.environ.get(k, v) for k, v in sorted(KERNEL_MALLOC_ENV.items())}
    assert executed.cells[-1].outputs[0]["text"] == f"{expected}\n"
    # the kernel's own log (its unencrypted-loopback warning at start-up, the interrupt at
    # shutdown) stays out of the output
    assert "without encryption" not in stderr and "IPKernelApp" not in stderr
    assert "KeyboardInterrupt" not in stderr
    failed = subprocess.run([sys.executable, "-m", "latentgeo.run_notebook", str(tmp_path / "nope.ipynb"),
                             str(tmp_path / "o.ipynb")], capture_output=True, text=True)
    assert failed.returncode != 0 and "nope.ipynb" in failed.stderr


def test_every_stage_runs_its_notebook_through_the_launcher():
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())
    pm = next(v["pm"] for v in pipeline["vars"] if "pm" in v)
    assert pm.startswith("python -m latentgeo.run_notebook ")
    for name, stage in pipeline["stages"].items():
        cmd = stage["do"]["cmd"] if "foreach" in stage else stage["cmd"]  # foreach stages: a template
        assert "${pm} notebooks/" in cmd, name
        assert "papermill " not in cmd, name


def test_malloc_settings_keep_what_the_user_set():
    environ = {"MALLOC_MMAP_MAX_": "65536", "PATH": "/bin"}
    added = set_kernel_malloc_env(environ)
    assert environ["MALLOC_MMAP_MAX_"] == "65536"  # the user's value wins
    assert added == {k: v for k, v in KERNEL_MALLOC_ENV.items() if k != "MALLOC_MMAP_MAX_"}
    assert environ["MALLOC_TRIM_THRESHOLD_"] == KERNEL_MALLOC_ENV["MALLOC_TRIM_THRESHOLD_"]
    assert set_kernel_malloc_env(environ) == {}


def test_warning_filter_is_appended_once_and_keeps_the_users_filters():
    environ = {"PYTHONWARNINGS": "error::DeprecationWarning"}
    value = set_kernel_warning_filter(environ)
    assert value == f"error::DeprecationWarning,{KERNEL_WARNING_FILTER}"
    assert set_kernel_warning_filter(environ) == value  # not twice
    assert set_kernel_warning_filter({}) == KERNEL_WARNING_FILTER


@pytest.mark.slow  # runs a notebook
def test_kernels_do_not_warn_about_ipywidgets_and_still_show_progress(tmp_path):
    """tqdm.auto in a kernel without ipywidgets: no "IProgress not found", text bars instead."""
    executed, _ = _launch(tmp_path, [
        new_code_cell("from tqdm.auto import tqdm\nfor _ in tqdm(range(3), desc='steps'):\n    pass"),
        new_code_cell("import warnings\nwarnings.warn('another warning')"),
    ])
    bars, other = ("".join(o.get("text", "") for o in cell.outputs) for cell in executed.cells)
    assert "IProgress" not in bars and "steps: 100%" in bars
    assert "another warning" in other  # only that one warning is filtered


def test_kernels_get_the_launchers_arguments():
    """papermill's default engine, as the launcher sets it, hands the kernel arguments to nbclient
    (which appends them to the kernel's command line); a caller's own arguments win."""
    code = (
        "import json\n"
        "from latentgeo.run_notebook import use_kernel_arguments\n"
        "use_kernel_arguments()\n"
        "from papermill.engines import NBClientEngine, papermill_engines\n"
        "seen = []\n"
        "NBClientEngine.execute_managed_notebook = classmethod(lambda cls, nb, k, **kw: seen.append(kw))\n"
        "engine = papermill_engines.get_engine(None)\n"
        "engine.execute_managed_notebook(None, 'python3')\n"
        "engine.execute_managed_notebook(None, 'python3', extra_arguments=['--mine'])\n"
        "print(json.dumps([engine is papermill_engines.get_engine('nbclient'), seen]))\n"
    )
    same, seen = json.loads(_python(code).stdout)
    assert same and seen == [{"extra_arguments": list(KERNEL_ARGUMENTS)}, {"extra_arguments": ["--mine"]}]
