"""The layers, checked on the import graph of every module, imports inside functions included.

From the top: va_cli (the `va` command) may import everything and nothing imports it; the
three adapters (va_assets, va_ui, va_serving) import va_core, never one another; va_core
imports none of them, and outside the paper reproduction (va_core.experiments, the top of
va_core) nothing of va_core.experiments. The product imports nothing of tests/ or
benchmarks/. No two modules import each other, directly or round a circle, and no module
imports another's private (underscored) names; the command and the adapters take from va_core
only what its modules' `__all__` declare. Each rule is a function of the edges, and
test_each_rule_reports_an_edge_that_breaks_it feeds it one that does.
"""
from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("va_cli", "va_core", "va_assets", "va_ui", "va_serving")
COMMAND = "va_cli"
ADAPTERS = ("va_assets", "va_ui", "va_serving")
HELPERS = ("tests", "benchmarks")
EXPERIMENTS = "va_core.experiments"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    path: str
    line: int
    in_function: bool

    def __str__(self) -> str:
        where = "inside a function" if self.in_function else "module level"
        return f"{self.source} -> {self.target}  ({self.path}:{self.line}, {where})"


def modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for top in PRODUCT + HELPERS:
        for path in (root / top).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _owner(name: str, known: dict[str, Path]) -> str | None:
    """The module of ours an imported name lives in (``a.b.c`` -> ``a.b`` when c is a name in it)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(root: Path = ROOT) -> list[Edge]:
    known = modules(root)
    edges = []
    for module, path in known.items():
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        rel = str(path.relative_to(root))

        def visit(node: ast.AST, in_function: bool) -> None:
            for child in ast.iter_child_nodes(node):
                names = []
                if isinstance(child, ast.Import):
                    names = [a.name for a in child.names]
                elif isinstance(child, ast.ImportFrom):
                    base = child.module or ""
                    if child.level:
                        parent = package[:len(package) - (child.level - 1)]
                        base = ".".join(parent + ([base] if base else []))
                    # `from pkg import mod` imports the module mod; `from mod import name`, mod
                    names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in child.names]
                for name in dict.fromkeys(names):
                    target = _owner(name, known)
                    if target is not None and target != module:
                        edges.append(Edge(module, target, rel, child.lineno, in_function))
                visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

        visit(ast.parse(path.read_text(), filename=rel), False)
    return edges


def _top(module: str) -> str:
    return module.split(".")[0]


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
        graph.setdefault(e.target, set())
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


GRAPH = import_graph()
PRODUCT_EDGES = [e for e in GRAPH if _top(e.source) in PRODUCT]


def _fail_with(offending: list[Edge], rule: str) -> None:
    if offending:
        pytest.fail(f"{rule}; offending imports:\n  " + "\n  ".join(map(str, offending)), pytrace=False)


def test_the_graph_sees_imports_at_module_level_and_inside_functions():
    # guards the checker itself: both kinds of import are in the graph it checks
    sources = {(e.source, e.target, e.in_function) for e in GRAPH}
    assert ("va_core.train", "va_core.feeds", False) in sources and ("va_cli.main", "va_cli.labels", False) in sources
    assert any(e.in_function for e in PRODUCT_EDGES) and any(not e.in_function for e in PRODUCT_EDGES)
    assert cycles([Edge("a", "b", "", 0, False), Edge("b", "c", "", 0, True), Edge("c", "a", "", 0, False),
                   Edge("c", "d", "", 0, False)]) == [["a", "b", "c"]]


def core_above_itself(edges: list[Edge]) -> list[Edge]:
    return [e for e in edges if _top(e.source) == "va_core" and _top(e.target) in ADAPTERS + (COMMAND,)]


def experiments_below_core(edges: list[Edge]) -> list[Edge]:
    return [e for e in edges if _top(e.source) == "va_core" and _in(e.target, EXPERIMENTS)
            and not _in(e.source, EXPERIMENTS)]


def adapters_across(edges: list[Edge]) -> list[Edge]:
    return [e for e in edges if _top(e.source) in ADAPTERS and _top(e.target) in ADAPTERS
            and _top(e.source) != _top(e.target)]


def command_imported(edges: list[Edge]) -> list[Edge]:
    return [e for e in edges if _top(e.target) == COMMAND and _top(e.source) in PRODUCT and _top(e.source) != COMMAND]


def helpers_imported(edges: list[Edge]) -> list[Edge]:
    return [e for e in edges if _top(e.target) in HELPERS]


RULES = {
    core_above_itself: "va_core imports nothing of va_cli, va_assets, va_ui or va_serving",
    experiments_below_core: "va_core outside va_core.experiments imports nothing of va_core.experiments",
    adapters_across: "va_assets, va_ui and va_serving import only va_core, never one another",
    command_imported: "nothing of the product imports va_cli: the command is the top layer",
    helpers_imported: "the product packages import nothing of tests/ or benchmarks/",
}


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_the_layers_hold(rule):
    _fail_with(rule(PRODUCT_EDGES), RULES[rule])


def test_each_rule_reports_an_edge_that_breaks_it():
    # guards the rules themselves: one edge that breaks each, and the edges that are allowed
    def edge(source: str, target: str) -> Edge:
        return Edge(source, target, "", 0, False)

    broken = {
        core_above_itself: [edge("va_core.train", "va_cli.main"), edge("va_core.feeds", "va_serving.client")],
        experiments_below_core: [edge("va_core.feeds", "va_core.experiments.importer")],
        adapters_across: [edge("va_ui.app", "va_assets.definitions")],
        command_imported: [edge("va_ui.app", "va_cli.labels"), edge("va_core.labels", "va_cli.labels")],
        helpers_imported: [edge("va_core.ingest", "tests.support.synthetic")],
    }
    allowed = [edge("va_cli.demo", "va_serving.client"), edge("va_cli.experiments", "va_core.experiments.run"),
               edge("va_cli.main", "va_cli.labels"), edge("va_ui.app", "va_core.labels"),
               edge("va_core.experiments.run", "va_core.labels"), edge("tests.core.test_names", "va_cli.main")]
    for rule, edges in broken.items():
        assert rule(edges) == edges, rule.__name__
        assert rule(allowed) == [], rule.__name__


def test_no_import_cycles():
    found = cycles(PRODUCT_EDGES)
    lines = []
    for component in found:
        members = set(component)
        lines.append("cycle among " + ", ".join(component) + ":")
        lines += [f"    {e}" for e in PRODUCT_EDGES if e.source in members and e.target in members]
    if lines:
        pytest.fail("modules import each other round a circle:\n" + "\n".join(lines), pytrace=False)


def test_no_private_name_is_imported_from_another_module():
    known = modules()
    offending = []
    for module, path in known.items():
        if _top(module) not in PRODUCT:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and _top(node.module) in PRODUCT + HELPERS:
                offending += [f"{module} imports {node.module}.{a.name}  ({path.relative_to(ROOT)}:{node.lineno})"
                              for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    if offending:
        pytest.fail("a name with a leading underscore is private to its module:\n  " + "\n  ".join(offending),
                    pytrace=False)


# the one print left in va_core: the banner of `--encoder auto` falling back to tiny, on the stream it is given
PRINTS_ALLOWED = {("va_core.encoders", "resolve_auto")}


def print_calls(source: str, module: str) -> list[tuple[str, str, int]]:
    """(module, enclosing function, line) of every call of print in ``source``."""
    found = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Name) and child.func.id == "print":
                found.append((module, function, child.lineno))
            visit(child, child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function)

    visit(ast.parse(source), "<module>")
    return found


def test_va_core_prints_nothing():
    # domain functions return data; the command (va_cli) writes to the terminal, va_core reports through logging
    assert print_calls("def f():\n    print('x')\n", "m") == [("m", "f", 2)]  # guards the finder
    found = [c for module, path in modules().items() if _top(module) == "va_core"
             for c in print_calls(path.read_text(), module) if c[:2] not in PRINTS_ALLOWED]
    if found:
        pytest.fail("va_core prints nothing (return data, or log through logging):\n  "
                    + "\n  ".join(f"{m}.{f} line {n}" for m, f, n in found), pytrace=False)


def public_uses(root: Path = ROOT) -> list[tuple[str, str, str, str]]:
    """(user, va_core module, name, where) for each name the command and the adapters take from
    va_core: ``from va_core.m import name`` and ``alias.name`` where ``alias`` is a va_core module."""
    known = modules(root)
    found = []
    for module, path in known.items():
        if _top(module) not in (COMMAND, *ADAPTERS):
            continue
        tree = ast.parse(path.read_text())
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    if f"{node.module}.{a.name}" in known:
                        aliases[a.asname or a.name] = f"{node.module}.{a.name}"
                    elif node.module in known:
                        found.append((module, node.module, a.name, f"{path.relative_to(root)}:{node.lineno}"))
            elif isinstance(node, ast.Import):
                aliases.update({a.asname: a.name for a in node.names if a.asname and a.name in known})
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                found.append((module, aliases[node.value.id], node.attr, f"{path.relative_to(root)}:{node.lineno}"))
    return [u for u in found if u[1].startswith("va_core.") and _top(u[1]) == "va_core"]


def declared_all(path: Path) -> list[str] | None:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    return None


def test_the_command_and_the_adapters_use_only_the_public_api_of_va_core():
    known = modules()
    missing_all = [m for m, p in known.items()
                   if _top(m) == "va_core" and p.name != "__init__.py" and declared_all(p) is None]
    assert not missing_all, f"va_core modules without __all__ (their public API): {missing_all}"
    outside = [f"{user} uses {target}.{name}  ({where})" for user, target, name, where in public_uses()
               if known[target].name != "__init__.py" and name not in declared_all(known[target])]
    if outside:
        pytest.fail("names outside their module's __all__ are va_core's internals:\n  " + "\n  ".join(outside),
                    pytrace=False)
    for module, path in known.items():
        if _top(module) == "va_core" and declared_all(path):
            imported = importlib.import_module(module)
            absent = [n for n in declared_all(path) if not hasattr(imported, n)]
            assert not absent, f"{module}.__all__ names what it does not have: {absent}"


def test_a_use_of_a_name_outside_all_is_found(tmp_path):
    for top in PRODUCT + HELPERS:
        (tmp_path / top).mkdir()
    (tmp_path / "va_core" / "m.py").write_text('__all__ = ["a"]\n\ndef a(): ...\n\ndef b(): ...\n')
    (tmp_path / "va_ui" / "x.py").write_text("from va_core.m import a, b\nfrom va_core import m as mod\n\nmod.c\n")
    uses = {(t, n) for _, t, n, _ in public_uses(tmp_path)}
    assert uses == {("va_core.m", "a"), ("va_core.m", "b"), ("va_core.m", "c")}
    assert [n for _, n in sorted(uses) if n not in declared_all(tmp_path / "va_core" / "m.py")] == ["b", "c"]
