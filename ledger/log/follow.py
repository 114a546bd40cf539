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
position (the projections use it: one read, many views). The locks are taken and the
positions read in one statement each; each tracking row then moves from the position
read to the page's last position by compare-and-set, so a row that anyone else moved
fails the page (``IntegrityError``, nothing written) instead of applying events twice.

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
from sqlalchemy import func, insert, select, update
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
    with followers[0].tracking.transaction(commit=True) as session:
        return apply_page(session, followers, size, until)


def apply_page(
    session: Session,
    followers: Sequence[Follower],
    size: int,
    until: int | None = None,
    *,
    expect: int | None = None,
) -> tuple[int, int]:
    """Apply the next page to ``followers`` (sorted by name) in ``session``'s transaction,
    which the caller commits; return the position reached and the events read.

    ``expect``: the position every follower must stand at, for a caller that keeps
    state of its own between pages (a rebuild); if another process moved any of them,
    the page fails with ``VersionConflict`` and nothing is applied.
    """
    ledger = followers[0].ledger
    begin_page(session, ledger)
    lock_all(session, followers)
    positions = _positions(session, followers)
    if expect is not None and any(position != expect for position in positions):
        moved = [f.name for f, p in zip(followers, positions, strict=True) if p != expect]
        raise VersionConflict(
            f"another process applied the log to {', '.join(moved)} meanwhile (a running "
            "server's projector?): stop it, then start again",
            field="position",
        )
    start = min(positions)
    events = read_events(session, ledger, start, size, until)
    if not events:
        return start, 0
    moves: list[tuple[Follower, int, int]] = []
    for follower, position in zip(followers, positions, strict=True):
        mine = events if position == start else [e for e in events if e.position > position]
        if mine:
            follower.apply(session, mine)
            moves.append((follower, position, mine[-1].position))
    _advance_all(session, moves)
    return events[-1].position, len(events)


def lock_all(session: Session, followers: Sequence[Follower]) -> None:
    """Take the followers' locks in one statement, in the order given (PostgreSQL)."""
    if not followers[0].ledger.settings.is_postgres:
        return  # SQLite: BEGIN IMMEDIATE already holds the database's write lock
    xact_lock(session, [follower._lock_key for follower in followers])


def _positions(session: Session, followers: Sequence[Follower]) -> list[int]:
    """Every follower's position, read in one statement."""
    name = followers[0].ledger.name
    parts = []
    for follower in followers:
        table = follower.tracking.tracking_table
        parts.append(
            select(func.max(table.c.notification_id))
            .where(table.c.application_name == name)
            .scalar_subquery()
        )
    row = session.connection().execute(select(*parts)).one()
    return [int(value or 0) for value in row]


def _advance_all(session: Session, moves: Sequence[tuple[Follower, int, int]]) -> None:
    """Move each follower's tracking row from ``old`` to ``new``, failing the page if any
    row moved meanwhile. PostgreSQL moves them all in one statement (one round trip
    instead of one per view: a page of one event is mostly round trips)."""
    if len(moves) > 1 and moves[0][0].ledger.settings.is_postgres and all(m[1] for m in moves):
        name = moves[0][0].ledger.name
        counts = []
        for number, (follower, old, new) in enumerate(moves):
            table = follower.tracking.tracking_table
            moved = (
                update(table)
                .where(table.c.application_name == name, table.c.notification_id == old)
                .values(notification_id=new)
                .returning(table.c.notification_id)
                .cte(f"moved_{number}")
            )
            counts.append(select(func.count()).select_from(moved).scalar_subquery())
        row = session.connection().execute(select(*counts)).one()
        for (follower, old, _), count in zip(moves, row, strict=True):
            if count != 1:
                raise IntegrityError(f"{follower.name} moved past {old} in another transaction")
        return
    for follower, old, new in moves:
        _advance(session, follower, old, new)


def _advance(session: Session, follower: Follower, old: int, new: int) -> None:
    """Move the tracking row from ``old`` to ``new``, or fail the page if it moved."""
    table = follower.tracking.tracking_table
    name = follower.ledger.name
    conn = session.connection()
    if old:
        moved = conn.execute(
            update(table)
            .where(table.c.application_name == name, table.c.notification_id == old)
            .values(notification_id=new)
        ).rowcount
        if moved != 1:
            raise IntegrityError(f"{follower.name} moved past {old} in another transaction")
    else:
        # A second first row breaks the primary key: the page rolls back.
        conn.execute(insert(table).values(application_name=name, notification_id=new))


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
    table = ledger.storage.events_table
    query = select(
        table.c.id, table.c.originator_id, table.c.originator_version, table.c.topic, table.c.state
    ).where(table.c.id > after)
    if stop is not None:
        query = query.where(table.c.id <= stop)
    rows = session.connection().execute(query.order_by(table.c.id).limit(limit)).all()
    decode = _Decoder(ledger)
    return [decode(*row) for row in rows]


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
