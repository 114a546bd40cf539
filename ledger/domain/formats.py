"""The formats of batch data: identifiers, units, decimals, times, limits and the chunk codec.

One definition, used by the ledger's rules (:mod:`ledger.domain.batches`), the importers
(:mod:`clients.importers`) and the offline evidence verifier (:mod:`clients.bundle`), so
what passes one passes all. A continuous chunk is ``timestamp,value,quality`` CSV lines,
gzip-compressed and base64-encoded, carrying the SHA-256 of its uncompressed bytes;
:func:`decode_chunk` inflates no more than its :class:`ChunkBudget` allows, so a crafted
chunk (a gzip bomb) is refused before it is decompressed past the budget.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import re
import zlib
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import pybase64
from isal import isal_zlib

from ledger.domain.fields import Fields
from ledger.errors import LimitExceeded, ValidationFailed

__all__ = [
    "ACKNOWLEDGEABLE_KINDS",
    "BATCH_ID",
    "CHUNK_POINTS",
    "CLOCK_TOLERANCE",
    "DATA_CLASSES",
    "DECIMAL",
    "EVENT_KINDS",
    "GZIP_WBITS",
    "MANUAL_SOURCE",
    "MAX_DECOMPRESSED_BYTES",
    "MAX_RECORDS",
    "MAX_SERIES",
    "RECORD_ID",
    "REFERENCE_ID",
    "SEVERITIES",
    "TIMESTAMP",
    "UNIT",
    "ChunkBudget",
    "check_unit",
    "decode_chunk",
    "encode_chunk",
    "is_manual",
    "read_chunk",
    "stored_points",
    "stored_text",
]

GZIP_WBITS = 16 + zlib.MAX_WBITS
"""zlib's window bits for a chunk's content: a gzip stream, nothing else."""
DATA_CLASSES = ("continuous", "discrete", "event")
"""The classes named after their forms; an agreement may define others
(:mod:`ledger.domain.data_classes`)."""
EVENT_KINDS = ("deviation", "alarm", "oos", "oot", "di_incident", "other")
ACKNOWLEDGEABLE_KINDS = ("deviation", "oos", "oot")
SEVERITIES = ("minor", "major", "critical")
MANUAL_SOURCE = "manual"
"""The reserved ``source_system`` of values a person entered by hand: critical ones count
only once a second person verified them (:mod:`ledger.domain.verification`, R17)."""
CHUNK_POINTS = 10_000
"""Recommended points per continuous chunk (about a week of one-minute data)."""
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
"""Most uncompressed chunk bytes one submission may carry (a guard against gzip bombs)."""
MAX_RECORDS = 10_000
"""Most records (or superseded ids) one submission may carry."""
MAX_SERIES = 1_000
"""Most tags one continuous submission may carry."""
CLOCK_TOLERANCE = timedelta(minutes=5)
"""How far a time in the data may lead the ledger's clock: signer clocks run a little ahead."""

BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}\Z")
REFERENCE_ID = BATCH_ID
"""Change and CAPA numbers (e.g. CC-2026-014, CAPA-2026-003) are written like batch names."""
RECORD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}\Z")
UNIT = re.compile(r"^[!-~]{1,64}\Z")
TIMESTAMP = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z",
    re.ASCII,
)
"""A time as the ledger writes it: UTC, milliseconds, ``Z``."""
DECIMAL = re.compile(r"-?(?:0|[1-9]\d{0,17})(?:\.\d{1,12})?", re.ASCII)
"""A decimal string such as ``37.02`` (at most 18 integer and 12 fraction digits)."""
_QUALITY = re.compile(r"25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d", re.ASCII)
_LINE = re.compile(f"({TIMESTAMP.pattern}),({DECIMAL.pattern}),({_QUALITY.pattern})", re.ASCII)


def is_manual(source_system: object) -> bool:
    """True for a submission's ``source_system`` that says a person entered the values."""
    return source_system == MANUAL_SOURCE


def check_unit(value: object, *, field: str) -> str:
    """A UCUM unit code such as ``Cel``, ``[pH]``, ``10*6/mL``: printable ASCII, no spaces."""
    if not isinstance(value, str) or not UNIT.match(value):
        raise ValidationFailed(
            "expected a UCUM unit code such as Cel, [pH], % or 10*6/mL "
            "(printable ASCII without spaces, at most 64 characters)",
            field=field,
        )
    return value


def encode_chunk(points: Sequence[tuple[str, str, int]]) -> dict[str, Any]:
    """A chunk for ``points`` of ``(timestamp, value, quality)``, in time order.

    Timestamps are written as the ledger writes times (``2024-03-01T08:00:00.000Z``,
    milliseconds, ``Z``), values as decimal strings, quality as an integer 0..255.
    """
    if not points:
        raise ValueError("a chunk holds at least one point")
    data = "".join(f"{stamp},{value},{quality}\n" for stamp, value, quality in points).encode()
    return {
        "start": points[0][0],
        "end": points[-1][0],
        "count": len(points),
        "sha256": hashlib.sha256(data).hexdigest(),
        # mtime=0 makes the compressed bytes depend on the points alone.
        "content": base64.b64encode(gzip.compress(data, compresslevel=6, mtime=0)).decode(),
    }


def decode_chunk(chunk: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """The points of a chunk, after checking it as the ledger does (errors name ``chunk``)."""
    points: list[tuple[str, str, int]] = []
    read_chunk(Fields(chunk, "chunk"), ChunkBudget(MAX_DECOMPRESSED_BYTES), points)
    return points


def stored_text(content: str) -> bytes:
    """The CSV text of a stored chunk's ``content`` (checked when stored: not again)."""
    # ISA-L inflates the same gzip stream as zlib, about twice as fast; pybase64 decodes
    # the text with SIMD, twenty times faster than binascii (the content was checked as
    # strict base64 when stored, so both read the same bytes).
    return isal_zlib.decompress(pybase64.b64decode(content, validate=True), wbits=GZIP_WBITS)


def stored_points(content: str) -> tuple[list[str], list[str], list[int]]:
    """Timestamps, values and quality codes of a stored chunk's ``content``, column-wise.

    Only for chunks the ledger already checked (:func:`read_chunk`): it reads without
    checking again."""
    text = stored_text(content).decode()
    # Checked lines are ``stamp,value,quality`` each ending in "\n": three fields a line.
    fields = text.replace("\n", ",").split(",")
    fields.pop()  # after the last line's "\n"
    return fields[0::3], fields[1::3], list(map(int, fields[2::3]))


class ChunkBudget:
    """Uncompressed bytes a submission may still decompress."""

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining


def _canonical_time(chunk: Fields, name: str) -> str:
    value = chunk.raw(name)
    if not isinstance(value, str) or not TIMESTAMP.fullmatch(value):
        raise ValidationFailed(
            "expected a UTC time with milliseconds, e.g. 2024-03-01T08:00:00.000Z",
            field=chunk.field(name),
        )
    _check_date(value, chunk.field(name), "")
    return value


def _check_date(stamp: str, field: str, where: str) -> None:
    try:
        date.fromisoformat(stamp[:10])
    except ValueError:
        raise ValidationFailed(f"{where}{stamp[:10]} is not a calendar date", field=field) from None


def _decompress(content: object, field: str, budget: ChunkBudget) -> bytes:
    if not isinstance(content, str) or not content:
        raise ValidationFailed("expected base64 of gzip-compressed CSV", field=field)
    try:
        compressed = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed("content is not valid base64", field=field) from None
    inflater = zlib.decompressobj(wbits=GZIP_WBITS)
    try:
        data = inflater.decompress(compressed, budget.remaining + 1)
    except zlib.error as exc:
        raise ValidationFailed(f"content is not gzip data: {exc}", field=field) from None
    if len(data) > budget.remaining:
        raise LimitExceeded(
            f"chunks of one submission may hold at most {MAX_DECOMPRESSED_BYTES} uncompressed "
            "bytes: split the data over several submissions",
            field=field,
        )
    if not inflater.eof:
        raise ValidationFailed("the gzip stream is truncated", field=field)
    if inflater.unused_data:
        raise ValidationFailed("bytes follow the end of the gzip stream", field=field)
    budget.remaining -= len(data)
    return data


def _explain(line: str) -> str:
    if not line:
        return "empty line"
    parts = line.split(",")
    if len(parts) != 3:
        return f"expected timestamp,value,quality, found {len(parts)} fields"
    stamp, value, quality = (part[:40] for part in parts)
    if not TIMESTAMP.fullmatch(stamp):
        return f"timestamp {stamp!r} is not a UTC time with milliseconds (2024-03-01T08:00:00.000Z)"
    if not DECIMAL.fullmatch(value):
        return f"value {value!r} is not a decimal string such as 37.02"
    return f"quality {quality!r} is not an integer from 0 to 255"


def _scan(text: str, field: str, points: list[tuple[str, str, int]] | None) -> tuple[int, str, str]:
    """Check every line; return the count, first and last timestamp."""
    if not text:
        raise ValidationFailed("the chunk holds no points", field=field)
    lines = text.split("\n")
    if lines[-1]:
        raise ValidationFailed(f"line {len(lines)}: the last line must end with \\n", field=field)
    lines.pop()
    match = _LINE.fullmatch
    previous = ""
    day = ""
    for number, line in enumerate(lines, 1):
        found = match(line)
        if found is None:
            raise ValidationFailed(f"line {number}: {_explain(line)}", field=field)
        stamp = found[1]
        # Fixed-width UTC timestamps order as text, so no datetime is built per line.
        if stamp <= previous:
            raise ValidationFailed(
                f"line {number}: timestamp {stamp} is not after {previous}: "
                "timestamps must strictly increase",
                field=field,
            )
        if stamp[:10] != day:
            _check_date(stamp, field, f"line {number}: ")
            day = stamp[:10]
        previous = stamp
        if points is not None:
            points.append((stamp, found[2], int(found[3])))
    return len(lines), lines[0][:24], previous


def read_chunk(
    chunk: Fields, budget: ChunkBudget, points: list[tuple[str, str, int]] | None = None
) -> tuple[str, str, int, str]:
    """Check one chunk; return its start, end, count and SHA-256."""
    chunk.only("start", "end", "count", "sha256", "content")
    start = _canonical_time(chunk, "start")
    end = _canonical_time(chunk, "end")
    count = chunk.integer("count", minimum=1)
    digest = chunk.sha256("sha256")
    data = _decompress(chunk.raw("content"), chunk.field("content"), budget)
    actual = hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise ValidationFailed(
            f"the SHA-256 of the uncompressed content is {actual}, not the one given",
            field=chunk.field("sha256"),
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            f"content is not UTF-8 (byte {exc.start})", field=chunk.field("content")
        ) from None
    lines, first, last = _scan(text, chunk.field("content"), points)
    if lines != count:
        raise ValidationFailed(
            f"count is {count} but the content holds {lines} points", field=chunk.field("count")
        )
    if first != start:
        raise ValidationFailed(
            f"start is {start} but the first point is at {first}", field=chunk.field("start")
        )
    if last != end:
        raise ValidationFailed(
            f"end is {end} but the last point is at {last}", field=chunk.field("end")
        )
    return start, end, count, digest
