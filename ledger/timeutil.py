"""RFC 3339 times: one parser for every time the ledger reads.

Inside an envelope a time is UTC, ``YYYY-MM-DDTHH:MM:SS[.fff...]Z`` (an explicit ``+00:00``
offset is accepted): :func:`parse_utc`. A signed record must say unambiguously when it was
signed, so naive times and non-UTC offsets are refused there, and a signed value is never
rewritten.

A time a person types (a command-line option, a query filter) may carry any offset and any
number of fraction digits down to the millisecond: :func:`parse_time` reads it,
:func:`canonical_time` gives the one spelling the ledger stores (``...48.000Z``). Clients
normalise with it *before* signing. Both share one grammar, so the same instant written
``2026-12-05T02:13:48Z``, ``...48.000Z``, ``...48+00:00`` or ``2026-12-05T04:13:48+02:00``
is the same time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

from ledger.clock import SYSTEM
from ledger.errors import ValidationFailed

__all__ = [
    "EXAMPLE_TIME",
    "canonical_time",
    "format_utc",
    "now_utc",
    "parse_time",
    "parse_utc",
    "require_aware",
]

EXAMPLE_TIME = "2026-03-03T09:15:00Z"
"""How a time is written, for messages."""

_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(?:(Z)|([+-])(\d{2}):(\d{2}))$",
    re.ASCII,
)
_CANONICAL_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z", re.ASCII)
"""What :func:`format_utc` writes, a subset of :data:`_RFC3339`."""


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
    if utc.year < 1000:
        # strftime writes such a year unpadded (``999-...``); keep that spelling.
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    # isoformat is C throughout; in UTC it always ends in "+00:00".
    return utc.isoformat(timespec="milliseconds")[:-6] + "Z"


def _parse(text: object, field: str, *, utc_only: bool) -> tuple[datetime, str]:
    """The instant ``text`` names (in UTC) and its fraction digits; the grammar of both
    parsers."""
    found = _RFC3339.match(text) if isinstance(text, str) else None
    if found is None and utc_only:
        raise ValidationFailed(f"expected an RFC 3339 UTC time such as {EXAMPLE_TIME}", field=field)
    if found is None:
        shown = repr(text)[:60] if isinstance(text, str) else "this value"
        raise ValidationFailed(
            f"{shown} is not a time: expected RFC 3339 with Z or an offset, such as "
            f"{EXAMPLE_TIME} or 2026-03-03T11:15:00.000+02:00",
            field=field,
        )
    day, clock, fraction, zulu, sign, hours, minutes = found.groups()
    if utc_only and not zulu and (hours, minutes) != ("00", "00"):
        raise ValidationFailed("time must be in UTC (suffix Z)", field=field)
    try:
        # The pattern fixed the shape; fromisoformat checks the calendar, as fast as C.
        parsed = datetime.fromisoformat(f"{day}T{clock}")
        offset = timedelta(hours=int(hours or 0), minutes=int(minutes or 0))
        zone = timezone(-offset if sign == "-" else offset)
    except ValueError as exc:
        raise ValidationFailed(f"not a valid date or time: {exc}", field=field) from exc
    micros = int((fraction + "000000")[:6]) if fraction else 0
    return parsed.replace(microsecond=micros, tzinfo=zone).astimezone(UTC), fraction or ""


def parse_utc(text: object, *, field: str) -> datetime:
    """Parse an RFC 3339 UTC time (``Z`` or ``+00:00``), as envelopes carry them; the error
    names ``field``."""
    if isinstance(text, str):
        return _parse_utc_text(text, field)
    return _parse(text, field, utc_only=True)[0]


@lru_cache(maxsize=4096)
def _parse_utc_text(text: str, field: str) -> datetime:
    # One append reads the same few times several times over (signed_at, a key's
    # added_at); a datetime is immutable, and a refusal is raised each time, not kept.
    if _CANONICAL_UTC.match(text):
        try:
            # Exactly the shape the ledger writes: fromisoformat reads it whole, in C.
            return datetime.fromisoformat(text)
        except ValueError:
            pass  # a calendar error: _parse words it
    return _parse(text, field, utc_only=True)[0]


def parse_time(text: object, *, field: str) -> datetime:
    """Parse a time a person wrote: RFC 3339 with ``Z`` or any offset, with or without a
    fraction of at most millisecond precision; the instant in UTC. The error names
    ``field`` (e.g. the option ``--started-at``). A time without an offset is refused: it
    would mean a different instant on every machine."""
    parsed, fraction = _parse(text, field, utc_only=False)
    if fraction[3:].strip("0"):
        raise ValidationFailed(
            f"{text} has sub-millisecond digits the ledger does not keep: round it to milliseconds",
            field=field,
        )
    return parsed


def canonical_time(text: object, *, field: str) -> str:
    """The one spelling the ledger stores for a time a person wrote (see
    :func:`parse_time`): ``2026-12-05T02:13:48.000Z``."""
    return format_utc(parse_time(text, field=field))
