"""The JSON Schemas of the command line's ``--json`` outputs (``docs/schema/cli/``), and
the CSV a command prints read back as the rows its ``--json`` gives."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schema" / "cli"


def conforms(document: Any, command: str) -> Any:
    """``document`` (a command's ``--json`` output), checked against
    ``docs/schema/cli/<command>.json``; the document."""
    schema = json.loads((SCHEMAS / f"{command}.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    errors = sorted(Draft202012Validator(schema).iter_errors(document), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]
    return document


def read_csv(text: str) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the rows of CSV output."""
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def cell(value: Any) -> str:
    """How a JSON value reads in a CSV cell: empty for null, compact JSON for lists and
    objects, else its text (``True``/``False`` for booleans)."""
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def as_cells(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[dict[str, str]]:
    """``rows`` (from ``--json``) as their CSV cells, in ``columns``."""
    return [{name: cell(row.get(name)) for name in columns} for row in rows]
