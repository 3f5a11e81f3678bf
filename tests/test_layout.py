"""The package's layout, read from its source: the rooms' import order, no import cycle, and
classes and functions small enough to read in one sitting."""
from __future__ import annotations

import ast
import pathlib

import pytest

import yeswidget

PACKAGE = pathlib.Path(yeswidget.__file__).resolve().parent

#: the rooms, bottom floor first: a module may import from its own floor or the floors below
FLOORS = (
    ("yeswidget.core",),
    ("yeswidget.engine",),
    ("yeswidget.monitor",),
    ("yeswidget.training", "yeswidget.view"),
    ("yeswidget.report", "yeswidget.integrations", "yeswidget.widgets", "yeswidget.tuning"),
    ("yeswidget.cli", "yeswidget"),
)
MAX_CLASS_LINES = 300
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, tuple[pathlib.Path, bool]]:
    """Module name → (file, is a package's ``__init__``)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if package else parts)] = (path, package)
    return found


MODULES = _modules()


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Ids of the import nodes inside ``if TYPE_CHECKING:`` blocks (read by type checkers, never run)."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            ids.update(id(inner) for child in node.body for inner in ast.walk(child))
    return ids


def _imported(name: str, path: pathlib.Path, package: bool) -> set[str]:
    """The package's modules that ``name`` imports anywhere it runs (also inside functions; not
    the annotations-only imports under ``TYPE_CHECKING``): ``from a import b`` counts as ``a.b``
    when that is a module."""
    here = name if package else name.rsplit(".", 1)[0]
    targets: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[: len(here.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                targets.add(submodule if submodule in MODULES else source)
    return {t for t in targets if t in MODULES and t != name}


GRAPH = {name: _imported(name, path, package) for name, (path, package) in MODULES.items()}


def floor_of(module: str) -> int:
    best, floor = -1, -1
    for level, rooms in enumerate(FLOORS):
        for room in rooms:
            if (module == room or module.startswith(room + ".")) and len(room) > best:
                best, floor = len(room), level
    assert floor >= 0, f"{module} is in no room of the layout (add it to FLOORS in {__file__})"
    return floor


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_cycle():
    edges = sum(len(targets) for targets in GRAPH.values())
    print(f"import graph: {len(GRAPH)} modules, {edges} edges")
    assert len(GRAPH) > 50 and edges > 100  # the graph was really read
    assert _cycles(GRAPH) == []


def test_every_import_points_to_the_same_floor_or_below():
    upward = sorted(f"{source} (floor {floor_of(source)}) imports {target} (floor {floor_of(target)})"
                    for source, targets in GRAPH.items() for target in targets
                    if floor_of(target) > floor_of(source))
    assert upward == []


def test_the_checks_catch_a_cycle_and_an_upward_import():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert floor_of("yeswidget.core.run") < floor_of("yeswidget.engine.bounds") < floor_of("yeswidget.monitor")
    assert floor_of("yeswidget.widgets.chart") > floor_of("yeswidget.view.scene") == floor_of("yeswidget.training")
    assert floor_of("yeswidget") == floor_of("yeswidget.cli")


@pytest.mark.parametrize("rule", ["the monitor imports no output", "the math imports no monitor"])
def test_the_named_rules_of_the_rooms(rule):
    if rule == "the monitor imports no output":
        bad = {s: t for s, t in GRAPH.items() if s.startswith("yeswidget.monitor")
               and any(x.startswith(("yeswidget.integrations", "yeswidget.widgets")) for x in t)}
    else:
        bad = {s: t for s, t in GRAPH.items() if s.startswith("yeswidget.engine")
               and any(x.startswith("yeswidget.monitor") for x in t)}
    assert bad == {}


def _sizes() -> list[tuple[str, str, int]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
                kind = "class" if isinstance(node, ast.ClassDef) else "function"
                found.append((f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}", kind,
                              node.end_lineno - first + 1))
    return found


def test_no_class_over_300_lines_and_no_function_over_60():
    sizes = _sizes()
    assert any(kind == "class" for _, kind, _ in sizes) and len(sizes) > 500
    too_long = [f"{where} ({kind}, {n} lines)" for where, kind, n in sizes
                if n > (MAX_CLASS_LINES if kind == "class" else MAX_FUNCTION_LINES)]
    assert too_long == []
