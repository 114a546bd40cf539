"""The aggregates the append path last saw, kept coherent with the log by its positions.

Checking an envelope needs the current state of its subject, its signer and what its rule
reads (an agreement, a parameter). Replaying each from its stored events on every append
costs a query apiece. The cache keeps them in memory instead, as of a log position it has
*caught up* to: before each use, :meth:`AggregateCache.catch_up` reads the positions and
subjects of the events stored since (by this process or any other sharing the database,
one query) and forgets those subjects, so what is left is current.

An event another writer commits after the catch-up is caught by the database itself: the
events table is unique on (subject, version), so an append checked against a state that
has just gone stale fails as a version conflict, as it would without the cache, and stores
nothing. A cached aggregate is changed in place by the append that uses it, so the caller
holds :attr:`AggregateCache.lock` from catch-up to commit and calls :meth:`forget` for
every subject it touched when the append fails.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from uuid import UUID

from ledger.domain.catalogue import SignedAggregate

__all__ = ["AggregateCache", "Tail"]

Tail = Callable[[int, int], Sequence[tuple[int, UUID]]]
"""``tail(after, limit)``: ``(position, subject)`` of up to ``limit`` events stored after
position ``after``, in log order."""

CATCH_UP_PAGE = 1000
"""Events read per catch-up query; when more have been stored since, the cache starts over."""


class AggregateCache:
    """Subjects' aggregates (``None``: no such subject) as of :attr:`position`, least
    recently used first out beyond ``size``."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.position: int | None = None
        self._aggregates: OrderedDict[UUID, SignedAggregate | None] = OrderedDict()

    def catch_up(self, tail: Tail, head: Callable[[], int]) -> None:
        """Forget every subject with an event stored after :attr:`position`."""
        if self.position is None or not self._aggregates:
            self._aggregates.clear()
            self.position = head()
            return
        found = tail(self.position, CATCH_UP_PAGE)
        if len(found) >= CATCH_UP_PAGE:
            self._aggregates.clear()
            self.position = head()
            return
        for position, subject in found:
            self._aggregates.pop(subject, None)
            self.position = position

    def get(
        self, subject: UUID, load: Callable[[UUID], SignedAggregate | None]
    ) -> SignedAggregate | None:
        """The cached aggregate of ``subject``, else ``load(subject)`` (then cached)."""
        if subject in self._aggregates:
            self._aggregates.move_to_end(subject)
            return self._aggregates[subject]
        found = load(subject)
        self.put(subject, found)
        return found

    def put(self, subject: UUID, aggregate: SignedAggregate | None) -> None:
        """Keep ``aggregate`` as the current state of ``subject``."""
        self._aggregates[subject] = aggregate
        self._aggregates.move_to_end(subject)
        while len(self._aggregates) > self.size:
            self._aggregates.popitem(last=False)

    def forget(self, subjects: Iterable[UUID]) -> None:
        """Drop ``subjects`` (an append that changed them in place failed)."""
        for subject in subjects:
            self._aggregates.pop(subject, None)

    def stored(self, positions: Sequence[int]) -> None:
        """This process stored events at ``positions``; when they directly follow
        :attr:`position`, nobody else wrote in between and the cache stays caught up."""
        if self.position is not None and list(positions) == list(
            range(self.position + 1, self.position + 1 + len(positions))
        ):
            self.position = positions[-1]
