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

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ledger.cpv.values import STAMP as _STAMP
from ledger.cpv.values import chunk_values, exact_sum
from ledger.domain.formats import stored_text
from ledger.domain.limits import ACTION, LimitsVersion

__all__ = [
    "STATISTICS",
    "Aggregate",
    "ChunkStats",
    "Summary",
    "chunk_stats",
    "combine",
    "decimal_text",
]

STATISTICS = ("MEAN", "MIN", "MAX", "TIME_OUTSIDE_LIMITS")
"""The statistics a continuous parameter is charted by, one per batch."""

_NEWLINE, _ZERO = 10, 48
_FEW_STAMPS = 32  # below this, reading stamps one by one beats numpy's cost per call


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
        return {
            "sha256": self.sha256,
            "first": self.first,
            "last": self.last,
            "first_ms": self.first_ms,
            "last_ms": self.last_ms,
            "count": self.count,
            "total": self.total,
            "low": self.low,
            "high": self.high,
            "limits_version": self.limits_version,
            "outside_ms": self.outside_ms,
            "last_outside": self.last_outside,
        }

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


_PLACES = np.arange(_STAMP - 1, dtype=np.int64)  # the digits of a stamp, without its "Z"


def _days(
    year: NDArray[np.int64], month: NDArray[np.int64], day: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Days from 1970-01-01 to the civil dates (H. Hinnant's algorithm)."""
    year = year - (month <= 2)
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    days: NDArray[np.int64] = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return days


def _epoch_ms(buf: NDArray[np.uint8], starts: NDArray[np.int64]) -> NDArray[np.int64]:
    """Milliseconds since the epoch of the fixed-width stamps starting at ``starts``."""
    # One gather of every stamp's characters, so no stamp goes through Python.
    digits: NDArray[np.int64] = buf[starts[:, None] + _PLACES].astype(np.int64) - _ZERO

    def number(offset: int, width: int) -> NDArray[np.int64]:
        value: NDArray[np.int64] = digits[:, offset]
        for place in range(offset + 1, offset + width):
            value = value * 10 + digits[:, place]
        return value

    days = _days(number(0, 4), number(5, 2), number(8, 2))
    seconds = number(11, 2) * 3600 + number(14, 2) * 60 + number(17, 2)
    millis: NDArray[np.int64] = (days * 86400 + seconds) * 1000 + number(20, 3)
    return millis


def _stamp_ms(raw: bytes, start: int) -> int:
    """Milliseconds since the epoch of the one stamp starting at ``start`` (as
    :func:`_epoch_ms`, in plain ints: numpy's cost per call outweighs one stamp)."""
    stamp = raw[start : start + _STAMP]
    year, month, day = int(stamp[0:4]), int(stamp[5:7]), int(stamp[8:10])
    if month <= 2:
        year -= 1
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    seconds = int(stamp[11:13]) * 3600 + int(stamp[14:16]) * 60 + int(stamp[17:19])
    return (days * 86400 + seconds) * 1000 + int(stamp[20:23])


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
    raw: bytes, buf: NDArray[np.uint8], values: NDArray[np.float64], version: LimitsVersion
) -> tuple[int, bool]:
    """Milliseconds the chunk's held values lie beyond the action limits, and whether its
    last point does."""
    if _surely_within(version, float(values.min()), float(values.max())):
        return 0, False  # the usual chunk: no timestamp needs reading
    starts = _starts(buf)
    outside = _outside(raw, starts, values, version)
    # Only the points beyond the limits, and the points after them, need their time.
    beyond = np.flatnonzero(outside[:-1])
    if len(beyond) <= _FEW_STAMPS:
        held = sum(
            _stamp_ms(raw, int(starts[i + 1])) - _stamp_ms(raw, int(starts[i])) for i in beyond
        )
        return held, bool(outside[-1])
    times = _epoch_ms(buf, starts[beyond + 1]) - _epoch_ms(buf, starts[beyond])
    return int(times.sum()), bool(outside[-1])


def chunk_stats(sha256: str, content: str, version: LimitsVersion | None) -> ChunkStats:
    """The stats of a stored chunk (checked by the ledger when it arrived), its points
    judged against ``version`` (``None``: no limits in force)."""
    raw = stored_text(content)
    values = chunk_values(raw)
    buf = np.frombuffer(raw, dtype=np.uint8)
    last_start = raw.rfind(b"\n", 0, len(raw) - 1) + 1
    outside_ms: int | None = None
    last_outside: bool | None = None
    if version is not None:
        outside_ms, last_outside = _time_beyond(raw, buf, values, version)
    return ChunkStats(
        sha256=sha256,
        first=raw[:_STAMP].decode(),
        last=raw[last_start : last_start + _STAMP].decode(),
        first_ms=_stamp_ms(raw, 0),
        last_ms=_stamp_ms(raw, last_start),
        count=len(values),
        total=exact_sum(values),
        # The first of equal extremes, as min() and max() answer (0.0 and -0.0 are equal).
        low=float(values[values.argmin()]),
        high=float(values[values.argmax()]),
        limits_version=None if version is None else version.version,
        outside_ms=outside_ms,
        last_outside=last_outside,
    )


def _add_exactly(partials: list[float], term: float) -> None:
    """Add ``term`` to the non-overlapping ``partials`` whose exact sum is a running total
    (J. R. Shewchuk's algorithm, the one ``math.fsum`` uses): ``fsum(partials)`` stays the
    correctly rounded sum of every term added."""
    kept = 0
    for partial in partials:
        if abs(term) < abs(partial):
            term, partial = partial, term
        high = term + partial
        if not math.isfinite(high):
            raise OverflowError("intermediate overflow in fsum")  # as math.fsum raises
        low = partial - (high - term)
        if low:
            partials[kept] = low
            kept += 1
        term = high
    partials[kept:] = [term]


def _take(partials: list[float], specials: list[float], total: float) -> None:
    """Add a chunk's total; an infinite or NaN one is kept aside, for ``fsum`` to judge."""
    if math.isfinite(total):
        _add_exactly(partials, total)
    else:
        specials.append(total)


@dataclass(slots=True)
class Aggregate:
    """A running summary of a tag's chunks, taken in order of (first_ms, last_ms, sha256):
    a chunk that sorts after the last one taken is added without going over the others.

    The mean's total is kept as exact partial sums (and any non-finite totals), so it
    equals ``math.fsum`` of the chunks' totals in any order; ``tail`` is the sort key of
    the last chunk taken, and ``tail_outside`` whether its last point lies beyond the
    limits, for the time held across the gap to the next.
    """

    count: int
    partials: list[float]
    specials: list[float]
    low: float
    high: float
    first: str
    last: str
    limits_version: int | None
    mixed: bool
    outside_ms: int
    tail: tuple[int, int, str]
    tail_outside: bool | None

    @classmethod
    def start(cls, stats: ChunkStats) -> Aggregate:
        partials: list[float] = []
        specials: list[float] = []
        _take(partials, specials, stats.total)
        return cls(
            count=stats.count,
            partials=partials,
            specials=specials,
            low=stats.low,
            high=stats.high,
            first=stats.first,
            last=stats.last,
            limits_version=stats.limits_version,
            mixed=False,
            outside_ms=stats.outside_ms or 0,
            tail=_order(stats),
            tail_outside=stats.last_outside,
        )

    @classmethod
    def over(cls, stats: Sequence[ChunkStats]) -> Aggregate:
        """The aggregate of these chunks (at least one), in any order."""
        if not stats:
            raise ValueError("a summary needs at least one chunk")
        ordered = sorted(stats, key=_order)
        aggregate = cls.start(ordered[0])
        for following in ordered[1:]:
            aggregate.add(following)
        return aggregate

    def add(self, stats: ChunkStats) -> bool:
        """Take a chunk that sorts after every chunk taken; False (nothing changed) when
        it does not, so the caller combines the chunks again."""
        key = _order(stats)
        if key < self.tail:
            return False
        self.count += stats.count
        _take(self.partials, self.specials, stats.total)
        self.low = min(self.low, stats.low)
        self.high = max(self.high, stats.high)
        self.first = min(self.first, stats.first)
        self.last = max(self.last, stats.last)
        self.mixed = self.mixed or stats.limits_version != self.limits_version
        self.outside_ms += stats.outside_ms or 0
        if self.tail_outside:
            self.outside_ms += max(0, stats.first_ms - self.tail[1])
        self.tail, self.tail_outside = key, stats.last_outside
        return True

    def summary(self, chunks: Sequence[str]) -> Summary:
        """The summary, ``chunks`` being the SHA-256 of every chunk taken."""
        judged = not self.mixed and self.limits_version is not None
        return Summary(
            first=self.first,
            last=self.last,
            count=self.count,
            mean=decimal_text(math.fsum(self.partials + self.specials) / self.count),
            min=decimal_text(self.low),
            max=decimal_text(self.high),
            time_outside_limits_ms=self.outside_ms if judged else None,
            limits_version=self.limits_version if judged else None,
            chunks=tuple(sorted(chunks)),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "partials": self.partials,
            "specials": self.specials,
            "low": self.low,
            "high": self.high,
            "first": self.first,
            "last": self.last,
            "limits_version": self.limits_version,
            "mixed": self.mixed,
            "outside_ms": self.outside_ms,
            "tail": list(self.tail),
            "tail_outside": self.tail_outside,
        }

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Aggregate:
        first_ms, last_ms, digest = data["tail"]
        tail = (first_ms, last_ms, digest)
        return cls(**{**data, "partials": list(data["partials"]), "tail": tail})


def _order(stats: ChunkStats) -> tuple[int, int, str]:
    return (stats.first_ms, stats.last_ms, stats.sha256)


def combine(stats: Sequence[ChunkStats]) -> Summary:
    """The summary of a tag over these chunks (at least one)."""
    return Aggregate.over(stats).summary([s.sha256 for s in stats])
