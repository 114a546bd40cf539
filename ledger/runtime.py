"""Process settings for long passes over the whole log (verification, rebuilds), for
long-running servers, and for the worker processes that share a pass's work."""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing.context import BaseContext

__all__ = [
    "collector_paused",
    "end_with_parent",
    "forks",
    "settle_heap",
    "worker_context",
    "worker_pool",
]

_METHODS = multiprocessing.get_all_start_methods()
_PR_SET_PDEATHSIG = 1  # prctl(2)


def end_with_parent(parent: int) -> None:
    """Make this worker process end when the one that started it ends (on Linux).

    A forked worker holds copies of its parent's sockets: outliving a parent killed in
    the middle of a transaction, it would keep that transaction's database connection
    open, and its locks held, until the worker ended. ``parent`` is the starting
    process's pid, checked after the signal is set in case it ended before."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        os._exit(1)


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes, started as :func:`worker_context` says, each ending
    with this process (:func:`end_with_parent`)."""
    return ProcessPoolExecutor(
        workers, mp_context=worker_context(), initializer=end_with_parent, initargs=(os.getpid(),)
    )


def forks() -> bool:
    """Whether worker processes started now start by fork: no other thread runs."""
    return threading.active_count() == 1 and "fork" in _METHODS


def worker_context() -> BaseContext:
    """How to start worker processes from here.

    By fork (they start at once) unless the caller runs other threads (a server): a fork
    copies locks those threads may hold, so workers then start from a clean server
    process, which imports the caller's ``__main__`` first (a script that starts workers
    must guard its entry point: ``if __name__ == "__main__"``)."""
    if forks():
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
