"""Where resolver work runs: worker threads, a few per request.

Every blocking read of a request runs through :func:`in_thread`. Inside
:func:`request_threads` (each HTTP request and each websocket connection), a request's
reads share that request's own :class:`~anyio.CapacityLimiter`, so one expensive operation
queues behind itself and never occupies the threads that ``/healthz``, ``/checkpoint`` and
other requests run on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import anyio
import anyio.to_thread

__all__ = ["THREADS_PER_REQUEST", "in_thread", "request_threads"]

THREADS_PER_REQUEST = 4
"""Worker threads one request's reads may occupy at once."""

_T = TypeVar("_T")
_LIMITER: ContextVar[anyio.CapacityLimiter | None] = ContextVar("request_threads", default=None)


@contextmanager
def request_threads() -> Iterator[anyio.CapacityLimiter]:
    """Give the calls of :func:`in_thread` made within (and in tasks started within) their
    own limiter of :data:`THREADS_PER_REQUEST` threads."""
    limiter = anyio.CapacityLimiter(THREADS_PER_REQUEST)
    token = _LIMITER.set(limiter)
    try:
        yield limiter
    finally:
        _LIMITER.reset(token)


async def in_thread(fn: Callable[..., _T], *args: Any) -> _T:
    """Run blocking ``fn(*args)`` in a worker thread (the request's, when there is one)."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=_LIMITER.get())
