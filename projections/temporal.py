"""Temporal tables: every row version carries the log positions in which it was current.

A temporal table has the columns ``valid_from`` (the position of the event that wrote
the version, inclusive) and ``valid_to`` (the position of the event that replaced or
ended it, exclusive; NULL while current), and an index on ``(key..., valid_from)``.
An update closes the current version and inserts a new one, so a past state is one
indexed query (:func:`as_of`), never a replay.

:class:`Versions` buffers a page of changes to one table and writes them in two
driver calls (one ``UPDATE`` executemany for the versions it closes, one ``INSERT``
executemany or ``COPY`` for the new ones).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Index,
    Integer,
    MetaData,
    Table,
    and_,
    bindparam,
    or_,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.schema import SchemaItem

from projections.bulk import Row, execute_many, insert_rows, marks

__all__ = [
    "POSITION",
    "Row",
    "Versions",
    "as_of",
    "current",
    "key_of",
    "secondary_indexes",
    "temporal_table",
]

#: The column type of log positions (INTEGER on SQLite keeps rowid-sized values compact).
POSITION = BigInteger().with_variant(Integer(), "sqlite")

Key = tuple[Any, ...]


def temporal_table(
    name: str, metadata: MetaData, key: Iterable[Column[Any]], *items: SchemaItem
) -> Table:
    """A table with ``key`` columns, ``items``, ``valid_from``/``valid_to`` and the
    ``(key..., valid_from)`` index."""
    key_columns = list(key)
    columns = [item for item in items if isinstance(item, Column)]
    others = [item for item in items if not isinstance(item, Column)]
    table = Table(
        name,
        metadata,
        *key_columns,
        *columns,
        Column("valid_from", POSITION, nullable=False),
        Column("valid_to", POSITION, nullable=True),
        *others,
    )
    Index(f"ix_{name}_key", *[c.name for c in key_columns], "valid_from", _table=table)
    table.info["key"] = tuple(c.name for c in key_columns)
    return table


def secondary_indexes(table: Table) -> list[Index]:
    """The table's indexes other than its key index: not needed while replaying."""
    return sorted(
        (index for index in table.indexes if index.name != f"ix_{table.name}_key"),
        key=lambda index: str(index.name),
    )


def key_of(table: Table) -> tuple[str, ...]:
    """Names of the key columns of a temporal table."""
    key: tuple[str, ...] = table.info["key"]
    return key


def as_of(table: Table, position: int) -> ColumnElement[bool]:
    """Rows current at ``position``: ``valid_from <= position < valid_to`` (NULL = open)."""
    return and_(
        table.c.valid_from <= position,
        or_(table.c.valid_to.is_(None), table.c.valid_to > position),
    )


def current(table: Table) -> ColumnElement[bool]:
    """Rows current now."""
    return table.c.valid_to.is_(None)


class Versions:
    """A page of changes to one temporal table, written by :meth:`flush`.

    Rows are plain dicts of column values; ``valid_from``/``valid_to`` are managed here.
    """

    def __init__(self, conn: Connection, table: Table) -> None:
        self.conn = conn
        self.table = table
        self.key = key_of(table)
        self._single = self.key[0] if len(self.key) == 1 else None  # the common case
        self._inserts: list[Row] = []
        self._open: dict[Key, Row] = {}  # versions inserted by this page and still current
        self._stored: dict[Key, Row | None] = {}  # current versions read from the database
        self._complete: set[Any] = set()  # first-key values whose current rows are all loaded
        self._closes: list[tuple[Any, ...]] = []  # (close_at, *key) of stored versions

    def get(self, key: Key) -> Row | None:
        """The current version of ``key`` (without ``valid_*``), or ``None``."""
        found = self._open.get(key)
        if found is not None:
            return found
        stored = self._stored
        if key in stored:
            return stored[key]
        if key[0] in self._complete:
            return None
        found = stored[key] = self._load(key)
        return found

    def prefetch(self, values: Iterable[Any]) -> None:
        """Load the current rows whose first key column is one of ``values``, in bulk."""
        wanted = sorted({v for v in values if v not in self._complete}, key=str)
        query = _prefetch_statement(self.table, self.key[0])
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            for found in self.conn.execute(query, {"values": part}):
                row = dict(found._mapping)
                key = tuple(row[c] for c in self.key)
                if key not in self._open:
                    self._stored.setdefault(key, row)
            self._complete.update(part)

    def insert(self, key: Key, position: int, values: Row) -> None:
        """Add the first version of a key that has none (a creating event): no lookup.

        ``values`` becomes the row (it is not copied): pass a dict made for the call.
        """
        row = values
        if self._single is not None:
            row[self._single] = key[0]
        else:
            row.update(zip(self.key, key, strict=True))
        row["valid_from"] = position
        row["valid_to"] = None
        self._inserts.append(row)
        self._open[key] = row

    def put(self, key: Key, position: int, values: Mapping[str, Any]) -> None:
        """Make ``values`` the version of ``key`` from ``position`` on (unchanged: no-op)."""
        before = self.get(key)
        if before is not None and all(before.get(c) == v for c, v in values.items()):
            return
        self._end(key, position, before)
        self.insert(key, position, dict(values))

    def update(self, key: Key, position: int, **changes: Any) -> Row | None:
        """Apply ``changes`` to the current version of ``key``; ``None`` when there is none.

        Returns the values after the change, for callers to read and never to change:
        they may be the buffered row itself."""
        before = self.get(key)
        if before is None:
            return None
        merged = before.copy()
        for name in _MANAGED:
            merged.pop(name, None)
        merged.update(changes)
        # Only the changed columns can differ; the merged dict becomes the new version
        # itself (no second lookup, no copy), which is why callers only read it.
        for name, value in changes.items():
            if before.get(name) != value:
                self._end(key, position, before)
                self.insert(key, position, merged)
                break
        return merged

    def end(self, key: Key, position: int) -> None:
        """Close the current version of ``key`` at ``position`` (no new version)."""
        self._end(key, position, self.get(key))

    def flush(self) -> None:
        """Write the closes (one ``UPDATE`` executemany), then the new versions (one
        insert)."""
        if self._closes:
            execute_many(self.conn, _close_sql(self.conn, self.table), self._closes)
        rows = [row for row in self._inserts if row["valid_to"] != row["valid_from"]]
        insert_rows(self.conn, self.table, rows)
        self._inserts, self._closes = [], []
        self._open.clear()
        self._stored.clear()
        self._complete.clear()

    def _end(self, key: Key, position: int, before: Row | None) -> None:
        if before is None:
            return
        if key in self._open:
            # Changed twice by one event, the first version gets an empty range and is
            # dropped at flush: it never existed on its own.
            before["valid_to"] = position
            del self._open[key]
            return
        self._closes.append((position, *key))
        self._stored[key] = None

    def _load(self, key: Key) -> Row | None:
        params = {f"k_{c}": v for c, v in zip(self.key, key, strict=True)}
        found = self.conn.execute(_current_statement(self.table), params).first()
        return None if found is None else dict(found._mapping)


_MANAGED = ("valid_from", "valid_to")
_statements: dict[tuple[str, str], Any] = {}  # one statement object per table and use


def _current_statement(table: Table) -> Any:
    # One statement object per table: SQLAlchemy then reuses its compiled form.
    found = _statements.get(("current", table.name))
    if found is None:
        where = [table.c[c] == bindparam(f"k_{c}") for c in key_of(table)]
        found = _statements[("current", table.name)] = select(table).where(*where, current(table))
    return found


def _prefetch_statement(table: Table, first: str) -> Any:
    # The current rows whose first key column is in the (expanding) list ``values``.
    found = _statements.get(("prefetch", table.name))
    if found is None:
        found = _statements[("prefetch", table.name)] = select(table).where(
            table.c[first].in_(bindparam("values", expanding=True)), current(table)
        )
    return found


def _close_sql(conn: Connection, table: Table) -> str:
    # Driver SQL, one tuple a close: SQLAlchemy's per-row parameter processing skipped.
    found = _close_sqls.get((conn.dialect.name, table.name))
    if found is None:
        quote = conn.dialect.identifier_preparer.quote
        mark = marks(conn, 1)
        where = " AND ".join(f"{quote(c)} = {mark}" for c in key_of(table))
        found = _close_sqls[(conn.dialect.name, table.name)] = (
            f"UPDATE {quote(table.name)} SET valid_to = {mark} WHERE {where} AND valid_to IS NULL"
        )
    return found


_close_sqls: dict[tuple[str, str], str] = {}
