"""Process settings for long passes over the whole log (verification, rebuilds) and for
long-running servers."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused", "settle_heap"]


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
