"""The worker pool that checks rows in parallel, in log order."""

from __future__ import annotations

import gc
import multiprocessing
from collections import deque
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ledger.log.verify.rows import Row, RowContext, _check_row, _Opener

if TYPE_CHECKING:
    pass


# ------------------------------------------------------------------- worker pool

_worker_context = RowContext({}, "", {})

# Workers only decode, hash and verify: they never touch the inherited database
# connections or locks, so forking (fast, and no re-import of ``__main__``) is safe.
_START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def _init_worker(context: RowContext) -> None:
    global _worker_context
    _worker_context = context
    gc.disable()  # see ledger.runtime.collector_paused; a worker lives for one pass


def _check_in_worker(rows: Sequence[Row]) -> list[tuple[Any, ...]]:
    context, opener = _worker_context, _Opener()
    return [_check_row(row, context, opener) for row in rows]


class Runner:
    """Checks rows a chunk at a time, in order: inline, or in worker processes.

    Chunks come back as plain tuples in :class:`Checked` order, which pickle faster.
    """

    def __init__(self, workers: int, context: RowContext) -> None:
        self.context = context
        self.pool: Any = None
        self.window = 2 * workers + 2
        if workers > 1:
            mp = multiprocessing.get_context(_START_METHOD)
            self.pool = mp.Pool(workers, initializer=_init_worker, initargs=(context,))

    def run(self, chunks: Iterator[list[Row]]) -> Iterator[list[tuple[Any, ...]]]:
        if self.pool is None:
            context, opener = self.context, _Opener()
            for chunk in chunks:
                yield [_check_row(row, context, opener) for row in chunk]
            return
        pending: deque[Any] = deque()
        for chunk in chunks:
            pending.append(self.pool.apply_async(_check_in_worker, (chunk,)))
            # A bounded window: rows are read only a little ahead of the workers.
            if len(pending) >= self.window:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
