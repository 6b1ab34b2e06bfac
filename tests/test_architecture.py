"""The house by its parts: what each part may import (docs/architecture.md), checked on the code.

Parts, bottom to top; a module imports only from its own part and from parts below it:

    0  harness.core        errors, processes, redaction, checksums, the API contract, PostgreSQL roles, amcheck
    1  harness.records     the history and the ledgers on disk
    2  harness.checkers    pure judgement: imports nothing of ours but other checkers (so what is
                           recorded never depends on how it is judged)
    2  harness.targets     the target adapter and one package per kind (siblings of the checkers)
    3  probes, harness.recorders   (siblings: neither imports the other)
    4  harness.faults, harness.recovery   (siblings: a runbook never reaches into a fault)
    5  harness.report
    6  harness.run
    7  harness.console     the live page: reads run folders, may start an abort (as the command line)
    8  harness.cli
    -  svgai               the system under test: reached only as a real target is (HTTP, SQL, files)
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PARTS = {"harness.core": 0, "harness.records": 1, "harness.checkers": 2, "harness.targets": 2, "probes": 3,
         "harness.recorders": 3, "harness.faults": 4, "harness.recovery": 4, "harness.report": 5, "harness.run": 6,
         "harness.console": 7, "harness.cli": 8}
# Imports deliberately inside a function: locust (gevent) monkey-patches, so it is imported only in
# the load generator's own processes (one process, or the distributed master and workers).
DEFERRED = {("harness/recorders/load.py", "_main"), ("harness/recorders/distributed.py", "_locust")}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for d in ("harness", "probes", "svgai") for p in sorted((ROOT / d).rglob("*.py"))}


def part_of(module: str) -> str | None:
    for part in sorted(PARTS, key=len, reverse=True):
        if module == part or module.startswith(part + "."):
            return part
    return None


def imports_of(path: Path) -> list[tuple[str, int, str | None]]:
    """(imported module, line, enclosing function or None) for every import of ours."""
    tree = ast.parse(path.read_text())
    found = []

    def visit(node, func):
        for child in ast.iter_child_nodes(node):
            f = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, func) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                for a in child.names:
                    full = f"{child.module}.{a.name}"
                    found.append((full if full in MODULES else child.module, child.lineno, func))
            visit(child, f)

    visit(tree, None)
    return [(m, n, f) for m, n, f in found if m.split(".")[0] in ("harness", "probes", "svgai")]


GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def _ours(module: str) -> str:
    """The module of ours an import names (a name imported from a package's __init__ is the package)."""
    while module not in MODULES and "." in module:
        module = module.rsplit(".", 1)[0]
    return module


@pytest.mark.parametrize("module", sorted(m for m in MODULES if part_of(m)))
def test_a_part_imports_only_from_itself_and_below(module):
    mine = part_of(module)
    for imported, line, _ in GRAPH[module]:
        theirs = part_of(imported)
        if imported == "harness" or theirs == mine:
            continue
        assert theirs is not None, f"{module}:{line} imports {imported}, which belongs to no part"
        assert PARTS[theirs] < PARTS[mine], (f"{module}:{line} imports {imported}: {mine} (level {PARTS[mine]}) may "
                                              f"not import {theirs} (level {PARTS[theirs]})")
        if mine == "harness.checkers":
            pytest.fail(f"{module}:{line} imports {imported}: checkers are pure and import only checkers")


def test_faults_reach_neither_into_recovery_nor_into_the_probe_library():
    for module, found in GRAPH.items():
        if part_of(module) == "harness.faults":
            for imported, line, _ in found:
                assert part_of(imported) not in ("harness.recovery", "probes"), f"{module}:{line} imports {imported}"


def test_the_system_under_test_is_reached_only_as_a_real_target_is():
    for module, found in GRAPH.items():
        for imported, line, _ in found:
            if module.startswith("svgai"):
                assert imported.startswith("svgai"), f"{module}:{line} imports {imported}"
            else:
                assert not imported.startswith("svgai"), f"{module}:{line} imports the system under test ({imported})"


def test_there_is_no_import_cycle():
    edges = {m: {_ours(i) for i, _, _ in found if _ours(i) != m} for m, found in GRAPH.items()}
    # A package's __init__ is imported by every import of its modules: an edge from a module to
    # its own package is the interpreter's, not a dependency of the code.
    for m in edges:
        edges[m] = {d for d in edges[m] if not m.startswith(d + ".")}
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in edges:
        if v not in index:
            strong(v)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_are_at_the_top_of_the_module(module):
    rel = str(MODULES[module].relative_to(ROOT))
    for imported, line, func in GRAPH[module]:
        assert func is None or (rel, func) in DEFERRED, f"{rel}:{line}: {func} imports {imported} inside a function"


def test_only_the_evidence_writer_of_the_run_layer_renders_report_pages():
    """The runner and the control hand the verdict to one evidence writer; neither renders pages."""
    for module, found in GRAPH.items():
        if part_of(module) == "harness.run" and module != "harness.run.evidence":
            assert not [i for i, _, _ in found if part_of(i) == "harness.report"], f"{module} imports harness.report"


KIND_TEST = re.compile(r"""(==|!=|\bin \(|\bin \[)\s*["'](local|containers|kubernetes)["']|\.KIND\b\s*(==|!=)|(==|!=)\s*\w+\.KIND\b"""
                       r"""|is_kubernetes_target|is_containers_home|is_container_target""")


def test_the_kind_of_target_is_decided_by_the_target_adapter():
    """Nothing above the targets compares a description's `kind` itself: it asks its Target
    (kind, fault_family, runs_here, owns_lifecycle)."""
    for module, path in MODULES.items():
        part = part_of(module)
        if part is None or PARTS[part] <= PARTS["harness.targets"]:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            assert not KIND_TEST.search(line), f"{module}:{n} decides the target's kind itself: {line.strip()}"


def test_the_shard_marker_is_one_name():
    from harness.checkers import shards as judged
    from harness.records import shards as recorded
    assert judged.MARKER == recorded.MARKER
