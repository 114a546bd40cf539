"""Rebuilding views from the log, and where each view stands against the log's head.

:func:`rebuild` drops the chosen views (their tables and tracking rows, in one
transaction under each view's lock) and replays the whole log into them, reporting
progress after each page. :func:`status` lists each view's position, the head, and how
many events it has still to apply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ledger.log.follow import apply_page, begin_page, read_events
from ledger.runtime import collector_paused
from projections.runner import view_classes
from projections.view import View

if TYPE_CHECKING:
    from ledger.application import Ledger, Recorded

__all__ = [
    "FIRST_REBUILD_PAGE",
    "REBUILD_PAGE",
    "ViewStatus",
    "create_indexes",
    "drop_views",
    "rebuild",
    "status",
]

Progress = Callable[[int, int], None]
#: Events per page (and transaction) of a rebuild.
REBUILD_PAGE = 5_000
#: Events of a rebuild's first page, read before anything else can start.
FIRST_REBUILD_PAGE = 500
#: SQLite's WAL size (in 4 KiB pages) at which a rebuild's commit checkpoints: 64 MiB,
#: against the default 4 MiB.
_REBUILD_CHECKPOINT_PAGES = 16_384


@dataclass(frozen=True, slots=True)
class ViewStatus:
    """One view against the log: ``lag`` is the number of events it has not applied."""

    view: str
    position: int
    head: int
    lag: int


def status(ledger: Ledger, names: Sequence[str] | None = None) -> list[ViewStatus]:
    """Each view's position, the log's head, and the events still to apply."""
    head = ledger.head()
    result = []
    for cls in view_classes(names):
        view = cls(ledger)
        view.tracking.create_table()
        position = view.position()
        result.append(ViewStatus(view.name, position, head, _events_after(ledger, position)))
    return result


def drop_views(views: Sequence[View], *, without_indexes: bool = False) -> None:
    """Empty ``views`` and forget their progress, all in one transaction; optionally
    leave out their secondary indexes until :func:`create_indexes`."""
    with _locked(views) as session:
        for view in views:
            view.drop(session)
            if without_indexes:
                view.drop_indexes(session)


def create_indexes(views: Sequence[View]) -> None:
    """Create the views' missing secondary indexes."""
    with _locked(views) as session:
        for view in views:
            view.create_indexes(session)


@contextmanager
def _locked(views: Sequence[View]) -> Iterator[Session]:
    with views[0].tracking.transaction(commit=True) as session:
        begin_page(session, views[0].ledger)
        for view in sorted(views, key=lambda v: v.name):
            view.lock_in(session)
        yield session


def rebuild(
    ledger: Ledger,
    names: Sequence[str] | None = None,
    *,
    progress: Progress | None = None,
    page_size: int = REBUILD_PAGE,
) -> int:
    """Drop the named views (all by default) and replay the log into them.

    ``progress(position, head)`` is called after each page; returns the position reached.
    """
    views = [cls(ledger) for cls in view_classes(names)]
    for view in views:
        view.create_tables()
    # Secondary indexes are built once at the end: sorting once beats updating them row
    # by row. Should the rebuild stop early, the next start of a projector builds them.
    drop_views(views, without_indexes=True)
    head = ledger.head()
    if progress is not None:
        progress(0, head)

    def on_page(position: int) -> None:
        if progress is not None:
            progress(position, max(head, position))

    reached = _replay(views, page_size=page_size, on_page=on_page)
    create_indexes(views)
    return reached


def _replay(
    views: Sequence[View],
    *,
    page_size: int = REBUILD_PAGE,
    on_page: Callable[[int], None] | None = None,
) -> int:
    """Apply the whole log to freshly emptied ``views``; return the position reached.

    Each page commits the views' rows and their tracking rows together, exactly as the
    projector does (:func:`~ledger.log.follow.apply_page`), so a rebuild killed at any point
    leaves every view at its last committed page, never ahead of its rows, and the next
    catch-up resumes from there. What a rebuild does differently: large pages, one
    connection of its own with commits that skip the flush to disk (see
    :func:`_fast_commits`), and each view's state kept in memory between pages.
    """
    ordered = sorted({id(v): v for v in views}.values(), key=lambda v: v.name)
    ledger = ordered[0].ledger
    with ExitStack() as stack:
        for view in ordered:  # the projector's lock order: no deadlock with it
            stack.enter_context(view._lock)
        conn = stack.enter_context(ledger.engine.connect())
        stack.enter_context(_fast_commits(conn, ledger.settings.is_postgres))
        stack.enter_context(_kept_states(ordered))
        stack.enter_context(collector_paused())
        pages = stack.enter_context(_PagesAhead(ledger, page_size))
        reached = 0
        while True:
            events = pages.after(reached)
            with Session(bind=conn) as session, session.begin():
                if ledger.settings.is_postgres:
                    session.execute(text("SET LOCAL synchronous_commit = off"))
                # The views' state in memory is right only if nothing else moved them.
                reached, read = apply_page(
                    session, ordered, page_size, expect=reached, read_ahead=events
                )
            if not read:
                return reached
            if on_page is not None:
                on_page(reached)


class _PagesAhead:
    """The log's pages for a replay, each read by a thread while the views apply the one
    before it: the views' work does not wait for the reading, nor worker processes (a
    view's read ahead) for a page to be read. The first page is short, so that they
    start early."""

    def __init__(self, ledger: Ledger, size: int) -> None:
        self._ledger = ledger
        self._size = size
        self._first = min(size, FIRST_REBUILD_PAGE)
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="rebuild-read-ahead")
        self._next: tuple[int, Future[list[Recorded]]] | None = None

    def after(self, position: int) -> list[Recorded]:
        """The page after ``position``; the one after it starts being read."""
        if self._next is not None and self._next[0] == position:
            events = self._next[1].result()
        else:
            events = self._read(position, self._first)
        self._next = None
        if events:
            last = events[-1].position
            self._next = (last, self._reader.submit(self._read, last, self._size))
        return events

    def _read(self, after: int, limit: int) -> list[Recorded]:
        with Session(self._ledger.engine) as session:
            return read_events(session, self._ledger, after, limit)

    def __enter__(self) -> _PagesAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self._reader.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _kept_states(views: Sequence[View]) -> Iterator[None]:
    for view in views:
        view.keep_state(True)
    try:
        yield
    finally:
        for view in views:
            view.keep_state(False)


@contextmanager
def _fast_commits(conn: Connection, is_postgres: bool) -> Iterator[None]:
    """SQLite: ``synchronous=NORMAL`` and rarer checkpoints on the rebuild's connection
    while it lasts.

    In WAL mode a commit then skips its fsync (the WAL is synced at checkpoints) and the
    database stays consistent through a power loss; at worst the last pages are lost
    and replayed on the next start. ``OFF`` would be faster still but can corrupt the
    file on power loss, and the file holds the log too. PostgreSQL gets the like of it
    per transaction (``synchronous_commit = off``).
    """
    if is_postgres:
        yield
        return
    raw: Any = conn.connection.dbapi_connection
    before = raw.execute("PRAGMA synchronous").fetchone()[0]
    checkpoint = raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    raw.execute("PRAGMA synchronous=NORMAL")
    # Fewer, larger checkpoints: a page's commit then seldom copies the WAL into the
    # file (and syncs both), and an index page written by many pages is copied once.
    raw.execute(f"PRAGMA wal_autocheckpoint={_REBUILD_CHECKPOINT_PAGES}")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA wal_autocheckpoint={int(checkpoint)}")
        raw.execute(f"PRAGMA synchronous={int(before)}")


def _events_after(ledger: Ledger, position: int) -> int:
    table = ledger.storage.events_table
    with ledger.engine.connect() as conn:
        query = select(func.count()).select_from(table).where(table.c.id > position)
        count = conn.execute(query).scalar()
    return int(count or 0)
