"""The projector: every view kept current, exactly once, with read-your-writes.

One :class:`Projector` holds all views. Each view is a :class:`~ledger.log.follow.Follower`
with its own tracking row, so it can be rebuilt or inspected alone, but the projector
advances them together with :func:`~ledger.log.follow.catch_up_together`: each page of the log
is read and decoded once and applied to every view in one transaction (one commit, one
lock, and every view at the same position after each page).

* **Read your writes**: the projector registers a ``Ledger`` listener, so ``append``
  returns only after every view has applied the appended events.
* **Other processes' writes**: a background thread catches up. On PostgreSQL it waits for
  the notices the library's insert sends (``ledger.storage.notices()``: woken, not handed
  the events, which the catch-up reads once); on SQLite, which has no notices, it polls
  the log's head.
* A projection error never undoes an append (the event is stored and acknowledged); it is
  logged and kept in :attr:`Projector.error`, and the next catch-up retries the page.
* **Companions**: followers that are not views (a server's Merkle tree) may ride along:
  each page then applies to them in the same transaction (one lock, one read, one
  commit for both). A page that fails is applied to the companions alone, so a failing
  view never holds them back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy.exc import OperationalError

from ledger.log.follow import Follower, catch_up_together
from ledger.log.storage import Notices
from ledger.runtime import collector_paused
from projections.access import AccessView
from projections.agreements import AgreementsView
from projections.audit import AuditView
from projections.capa import CapasView
from projections.changes import ChangesView
from projections.data import DataView
from projections.deliveries import DeliveriesView
from projections.enhancements import EnhancementsView
from projections.ownership import OwnershipView
from projections.parameters import ParametersView
from projections.parties import PartiesView
from projections.reviews import ReviewsView
from projections.summaries import SummariesView
from projections.view import View

if TYPE_CHECKING:
    from ledger.application import Ledger

__all__ = ["ALL_VIEWS", "Projector", "view_classes"]

log = logging.getLogger(__name__)

ALL_VIEWS: tuple[type[View], ...] = (
    PartiesView,
    AgreementsView,
    OwnershipView,
    AccessView,
    DataView,
    SummariesView,
    ParametersView,
    EnhancementsView,
    ReviewsView,
    ChangesView,
    CapasView,
    DeliveriesView,
    AuditView,
)


def view_classes(names: Sequence[str] | None = None) -> tuple[type[View], ...]:
    """The view classes named (all when ``names`` is empty or None)."""
    if not names:
        return ALL_VIEWS
    by_name = {cls.name: cls for cls in ALL_VIEWS}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise ValueError(f"unknown view {unknown[0]!r}; views are {', '.join(sorted(by_name))}")
    return tuple(by_name[name] for name in names)


class Projector:
    """All views of one ledger, kept up to date."""

    def __init__(
        self,
        ledger: Ledger,
        views: Sequence[type[View]] | None = None,
        *,
        page_size: int = 1000,
        poll_interval: float = 0.2,
        attempts: int = 5,
        companions: Sequence[Follower] = (),
    ) -> None:
        self.ledger = ledger
        self.views: list[View] = [cls(ledger) for cls in (views or ALL_VIEWS)]
        self.companions = tuple(companions)
        self.page_size = page_size
        self.poll_interval = poll_interval
        self.attempts = attempts
        self.reached = 0
        self.error: BaseException | None = None
        self._closed = threading.Event()
        self._serial = threading.Lock()
        self._tailer: _Tailer | None = None

    def view(self, name: str) -> View:
        """The view named ``name``."""
        for view in self.views:
            if view.name == name:
                return view
        raise KeyError(name)

    def create_tables(self) -> None:
        """Create every view's tables (replaying views whose schema changed)."""
        for view in self.views:
            view.create_tables()

    def catch_up(
        self,
        until: int | None = None,
        on_page: Callable[[int], None] | None = None,
        *,
        needed: int | None = None,
    ) -> int:
        """Apply the log to every view up to the head (or ``until``); return the position.

        Nothing is read when this projector has already reached ``needed``: the tailer,
        told by the database of an append this process has just projected, queues behind
        the append's own catch-up and then has nothing left to do. (``until`` never skips:
        views dropped for a replay are behind what this projector last reached.)
        """
        with self._serial:
            if needed is not None and self.reached >= needed:
                return self.reached
            with collector_paused():  # a page's many short-lived containers hold no cycles
                self.reached = catch_up_together(
                    [*self.views, *self.companions],
                    until,
                    page_size=self.page_size,
                    on_page=on_page,
                )
            self.error = None
            return self.reached

    @property
    def started(self) -> bool:
        """True between :meth:`start` and :meth:`close`: appends are projected as they return."""
        return self._tailer is not None

    def positions(self) -> dict[str, int]:
        """Each view's position."""
        return {view.name: view.position() for view in self.views}

    def start(self) -> Projector:
        """Create tables, catch up, then follow appends (this process's and others')."""
        self.create_tables()
        self.catch_up()
        self.ledger.add_listener(self._appended)
        self._tailer = _Tailer(self)
        self._tailer.start()
        return self

    def close(self) -> None:
        """Stop following; the ledger's listener becomes a no-op."""
        self._closed.set()
        if self._tailer is not None:
            self._tailer.stop()
            self._tailer.join()
            self._tailer = None

    def __enter__(self) -> Projector:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _appended(self, position: int) -> None:
        # Up to the head, not to ``position``: appends that committed meanwhile (a group
        # commit's next groups) are projected in the same page, and their own calls then
        # find the views there already.
        if not self._closed.is_set():
            self.catch_up_safely(needed=position)

    def catch_up_safely(self, until: int | None = None, *, needed: int | None = None) -> None:
        """Catch up, retrying a busy database; log and keep any error instead of raising."""
        for attempt in range(self.attempts):
            try:
                self.catch_up(until, needed=needed)
                return
            except OperationalError as error:  # a busy or restarting database: try again
                self.error = error
                time.sleep(0.05 * 2**attempt)
            except Exception as error:
                self.error = error
                log.exception("projection failed; the event is stored, the views lag")
                self._companions_alone(until)
                return
        log.error("projection gave up after %d attempts: %s", self.attempts, self.error)
        self._companions_alone(until)

    def _companions_alone(self, until: int | None) -> None:
        # The views failed the shared page: the companions go on without them.
        if not self.companions:
            return
        try:
            catch_up_together(self.companions, until)
        except Exception:
            log.exception("catching up %s failed", ", ".join(c.name for c in self.companions))


class _Tailer(threading.Thread):
    """Catches up with events appended by other processes."""

    def __init__(self, projector: Projector) -> None:
        super().__init__(name="projections-tailer", daemon=True)
        self.projector = projector
        self._stopped = threading.Event()
        self._notices: Notices | None = None

    def stop(self) -> None:
        self._stopped.set()
        notices = self._notices
        if notices is not None:
            notices.stop()

    def run(self) -> None:
        if self.projector.ledger.settings.is_postgres:
            self._listen()
        else:
            self._poll()

    def _poll(self) -> None:
        while not self._stopped.wait(self.projector.poll_interval):
            try:
                if self.projector.ledger.head() > self.projector.reached:
                    self.projector.catch_up_safely()
            except Exception as error:
                self.projector.error = error
                log.exception("polling the log failed")

    def _listen(self) -> None:
        # Woken by the database's notices, not by the library's subscription, which reads
        # every new event's body only for this thread to drop it: the page read by the
        # catch-up is the one read that counts.
        ledger = self.projector.ledger
        while not self._stopped.is_set():
            try:
                self._notices = ledger.storage.notices()
                if self._stopped.is_set():
                    return
                for _ in self._notices:
                    head = ledger.head()
                    if head > self.projector.reached:
                        self.projector.catch_up_safely(needed=head)
            except Exception as error:
                self.projector.error = error
                log.exception("listening for the log's notices failed; listening again")
                self._stopped.wait(self.projector.poll_interval)
            finally:
                self._notices = None
