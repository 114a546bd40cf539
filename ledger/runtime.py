"""Process settings for long passes over the whole log (verification, rebuilds), for
long-running servers, and for the worker processes that share a pass's work."""

from __future__ import annotations

import gc
import multiprocessing
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.context import BaseContext

__all__ = ["collector_paused", "settle_heap", "worker_context"]

_METHODS = multiprocessing.get_all_start_methods()


def worker_context() -> BaseContext:
    """How to start worker processes from here.

    By fork (they start at once) unless the caller runs other threads (a server): a fork
    copies locks those threads may hold, so workers then start from a clean server
    process, which imports the caller's ``__main__`` first (a script that starts workers
    must guard its entry point: ``if __name__ == "__main__"``)."""
    if threading.active_count() == 1 and "fork" in _METHODS:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in _METHODS else "spawn")


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a pass runs.

    A pass over the log makes millions of short-lived containers (decoded events, rows)
    that hold no reference cycles: reference counting frees them, and the collector
    would only walk the live ones again and again as new ones are made.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def settle_heap() -> None:
    """Collect once, then keep what is alive out of every later collection.

    A server's start-up builds a large, long-lived heap (the schema, the catalogue, the
    views' tables): without this, each full collection a large answer triggers walks all of
    it again. Objects frozen are still freed when their last reference goes.
    """
    gc.collect()
    gc.freeze()
