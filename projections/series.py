"""Continuous data by tag and time range: the data view finds the chunks, the log holds them.

``proj_chunks`` names the chunks of the tag that overlap the range (index on batch, tag
and start) and where each lives in the log: the position of the event that carries it
and its place in that event's ``series`` (:class:`Place`). No view copies a chunk's
content: the events are read in one query (:meth:`EventLog.read_at`) and each chunk
decoded, and the points come back column-wise: ``timestamps``, ``values``, ``quality``.

:func:`places` (a view query) and :func:`read_points` (a log read) are apart so that a
caller holding a view connection can give it back before reading the log.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, Protocol

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ledger.domain.formats import stored_points
from projections.data import CHUNKS
from projections.temporal import as_of, current

if TYPE_CHECKING:
    from ledger.application import Recorded

__all__ = ["EventLog", "Place", "Series", "decode_points", "places", "read_points", "series"]


class EventLog(Protocol):
    """Where chunks are read from: the ledger's events by log position."""

    def read_at(self, positions: Sequence[int]) -> Mapping[int, Recorded]:
        """The events at ``positions`` (one query), by position."""
        ...


class Place(NamedTuple):
    """Where a chunk lives: ``payload["series"][series_index]["chunks"][chunk_index]`` of
    the event at log ``position``."""

    position: int
    series_index: int
    chunk_index: int


@dataclass
class Series:
    """Points of one tag, column-wise, in time order."""

    timestamps: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    quality: list[int] = field(default_factory=list)


def decode_points(content: str) -> Series:
    """The points of a chunk's ``content`` (base64 of gzip CSV ``timestamp,value,quality``).

    The ledger checked every chunk before storing it, so this reads without re-checking.
    """
    return Series(*stored_points(content))


def series(
    conn: Connection,
    log: EventLog,
    batch: str,
    tag: str,
    start: str | None = None,
    end: str | None = None,
    position: int | None = None,
    *,
    data_class: str | None = None,
) -> Series:
    """The current (or, with ``position``, then-current) points of ``tag`` (of
    ``data_class``, when given) in ``[start, end]`` (RFC 3339 UTC with milliseconds, as
    the chunks store them): :func:`places` read on ``conn``, then :func:`read_points`."""
    found = places(conn, batch, tag, start, end, position, data_class=data_class)
    return read_points(log, found, start, end)


def places(
    conn: Connection,
    batch: str,
    tag: str,
    start: str | None = None,
    end: str | None = None,
    position: int | None = None,
    *,
    data_class: str | None = None,
) -> list[Place]:
    """Where the chunks of :func:`series` live in the log, in time order."""
    when = current(CHUNKS) if position is None else as_of(CHUNKS, position)
    query = select(CHUNKS.c.position, CHUNKS.c.series_index, CHUNKS.c.chunk_index).where(
        CHUNKS.c.batch == batch, CHUNKS.c.tag == tag, CHUNKS.c.status == "current", when
    )
    if data_class is not None:
        query = query.where(CHUNKS.c.data_class == data_class)
    if end is not None:
        query = query.where(CHUNKS.c.t_start <= end)
    if start is not None:
        query = query.where(CHUNKS.c.t_end >= start)
    return [Place(*row) for row in conn.execute(query.order_by(CHUNKS.c.t_start))]


def read_points(
    log: EventLog, found: Sequence[Place], start: str | None = None, end: str | None = None
) -> Series:
    """The points in ``[start, end]`` of the chunks at ``found``, read from ``log`` in one
    query, in the order given."""
    events = log.read_at(sorted({place.position for place in found}))
    result = Series()
    for place in found:
        payload = events[place.position].event.envelope["payload"]
        chunk = payload["series"][place.series_index]["chunks"][place.chunk_index]
        _append_range(result, decode_points(chunk["content"]), start, end)
    return result


def _append_range(into: Series, points: Series, start: str | None, end: str | None) -> None:
    # A stored chunk's timestamps strictly increase and, fixed-width UTC, order as text
    # (:func:`ledger.domain.formats.read_chunk`): the points in range are one slice.
    stamps = points.timestamps
    first = 0 if start is None else bisect_left(stamps, start)
    last = len(stamps) if end is None else bisect_right(stamps, end)
    into.timestamps.extend(stamps[first:last])
    into.values.extend(points.values[first:last])
    into.quality.extend(points.quality[first:last])
