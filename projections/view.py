"""The base of every view: a follower that hands each event to its handler and writes a
whole page of row versions at once.

A view declares its tables (temporal ones from :func:`projections.temporal.temporal_table`)
and marks handler methods with :func:`handles`. For each page, :meth:`View.apply` builds a
:class:`~projections.page.Page` (one :class:`~projections.temporal.Versions` buffer per
table, plus the view's private state), calls the handler of each event it handles, and
flushes. ``Fact``, ``Page``, ``dumps`` and ``state_table`` are re-exported for the views.

Each view keeps in its own tables everything it needs (agreement terms, subject
contexts): a view never reads another view, so any view can be rebuilt alone.

A view's schema fingerprint (its DDL and :attr:`View.version`) is stored in
``proj_views``; when the code's fingerprint differs, the view's tables are dropped and
replayed from the log, so a changed view never serves rows of an older shape.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from sqlalchemy import Column, MetaData, String, Table, delete, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateIndex, CreateTable

from ledger.log.follow import Follower, begin_page
from projections.page import Fact, Page, State, dumps, facts_for, state_table
from projections.temporal import as_of, secondary_indexes

if TYPE_CHECKING:
    from ledger.application import Ledger, Recorded

__all__ = [
    "VIEWS_TABLE",
    "Fact",
    "Page",
    "View",
    "dumps",
    "handles",
    "state_table",
]

_F = TypeVar("_F", bound=Callable[..., None])

_meta = MetaData()
#: One row per view: the fingerprint of the schema its rows were written with.
VIEWS_TABLE = Table(
    "proj_views",
    _meta,
    Column("view", String(32), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
)


def handles(*types: str) -> Callable[[_F], _F]:
    """Mark a view method as the handler of these event types."""

    def mark(method: _F) -> _F:
        method._handles = types  # type: ignore[attr-defined]
        return method

    return mark


class View(Follower):
    """A read model: tables, handlers, and the rules to drop and compare them."""

    #: Bump when handlers change what they write: the view is then replayed.
    version: ClassVar[int] = 1
    tables: ClassVar[tuple[Table, ...]] = ()
    state: ClassVar[Table | None] = None
    _handlers: ClassVar[dict[str, Callable[..., None]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers: dict[str, Callable[..., None]] = {}
        for klass in reversed(cls.__mro__):
            for attribute in vars(klass).values():
                for event_type in getattr(attribute, "_handles", ()):
                    handlers[event_type] = attribute
        cls._handlers = handlers

    @classmethod
    def handled_types(cls) -> frozenset[str]:
        """The event types this view reads."""
        return frozenset(cls._handlers)

    @classmethod
    def all_tables(cls) -> tuple[Table, ...]:
        """The view's tables, its state table last."""
        return cls.tables if cls.state is None else (*cls.tables, cls.state)

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(ledger)
        self.memo: dict[str, Any] = {}
        self._kept: State | None = None
        self._carried: State | None = None

    def forget_carried(self) -> None:
        """Forget the state carried from page to page."""
        self._carried = None

    def keep_state(self, keep: bool) -> None:
        """While replaying from an emptied view, keep the view's state in memory from
        page to page (see :class:`~projections.page.State`); ``False`` stops."""
        if self.state is None:
            return
        self._kept = State(None, self.state, self.memo, whole=True) if keep else None

    def new_page(self, session: Session) -> Page:
        """The buffer of this view's writes for one page in ``session``.

        A rebuild's kept state (see :meth:`keep_state`) serves it; else the state carried
        from the last page when :attr:`carried`, or a new carried state, so that the next
        page reads from memory what this one read or wrote.
        """
        kept = self._kept
        if kept is None and self.state is not None:
            if not self.carried or self._carried is None:
                self._carried = State(None, self.state, self.memo, kept=True)
            kept = self._carried
        return Page(session.connection(), self.state, self.memo, kept)

    def apply(self, session: Session, events: Sequence[Recorded]) -> None:
        """Hand each event to its handler; write the page."""
        handlers = self._handlers
        facts = facts_for(events, handlers)
        if not facts:
            return  # nothing to read or write: most views handle few of a page's types
        page = self.new_page(session)
        self.prepare(page, facts)
        for fact in facts:
            handlers[fact.type](self, page, fact)
        page.flush()

    def prepare(self, page: Page, facts: Sequence[Fact]) -> None:
        """Before the handlers run: load in bulk what they will read (default: nothing)."""

    def create_own_tables(self) -> None:
        """Create the tables; drop and recreate them when their fingerprint changed."""
        engine = self.ledger.engine
        VIEWS_TABLE.create(engine, checkfirst=True)
        fingerprint = self.fingerprint()
        with self._lock, self.tracking.transaction(commit=True) as session:
            begin_page(session, self.ledger)
            self.lock_in(session)
            conn = session.connection()
            stored = conn.execute(
                select(VIEWS_TABLE.c.fingerprint).where(VIEWS_TABLE.c.view == self.name)
            ).scalar()
            if stored == fingerprint:
                for table in self.all_tables():
                    table.create(conn, checkfirst=True)
                self.create_indexes(session)  # a rebuild cut short may have left some out
                return
            self.drop(session)
            conn.execute(delete(VIEWS_TABLE).where(VIEWS_TABLE.c.view == self.name))
            conn.execute(insert(VIEWS_TABLE).values(view=self.name, fingerprint=fingerprint))

    def drop(self, session: Session) -> None:
        """Empty the view (drop and recreate its tables) and forget its progress."""
        conn = session.connection()
        for table in reversed(self.all_tables()):
            table.drop(conn, checkfirst=True)
        for table in self.all_tables():
            table.create(conn)
        self.reset(session)

    def drop_indexes(self, session: Session) -> None:
        """Drop the secondary indexes (a full replay builds them faster afterwards)."""
        conn = session.connection()
        for table in self.all_tables():
            for index in secondary_indexes(table):
                index.drop(conn, checkfirst=True)

    def create_indexes(self, session: Session) -> None:
        """Create any missing secondary index."""
        conn = session.connection()
        for table in self.all_tables():
            for index in secondary_indexes(table):
                index.create(conn, checkfirst=True)

    def fingerprint(self) -> str:
        """SHA-256 of the view's DDL (in this database's dialect) and version."""
        dialect = self.ledger.engine.dialect
        digest = hashlib.sha256(f"{self.name}/{self.version}".encode())
        for table in self.all_tables():
            digest.update(str(CreateTable(table).compile(dialect=dialect)).encode())
            for index in sorted(table.indexes, key=lambda i: str(i.name)):
                digest.update(str(CreateIndex(index).compile(dialect=dialect)).encode())
        return digest.hexdigest()

    def rows(
        self, conn: Connection, position: int | None = None
    ) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, sorted; with ``position``, the rows current then
        (``valid_to`` left out, state tables left out)."""
        result: dict[str, list[tuple[Any, ...]]] = {}
        for table in self.all_tables():
            if position is not None and table.info.get("state"):
                continue
            columns = [c for c in table.c if position is None or c.name != "valid_to"]
            query = select(*columns)
            if position is not None:
                query = query.where(_as_of_any(table, position))
            found = conn.execute(query).all()
            result[table.name] = sorted((tuple(r) for r in found), key=_sort_key)
        return result


def _as_of_any(table: Table, position: int) -> Any:
    if "valid_to" in table.c:
        return as_of(table, position)
    return table.c[table.info["position"]] <= position


def _sort_key(row: tuple[Any, ...]) -> tuple[tuple[bool, str], ...]:
    # None sorts first; everything else by its text, so mixed types never compare.
    return tuple((value is not None, repr(value)) for value in row)
