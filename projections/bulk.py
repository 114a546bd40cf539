"""Bulk inserts of view rows: one driver call per table and page.

The views' columns are plain strings, integers and booleans, which every driver binds as
they are, so SQLAlchemy's per-row parameter processing (several microseconds a row) is
skipped: SQLite gets one ``executemany`` of tuples, PostgreSQL one ``COPY``.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection

__all__ = ["Row", "insert_rows"]

Row = dict[str, Any]
_statements: dict[str, tuple[str, Callable[[Row], Any] | None]] = {}


def insert_rows(conn: Connection, table: Table, rows: list[Row]) -> None:
    """Insert ``rows`` (dicts naming every column of ``table``)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _copy_rows(conn, table, rows)
        return
    sql, values = _insert_sql(conn, table)
    if values is None:
        conn.exec_driver_sql(sql, rows)  # type: ignore[arg-type]
    else:
        conn.exec_driver_sql(sql, list(map(values, rows)))


def _copy_rows(conn: Connection, table: Table, rows: list[Row]) -> None:
    # COPY is PostgreSQL's bulk path: one round trip per page instead of one per row.
    names = [column.name for column in table.c]
    values = _tuple_getter(names)
    columns = ", ".join(f'"{name}"' for name in names)
    raw: Any = conn.connection.dbapi_connection
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(values(row))


def _insert_sql(conn: Connection, table: Table) -> tuple[str, Callable[[Row], Any] | None]:
    key = f"{conn.dialect.name}:{table.name}"
    found = _statements.get(key)
    if found is None:
        compiled = table.insert().compile(dialect=conn.dialect)
        names = list(compiled.positiontup or []) if compiled.positional else []
        # itemgetter builds each row's tuple in C; a single column still needs a tuple.
        values = None if not names else _tuple_getter(names)
        found = _statements[key] = (str(compiled), values)
    return found


def _tuple_getter(names: list[str]) -> Callable[[Row], Any]:
    if len(names) == 1:
        name = names[0]
        return lambda row: (row[name],)
    return itemgetter(*names)
