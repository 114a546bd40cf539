"""Process settings for long passes over the whole log (verification, rebuilds)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]


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
