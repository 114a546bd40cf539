"""Per-batch summaries of a continuous tag: count, mean, min, max and time outside limits.

A tag's points reach the ledger in chunks (gzip CSV ``timestamp,value,quality``). Each chunk
is summarised once, when it arrives (:func:`chunk_stats`), against the limits version in
force at its batch's valid time; a batch's summary of the tag combines the stats of the
tag's current chunks (:func:`combine`), so a correction that supersedes a chunk only drops
that chunk's stats and adds those of its replacement.

* ``count``: the number of points, whatever their quality code.
* ``mean``: the correctly rounded sum (``math.fsum``) of the chunks' correctly rounded sums
  of their values, divided by ``count``. ``fsum`` does not depend on the order of its
  terms, so the mean depends only on which chunks are current.
* ``min`` and ``max``: the smallest and largest value.
* ``time_outside_limits_ms``: each point holds until the next point of the tag (the last
  point holds for no time); the time the held values lie beyond the **action** limits of
  the version (:meth:`ledger.domain.limits.LimitsVersion.evaluate`), in milliseconds.
  Between chunks, the last point of one holds until the first point of the next (no time
  when they overlap). ``None`` when no limits were in force at the batch's valid time, or
  when the tag's chunks were judged against different versions.

Floats are written as text by :func:`decimal_text`: the shortest decimal that reads back
as the same double, without an exponent (``7.05``, ``0.00001``, ``100.0``).
"""

from __future__ import annotations

import base64
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ledger.domain.limits import ACTION, LimitsVersion

__all__ = ["STATISTICS", "ChunkStats", "Summary", "chunk_stats", "combine", "decimal_text"]

STATISTICS = ("MEAN", "MIN", "MAX", "TIME_OUTSIDE_LIMITS")
"""The statistics a continuous parameter is charted by, one per batch."""

_STAMP = 24  # 2024-03-01T08:00:00.000Z
_NEWLINE, _ZERO = 10, 48
_GZIP = 31  # zlib's window bits for a gzip stream


@dataclass(frozen=True, slots=True)
class ChunkStats:
    """What a batch summary needs of one chunk (JSON-able: a view keeps it as state)."""

    sha256: str
    first: str
    last: str
    first_ms: int
    last_ms: int
    count: int
    total: float
    low: float
    high: float
    limits_version: int | None
    outside_ms: int | None
    last_outside: bool | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> ChunkStats:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Summary:
    """A batch's summary of one tag, over its current chunks."""

    first: str
    last: str
    count: int
    mean: str
    min: str
    max: str
    time_outside_limits_ms: int | None
    limits_version: int | None
    chunks: tuple[str, ...]
    """The SHA-256 of each chunk summarised, sorted."""


def decimal_text(number: float) -> str:
    """The shortest decimal reading back as ``number``, without an exponent."""
    return format(Decimal(repr(number)), "f")


def _epoch_ms(buf: NDArray[np.uint8], starts: NDArray[np.int64]) -> NDArray[np.int64]:
    """Milliseconds since the epoch of the fixed-width stamps starting at ``starts``."""

    def digits(offset: int, width: int) -> NDArray[np.int64]:
        value = np.zeros(len(starts), dtype=np.int64)
        for place in range(width):
            value = value * 10 + (buf[starts + offset + place].astype(np.int64) - _ZERO)
        return value

    year, month, day = digits(0, 4), digits(5, 2), digits(8, 2)
    # Days from the civil date (H. Hinnant's algorithm), so no stamp goes through Python.
    year = year - (month <= 2)
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    seconds = digits(11, 2) * 3600 + digits(14, 2) * 60 + digits(17, 2)
    millis: NDArray[np.int64] = (days * 86400 + seconds) * 1000 + digits(20, 3)
    return millis


def _starts(buf: NDArray[np.uint8]) -> NDArray[np.int64]:
    """Where each line of the chunk's text starts."""
    ends = np.flatnonzero(buf == _NEWLINE)
    starts = np.empty(len(ends), dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    return starts


def _bounds(version: LimitsVersion) -> tuple[float | None, float | None]:
    low, high = version.action_low, version.action_high
    return (
        None if low is None else float(Decimal(low)),
        None if high is None else float(Decimal(high)),
    )


def _surely_within(version: LimitsVersion, low: float, high: float) -> bool:
    """Every value strictly inside the action limits: decimals keep their order as floats,
    so a float strictly inside a bound is a decimal strictly inside it."""
    lower, upper = _bounds(version)
    return (lower is None or low > lower) and (upper is None or high < upper)


def _outside(
    raw: bytes, starts: NDArray[np.int64], values: NDArray[Any], version: LimitsVersion
) -> NDArray[np.bool_]:
    """Which values lie beyond the version's action limits; a float equal to a bound is
    judged by the exact rule (:meth:`LimitsVersion.evaluate`) on its text."""
    low, high = _bounds(version)
    outside = np.zeros(len(values), dtype=bool)
    ties = np.zeros(len(values), dtype=bool)
    if low is not None:
        outside |= values < low
        ties |= values == low
    if high is not None:
        outside |= values > high
        ties |= values == high
    for index in np.flatnonzero(ties):
        start = int(starts[index]) + _STAMP + 1
        text = raw[start : raw.index(b",", start)].decode()
        outside[index] = version.evaluate(text) == ACTION
    return outside


def _time_beyond(
    raw: bytes, buf: NDArray[np.uint8], numbers: list[float], version: LimitsVersion
) -> tuple[int, bool]:
    """Milliseconds the chunk's held values lie beyond the action limits, and whether its
    last point does."""
    if _surely_within(version, min(numbers), max(numbers)):
        return 0, False  # the usual chunk: no timestamp needs reading
    starts = _starts(buf)
    outside = _outside(raw, starts, np.array(numbers, dtype=np.float64), version)
    held = np.diff(_epoch_ms(buf, starts))
    return int(held[outside[:-1]].sum()), bool(outside[-1])


def chunk_stats(sha256: str, content: str, version: LimitsVersion | None) -> ChunkStats:
    """The stats of a stored chunk (checked by the ledger when it arrived), its points
    judged against ``version`` (``None``: no limits in force)."""
    raw = zlib.decompress(base64.b64decode(content), wbits=_GZIP)
    numbers = [float(line.split(b",", 2)[1]) for line in raw.splitlines()]
    buf = np.frombuffer(raw, dtype=np.uint8)
    last_start = raw.rfind(b"\n", 0, len(raw) - 1) + 1
    ends = _epoch_ms(buf, np.array([0, last_start], dtype=np.int64))
    outside_ms: int | None = None
    last_outside: bool | None = None
    if version is not None:
        outside_ms, last_outside = _time_beyond(raw, buf, numbers, version)
    return ChunkStats(
        sha256=sha256,
        first=raw[:_STAMP].decode(),
        last=raw[last_start : last_start + _STAMP].decode(),
        first_ms=int(ends[0]),
        last_ms=int(ends[1]),
        count=len(numbers),
        total=math.fsum(numbers),
        low=min(numbers),
        high=max(numbers),
        limits_version=None if version is None else version.version,
        outside_ms=outside_ms,
        last_outside=last_outside,
    )


def _time_outside(ordered: Sequence[ChunkStats]) -> tuple[int | None, int | None]:
    versions = {s.limits_version for s in ordered}
    if len(versions) != 1 or None in versions:
        return None, None
    total = 0
    for index, stats in enumerate(ordered):
        total += stats.outside_ms or 0
        following = ordered[index + 1] if index + 1 < len(ordered) else None
        if following is not None and stats.last_outside:
            total += max(0, following.first_ms - stats.last_ms)
    return total, versions.pop()


def combine(stats: Sequence[ChunkStats]) -> Summary:
    """The summary of a tag over these chunks (at least one)."""
    if not stats:
        raise ValueError("a summary needs at least one chunk")
    ordered = sorted(stats, key=lambda s: (s.first_ms, s.last_ms, s.sha256))
    count = sum(s.count for s in ordered)
    outside, version = _time_outside(ordered)
    return Summary(
        first=min(s.first for s in ordered),
        last=max(s.last for s in ordered),
        count=count,
        mean=decimal_text(math.fsum(s.total for s in ordered) / count),
        min=decimal_text(min(s.low for s in ordered)),
        max=decimal_text(max(s.high for s in ordered)),
        time_outside_limits_ms=outside,
        limits_version=version,
        chunks=tuple(sorted(s.sha256 for s in ordered)),
    )
