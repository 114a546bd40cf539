"""Group commit: the concurrent appends of one process stored in one transaction.

Each caller of :meth:`GroupCommit.append_many` joins a queue. One of them at a time
leads: it takes every request waiting (up to :attr:`GroupCommit.max_envelopes`
envelopes), has the ledger check them against one state and store the accepted ones in
one transaction (:meth:`ledger.application.Ledger.append_group`), hands each request its
own outcome, and passes the lead to the oldest request still waiting. While one group
commits, the next one gathers, so under load a transaction carries many requests and
alone a request commits at once. The ledger's listeners (the projector's read-your-writes)
are told after the lead has passed on, so one group's views catch up while the next
group commits; each request returns once they have.

A refused request fails alone; the others land in the order they joined. A transaction
that fails (the database unavailable) acknowledges none of its requests.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledger.application import Appended, AppendRequest, Ledger

__all__ = ["GroupCommit"]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Waiting:
    request: AppendRequest
    size: int
    ready: threading.Event = field(default_factory=threading.Event)
    outcome: list[Appended] | BaseException | None = None


class GroupCommit:
    """Appends of concurrent threads, coalesced into shared transactions."""

    def __init__(self, ledger: Ledger, max_envelopes: int | None = None) -> None:
        self.ledger = ledger
        self.max_envelopes = max_envelopes or ledger.settings.max_batch
        self._lock = threading.Lock()
        self._queue: deque[_Waiting] = deque()
        self._leading = False

    def append(
        self, envelope: Mapping[str, Any], signature: str, openings: Sequence[Any] | None = None
    ) -> Appended:
        """As :meth:`Ledger.append`, stored with whatever else is waiting."""
        return self.append_many([(envelope, signature)], [openings])[0]

    def append_many(
        self,
        items: Sequence[tuple[Mapping[str, Any], str]],
        openings: Sequence[Sequence[Any] | None] | None = None,
    ) -> list[Appended]:
        """As :meth:`Ledger.append_many` (all of ``items`` or none), stored with whatever
        else is waiting; returns once stored (and the ledger's listeners told)."""
        waiting = _Waiting((items, openings), len(items))
        with self._lock:
            self._queue.append(waiting)
            lead = not self._leading
            self._leading = True
        if not lead:
            waiting.ready.wait()
        if waiting.outcome is None:  # it leads: first to arrive, or handed the lead
            self._lead()
        if isinstance(waiting.outcome, BaseException):
            raise waiting.outcome
        if waiting.outcome is None:
            raise RuntimeError("the group's leader gave this request no outcome")
        return waiting.outcome

    def _lead(self) -> None:
        with self._lock:
            group = self._take()
        outcomes: Sequence[list[Appended] | BaseException]
        try:
            requests = [waiting.request for waiting in group]
            outcomes = self.ledger.append_group(requests, tell=False)
        except BaseException as error:  # every request of the group fails with it
            outcomes = [error] + [copy.copy(error) for _ in group[1:]]
        self._hand_on()
        try:
            # After the lead has passed on: the next group commits while the listeners
            # (the projector's read-your-writes) catch up with this one.
            self._tell(outcomes)
        finally:
            for waiting, outcome in zip(group, outcomes, strict=True):
                waiting.outcome = outcome
                waiting.ready.set()

    def _hand_on(self) -> None:
        with self._lock:
            following = self._queue[0] if self._queue else None
            self._leading = following is not None
        if following is not None:
            following.ready.set()

    def _tell(self, outcomes: Sequence[list[Appended] | BaseException]) -> None:
        stored = [appended[-1].position for appended in outcomes if isinstance(appended, list)]
        if stored:
            try:
                self.ledger.tell_listeners(max(stored))
            except Exception:  # the events are stored: acknowledged, the views catch up later
                log.exception("a listener failed after a group commit")

    def _take(self) -> list[_Waiting]:
        """The oldest waiting requests, at least one, within :attr:`max_envelopes`."""
        group = [self._queue.popleft()]
        total = group[0].size
        while self._queue and total + self._queue[0].size <= self.max_envelopes:
            total += self._queue[0].size
            group.append(self._queue.popleft())
        return group
