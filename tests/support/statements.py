"""The SQL statements a ledger's engine runs, counted through SQLAlchemy's event hooks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from ledger.application import Ledger

__all__ = ["counted", "selects"]


@contextmanager
def counted(ledger: Ledger) -> Iterator[list[str]]:
    """The SQL statements the ledger's engine runs inside the block."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(ledger.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(ledger.engine, "before_cursor_execute", record)


def selects(statements: list[str]) -> list[str]:
    """The reads among ``statements``."""
    return [s for s in statements if s.lstrip().upper().startswith("SELECT")]
