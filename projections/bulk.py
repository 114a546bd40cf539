"""Bulk inserts of view rows: one driver call per table and page.

The views' columns are plain strings, integers and booleans, which every driver binds as
they are, so SQLAlchemy's per-row parameter processing (several microseconds a row) is
skipped: SQLite gets one ``executemany`` of tuples, PostgreSQL one ``COPY``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection

__all__ = ["Row", "execute_many", "insert_rows", "insert_values", "marks"]

Row = dict[str, Any]
_statements: dict[str, str] = {}
_getters: dict[str, Callable[[Row], tuple[Any, ...]]] = {}


def insert_rows(conn: Connection, table: Table, rows: list[Row]) -> None:
    """Insert ``rows`` (dicts naming every column of ``table``)."""
    if rows:
        insert_values(conn, table, list(map(_tuple_getter(table), rows)))


def insert_values(conn: Connection, table: Table, values: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``values``: one tuple a row, its values in the order of ``table.c``.

    A view that makes every row itself (the audit index) builds tuples directly: a dict
    per row and the getter that turns it into a tuple cost more than the insert's binding.
    """
    if not values:
        return
    if conn.dialect.name == "postgresql":
        _copy_values(conn, table, values)
        return
    conn.exec_driver_sql(_insert_sql(conn, table), values)  # type: ignore[arg-type]


def marks(conn: Connection, count: int) -> str:
    """``count`` positional placeholders of the driver, comma-separated."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return ", ".join([mark] * count)


def execute_many(conn: Connection, sql: str, values: Sequence[tuple[Any, ...]]) -> None:
    """Run ``sql`` (the driver's own placeholders, see :func:`marks`) once per tuple of
    ``values``, in one driver call: SQLite's ``executemany``, psycopg's pipelined one."""
    if values:
        conn.exec_driver_sql(sql, list(values))  # type: ignore[arg-type]


def _copy_values(conn: Connection, table: Table, values: Sequence[tuple[Any, ...]]) -> None:
    # COPY is PostgreSQL's bulk path: one round trip per page instead of one per row.
    columns = ", ".join(f'"{column.name}"' for column in table.c)
    raw: Any = conn.connection.dbapi_connection
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
        for row in values:
            copy.write_row(row)


def _insert_sql(conn: Connection, table: Table) -> str:
    # SQLite's driver takes ``?`` placeholders, bound in the order of ``table.c``.
    found = _statements.get(table.name)
    if found is None:
        quote = conn.dialect.identifier_preparer.quote
        columns = ", ".join(quote(column.name) for column in table.c)
        marks = ", ".join("?" for _ in table.c)
        found = _statements[table.name] = (
            f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({marks})"
        )
    return found


def _tuple_getter(table: Table) -> Callable[[Row], tuple[Any, ...]]:
    found = _getters.get(table.name)
    if found is None:
        names = [column.name for column in table.c]
        if len(names) == 1:
            name = names[0]
            found = _getters[table.name] = lambda row: (row[name],)
        else:
            # itemgetter builds each row's tuple in C.
            found = _getters[table.name] = itemgetter(*names)
    return found
