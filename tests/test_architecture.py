"""The package's shape: imports run one way down the pipeline, and no module imports another in a circle.

The stages, bottom first (a module may import its own stage and any stage below it, never one above):

0. the vocabulary: ``names`` (tags, run types), ``metrics`` (every metric declared once), ``gates`` (the gate layout);
1. ``config``: schemas, composing, plug-in resolution, validation, a run's identity;
2. ``datasets``;  3. ``layers``;  4. ``strategies``;  5. ``model`` (the builder);
6. ``tracking`` (every MLflow call);  7. ``training`` (one run);  8. ``orchestration`` (sweeps and tuning);
9. ``analysis`` (reads runs back; it trains nothing);
10. the entry points: the package's ``__init__`` (the public API, loaded lazily), ``__main__`` and ``tune``.

Every import counts, also one inside a function: a deferred import still ties the two modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lstm_influence"

STAGES = {
    "names": 0,
    "metrics": 0,
    "gates": 0,
    "config": 1,
    "datasets": 2,
    "layers": 3,
    "strategies": 4,
    "model": 5,
    "tracking": 6,
    "training": 7,
    "orchestration": 8,
    "analysis": 9,
    "__init__": 10,
    "__main__": 10,
    "tune": 10,
    "conf": 0,  # the packaged YAML files, read as data
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def stage(module: str) -> int:
    """The stage of ``lstm_influence.<top>...``; the package itself (``import lstm_influence``) is the entry point."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    if top not in STAGES:
        raise AssertionError(f"{module}: a new top-level module or package; give it a stage in this test")
    return STAGES[top]


def package_imports(path: Path) -> set[str]:
    """The ``lstm_influence`` modules the file imports, at any depth of the file (``from X import y`` counts X.y
    when X.y is a module, else X)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path).split(".")
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("lstm_influence")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_package else here[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("lstm_influence"):
                continue
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if module_path(candidate) else target)
    return found


def module_path(module: str) -> Path | None:
    relative = Path(*module.split(".")[1:])
    for path in (PACKAGE / relative.with_suffix(".py"), PACKAGE / relative / "__init__.py"):
        if path.is_file():
            return path
    return None


def graph() -> dict[str, set[str]]:
    edges = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "conf" in path.relative_to(PACKAGE).parts:
            continue
        edges[module_name(path)] = {m for m in package_imports(path) if module_path(m)}
    return edges


def test_every_import_points_down_the_pipeline():
    upward = [
        f"{source} (stage {stage(source)}) imports {target} (stage {stage(target)})"
        for source, targets in graph().items()
        for target in sorted(targets)
        if stage(target) > stage(source)
    ]
    assert not upward, "\n".join(upward)


def test_no_module_imports_itself_through_others():
    edges = graph()
    # a package's __init__ re-exporting its own modules is not a cycle of concepts: leave those edges out
    edges = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in edges.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_the_vocabulary_imports_nothing_from_the_package():
    for name in ("names", "metrics", "gates"):
        path = PACKAGE / f"{name}.py"
        if not path.is_file():
            pytest.fail(f"lstm_influence/{name}.py is missing")
        assert package_imports(path) == set(), name


def test_a_module_outside_the_stages_is_refused():
    with pytest.raises(AssertionError, match="give it a stage"):
        stage("lstm_influence.newthing")
    assert stage("lstm_influence") == 10 and stage("lstm_influence.training.runner") == 7


# Modules over ~400 lines, each still one concept, with the reason a reader would accept.
LONG_MODULES = {
    "analysis/estimators.py": "many small pure estimators, each with its doctest; splitting them would scatter one API",
    "layers/extra_variable.py": "the layer and its cell, as Keras's own lstm.py keeps LSTM and LSTMCell together",
    "analysis/load.py": "one reader: a sweep's runs, params and histories from any MLflow store into tidy frames",
    "analysis/summaries.py": "one estimator pipeline: scores, each arm against the control, the summary rows",
    "analysis/result_sections.py": "the report's result sections, one function per section",
    "datasets/financial.py": "one loader: the bundled or a user's price series, its targets, windows and references",
}
MODULE_LINES = 400
FUNCTION_LINES = 60


def test_long_modules_are_the_named_ones():
    long = {
        str(path.relative_to(PACKAGE)): len(path.read_text().splitlines())
        for path in PACKAGE.rglob("*.py")
        if len(path.read_text().splitlines()) > MODULE_LINES
    }
    assert set(long) <= set(LONG_MODULES), {m: n for m, n in long.items() if m not in LONG_MODULES}
    # a module that shrank leaves the list, so the list keeps saying something
    assert set(LONG_MODULES) <= set(long), set(LONG_MODULES) - set(long)


def test_no_function_body_runs_over_sixty_lines():
    """Lines from ``def`` to the end, the docstring left out (a long docstring is welcome)."""
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            lines = node.end_lineno - node.lineno + 1
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                lines -= first.end_lineno - first.lineno + 1
            if lines > FUNCTION_LINES:
                long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}: {lines} lines")
    assert not long, "\n".join(long)
