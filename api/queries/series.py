"""Continuous series column-wise, and their downsampling into time buckets.

Buckets are aligned on the UTC epoch (``every`` = 5 min gives buckets starting at :00,
:05, ...), so the same data downsampled twice gives the same buckets. Each bucket keeps
its start, the mean, min and max of its values, the number of points and the worst
(lowest) quality code among them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ledger.errors import ValidationFailed
from ledger.timeutil import format_utc

__all__ = ["Buckets", "Columns", "downsample", "parse_every"]

_EVERY = re.compile(r"^(\d{1,9})(ms|s|m|h|d)$")
_ISO = re.compile(r"^P(?:(\d{1,4})D)?(?:T(?:(\d{1,6})H)?(?:(\d{1,7})M)?(?:(\d{1,9})S)?)?$")
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Columns:
    """Raw points, column-wise, in time order."""

    timestamps: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    quality: list[int] = field(default_factory=list)


@dataclass
class Buckets:
    """Downsampled points: one entry per non-empty bucket."""

    timestamps: list[str] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    min: list[float] = field(default_factory=list)
    max: list[float] = field(default_factory=list)
    count: list[int] = field(default_factory=list)
    quality: list[int] = field(default_factory=list)


def parse_every(text: str) -> int:
    """A bucket width in milliseconds, from ``30s``, ``5m``, ``1h``, ``1d`` or ISO 8601
    (``PT5M``, ``P1DT12H``)."""
    short = _EVERY.match(text)
    if short is not None:
        millis = int(short[1]) * _UNITS[short[2]]
    else:
        iso = _ISO.match(text)
        if iso is None or text in ("P", "PT") or text.endswith("T"):
            raise ValidationFailed(
                "expected a duration such as 30s, 5m, 1h, 1d or PT5M", field="every"
            )
        days, hours, minutes, seconds = (int(part or 0) for part in iso.groups())
        millis = (((days * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000
    if millis < 1000:
        raise ValidationFailed("buckets are at least one second wide", field="every")
    return millis


def _millis(stamp: str) -> int:
    # Canonical stamps (2024-03-01T08:00:00.000Z) parse exactly with fromisoformat.
    moment = datetime.fromisoformat(stamp[:-1]).replace(tzinfo=UTC)
    return (moment - _EPOCH) // _ONE_MS


_ONE_MS = datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=UTC) - _EPOCH


def _stamp(millis: int) -> str:
    return format_utc(datetime.fromtimestamp(millis / 1000, UTC))


def downsample(points: Columns, every: int) -> Buckets:
    """``points`` in buckets ``every`` milliseconds wide."""
    result = Buckets()
    start = None
    total = 0.0
    low = high = 0.0
    worst = n = 0
    for stamp, value, quality in zip(points.timestamps, points.values, points.quality, strict=True):
        bucket = _millis(stamp) // every * every
        if bucket != start:
            if start is not None:
                _close(result, start, total, low, high, n, worst)
            start, total, low, high, worst, n = bucket, 0.0, value, value, quality, 0
        total += value
        n += 1
        low = min(low, value)
        high = max(high, value)
        worst = min(worst, quality)
    if start is not None:
        _close(result, start, total, low, high, n, worst)
    return result


def _close(
    into: Buckets, start: int, total: float, low: float, high: float, n: int, worst: int
) -> None:
    into.timestamps.append(_stamp(start))
    into.mean.append(total / n)
    into.min.append(low)
    into.max.append(high)
    into.count.append(n)
    into.quality.append(worst)
