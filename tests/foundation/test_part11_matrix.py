"""The compliance matrix (``docs/part11.md``) names only tests that exist, and covers
every clause an inspector asks about."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MATRIX = ROOT / "docs" / "part11.md"
_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")
CLAUSES = (
    *(f"11.10({letter})" for letter in "abcdefghijk"),
    "11.50",
    "11.70",
    "11.100",
    "11.200",
    "11.300",
    *(f"§{section}" for section in range(4, 18)),
)


@cache
def _test_names(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    )


def _rows() -> list[str]:
    return [
        line for line in MATRIX.read_text(encoding="utf-8").splitlines() if line.startswith("| ")
    ]


def test_every_test_the_matrix_names_exists() -> None:
    references = _REFERENCE.findall(MATRIX.read_text(encoding="utf-8"))
    assert references, "the matrix names its tests"
    missing = [
        f"{path}::{name}"
        for path, name in references
        if not (ROOT / path).is_file() or name not in _test_names(ROOT / path)
    ]
    assert missing == []


def test_every_clause_has_a_row_naming_at_least_one_test() -> None:
    rows = _rows()
    assert rows, "the matrix has rows"
    for clause in CLAUSES:
        found = [row for row in rows if row.split("|")[1].strip().startswith(clause)]
        assert found, f"no row for {clause}"
        assert all(_REFERENCE.search(row) for row in found), f"{clause} names no test"
