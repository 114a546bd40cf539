"""One page of one view's writes: the events as handlers read them, the view's private
state, and the buffered row versions of its tables."""

from __future__ import annotations

import copy
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
from sqlalchemy import Column, MetaData, String, Table, Text
from sqlalchemy.engine import Connection

from ledger.canonical import has_float
from projections.bulk import Row, execute_many, insert_rows, insert_values, marks
from projections.temporal import Versions

if TYPE_CHECKING:
    from ledger.application import Recorded

__all__ = ["Fact", "Page", "Scratch", "State", "dumps", "facts_for", "facts_of", "state_table"]

# Per view, and ten views share a process: at these sizes a rebuild of 1,000,000 events
# peaks near 200 MB (``bench_projections``); ten times larger it passed 480 MB, and ran
# no faster.
_MEMO_LIMIT = 10_000
_WHOLE_LIMIT = 20_000
_last_facts: tuple[Sequence[Recorded], list[Fact], dict[str, list[Fact]]] | None = None


def dumps(value: Any) -> str:
    """Compact JSON with sorted keys: one text per value, so rows compare exactly.

    Without floats (the ledger admits none in payloads), orjson's sorted output is
    exactly what ``json.dumps`` gives here, several times faster; anything orjson
    refuses or might spell differently takes ``json.dumps``.
    """
    if not has_float(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        except TypeError:  # orjson's encode error: a lone surrogate, a huge integer
            pass
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _state_dumps(value: Any) -> str:
    # A view's private state needs no single spelling of floats (there are none in
    # payloads anyway): only that it reads back, so orjson goes without has_float's walk.
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # a lone surrogate, a huge integer
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

    A ``kept`` state outlives its page: what it read or wrote stays known after
    :meth:`flush`, so the next page reads it from memory. Only a caller that knows
    nothing else wrote the table meanwhile may keep one: a rebuild, or a view whose
    next page finds it where its last committed page left it (see
    :meth:`projections.view.View.page_begun`). A ``whole`` state also
    mirrors its entire table (a replay into an emptied view writes every key through
    it): a key it lacks is absent, so it reads nothing. Past ``_WHOLE_LIMIT`` keys a kept
    state forgets them all (and is whole no longer), so memory stays bounded.

    A flush writes the changed keys with one executemany per kind of write: ``UPDATE``
    for keys known stored, ``INSERT`` (PostgreSQL: ``COPY``) for keys known absent,
    ``DELETE`` for keys set to None, an upsert for keys never read.
    """

    def __init__(
        self,
        conn: Connection | None,
        table: Table,
        memo: dict[str, Any],
        *,
        whole: bool = False,
        kept: bool = False,
    ) -> None:
        self.conn: Any = conn
        self.table = table
        self.memo = memo
        self.whole = whole
        self.kept = kept or whole
        self._cache: dict[str, Any] = {}
        self._dirty: set[str] = set()
        # What is known of the table's rows: keys stored, keys absent. While whole,
        # any key not in ``_stored`` is absent.
        self._stored: set[str] = set()
        self._absent: set[str] = set()

    def get(self, key: str) -> Any:
        """The value of ``key``, or None; change it only through :meth:`set`."""
        cache = self._cache
        if key in cache:
            return cache[key]
        if self.whole:
            return None
        sql = _state_sql(self.conn, self.table, "get")
        found = self.conn.exec_driver_sql(sql, (key,)).scalar()
        if found is None:
            self._absent.add(key)
            cache[key] = None
        else:
            self._stored.add(key)
            cache[key] = json.loads(found)
        return cache[key]

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON) under ``key``."""
        self._cache[key] = value
        self._dirty.add(key)

    def prefetch(self, keys: Iterable[str]) -> None:
        """Read many keys in bulk (absent ones become None)."""
        if self.whole:
            return
        wanted = sorted({k for k in keys if k not in self._cache})
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            self._cache.update(dict.fromkeys(part))
            absent = set(part)
            sql = _state_sql(self.conn, self.table, "select", len(part))
            for key, value in self.conn.exec_driver_sql(sql, tuple(part)):
                self._cache[key] = json.loads(value)
                absent.discard(key)
            self._absent |= absent
            self._stored.update(k for k in part if k not in absent)

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
        if self._dirty:
            self._write(sorted(self._dirty))
            self._dirty.clear()
        if not self.kept:
            self._forget()
        elif len(self._cache) > _WHOLE_LIMIT:
            self.whole = False
            self._forget()

    def _write(self, keys: list[str]) -> None:
        cache, stored, absent, whole = self._cache, self._stored, self._absent, self.whole
        updates: list[tuple[str, str]] = []
        inserts: list[tuple[str, str]] = []
        upserts: list[tuple[str, str]] = []
        deletes: list[tuple[str]] = []
        for key in keys:
            value = cache[key]
            if key in stored:
                if value is None:
                    deletes.append((key,))
                else:
                    updates.append((_state_dumps(value), key))
            elif whole or key in absent:
                if value is not None:
                    inserts.append((key, _state_dumps(value)))
            elif value is None:  # never read: whether it has a row is unknown
                deletes.append((key,))
            else:
                upserts.append((key, _state_dumps(value)))
        conn, table = self.conn, self.table
        execute_many(conn, _state_sql(conn, table, "delete"), deletes)
        execute_many(conn, _state_sql(conn, table, "update"), updates)
        execute_many(conn, _state_sql(conn, table, "upsert"), upserts)
        insert_values(conn, table, inserts)
        for key in keys:
            if cache[key] is None:
                stored.discard(key)
                absent.add(key)
            else:
                stored.add(key)
                absent.discard(key)

    def _forget(self) -> None:
        self._cache.clear()
        self._stored.clear()
        self._absent.clear()


class Scratch(State):
    """A state that reads through another and keeps its writes apart: handlers run on it
    ahead of the page learn what they will find, and the page's state stays as it was."""

    def __init__(self, under: State) -> None:
        super().__init__(under.conn, under.table, {}, kept=True)
        self._under = under

    def get(self, key: str) -> Any:
        cache = self._cache
        if key not in cache:
            # Handlers change the values they read in place: the scratch holds copies.
            cache[key] = copy.deepcopy(self._under.get(key))
        return cache[key]

    def prefetch(self, keys: Iterable[str]) -> None:
        self._under.prefetch(keys)

    def fact(self, key: str) -> Any:
        if key in self.memo:
            return self.memo[key]
        return self._under.fact(key)

    def flush(self) -> None:
        raise RuntimeError("a scratch state is never written")


_sqls: dict[tuple[str, str, str, int], str] = {}


def _state_sql(conn: Connection, table: Table, use: str, count: int = 1) -> str:
    # Driver SQL for the state's statements, made once per table, use and (for ``select``,
    # which reads ``count`` keys) size: building SQLAlchemy statements costs more than
    # running them.
    found = _sqls.get((conn.dialect.name, table.name, use, count))
    if found is None:
        quote = conn.dialect.identifier_preparer.quote
        name, key, value, mark = quote(table.name), quote("key"), quote("value"), marks(conn, 1)
        found = _sqls[(conn.dialect.name, table.name, use, count)] = {
            "get": f"SELECT {value} FROM {name} WHERE {key} = {mark}",
            "select": f"SELECT {key}, {value} FROM {name} WHERE {key} IN ({marks(conn, count)})",
            "update": f"UPDATE {name} SET {value} = {mark} WHERE {key} = {mark}",
            "delete": f"DELETE FROM {name} WHERE {key} = {mark}",
            # SQLite (3.24 on) and PostgreSQL spell an upsert alike.
            "upsert": f"INSERT INTO {name} ({key}, {value}) VALUES ({mark}, {mark}) "
            f"ON CONFLICT ({key}) DO UPDATE SET {value} = excluded.{value}",
        }[use]
    return found


class Page:
    """The buffered writes of one view for one page of events.

    ``kept`` is a rebuild's: the view's state carried from page to page (see
    :meth:`projections.view.View.keep_state`).
    """

    def __init__(
        self,
        conn: Connection,
        state: Table | None,
        memo: dict[str, Any],
        kept: State | None = None,
    ) -> None:
        self.conn = conn
        self._versions: dict[str, Versions] = {}
        self._inserts: dict[str, tuple[Table, list[Row]]] = {}
        self._values: dict[str, tuple[Table, list[tuple[Any, ...]]]] = {}
        self._state = (
            kept if kept is not None else None if state is None else State(conn, state, memo)
        )
        if kept is not None:
            kept.conn = conn

    @property
    def state(self) -> State:
        """The view's private state."""
        if self._state is None:
            raise RuntimeError("this view declares no state table")
        return self._state

    def scratch(self) -> Page:
        """A page over a :class:`Scratch` of this page's state, never flushed."""
        return Page(self.conn, None, {}, Scratch(self.state))

    def versions(self, table: Table) -> Versions:
        """The buffer of row versions of a temporal table."""
        found = self._versions.get(table.name)
        if found is None:
            found = self._versions[table.name] = Versions(self.conn, table)
        return found

    def insert(self, table: Table, row: Row) -> None:
        """Buffer a plain insert into an append-only table."""
        self._inserts.setdefault(table.name, (table, []))[1].append(row)

    def insert_values(self, table: Table, values: list[tuple[Any, ...]]) -> None:
        """Buffer plain inserts given as tuples in the order of ``table.c``."""
        self._values.setdefault(table.name, (table, []))[1].extend(values)

    def flush(self) -> None:
        """Write everything buffered."""
        for versions in self._versions.values():
            versions.flush()
        for table, rows in self._inserts.values():
            insert_rows(self.conn, table, rows)
        self._inserts.clear()
        for table, values in self._values.values():
            insert_values(self.conn, table, values)
        self._values.clear()
        if self._state is not None:
            self._state.flush()


def facts_of(events: Sequence[Recorded]) -> list[Fact]:
    """The facts of a page's events, made once for all the views that apply the page."""
    return _page_facts(events)[0]


def facts_for(events: Sequence[Recorded], types: Collection[str]) -> list[Fact]:
    """The facts of a page's events of ``types``, in log order (for callers to read only:
    the list may be shared)."""
    by_type = _page_facts(events)[1]
    parts = [by_type[t] for t in types if t in by_type]
    if len(parts) <= 1:
        return parts[0] if parts else []
    # Each part is in log order already: the sort only merges the runs.
    return sorted(chain.from_iterable(parts), key=_position)


_position = itemgetter(0)


def _page_facts(events: Sequence[Recorded]) -> tuple[list[Fact], dict[str, list[Fact]]]:
    # The last page's facts, and the same grouped by type, made once for all its views.
    global _last_facts
    last = _last_facts
    if last is not None and last[0] is events:
        return last[1], last[2]
    facts = [Fact.of(recorded) for recorded in events]
    by_type: dict[str, list[Fact]] = {}
    for fact in facts:
        found = by_type.get(fact.type)
        if found is None:
            by_type[fact.type] = [fact]
        else:
            found.append(fact)
    _last_facts = (events, facts, by_type)
    return facts, by_type
