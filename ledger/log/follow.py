"""Followers: consumers of the log that keep their own tables, exactly once.

A follower reads the log after the position recorded in its tracking row, writes its
rows and moves its tracking row forward **in one transaction**, one page of events at a
time. A crash loses at most an uncommitted page, which is read again on restart; an
event is never applied twice because the tracking row and the rows commit together.

Several processes may run the same follower. Each page's transaction first takes the
database's lock for that follower, then re-reads the tracking position, so exactly one
process applies each page:

* on PostgreSQL, a transaction-scoped advisory lock named after the follower;
* on SQLite, ``BEGIN IMMEDIATE``: the database's single write lock, taken before the
  position is read (a deferred transaction would read a position another process is
  about to move, then fail on its first write).

:func:`catch_up_together` applies each page to several followers in one transaction:
the page is read and decoded once, and each follower applies the events after its own
position (the projections use it: one read, many views). The locks are taken in one
statement, and the positions and the page's events read in another; every tracking row
then moves from the position read to the page's last position by compare-and-set, all
in one statement, so a row that anyone else moved fails the page (``IntegrityError``,
nothing written) instead of applying events twice. Followers may keep what a page
leaves in memory for the next one (:meth:`Follower.page_begun` and its siblings): the
page that finds the follower where a committed page of this process left it may use it.

Pages are read with one SQL query on the events table and decoded with the ledger's own
mapper parts (cipher, compressor, transcoder): the same :class:`Recorded` values as
``Ledger.read``, without the ORM's per-row cost.

The Merkle tree and the read models (``projections``) are followers.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import orjson
from eventsourcing.persistence import IntegrityError, Notification
from eventsourcing.utils import resolve_topic
from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    Table,
    TextualSelect,
    bindparam,
    column,
    insert,
    select,
    text,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ledger.errors import VersionConflict
from ledger.log.leaf import is_leaf
from ledger.log.locks import lock_key, xact_lock

if TYPE_CHECKING:
    from ledger.application import Ledger, Recorded

__all__ = ["Follower", "apply_page", "begin_page", "catch_up_together", "read_events"]


class Follower(ABC):
    """Applies the log, page by page, to tables of its own."""

    #: Tracking key; also names the tracking table (``<name>_tracking``). At most 32 chars.
    name: str = ""
    page_size: int = 1000

    def __init__(self, ledger: Ledger) -> None:
        if not self.name or len(self.name) > 32:
            raise ValueError("a follower needs a name of 1-32 characters")
        self.ledger = ledger
        self.tracking = ledger.storage.tracking_recorder(f"{self.name}_tracking")
        self._lock = threading.Lock()
        self._lock_key = lock_key(ledger.engine, f"follower/{self.name}")
        #: True while this page continues the last page this follower committed in this
        #: process: what the follower kept in memory from that page is what its tables hold.
        self.carried = False
        self._committed_at: int | None = None

    def create_tables(self) -> None:
        """Create the tracking table and the follower's own tables."""
        self.tracking.create_table()
        self.create_own_tables()

    @abstractmethod
    def create_own_tables(self) -> None:
        """Create the tables this follower writes."""

    @abstractmethod
    def apply(self, session: Session, events: Sequence[Recorded]) -> None:
        """Write the effect of ``events`` (consecutive, in log order) in ``session``."""

    def position(self) -> int:
        """The last log position applied (0 when none)."""
        return self.tracking.max_tracking_id(self.ledger.name) or 0

    def catch_up(self, until: int | None = None) -> int:
        """Apply pages up to the log's head (or up to ``until``, inclusive); return the
        position reached."""
        return catch_up_together([self], until)

    # What a follower keeps in memory from page to page holds while :attr:`carried`.
    def page_begun(self, position: int) -> None:
        """Called before :meth:`apply` with the position the page finds this follower at
        (read under the follower's lock, so no other writer came between): the page
        continues the last one if that page left the follower here."""
        self.carried = self._committed_at == position
        self._committed_at = None  # unknown until this page commits

    def page_committed(self, position: int) -> None:
        """Called by :meth:`catch_up` once a page that moved this follower to ``position``
        has committed: what it kept in memory is the tables' state as of there."""
        self._committed_at = position

    def page_failed(self) -> None:
        """Called by :meth:`catch_up` when a page that included this follower failed: what
        it kept may hold what the failed page changed."""
        self.carried = False
        self._committed_at = None
        self.forget_carried()

    def forget_carried(self) -> None:  # noqa: B027
        """Drop what this follower keeps in memory from page to page (most keep nothing)."""

    def lock_in(self, session: Session) -> None:
        """Take this follower's transaction-scoped lock (PostgreSQL; SQLite locks the file)."""
        lock_all(session, [self])

    def reset(self, session: Session) -> None:
        """Forget progress (for a rebuild): the caller drops the follower's rows too."""
        session.execute(
            self.tracking.tracking_table.delete().where(
                self.tracking.tracking_table.c.application_name == self.ledger.name
            )
        )


def catch_up_together(
    followers: Sequence[Follower],
    until: int | None = None,
    *,
    page_size: int | None = None,
    on_page: Callable[[int], None] | None = None,
) -> int:
    """Apply pages to every follower, each page in one transaction; return the lowest
    position reached. ``on_page(position)`` is called after each committed page."""
    ordered = sorted({id(f): f for f in followers}.values(), key=lambda f: f.name)
    if not ordered:
        raise ValueError("no followers")
    size = page_size or min(f.page_size for f in ordered)
    with ExitStack() as stack:
        for follower in ordered:  # one order everywhere: no lock-order deadlock
            stack.enter_context(follower._lock)
        while True:
            reached, read = _apply_page(ordered, size, until)
            if read and on_page is not None:
                on_page(reached)
            # A short page reached the head as it stood: asking again would read nothing.
            if read < size or (until is not None and reached >= until):
                return reached


def _apply_page(followers: Sequence[Follower], size: int, until: int | None) -> tuple[int, int]:
    moves: list[tuple[Follower, int, int]] = []
    try:
        with followers[0].tracking.transaction(commit=True) as session:
            reached, read = apply_page(session, followers, size, until, advanced=moves)
    except BaseException:
        for follower in followers:
            follower.page_failed()
        raise
    for follower, _, new in moves:
        follower.page_committed(new)
    return reached, read


def apply_page(
    session: Session,
    followers: Sequence[Follower],
    size: int,
    until: int | None = None,
    *,
    expect: int | None = None,
    advanced: list[tuple[Follower, int, int]] | None = None,
    read_ahead: Sequence[Recorded] | None = None,
) -> tuple[int, int]:
    """Apply the next page to ``followers`` (sorted by name) in ``session``'s transaction,
    which the caller commits; return the position reached and the events read.

    ``expect``: the position every follower must stand at, for a caller that keeps
    state of its own between pages (a rebuild); if another process moved any of them,
    the page fails with ``VersionConflict`` and nothing is applied. ``advanced`` receives
    ``(follower, old, new)`` of each follower the page moves. ``read_ahead``: the page,
    already read (the events after ``expect``, which the log never changes), for a
    caller that reads the next page while this one is applied.
    """
    if read_ahead is not None and expect is None:
        raise ValueError("a page read ahead is applied only where the followers stand")
    ledger = followers[0].ledger
    if len(followers) > 1 and not ledger.settings.is_postgres:
        _install_moves(session, followers)
    begin_page(session, ledger)
    lock_all(session, followers)
    if read_ahead is None:
        positions, events = _read_page(session, followers, size, until)
    else:
        positions, events = _positions(session, followers), list(read_ahead)
    if expect is not None and any(position != expect for position in positions):
        moved = [f.name for f, p in zip(followers, positions, strict=True) if p != expect]
        raise VersionConflict(
            f"another process applied the log to {', '.join(moved)} meanwhile (a running "
            "server's projector?): stop it, then start again",
            field="position",
        )
    start = min(positions)
    if not events:
        return start, 0
    moves: list[tuple[Follower, int, int]] = []
    for follower, position in zip(followers, positions, strict=True):
        mine = events if position == start else [e for e in events if e.position > position]
        if mine:
            follower.page_begun(position)
            follower.apply(session, mine)
            moves.append((follower, position, mine[-1].position))
    _advance_all(session, moves)
    if advanced is not None:
        advanced.extend(moves)
    return events[-1].position, len(events)


def _read_page(
    session: Session, followers: Sequence[Follower], size: int, until: int | None
) -> tuple[list[int], list[Recorded]]:
    """Every follower's position and the events after the lowest, read in one statement
    (each row carries the positions); with no events, the positions alone."""
    ledger = followers[0].ledger
    conn = session.connection()
    query = _page_read(conn, followers, ledger.storage.events_table, bounded=until is not None)
    params = {"app": ledger.name, "limit": size, "stop": until}
    rows = conn.execute(query, params).all()
    if not rows:
        return _positions(session, followers), []
    count = len(followers)
    positions = [int(value or 0) for value in rows[0][:count]]
    decode = _Decoder(ledger)
    return positions, [decode(*row[count:]) for row in rows]


_page_reads: dict[tuple[str, tuple[str, ...], str, bool], TextualSelect] = {}


def _page_read(
    conn: Connection, followers: Sequence[Follower], events: Table, *, bounded: bool
) -> TextualSelect:
    # Each scalar subquery is uncorrelated: both databases run it once per statement, and
    # the events are one range of the primary key from the lowest position on.
    tables = tuple(follower.tracking.tracking_table.name for follower in followers)
    key = (conn.dialect.name, tables, events.name, bounded)
    found = _page_reads.get(key)
    if found is None:
        quote = conn.dialect.identifier_preparer.quote
        subqueries = [
            f"(SELECT max(notification_id) FROM {quote(t)} WHERE application_name = :app)"
            for t in tables
        ]
        lowest = ", ".join(f"coalesce({s}, 0)" for s in subqueries)
        if len(subqueries) > 1:
            lowest = f"{'least' if conn.dialect.name == 'postgresql' else 'min'}({lowest})"
        columns = ("id", "originator_id", "originator_version", "topic", "state")
        sql = (
            f"SELECT {', '.join(f'{s} AS p{n}' for n, s in enumerate(subqueries))}, "
            f"{', '.join(f'e.{c}' for c in columns)} FROM {quote(events.name)} AS e "
            f"WHERE e.id > {lowest}{' AND e.id <= :stop' if bounded else ''} "
            "ORDER BY e.id LIMIT :limit"
        )
        typed = [column(f"p{n}", BigInteger()) for n in range(len(tables))]
        typed += [column(c, events.c[c].type) for c in columns]
        found = _page_reads[key] = text(sql).columns(*typed)
    return found


def lock_all(session: Session, followers: Sequence[Follower]) -> None:
    """Take the followers' locks in one statement, in the order given (PostgreSQL)."""
    if not followers[0].ledger.settings.is_postgres:
        return  # SQLite: BEGIN IMMEDIATE already holds the database's write lock
    xact_lock(session, [follower._lock_key for follower in followers])


def _positions(session: Session, followers: Sequence[Follower]) -> list[int]:
    """Every follower's position, read in one statement."""
    conn = session.connection()
    sql = _tracking_sql(conn, "positions", followers)
    row = conn.exec_driver_sql(sql, (followers[0].ledger.name,) * len(followers)).one()
    return [int(value or 0) for value in row]


def _advance_all(session: Session, moves: Sequence[tuple[Follower, int, int]]) -> None:
    """Move each follower's tracking row from ``old`` to ``new``, failing the page if any
    row moved meanwhile, in one statement for all of them (a page of one event is mostly
    statements): PostgreSQL's data-modifying CTEs, or SQLite's insert into
    ``temp.follower_moves`` (see :func:`_install_moves`)."""
    if len(moves) > 1 and all(m[1] for m in moves):
        if moves[0][0].ledger.settings.is_postgres:
            _advance_in_ctes(session, moves)
            return
        if _moves_installed(session, moves):
            _advance_by_triggers(session, moves)
            return
    for follower, old, new in moves:
        _advance(session, follower, old, new)


def _advance_in_ctes(session: Session, moves: Sequence[tuple[Follower, int, int]]) -> None:
    conn = session.connection()
    name = moves[0][0].ledger.name
    sql = _tracking_sql(conn, "advance", [follower for follower, _, _ in moves])
    params = tuple(value for _, old, new in moves for value in (new, name, old))
    row = conn.exec_driver_sql(sql, params).one()
    for (follower, old, _), count in zip(moves, row, strict=True):
        if count != 1:
            raise IntegrityError(f"{follower.name} moved past {old} in another transaction")


def _advance_by_triggers(session: Session, moves: Sequence[tuple[Follower, int, int]]) -> None:
    conn = session.connection()
    name = moves[0][0].ledger.name
    sql = _tracking_sql(conn, "moves", [follower for follower, _, _ in moves])
    params = tuple(
        value
        for follower, old, new in moves
        for value in (follower.tracking.tracking_table.name, name, old, new)
    )
    try:
        conn.exec_driver_sql(sql, params)
    except sa_exc.IntegrityError as error:
        # The trigger of the row that did not move names its table; no row moved.
        moved = str(error.orig)
        for follower, old, _ in moves:
            if follower.tracking.tracking_table.name == moved:
                raise IntegrityError(
                    f"{follower.name} moved past {old} in another transaction"
                ) from error
        raise


_MOVES = "follower_moves"


def _install_moves(session: Session, followers: Sequence[Follower]) -> None:
    """SQLite: make this connection's ``temp.follower_moves``, a view whose rows
    ``(tracking table, application name, old, new)`` move tracking rows by compare-and-set:
    an ``INSTEAD OF INSERT`` trigger per tracking table updates its row and aborts the
    statement (undoing every row it moved) when the row was not at ``old``.

    SQLite updates one table a statement; through the view, one multi-row insert moves
    every view's row. Temporary objects belong to the connection: they are made once per
    connection, before the page's transaction begins (a temporary trigger made inside it
    would vanish with a rollback), or not at all on this page.
    """
    conn = session.connection()
    if conn.dialect.name != "sqlite":
        return
    installed: set[str] = conn.connection.info.setdefault(_MOVES, set())
    missing = [f for f in followers if f.tracking.tracking_table.name not in installed]
    raw: Any = conn.connection.dbapi_connection
    if not missing or raw.in_transaction:
        return
    quote = conn.dialect.identifier_preparer.quote
    conn.exec_driver_sql(
        f"CREATE TEMP VIEW IF NOT EXISTS {_MOVES} AS SELECT '' AS tracking, "
        "'' AS application_name, 0 AS old, 0 AS new WHERE 0"
    )
    for follower in missing:
        table = follower.tracking.tracking_table.name
        literal = "'" + table.replace("'", "''") + "'"
        conn.exec_driver_sql(
            f"CREATE TEMP TRIGGER IF NOT EXISTS {quote(f'{_MOVES}_{table}')} "
            f"INSTEAD OF INSERT ON {_MOVES} WHEN NEW.tracking = {literal} BEGIN "
            f"UPDATE {quote(table)} SET notification_id = NEW.new "
            "WHERE application_name = NEW.application_name AND notification_id = NEW.old; "
            f"SELECT RAISE(ABORT, {literal}) WHERE changes() != 1; END"
        )
        installed.add(table)


def _moves_installed(session: Session, moves: Sequence[tuple[Follower, int, int]]) -> bool:
    installed = session.connection().connection.info.get(_MOVES, ())
    return all(follower.tracking.tracking_table.name in installed for follower, _, _ in moves)


def _advance(session: Session, follower: Follower, old: int, new: int) -> None:
    """Move the tracking row from ``old`` to ``new``, or fail the page if it moved."""
    conn = session.connection()
    name = follower.ledger.name
    if old:
        sql = _tracking_sql(conn, "move", [follower])
        if conn.exec_driver_sql(sql, (new, name, old)).rowcount != 1:
            raise IntegrityError(f"{follower.name} moved past {old} in another transaction")
    else:
        # A second first row breaks the primary key: the page rolls back.
        table = follower.tracking.tracking_table
        conn.execute(insert(table).values(application_name=name, notification_id=new))


_tracking_sqls: dict[tuple[str, str, tuple[str, ...]], str] = {}


def _tracking_sql(conn: Connection, use: str, followers: Sequence[Follower]) -> str:
    """Driver SQL over the followers' tracking tables, made once per dialect, use and
    tables: building and keying SQLAlchemy statements of thirteen tables cost
    milliseconds a page, more than running them.

    ``positions``: each table's position (one parameter a table: the application's
    name). ``move``: one table's compare-and-set (new, name, old). ``advance``: every
    table's compare-and-set in one PostgreSQL statement (new, name, old a table), which
    counts the rows each moved. ``moves``: the same on SQLite, one row of
    ``temp.follower_moves`` a table (table, name, old, new).
    """
    tables = tuple(follower.tracking.tracking_table.name for follower in followers)
    key = (conn.dialect.name, use, tables)
    found = _tracking_sqls.get(key)
    if found is None:
        quote = conn.dialect.identifier_preparer.quote
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        if use == "moves":
            rows = ", ".join([f"({mark}, {mark}, {mark}, {mark})"] * len(tables))
            found = f"INSERT INTO {_MOVES} (tracking, application_name, old, new) VALUES {rows}"
        elif use == "positions":
            found = "SELECT " + ", ".join(
                f"(SELECT max(notification_id) FROM {quote(t)} WHERE application_name = {mark})"
                for t in tables
            )
        else:
            moves = [
                f"UPDATE {quote(t)} SET notification_id = {mark} "
                f"WHERE application_name = {mark} AND notification_id = {mark}"
                for t in tables
            ]
            if use == "move":
                found = moves[0]
            else:
                ctes = ", ".join(
                    f"moved_{n} AS ({move} RETURNING notification_id)"
                    for n, move in enumerate(moves)
                )
                counts = ", ".join(f"(SELECT count(*) FROM moved_{n})" for n in range(len(moves)))
                found = f"WITH {ctes} SELECT {counts}"
        _tracking_sqls[key] = found
    return found


def begin_page(session: Session, ledger: Ledger) -> None:
    """Start the page's transaction; on SQLite, take the write lock now (see module doc)."""
    if ledger.settings.is_postgres:
        return
    raw: Any = session.connection().connection.dbapi_connection
    if not raw.in_transaction:
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")


def read_events(
    session: Session, ledger: Ledger, after: int, limit: int, stop: int | None = None
) -> list[Recorded]:
    """Stored events after ``after`` (up to ``stop``, inclusive), as ``Ledger.read`` gives."""
    query = _page_query(ledger.storage.events_table, bounded=stop is not None)
    params = {"after": after, "limit": limit, "stop": stop}
    rows = session.connection().execute(query, params).all()
    decode = _Decoder(ledger)
    return [decode(*row) for row in rows]


_page_queries: dict[tuple[int, bool], Select[Any]] = {}


def _page_query(table: Table, *, bounded: bool) -> Select[Any]:
    # One statement object per events table: SQLAlchemy then reuses its compiled form
    # without building and keying a new one each page.
    key = (id(table), bounded)
    found = _page_queries.get(key)
    if found is None:
        columns = (table.c.originator_id, table.c.originator_version, table.c.topic)
        found = select(table.c.id, *columns, table.c.state).where(
            table.c.id > bindparam("after", type_=Integer)
        )
        if bounded:
            found = found.where(table.c.id <= bindparam("stop", type_=Integer))
        found = _page_queries[key] = found.order_by(table.c.id).limit(
            bindparam("limit", type_=Integer)
        )
    return found


def _fast_fields(data: bytes) -> dict[str, Any] | None:
    """The stored fields decoded by orjson, or None when the mapper must do it.

    A state in leaf form is plain JSON. In the library's older JSON form the only tagged
    object is the ``timestamp``, which the followers never read; any other tag (or JSON
    orjson refuses) takes the mapper's path, so both give the same envelope, signature
    and ``recorded_at``.
    """
    leaf = is_leaf(data)
    if not leaf and data.count(b'"_type_"') != 1:
        return None
    try:
        fields: dict[str, Any] = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if leaf:
        return fields
    stamp = fields.get("timestamp")
    return fields if isinstance(stamp, dict) and "_type_" in stamp else None


class _Decoder:
    """Turns event rows into ``Recorded`` values with the ledger's mapper parts."""

    _plain_topics: dict[str, bool] = {}  # noqa: RUF012  (a process-wide cache)

    def __init__(self, ledger: Ledger) -> None:
        from ledger.application import Recorded
        from ledger.log.envelope import StoredEvent

        self.ledger = ledger
        self.mapper = ledger.mapper
        self.recorded = Recorded
        self.stored = StoredEvent
        self.decode = self.mapper.transcoder.decode
        self.raw = self.mapper.cipher is None and self.mapper.compressor is None

    def __call__(
        self, position: int, subject: Any, version: int, topic: str, state: bytes
    ) -> Recorded:
        plain = self._plain_topics.get(topic)
        if plain is None:
            plain = self._is_plain(topic)
        if not plain:
            return self._via_mapper(position, subject, version, topic, state)
        data = state if self.raw and type(state) is bytes else self._unwrap(state)
        fields = _fast_fields(data) or self.decode(data)
        leaf = data if is_leaf(data) else None
        event = self.stored(
            fields["envelope"],
            fields["signature"],
            fields["recorded_at"],
            leaf,
            fields.get("written_by") if leaf is not None else None,
        )
        return self.recorded(position, subject, version, topic, event)

    def _unwrap(self, state: bytes) -> bytes:
        data = bytes(state)
        if self.mapper.cipher is not None:
            data = self.mapper.cipher.decrypt(data)
        if self.mapper.compressor is not None:
            data = self.mapper.compressor.decompress(data)
        return data

    def _is_plain(self, topic: str) -> bool:
        # Event classes with a class_version > 1 need the mapper's upcasters.
        plain = self._plain_topics.get(topic)
        if plain is None:
            plain = getattr(resolve_topic(topic), "class_version", 1) == 1
            self._plain_topics[topic] = plain
        return plain

    def _via_mapper(
        self, position: int, subject: Any, version: int, topic: str, state: bytes
    ) -> Recorded:
        notification = Notification(
            id=position,
            originator_id=subject,
            originator_version=version,
            topic=topic,
            state=bytes(state),
        )
        domain_event: Any = self.mapper.to_domain_event(notification)
        data = self._unwrap(state)
        event = self.stored(
            domain_event.envelope,
            domain_event.signature,
            domain_event.recorded_at,
            data if is_leaf(data) else None,
            getattr(domain_event, "written_by", None),
        )
        return self.recorded(position, subject, version, topic, event)
