"""The append path's aggregate cache forgets exactly what the log says changed since its
position, starts over when too much changed, and moves its position only over its own
writes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, cast

from ledger.aggregate_cache import CATCH_UP_PAGE, AggregateCache
from ledger.domain.catalogue import SignedAggregate

A, B = uuid.uuid4(), uuid.uuid4()


class Log:
    """A log of (position, subject), as ``Storage.subjects_after`` reads it."""

    def __init__(self) -> None:
        self.entries: list[tuple[int, uuid.UUID]] = []

    def write(self, subject: uuid.UUID) -> int:
        self.entries.append((len(self.entries) + 1, subject))
        return len(self.entries)

    def tail(self, after: int, limit: int) -> Sequence[tuple[int, uuid.UUID]]:
        return [e for e in self.entries if e[0] > after][:limit]

    def head(self) -> int:
        return len(self.entries)


def _aggregate(name: str) -> SignedAggregate:
    return cast(SignedAggregate, cast(Any, name))


def _cached(cache: AggregateCache, subject: uuid.UUID) -> Any:
    return cache.get(subject, lambda s: _aggregate(f"loaded {s}"))


def test_a_subject_another_writer_changed_is_loaded_again() -> None:
    log, cache = Log(), AggregateCache()
    cache.catch_up(log.tail, log.head)
    cache.put(A, _aggregate("a v1"))
    cache.put(B, _aggregate("b v1"))
    log.write(A)  # another process
    cache.catch_up(log.tail, log.head)
    assert _cached(cache, A) == f"loaded {A}"
    assert _cached(cache, B) == "b v1"
    assert cache.position == 1


def test_too_many_changes_since_the_position_start_the_cache_over() -> None:
    log, cache = Log(), AggregateCache()
    cache.catch_up(log.tail, log.head)
    cache.put(B, _aggregate("b v1"))
    for _ in range(CATCH_UP_PAGE):
        log.write(A)
    cache.catch_up(log.tail, log.head)
    assert _cached(cache, B) == f"loaded {B}"
    assert cache.position == CATCH_UP_PAGE


def test_the_position_moves_over_its_own_writes_only_when_nobody_wrote_between() -> None:
    log, cache = Log(), AggregateCache()
    cache.catch_up(log.tail, log.head)
    cache.put(A, _aggregate("a v1"))
    cache.stored([log.write(A)])
    assert cache.position == 1
    log.write(B)  # another process, between
    cache.stored([log.write(A)])
    assert cache.position == 1  # the next catch-up reads positions 2 and 3
    cache.put(B, _aggregate("b stale"))
    cache.catch_up(log.tail, log.head)
    assert _cached(cache, B) == f"loaded {B}"


def test_a_failed_append_forgets_what_it_touched() -> None:
    cache = AggregateCache()
    cache.put(A, _aggregate("a changed in place"))
    cache.forget([A])
    assert _cached(cache, A) == f"loaded {A}"


def test_the_least_recently_used_leave_first() -> None:
    cache = AggregateCache(size=1)
    cache.put(A, _aggregate("a"))
    cache.put(B, _aggregate("b"))
    assert _cached(cache, A) == f"loaded {A}"
