"""Times as the views store them: RFC 3339 UTC text with milliseconds and ``Z``.

One spelling per instant lets the views compare and index times as text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from ledger.timeutil import format_utc, parse_utc

__all__ = ["as_text", "plus_hours", "utc", "utc_time"]

_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def utc(text: str) -> str:
    """``text`` in the views' spelling (already-canonical text is returned as is)."""
    if _CANONICAL.fullmatch(text):
        return text
    return format_utc(parse_utc(text, field="time"))


def as_text(when: datetime | str) -> str:
    """A query time as the views store times (text is taken as given)."""
    return when if isinstance(when, str) else format_utc(when)


def utc_time(text: str) -> datetime:
    """The instant a stored time names."""
    if _CANONICAL.fullmatch(text):
        # The canonical spelling parses exactly with fromisoformat, far faster than strptime.
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    return parse_utc(text, field="time")


def plus_hours(text: str, hours: int) -> str:
    """The stored time ``hours`` after ``text``."""
    return format_utc(utc_time(text) + timedelta(hours=hours))
