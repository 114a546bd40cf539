"""Valid time: when a version of terms or limits is in force in the plant, as opposed to
when the ledger learnt of it (its recorded time: position and ``recorded_at``).

Terms and limits take effect when the event approving them is recorded, unless it names an
earlier ``effective_from`` (history migrated from paper, a late approval): then it needs a
reason, may not precede what it builds on, and is shown as retroactive
(:func:`effective_time`).

Versions replace each other in turn: each is in force from its ``effective_from`` until the
next version's (exclusive), the last until the end of its subject (a termination, a
retirement) or for ever. Times are RFC 3339 UTC text with milliseconds, which order as
text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ledger.errors import ValidationFailed
from ledger.timeutil import format_utc, parse_utc

__all__ = ["Interval", "effective_from", "effective_time", "successive"]

FIELD = "payload.effective_from"


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


def effective_time(
    payload: Mapping[str, Any],
    now: datetime,
    *,
    skew: timedelta,
    reason: str | None,
    not_before: str | None = None,
) -> datetime:
    """When an approving event's terms or limits take effect (checked; see the module)."""
    raw = payload.get("effective_from")
    if raw is None:
        return now
    when = parse_utc(raw, field=FIELD)
    if when > now + skew:
        raise ValidationFailed(
            f"effective_from {format_utc(when)} is in the future: approve it when it takes effect",
            field=FIELD,
        )
    if not_before is not None and when < parse_utc(not_before, field=FIELD):
        raise ValidationFailed(
            f"effective_from {format_utc(when)} is before {not_before}, when what it revises "
            "took effect",
            field=FIELD,
        )
    if when < now and not reason:
        raise ValidationFailed(
            "an effective_from in the past makes the change retroactive: give a reason "
            "(e.g. history migrated from the paper record)",
            field="reason",
        )
    return when


def effective_from(payload: Mapping[str, Any], recorded_at: str) -> str:
    """The valid time a stored approving event took effect from (its own, or its record)."""
    raw = payload.get("effective_from")
    return recorded_at if raw is None else format_utc(parse_utc(raw, field=FIELD))
