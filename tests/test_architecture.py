"""The package's layers: its folders show them, and imports run one way.

The import graph is built statically from the source (module-level and function-level imports,
``if TYPE_CHECKING`` blocks included), so a dependency is seen whether or not it runs. Three
rules: no import circle; an import goes to the same or a lower layer (:data:`LAYERS`); and no
``latentgeo`` module is imported inside a function (functions may defer only heavy third-party
libraries, such as torch or matplotlib).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "latentgeo"

# The layer of each top-level module or folder of the package: an import may go to its own layer
# or a lower one. Stages and the runners sit above the profile schema, the CLI above everything.
LAYERS = {
    "": 0,  # latentgeo/__init__.py (the version)
    "errors": 0,
    "io": 0,
    "plotting": 0,  # the figures' fixed style and byte-identical PNGs
    "models": 1,  # names, loading, packaged weights, the model record
    "remote": 1,
    "run_notebook": 1,
    "data": 2,  # the domains
    "geometry": 2,
    "downstream": 2,
    "translation": 2,
    "analysis": 3,  # tables, regressions, figures of the results
    "config": 4,  # the profile schema: takes each vocabulary from the domain that owns it
    "stages": 5,  # one module per DVC stage
    "repro": 5,
    "verify": 5,
    "cli": 6,
}
# Only these may import a stage (beside notebooks and tests, which are not in the package).
STAGE_IMPORTERS = ("cli",)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def _imports(module: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int, bool]]:
    """(imported latentgeo module, line, inside a function) for every import in ``path``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == PACKAGE:
                        found.append((alias.name, child.lineno, in_function))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target.split(".")[0] != PACKAGE:
                    continue
                for alias in child.names:  # a name may be a submodule
                    sub = f"{target}.{alias.name}"
                    found.append((sub if sub in modules else target, child.lineno, in_function))
            visit(child, inside)

    visit(ast.parse(path.read_text()), False)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: {t for t, _, _ in _imports(m, p, modules) if t != m} for m, p in modules.items()}


def _layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (as a path that ends where it starts), or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = walk(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = walk(node)
            if found:
                return found
    return None


def test_every_part_of_the_package_has_a_layer():
    unknown = sorted({_layer_of(m) for m in _modules()} - set(LAYERS))
    assert not unknown, f"give these a layer in LAYERS: {unknown}"


def test_the_import_graph_has_no_circle():
    cycle = _cycle(_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_imports_go_to_the_same_or_a_lower_layer():
    upward = sorted(
        f"{m} (layer {LAYERS[_layer_of(m)]}) imports {t} (layer {LAYERS[_layer_of(t)]})"
        for m, targets in _graph().items() for t in targets
        if LAYERS[_layer_of(t)] > LAYERS[_layer_of(m)]
    )
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_only_the_cli_imports_a_stage():
    wrong = sorted(
        f"{m} imports {t}" for m, targets in _graph().items() for t in targets
        if _layer_of(t) == "stages" and _layer_of(m) not in ("stages", *STAGE_IMPORTERS)
    )
    assert not wrong, "\n".join(wrong)


def test_no_latentgeo_import_inside_a_function():
    modules = _modules()
    deferred = sorted(
        f"{path.relative_to(SRC)}:{line} imports {target}"
        for m, path in modules.items() for target, line, in_function in _imports(m, path, modules)
        if in_function
    )
    assert not deferred, (
        "import these at module level (functions defer only heavy third-party libraries):\n"
        + "\n".join(deferred)
    )


def _reached(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module importing ``start`` runs: its imports, theirs, and each one's parent packages."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        module = todo.pop()
        if module in seen or module not in graph:
            continue
        seen.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))] + sorted(graph[module])
    return seen


# The code that computes, in each domain: none of it may be reached from the profile schema.
COMPUTING = (
    "latentgeo.geometry.perturb", "latentgeo.geometry.embed", "latentgeo.geometry.measures.quantizers",
    "latentgeo.geometry.measures.compute", "latentgeo.translation.translate", "latentgeo.translation.stitch",
    "latentgeo.downstream.finetune", "latentgeo.analysis.regression", "latentgeo.analysis.table",
)


def test_the_profile_schema_reaches_vocabularies_not_computation():
    """Every stage loads the profile schema, so every module it reaches is a code dependency of
    every DVC stage (tests/test_dvc_deps.py): an edit there reruns the whole pipeline. The schema
    takes each domain's allowed values from a small module of its own (geometry.family,
    geometry.measures.kinds, translation.methods, ...), never from the code that computes."""
    graph = _graph()
    assert not set(COMPUTING) - set(graph), "COMPUTING names a module that does not exist"
    reached = _reached(graph, "latentgeo.config.schema")
    assert not reached & set(COMPUTING), sorted(reached & set(COMPUTING))
    assert "latentgeo.geometry.family" in reached  # the walk itself reached the vocabularies
