"""RFC 3339 UTC times: the only form a time takes inside an envelope.

Times are written ``YYYY-MM-DDTHH:MM:SS[.fff...]Z``; an explicit ``+00:00`` offset is
accepted on input. Naive times (no offset) and non-UTC offsets are refused, because a
signed record must say unambiguously when it was signed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ledger.clock import SYSTEM
from ledger.errors import ValidationFailed

__all__ = ["format_utc", "now_utc", "parse_utc", "require_aware"]

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$", re.ASCII
)


def now_utc() -> datetime:
    """The system clock's time (:data:`ledger.clock.SYSTEM`): code that reads the time is
    given a clock instead; this serves scripts and tests."""
    return SYSTEM.now()


def require_aware(value: datetime, *, field: str) -> datetime:
    """Return ``value`` in UTC; refuse a naive datetime."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationFailed("naive datetime refused: give a UTC time", field=field)
    return value.astimezone(UTC)


def format_utc(value: datetime) -> str:
    """``2026-03-03T09:15:00.000Z`` (millisecond precision)."""
    utc = require_aware(value, field="datetime")
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_utc(text: object, *, field: str) -> datetime:
    """Parse an RFC 3339 UTC time; the error names ``field``."""
    if not isinstance(text, str) or not _RFC3339.match(text):
        raise ValidationFailed(
            "expected an RFC 3339 UTC time such as 2026-03-03T09:15:00Z", field=field
        )
    if not (text.endswith("Z") or text.endswith("+00:00") or text.endswith("-00:00")):
        raise ValidationFailed("time must be in UTC (suffix Z)", field=field)
    head, _, _ = text.rstrip("Z").partition("+")
    head = head[:-6] if head.endswith("-00:00") else head
    whole, _, fraction = head.partition(".")
    try:
        parsed = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValidationFailed(f"not a valid date or time: {exc}", field=field) from exc
    micros = int((fraction + "000000")[:6]) if fraction else 0
    return parsed.replace(microsecond=micros)
