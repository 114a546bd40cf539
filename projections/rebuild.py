"""Rebuilding views from the log, and where each view stands against the log's head.

:func:`rebuild` drops the chosen views (their tables and tracking rows, in one
transaction under each view's lock) and replays the whole log into them, reporting
progress after each page. :func:`status` lists each view's position, the head, and how
many events it has still to apply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.follow import begin_page, catch_up_together
from projections.runner import view_classes
from projections.view import View

if TYPE_CHECKING:
    from ledger.application import Ledger

__all__ = ["ViewStatus", "create_indexes", "drop_views", "rebuild", "status"]

Progress = Callable[[int, int], None]


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
    page_size: int = 2000,
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

    reached = catch_up_together(views, page_size=page_size, on_page=on_page)
    create_indexes(views)
    return reached


def _events_after(ledger: Ledger, position: int) -> int:
    table = ledger.recorder.events_record_cls.__table__  # type: ignore[attr-defined]
    with ledger.engine.connect() as conn:
        query = select(func.count()).select_from(table).where(table.c.id > position)
        count = conn.execute(query).scalar()
    return int(count or 0)
