"""One page of one view's writes: the events as handlers read them, the view's private
state, and the buffered row versions of its tables."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Column, MetaData, String, Table, Text, delete, select
from sqlalchemy.engine import Connection

from projections.bulk import Row, insert_rows
from projections.temporal import Versions

if TYPE_CHECKING:
    from ledger.application import Recorded

__all__ = ["Fact", "Page", "State", "dumps", "state_table"]

_MEMO_LIMIT = 100_000


def dumps(value: Any) -> str:
    """Compact JSON with sorted keys: one text per value, so rows compare exactly."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def state_table(name: str, metadata: MetaData) -> Table:
    """A view's private key-value state (JSON values); not temporal, not queried."""
    table = Table(
        name,
        metadata,
        Column("key", String(200), primary_key=True),
        Column("value", Text, nullable=False),
    )
    table.info["state"] = True
    return table


class Fact(NamedTuple):
    """One stored event as a handler reads it (a tuple: cheap to make for every view)."""

    position: int
    subject: str
    version: int
    type: str
    signer: str
    reason: str | None
    recorded_at: str
    payload: Mapping[str, Any]
    envelope: Mapping[str, Any]

    @classmethod
    def of(cls, recorded: Recorded) -> Fact:
        """The fact of a ``Recorded`` event."""
        envelope = recorded.event.envelope
        return cls(
            recorded.position,
            envelope["subject"],
            envelope["version"],
            envelope["type"],
            envelope["signer"],
            envelope.get("reason"),
            recorded.event.recorded_at,
            envelope["payload"],
            envelope,
        )


class State:
    """A view's private state for one page: read through, written at flush.

    ``memo`` holds facts that never change once recorded (which batch a subject is,
    which agreement a claim is under): they are kept across pages, so a hot subject is
    read from the database once per process, not once per page.
    """

    def __init__(self, conn: Connection, table: Table, memo: dict[str, Any]) -> None:
        self.conn = conn
        self.table = table
        self.memo = memo
        self._cache: dict[str, Any] = {}
        self._dirty: set[str] = set()

    def get(self, key: str) -> Any:
        """The value of ``key``, or None; change it only through :meth:`set`."""
        if key not in self._cache:
            found = self.conn.execute(
                select(self.table.c.value).where(self.table.c.key == key)
            ).scalar()
            self._cache[key] = None if found is None else json.loads(found)
        return self._cache[key]

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON) under ``key``."""
        self._cache[key] = value
        self._dirty.add(key)

    def prefetch(self, keys: Iterable[str]) -> None:
        """Read many keys in bulk (absent ones become None)."""
        wanted = sorted({k for k in keys if k not in self._cache})
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            self._cache.update(dict.fromkeys(part))
            query = select(self.table.c.key, self.table.c.value).where(self.table.c.key.in_(part))
            for key, value in self.conn.execute(query):
                self._cache[key] = json.loads(value)

    def fact(self, key: str) -> Any:
        """An immutable fact: from the memo, else the state."""
        if key in self.memo:
            return self.memo[key]
        value = self.get(key)
        if value is not None:
            self._remember(key, value)
        return value

    def remember(self, key: str, value: Any) -> None:
        """Record an immutable fact."""
        self.set(key, value)
        self._remember(key, value)

    def _remember(self, key: str, value: Any) -> None:
        if len(self.memo) >= _MEMO_LIMIT:
            self.memo.clear()  # bounded memory; the facts are in the state table
        self.memo[key] = value

    def flush(self) -> None:
        """Write the changed keys."""
        if not self._dirty:
            return
        keys = sorted(self._dirty)
        self.conn.execute(delete(self.table).where(self.table.c.key.in_(keys)))
        rows = [
            {"key": k, "value": dumps(self._cache[k])} for k in keys if self._cache[k] is not None
        ]
        if rows:
            insert_rows(self.conn, self.table, rows)
        self._dirty.clear()
        self._cache.clear()


class Page:
    """The buffered writes of one view for one page of events."""

    def __init__(self, conn: Connection, state: Table | None, memo: dict[str, Any]) -> None:
        self.conn = conn
        self._versions: dict[str, Versions] = {}
        self._inserts: dict[str, tuple[Table, list[Row]]] = {}
        self._state = None if state is None else State(conn, state, memo)

    @property
    def state(self) -> State:
        """The view's private state."""
        if self._state is None:
            raise RuntimeError("this view declares no state table")
        return self._state

    def versions(self, table: Table) -> Versions:
        """The buffer of row versions of a temporal table."""
        found = self._versions.get(table.name)
        if found is None:
            found = self._versions[table.name] = Versions(self.conn, table)
        return found

    def insert(self, table: Table, row: Row) -> None:
        """Buffer a plain insert into an append-only table."""
        self._inserts.setdefault(table.name, (table, []))[1].append(row)

    def flush(self) -> None:
        """Write everything buffered."""
        for versions in self._versions.values():
            versions.flush()
        for table, rows in self._inserts.values():
            insert_rows(self.conn, table, rows)
        self._inserts.clear()
        if self._state is not None:
            self._state.flush()
