"""Size limits that keep the code readable (issue 8): no source file above 400 lines, no function
above 80 lines (its docstring not counted)."""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "sgdnoise"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80


def function_lengths(path: Path) -> list[tuple[str, int]]:
    """(qualified name, lines without the docstring) of every function in ``path``."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            doc = node.body[0] if node.body else None
            if isinstance(doc, ast.Expr) and isinstance(getattr(doc, "value", None), ast.Constant) \
                    and isinstance(doc.value.value, str):
                length -= doc.end_lineno - doc.lineno + 1
            found.append((f"{path.relative_to(SRC)}::{node.name}", length))
    return found


def test_no_source_file_is_too_long():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES}
    assert not long, f"files over {MAX_FILE_LINES} lines: {long}"


def test_no_function_is_too_long():
    long = [(name, n) for p in SRC.rglob("*.py") for name, n in function_lengths(p) if n > MAX_FUNCTION_LINES]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (docstring excluded): {long}"


def test_the_measure_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES + 1))
    probe = SRC / "_limits_probe.py"
    try:
        probe.write_text(f'def f():\n    """doc\n\n    more doc\n    """\n{body}\n')
        (name, n), = function_lengths(probe)
        assert n == MAX_FUNCTION_LINES + 2
    finally:
        probe.unlink()
