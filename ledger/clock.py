"""The one clock: every place that reads the time is given a :class:`Clock`.

Production code uses :data:`SYSTEM`; tests give a :class:`FakeClock` and move it, instead of
sleeping until a grant expires or a later millisecond comes. Times are aware UTC datetimes;
the ledger writes them with milliseconds (:func:`ledger.timeutil.format_utc`).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["SYSTEM", "Clock", "FakeClock", "SystemClock"]


class Clock(Protocol):
    """A source of the current time."""

    def now(self) -> datetime:
        """The current time, aware, in UTC."""
        ...


class SystemClock:
    """The machine's clock, to the millisecond (the resolution the ledger stores)."""

    def now(self) -> datetime:
        """The current time, aware, in UTC."""
        now = datetime.now(UTC)
        return now.replace(microsecond=(now.microsecond // 1000) * 1000)


SYSTEM: Clock = SystemClock()
"""The clock of every process that is not given another."""


class FakeClock:
    """A clock tests move forward instead of sleeping (thread-safe).

    Standing still by default; ``ticking=True`` lets it run with the machine's clock as
    well (every reading its own instant, as a served ledger needs), ahead by however far
    it was moved.
    """

    def __init__(self, start: datetime | None = None, *, ticking: bool = False) -> None:
        self._start = (start or SYSTEM.now()).astimezone(UTC)
        self._since = time.monotonic() if ticking else None
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The time it shows."""
        with self._lock:
            elapsed = 0.0 if self._since is None else time.monotonic() - self._since
            now = self._start + self._offset + timedelta(seconds=elapsed)
        return now.replace(microsecond=(now.microsecond // 1000) * 1000)

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta``; the new time."""
        if delta < timedelta(0):
            raise ValueError("a clock only moves forward")
        with self._lock:
            self._offset += delta
        return self.now()
