"""Chunks read by worker processes: for a replay, which reads every chunk of the log.

A page of a replay may hold thousands of chunks; each is inflated, its values read and
judged against its limits version (:func:`~ledger.cpv.summary.chunk_stats`)
independently of the others. Worker processes read them ahead, in the order asked, while
the caller goes on with the chunks already read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor

from ledger.cpv.summary import ChunkStats, chunk_stats
from ledger.domain.limits import LimitsVersion
from ledger.runtime import forks, worker_pool

__all__ = ["ChunkReaders", "Reading"]

Chunk = tuple[str, str, LimitsVersion | None]
"""A chunk's SHA-256, its stored content and the limits version to judge it against."""

_TASKS_PER_WORKER = 8  # small enough to start reading early, large enough to batch


def _read(chunks: Sequence[Chunk]) -> list[ChunkStats]:
    return [chunk_stats(sha256, content, version) for sha256, content, version in chunks]


class Reading:
    """The stats of the chunks asked, each waited for only when asked for."""

    def __init__(self, parts: list[tuple[Sequence[Chunk], Future[list[ChunkStats]]]]) -> None:
        self._where: dict[tuple[str, LimitsVersion | None], tuple[int, int]] = {}
        self._parts = [future for _, future in parts]
        for number, (chunks, _) in enumerate(parts):
            for offset, (sha256, _, version) in enumerate(chunks):
                self._where.setdefault((sha256, version), (number, offset))

    def get(self, sha256: str, version: LimitsVersion | None) -> ChunkStats | None:
        """The chunk's stats judged against ``version``; ``None`` if not asked so, or if
        its part failed (a worker lost, a chunk it could not read): the caller then reads
        it in process, and meets the same error there if the chunk is at fault."""
        where = self._where.get((sha256, version))
        if where is None:
            return None
        try:
            return self._parts[where[0]].result()[where[1]]
        except Exception:
            return None

    def cancel(self) -> None:
        for future in self._parts:
            future.cancel()


class ChunkReaders:
    """Worker processes (one per CPU by default), started on first use."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> ChunkReaders:
        """Start the workers now if they would start by fork, before the caller starts a
        thread of its own (after which they would start from a clean process, slower: see
        :func:`~ledger.runtime.worker_context`); else when first asked to read."""
        if not forks():
            return self
        try:
            self._started()
        except BrokenExecutor:
            self.close()  # read() tries again; what it cannot read is read in process
        return self

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = worker_pool(self.workers)
            self._pool.submit(os.getpid).result()  # the executor starts its workers here
        return self._pool

    def read(self, chunks: Sequence[Chunk]) -> Reading:
        """Start reading ``chunks``; the answer waits for each part when it is asked."""
        size = max(1, -(-len(chunks) // (_TASKS_PER_WORKER * self.workers)))
        parts = []
        try:
            pool = self._started()
            for at in range(0, len(chunks), size):
                part = chunks[at : at + size]
                parts.append((part, pool.submit(_read, part)))
        except BrokenExecutor:
            self.close()  # a worker was lost: the rest is read in process, new ones start
        return Reading(parts)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
