"""The package's imports point one way (README, "Layout"), with no cycle between modules.

Every ``import`` of ``sgdnoise`` in the source, including those inside functions,
is read from the syntax tree.  A module may import its own layer or a lower one;
``dynamics`` and ``measure`` are siblings that never import each other.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "sgdnoise"

#: Lower number = lower layer.  A top-level module or package not listed here fails the test.
LAYERS = {
    "errors": 0, "_spec": 0, "progress": 0, "interrupts": 0, "stats": 0, "config": 0,
    "problems": 1, "sampling": 1,
    "dynamics": 2, "measure": 2,
    "theory": 3,
    "experiments": 4,
    "report": 5,
    "sweeps": 6,
    "commands": 7, "cli": 7, "__main__": 8, "__init__": 8,
}
SIBLINGS = {frozenset({"dynamics", "measure"})}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of the sgdnoise modules that ``path`` imports (anywhere in the file)."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "sgdnoise")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "sgdnoise":
                continue
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
    return found


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in SRC.rglob("*.py")}


def top(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_top_level_module_has_a_layer():
    tops = {top(m) for m in all_modules()}
    assert not tops - LAYERS.keys(), f"assign a layer in LAYERS to {sorted(tops - LAYERS.keys())}"


def test_imports_point_down():
    modules = all_modules()
    wrong = []
    for name, path in modules.items():
        here = top(name)
        for target in imports_of(path):
            if target not in modules or target == "sgdnoise":
                continue
            there = top(target)
            if frozenset({here, there}) in SIBLINGS or LAYERS[there] > LAYERS[here]:
                wrong.append(f"{name} -> {target}")
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(wrong))


def test_no_import_cycle():
    modules = all_modules()
    graph = {name: {t for t in imports_of(path) if t in modules and t != name and t != "sgdnoise"}
             for name, path in modules.items()}
    # a package's __init__ re-exporting its children is not a cycle with them
    graph = {n: {t for t in ts if not t.startswith(n + ".")} for n, ts in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_checker_sees_a_violation(tmp_path):
    """The AST walk finds relative, absolute and in-function imports (a checker that can fail)."""
    fake = SRC / "dynamics" / "_layering_probe.py"
    try:
        fake.write_text("def f():\n    from sgdnoise.measure import recorder\n    from ..theory import noise\n")
        found = imports_of(fake)
        assert {"sgdnoise.measure.recorder", "sgdnoise.theory.noise"} <= found
    finally:
        fake.unlink()
