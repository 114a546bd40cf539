"""Valid time: when a version of terms or limits is in force in the plant, as opposed to
when the ledger learnt of it (its recorded time: position and ``recorded_at``).

Versions replace each other in turn: each is in force from its ``effective_from`` until
the next version's (exclusive), the last until the end of its subject (a termination, a
retirement) or for ever. Times are RFC 3339 UTC text with milliseconds, which order as
text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Interval", "successive"]


@dataclass(frozen=True, slots=True)
class Interval:
    """``[start, end)`` in valid time; ``end`` is ``None`` while open."""

    start: str
    end: str | None = None

    def covers(self, at: str) -> bool:
        """True when ``at`` lies in the interval."""
        return self.start <= at and (self.end is None or at < self.end)

    def overlaps(self, start: str, end: str) -> bool:
        """True when the interval meets ``[start, end]`` (both inclusive)."""
        return self.start <= end and (self.end is None or self.end > start)


def successive(starts: Mapping[int, str], ended_at: str | None = None) -> dict[int, Interval]:
    """The valid interval of each version (by number) that replaced the one before it.

    A version whose successor takes effect no later than it does was never in force; it
    gets an empty interval.
    """
    numbers = sorted(starts)
    intervals: dict[int, Interval] = {}
    for index, number in enumerate(numbers):
        start = starts[number]
        end = starts[numbers[index + 1]] if index + 1 < len(numbers) else ended_at
        intervals[number] = Interval(start, end if end is None or end > start else start)
    return intervals
