"""Every DVC stage depends on all the project code its notebook runs, and on no other.

A stage reruns only when one of its declared dependencies changes, so a module its notebook
reaches but dvc.yaml does not list (the model loader behind `embed`, say) could change every
number the stage writes while `dvc status` stays clean. The code a notebook runs is found
statically: the `latentgeo` imports of its code cells, then of every module they reach,
including imports inside functions (followed whether or not they run, to err on the complete
side). A listed folder covers every file under it.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def _module_file(name: str) -> Path | None:
    """The source file of module ``name`` (a package's ``__init__.py``), or None if not ours."""
    path = SRC.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def _latentgeo_imports(code: str, package: str) -> set[str]:
    """Names of the ``latentgeo`` modules (and of names imported from them, which may be
    submodules) that ``code`` imports anywhere; ``package`` resolves relative imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.split(".")[0] == "latentgeo")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(parts + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != "latentgeo":
                continue
            names.add(module)
            names.update(f"{module}.{a.name}" for a in node.names)
    return names


def code_closure(code: str) -> set[str]:
    """Repository paths of every project source file that ``code`` reaches by imports."""
    seen: set[Path] = set()
    todo = list(_latentgeo_imports(code, ""))
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if path is None or path in seen:
            continue
        seen.add(path)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parents' __init__ run too
        package = name if path.name == "__init__.py" else ".".join(parts[:-1])
        todo += _latentgeo_imports(path.read_text(), package)
    return {str(p.relative_to(ROOT)) for p in seen}


def notebook_code(path: Path) -> str:
    """The Python of a notebook's code cells (IPython magics and shell lines left out)."""
    cells = json.loads(path.read_text())["cells"]
    lines = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code").splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))


def _stages() -> list[tuple[str, dict]]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return [(name, stage.get("do", stage)) for name, stage in stages.items()]


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def test_closure_follows_relative_and_function_level_imports():
    """The walk itself: a notebook importing only the measures stage reaches its helpers, and
    modules imported inside functions (the deferred kind) are followed too."""
    reached = code_closure("from latentgeo.stages.measures import run_measures_stage\n")
    assert {"src/latentgeo/__init__.py", "src/latentgeo/geometry/measures/__init__.py",
            "src/latentgeo/stages/measures.py", "src/latentgeo/geometry/measures/quantizers.py"} <= reached
    assert not any("commands/" in p or "verify/" in p or "repro/" in p for p in reached)
    assert code_closure("import numpy\n") == set()


@pytest.mark.parametrize("name, stage", _stages(), ids=[name for name, _ in _stages()])
def test_stage_lists_all_the_code_its_notebook_runs(name, stage):
    notebooks = [d for d in stage["deps"] if str(d).startswith("notebooks/")]
    assert len(notebooks) == 1, f"stage {name} should depend on exactly one notebook: {notebooks}"
    assert notebooks[0] in stage["cmd"], f"stage {name} runs another notebook than it depends on"
    deps = [str(d) for d in stage["deps"]]
    missing = sorted(p for p in code_closure(notebook_code(ROOT / notebooks[0])) if not _covered(p, deps))
    assert not missing, f"dvc.yaml stage {name!r} runs code it does not depend on: {missing}"
    stale = [d for d in deps if d.startswith("src/") and not (ROOT / d).exists()]
    assert not stale, f"dvc.yaml stage {name!r} depends on code that does not exist: {stale}"
    # And no more: code the notebook never reaches would rerun the stage for nothing (the
    # 15-minute stitching stage once depended on the results table through the figures module).
    reached = code_closure(notebook_code(ROOT / notebooks[0]))
    unused = [d for d in deps if d.startswith("src/") and not any(_covered(p, [d]) for p in reached)]
    assert not unused, f"dvc.yaml stage {name!r} depends on code its notebook never runs: {unused}"
    # A folder covers its subfolders too: `geometry` under `embed` once reran every embedding
    # after a change to the measures, which embedding never runs.
    too_wide = {d: sorted(unreached) for d in deps if (ROOT / d).is_dir() and d.startswith("src/")
                if (unreached := _python_files(d) - reached)}
    assert not too_wide, f"dvc.yaml stage {name!r} depends on folders holding code it never runs: {too_wide}"


def _python_files(folder: str) -> set[str]:
    """Repository paths of the project's Python files under ``folder``, subfolders included."""
    return {str(p.relative_to(ROOT)) for p in (ROOT / folder).rglob("*.py")}


def test_finetune_stage_depends_on_the_settings_a_run_reads():
    """A fine-tuning cell reads its task from its command and its hyper-parameters through
    FinetuneSettings: those keys are its params, so editing the task list reruns no other task.
    Every other key of the profile's finetune section must be known not to change a run."""
    import dataclasses

    from latentgeo.config.schema import FinetuneParams
    from latentgeo.downstream.finetune import FinetuneSettings

    stage = dict(_stages())["finetune"]
    read = {f.name for f in dataclasses.fields(FinetuneSettings)}
    assert set(stage["params"]) == {f"finetune.{name}" for name in read}
    # suite: implied by the task's name; tasks: the matrix itself; save_checkpoint: the CLI's only
    assert set(FinetuneParams.model_fields) - read == {"suite", "tasks", "save_checkpoint"}
