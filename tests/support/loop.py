"""Running a coroutine from a synchronous test, whatever else the worker process holds."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["run"]

_T = TypeVar("_T")


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run(coroutine)`` in a thread of its own. The browser tests' Playwright
    keeps an event loop running in the main thread for the rest of the session, and
    ``asyncio.run`` refuses to start inside a running loop: which tests a worker runs
    after the browser's depends on scheduling, so every test runs its coroutines apart."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
