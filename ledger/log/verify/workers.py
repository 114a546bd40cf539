"""The worker pool that checks rows in parallel, in log order."""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from typing import Any

from ledger.log.verify.rows import (
    EventSql,
    RangeReader,
    RowContext,
    RowSource,
    _check_row,
    _Opener,
)
from ledger.runtime import end_with_parent

# ------------------------------------------------------------------- worker pool

_worker_context = RowContext({}, "", {})
_worker_source: RowSource | None = None
_worker_reader: RangeReader | None = None

# Workers read, decode, hash and verify on connections of their own: they never touch
# the inherited database connections or locks, so forking (fast, and no re-import of
# ``__main__``) is safe.
_START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def _init_worker(context: RowContext, source: RowSource, parent: int) -> None:
    global _worker_context, _worker_source
    end_with_parent(parent)
    _worker_context, _worker_source = context, source
    gc.disable()  # see ledger.runtime.collector_paused; a worker lives for one pass


def _check_range(after: int, until: int) -> list[tuple[Any, ...]]:
    global _worker_reader
    if _worker_reader is None:
        assert _worker_source is not None
        # Opened by the first range, so that a failure reaches the caller as its error.
        _worker_reader = RangeReader(_worker_source)
    context, opener = _worker_context, _Opener({})
    return [_check_row(row, context, opener) for row in _worker_reader.between(after, until)]


class Runner:
    """Checks rows a range of positions at a time, in order: inline, or in worker
    processes that read their ranges themselves.

    Chunks come back as plain tuples in :class:`Checked` order, which pickle faster.
    """

    def __init__(self, workers: int, context: RowContext, events: EventSql) -> None:
        self.context = context
        self.events = events
        self.pool: Any = None
        self.window = 2 * workers + 2
        if workers > 1:
            mp = multiprocessing.get_context(_START_METHOD)
            self.pool = mp.Pool(
                workers, initializer=_init_worker, initargs=(context, events.source(), os.getpid())
            )

    def run(self, ranges: Iterator[tuple[int, int]]) -> Iterator[list[tuple[Any, ...]]]:
        """The checked rows of each range ``(after, until]``, range by range."""
        if self.pool is None:
            context, opener, between = self.context, _Opener(), self.events.between
            for after, until in ranges:
                yield [_check_row(row, context, opener) for row in between(after, until)]
            return
        pending: deque[Any] = deque()
        for bounds in ranges:
            pending.append(self.pool.apply_async(_check_range, bounds))
            # A bounded window: ranges are handed out only a little ahead of the results.
            if len(pending) >= self.window:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
