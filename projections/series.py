"""Continuous data by tag and time range, read chunk by chunk from the data view.

Only the chunks of the tag that overlap the range are read (index on batch, tag and
start), and they come back column-wise: ``timestamps``, ``values``, ``quality``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ledger.domain.formats import stored_points
from projections.data import CHUNK_CONTENT, CHUNKS
from projections.temporal import as_of, current

__all__ = ["Series", "decode_points", "series"]


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
    the chunks store them)."""
    when = current(CHUNKS) if position is None else as_of(CHUNKS, position)
    query = select(CHUNKS.c.sha256).where(
        CHUNKS.c.batch == batch, CHUNKS.c.tag == tag, CHUNKS.c.status == "current", when
    )
    if data_class is not None:
        query = query.where(CHUNKS.c.data_class == data_class)
    if end is not None:
        query = query.where(CHUNKS.c.t_start <= end)
    if start is not None:
        query = query.where(CHUNKS.c.t_end >= start)
    digests = [row[0] for row in conn.execute(query.order_by(CHUNKS.c.t_start))]
    result = Series()
    for digest in digests:
        content = conn.execute(
            select(CHUNK_CONTENT.c.content).where(
                CHUNK_CONTENT.c.batch == batch, CHUNK_CONTENT.c.sha256 == digest
            )
        ).scalar_one()
        _append_range(result, decode_points(content), start, end)
    return result


def _append_range(into: Series, points: Series, start: str | None, end: str | None) -> None:
    for stamp, value, quality in zip(points.timestamps, points.values, points.quality, strict=True):
        if (start is None or stamp >= start) and (end is None or stamp <= end):
            into.timestamps.append(stamp)
            into.values.append(value)
            into.quality.append(quality)
