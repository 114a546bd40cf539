"""Importers: discrete results, events and continuous time series from CSV or JSON Lines.

Each importer checks a file against the agreement's format for its data class before
anything is signed, and turns it into ``DataSubmitted`` payloads the ledger accepts:

* :func:`read_discrete` and :func:`read_events` read the whole file, refuse it at the
  first fault and return :class:`ImportedRecords`;
* :func:`stream_continuous` reads ``tag,timestamp,value,quality`` lines one by one and
  yields a :class:`SeriesChunk` (:func:`ledger.domain.formats.encode_chunk`) as soon as a tag has
  ``chunk_points`` points, so memory stays bounded by tags x ``chunk_points`` whatever the
  file's size; :func:`validate_continuous` is the same pass without compression, for
  refusing a file before signing any part of it;
* :func:`build_submissions` groups records or chunks into payloads of bounded size.

A CSV file starts with a header. For records it is the format's columns in order,
optionally preceded by ``id`` and followed by confidential elements of the agreement;
for continuous data it is exactly the format's columns. A JSON Lines file (``.jsonl``
or ``.ndjson``) holds one object per line with the same members. Blank lines are skipped.
Without an ``id``, a record's id is ``<kind>-<line>``.

Values become the forms the ledger stores: times ``2024-03-01T08:00:00.000Z`` (RFC 3339
UTC in, milliseconds out; naive and non-UTC times are refused, never guessed), decimals
as strings (``"4.62"``; ``1e-3`` becomes ``"0.001"``), units checked with
:func:`ledger.domain.formats.check_unit`. Every refusal is an :class:`ImportRefused` whose
``field`` is ``<file>:<line>:<column>``: the physical line (1 is the header) and, for
CSV, the 1-based column number; for JSON Lines, the character position of the member's
name on the line. The message names the column and says what was expected. Each import
records the SHA-256 of the original file's bytes (R16) and every chunk carries the
SHA-256 of its uncompressed content.
"""

from __future__ import annotations

import base64
import csv
import functools
import hashlib
import io
import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from os import PathLike
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ledger.clock import SYSTEM, Clock
from ledger.domain.formats import (
    CHUNK_POINTS,
    CLOCK_TOLERANCE,
    DECIMAL,
    EVENT_KINDS,
    MAX_DECOMPRESSED_BYTES,
    MAX_RECORDS,
    MAX_SERIES,
    RECORD_ID,
    SEVERITIES,
    TIMESTAMP,
    check_unit,
    encode_chunk,
)
from ledger.errors import ValidationFailed
from ledger.timeutil import format_utc
from ledger.wording import article

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "DEFAULT_MAX_POINTS",
    "MAX_RECORDS",
    "ContinuousImport",
    "ContinuousSummary",
    "ImportRefused",
    "ImportedRecords",
    "SeriesChunk",
    "TagSummary",
    "build_submissions",
    "read_discrete",
    "read_events",
    "stream_continuous",
    "validate_continuous",
]

DEFAULT_MAX_POINTS = 100_000
"""Most continuous points one submission carries: a 1,000,000-row file makes 10."""
_QUALITIES = {str(quality): quality for quality in range(256)}
_CONTINUOUS_COLUMNS = ("tag", "timestamp", "value", "quality")
_JSONL_SUFFIXES = (".jsonl", ".ndjson")
_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})?"
)
_EXAMPLE_TIME = "2024-03-01T08:00:00Z"

_PathArg = str | PathLike[str]


class ImportRefused(ValidationFailed):
    """A file refused by an importer; ``field`` is ``<file>:<line>:<column>``."""

    def __init__(self, message: str, *, file: str, line: int, column: int) -> None:
        super().__init__(message, field=f"{file}:{line}:{column}")
        self.file = file
        self.line = line
        self.column = column


# -- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportedRecords:
    """Discrete or event records read from one file, checked and ready to submit.

    ``lines[i]`` is the file line of ``records[i]``, to trace a ledger refusal such as
    ``payload.records[3].id`` back to the file.
    """

    file: str
    kind: str
    format: str
    records: list[dict[str, Any]]
    lines: list[int]
    original_sha256: str


@dataclass(frozen=True)
class SeriesChunk:
    """One encoded chunk of one tag, from file lines ``first_line`` to ``last_line``."""

    tag: str
    chunk: dict[str, Any]
    first_line: int
    last_line: int
    size: int
    """Uncompressed bytes of the chunk's content."""

    @property
    def count(self) -> int:
        """Points in the chunk."""
        return int(self.chunk["count"])


@dataclass(frozen=True)
class TagSummary:
    """Points of one tag in a file: how many, first and last timestamp."""

    count: int
    start: str
    end: str


@dataclass(frozen=True)
class ContinuousSummary:
    """What a validating pass over a continuous file found.

    ``chunk_sha256`` lists, in the order :meth:`ContinuousImport.chunks` yields them, the
    SHA-256 of each chunk's uncompressed content.
    """

    file: str
    format: str
    rows: int
    series: dict[str, TagSummary]
    chunk_sha256: tuple[str, ...]
    original_sha256: str


# -- reading files ------------------------------------------------------------------------


class _HashingReader(io.RawIOBase):
    """A binary file that feeds every byte read into a SHA-256."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        view[: len(data)] = data
        self.digest.update(data)
        return len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _File:
    """An open import file: its text, the SHA-256 of its bytes, and how to locate faults."""

    def __init__(self, path: _PathArg) -> None:
        self.path = Path(path)
        self.name = str(path)
        self.jsonl = self.path.suffix.lower() in _JSONL_SUFFIXES
        try:
            raw = self.path.open("rb")
        except OSError as exc:
            raise ImportRefused(
                f"cannot read the file: {exc.strerror}", file=self.name, line=1, column=1
            ) from None
        self._hashing = _HashingReader(raw)
        # newline="" hands line ends to the csv module untouched; utf-8-sig drops an Excel BOM.
        self.text = io.TextIOWrapper(
            io.BufferedReader(self._hashing, 1 << 20), encoding="utf-8-sig", newline=""
        )

    def sha256(self) -> str:
        """The SHA-256 of every byte read so far (the whole file once read to the end)."""
        return self._hashing.digest.hexdigest()

    def close(self) -> None:
        self.text.close()

    def refuse(self, message: str, line: int, column: int = 1) -> ImportRefused:
        return ImportRefused(message, file=self.name, line=line, column=column)

    def lines(self) -> Iterator[tuple[int, str]]:
        """Non-blank lines with their numbers (JSON Lines)."""
        try:
            for number, text in enumerate(self.text, 1):
                if text.strip():
                    yield number, text.rstrip("\r\n")
        except UnicodeDecodeError:
            raise self._not_utf8() from None

    def csv_rows(self) -> Iterator[tuple[int, list[str]]]:
        """Non-empty CSV records with the line each starts on."""
        reader = csv.reader(self.text, strict=True)
        end = 0
        try:
            for cells in reader:
                line, end = end + 1, reader.line_num
                if cells:
                    yield line, cells
        except (csv.Error, UnicodeDecodeError) as exc:
            raise self.unreadable(exc, end + 1) from None

    def unreadable(self, exc: csv.Error | UnicodeDecodeError, line: int) -> ImportRefused:
        """The refusal for bytes that are not UTF-8 or text that is not CSV."""
        if isinstance(exc, UnicodeDecodeError):
            return self._not_utf8()
        return self.refuse(
            f"not valid CSV: {exc} (quote fields that contain commas, quotes or line breaks)",
            line,
        )

    def _not_utf8(self) -> ImportRefused:
        # The text layer decodes ahead of the line being read; find the first bad line anew.
        with self.path.open("rb") as raw:
            for line, data in enumerate(raw, 1):
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError as exc:
                    return self.refuse(
                        f"byte {exc.start + 1} of the line is not UTF-8 ({exc.reason}): "
                        "save the file as UTF-8",
                        line,
                        exc.start + 1,
                    )
        return self.refuse("the file is not UTF-8: save it as UTF-8", 1)  # pragma: no cover

    def json_object(self, line: int, text: str) -> dict[str, Any]:
        """One JSON Lines object; refuse repeated member names rather than keep the last."""

        def members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
            found: dict[str, Any] = {}
            for name, value in pairs:
                if name in found:
                    raise self.refuse(
                        f"member {name!r} appears twice in the object: keep one",
                        line,
                        _json_column(text, name, last=True),
                    )
                found[name] = value
            return found

        try:
            value = json.loads(text, parse_float=Decimal, object_pairs_hook=members)
        except json.JSONDecodeError as exc:
            raise self.refuse(f"not valid JSON: {exc.msg}", line, exc.colno) from None
        if not isinstance(value, dict):
            raise self.refuse("expected one JSON object per line", line)
        return value


def _json_column(text: str, name: str, *, last: bool = False) -> int:
    """The 1-based position of member ``name`` on a JSON line (its last mention if ``last``)."""
    found = list(re.finditer(re.escape(json.dumps(name)) + r"\s*:", text))
    if not found:
        return 1
    return (found[-1] if last else found[0]).start() + 1


def _terms_format(terms: Mapping[str, Any], kind: str) -> tuple[str, list[str]]:
    classes = terms.get("data_classes", {})
    if kind not in classes:
        raise ValidationFailed(
            f"the agreement does not cover {kind} data: import it under one that does",
            field=f"terms.data_classes.{kind}",
        )
    data_format = classes[kind]["format"]
    return str(data_format["name"]), [str(column) for column in data_format["columns"]]


# -- value conversion ---------------------------------------------------------------------


class _Bad(Exception):
    """A value refused; the caller adds file, line and column."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _show(value: object) -> str:
    text = repr(value if not isinstance(value, Decimal) else str(value))
    return text if len(text) <= 60 else text[:57] + "..."


def _ledger_time(value: object, latest: str) -> str:
    """``value`` as ``YYYY-MM-DDTHH:MM:SS.mmmZ``, not later than ``latest``."""
    if not isinstance(value, str):
        raise _Bad(f"{_show(value)} is not a time: expected text such as {_EXAMPLE_TIME}")
    if TIMESTAMP.fullmatch(value):
        stamp = value
        _calendar_date(stamp)
    else:
        stamp = _parse_time(value)
    if stamp > latest:
        raise _Bad(
            f"{value} is in the future (now is {latest[:19]}Z give or take 5 minutes): "
            "the ledger refuses times later than its clock"
        )
    return stamp


def _calendar_date(stamp: str) -> None:
    try:
        date.fromisoformat(stamp[:10])
    except ValueError:
        raise _Bad(f"{stamp} is not a calendar date: check day and month") from None


def _parse_time(value: str) -> str:
    found = _TIME.fullmatch(value)
    if found is None:
        raise _Bad(
            f"{_show(value)} is not a time: expected an RFC 3339 UTC time such as "
            f"{_EXAMPLE_TIME} or 2024-03-01T08:00:00.000Z"
        )
    year, month, day, hour, minute, second, fraction, offset = found.groups()
    fraction = fraction or ""
    if fraction[3:].strip("0"):
        raise _Bad(
            f"{value} has sub-millisecond digits the ledger does not keep: round it to milliseconds"
        )
    try:
        when = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction + "000")[:3]) * 1000,
        )
    except ValueError as exc:
        raise _Bad(f"{value} is not a valid date and time ({exc})") from None
    if offset is None:
        raise _Bad(
            f"{value} has no UTC offset, so the instant is ambiguous: "
            f"write it in UTC with a Z ({value}Z if it already is UTC)"
        )
    if offset.upper() != "Z" and offset not in ("+00:00", "-00:00"):
        sign = 1 if offset[0] == "+" else -1
        shift = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        utc = when.replace(tzinfo=timezone(sign * shift)).astimezone(UTC)
        raise _Bad(
            f"{value} is not in UTC (offset {offset}): convert it to UTC, i.e. {format_utc(utc)}"
        )
    return format_utc(when.replace(tzinfo=UTC))


def _decimal_text(value: object) -> str:
    """A decimal as the ledger stores it: a string such as ``"37.02"``."""
    if isinstance(value, str) and DECIMAL.fullmatch(value):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise _Bad(f"{_show(value)} is not a number: expected a decimal such as 37.02")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise _Bad(
            f"{_show(value)} is not a number: expected a decimal with a point, such as 37.02"
        ) from None
    if not number.is_finite():
        raise _Bad(f"{_show(value)} is not a finite number: expected a decimal such as 37.02")
    text = format(number, "f")
    if not DECIMAL.fullmatch(text):
        raise _Bad(f"{_show(value)} has too many digits: at most 18 before and 12 after the point")
    return text


def _text(max_len: int) -> Callable[[object, str], str]:
    def convert(value: object, latest: str) -> str:
        if not isinstance(value, str):
            raise _Bad(f"{_show(value)} is not text: expected a string")
        if not value.strip() or len(value) > max_len:
            raise _Bad(f"expected non-blank text of at most {max_len} characters")
        return value

    return convert


def _choice(choices: Sequence[str]) -> Callable[[object, str], str]:
    def convert(value: object, latest: str) -> str:
        if value not in choices:
            raise _Bad(f"{_show(value)} is not allowed: expected one of {', '.join(choices)}")
        return str(value)

    return convert


def _unit(value: object, latest: str) -> str:
    try:
        return check_unit(value, field="unit")
    except ValidationFailed as exc:
        raise _Bad(f"{_show(value)} is not a unit code: {exc.message}") from None


def _decimal(value: object, latest: str) -> str:
    return _decimal_text(value)


_Convert = Callable[[object, str], str]
# The typed columns of WORLD.md's formats (as the ledger checks them); any other column of
# a format is required text. The flag marks a column that may be empty.
_COLUMNS: dict[str, dict[str, tuple[_Convert, bool]]] = {
    "discrete": {
        "parameter": (_text(200), False),
        "value": (_decimal, False),
        "unit": (_unit, False),
        "sampled_at": (_ledger_time, False),
        "method": (_text(200), False),
    },
    "event": {
        "kind": (_choice(EVENT_KINDS), False),
        "started_at": (_ledger_time, False),
        "ended_at": (_ledger_time, True),
        "severity": (_choice(SEVERITIES), False),
        "description": (_text(2000), False),
    },
}


def _latest(clock: Clock = SYSTEM) -> str:
    return format_utc(clock.now() + CLOCK_TOLERANCE)


# -- discrete and event records -----------------------------------------------------------


def read_discrete(
    path: _PathArg,
    terms: Mapping[str, Any],
    *,
    id_prefix: str | None = None,
    data_class: str = "discrete",
) -> ImportedRecords:
    """Read and check discrete results (format ``data_classes.<data_class>`` of ``terms``,
    a class of the discrete form).

    Ids come from an ``id`` column or member, else ``<id_prefix>-<line>`` (default prefix:
    the class). Raises :class:`ImportRefused` at the first fault.
    """
    return _read_records(path, terms, "discrete", id_prefix, data_class)


def read_events(
    path: _PathArg,
    terms: Mapping[str, Any],
    *,
    id_prefix: str | None = None,
    data_class: str = "event",
) -> ImportedRecords:
    """Read and check event records (deviations, alarms, OOS/OOT) like :func:`read_discrete`."""
    return _read_records(path, terms, "event", id_prefix, data_class)


@dataclass
class _RecordLayout:
    kind: str
    format: str
    columns: list[str]
    confidential: list[str]

    def describe(self) -> str:
        text = f"format {self.format} has columns {','.join(self.columns)}"
        if self.confidential:
            text += f", optionally followed by {', '.join(self.confidential)}"
        return text + "; an id column may come first"


def _read_records(
    path: _PathArg, terms: Mapping[str, Any], form: str, id_prefix: str | None, data_class: str
) -> ImportedRecords:
    name, columns = _terms_format(terms, data_class)
    layout = _RecordLayout(
        form, name, columns, [str(e) for e in terms.get("confidential_elements", [])]
    )
    prefix = data_class.replace("_", "-") if id_prefix is None else id_prefix
    if not RECORD_ID.fullmatch(f"{prefix}-1"):
        raise ValueError(f"id prefix {prefix!r} does not make valid record ids")
    source = _File(path)
    try:
        rows = _jsonl_records(source, layout) if source.jsonl else _csv_records(source, layout)
        records, lines = _check_records(source, layout, rows, prefix)
        if not records:
            raise source.refuse(f"the file holds no records: {layout.describe()}", 1)
        return ImportedRecords(source.name, data_class, name, records, lines, source.sha256())
    finally:
        source.close()


# A record as read: its line, its values by name, and the column of each name.
_RecordRow = tuple[int, dict[str, object], Callable[[str], int]]


def _csv_records(source: _File, layout: _RecordLayout) -> Iterator[_RecordRow]:
    rows = source.csv_rows()
    first = next(rows, None)
    if first is None:
        raise source.refuse(f"the file is empty: expected a header line ({layout.describe()})", 1)
    header_line, header = first
    _check_header(source, layout, header_line, header)
    positions = {column: index + 1 for index, column in enumerate(header)}

    def locate(column: str) -> int:
        return positions.get(column, 1)

    for line, cells in rows:
        if len(cells) != len(header):
            column = min(len(cells), len(header)) + 1
            raise source.refuse(
                f"expected {len(header)} fields as in the header ({','.join(header)}), "
                f"found {len(cells)}",
                line,
                column,
            )
        yield line, {name: cell or None for name, cell in zip(header, cells, strict=True)}, locate


def _check_header(source: _File, layout: _RecordLayout, line: int, header: list[str]) -> None:
    offset = 1 if header and header[0] == "id" else 0
    for index, column in enumerate(layout.columns):
        position = offset + index
        if position >= len(header):
            raise source.refuse(
                f"the header ends before column {column!r}: {layout.describe()}",
                line,
                position + 1,
            )
        if header[position] != column:
            raise source.refuse(
                f"header column {position + 1} is {header[position]!r}, expected {column!r}: "
                f"{layout.describe()}",
                line,
                position + 1,
            )
    seen: set[str] = set()
    for position in range(offset + len(layout.columns), len(header)):
        column = header[position]
        if column not in layout.confidential:
            raise source.refuse(
                f"header column {position + 1} is {column!r}, which is neither a column of "
                f"format {layout.format} nor a confidential element of the agreement "
                f"({', '.join(layout.confidential) or 'none'})",
                line,
                position + 1,
            )
        if column in seen:
            raise source.refuse(
                f"header column {position + 1} repeats {column!r}: keep one", line, position + 1
            )
        seen.add(column)


def _jsonl_records(source: _File, layout: _RecordLayout) -> Iterator[_RecordRow]:
    allowed = {"id", *layout.columns, *layout.confidential}
    for line, text in source.lines():
        values = source.json_object(line, text)
        for member in values:
            if member not in allowed:
                raise source.refuse(
                    f"member {member!r} is neither id, a column of format {layout.format} "
                    f"({', '.join(layout.columns)}) nor a confidential element of the agreement",
                    line,
                    _json_column(text, member),
                )
        yield line, values, functools.partial(_json_column, text)


def _check_records(
    source: _File, layout: _RecordLayout, rows: Iterator[_RecordRow], prefix: str
) -> tuple[list[dict[str, Any]], list[int]]:
    typed = _COLUMNS.get(layout.kind, {})
    plan = [
        (column, *typed.get(column, (_text(200), False)))
        for column in [*layout.columns, *layout.confidential]
    ]
    latest = _latest()
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    ids: dict[str, int] = {}
    contents: dict[tuple[tuple[str, str], ...], int] = {}
    for line, values, locate in rows:
        record: dict[str, Any] = {}
        raw_id = values.get("id")
        record_id = f"{prefix}-{line}" if raw_id is None else raw_id
        if not isinstance(record_id, str) or not RECORD_ID.fullmatch(record_id):
            raise source.refuse(
                f"column id: {_show(record_id)} is not a record id: use 1-128 letters, digits "
                "and . _ : / -, starting with a letter or digit",
                line,
                locate("id"),
            )
        if record_id in ids:
            raise source.refuse(
                f"column id: record id {record_id} is already used on line {ids[record_id]}: "
                "give every record its own id",
                line,
                locate("id"),
            )
        ids[record_id] = line
        record["id"] = record_id
        for column, convert, optional in plan:
            value = values.get(column)
            if value is None:
                if optional or column in layout.confidential:
                    continue
                raise source.refuse(
                    f"column {column} is empty: every record needs {article(column)}",
                    line,
                    locate(column),
                )
            try:
                record[column] = convert(value, latest)
            except _Bad as exc:
                raise source.refuse(
                    f"column {column}: {exc.message}", line, locate(column)
                ) from None
        ended, started = record.get("ended_at"), record.get("started_at")
        if layout.kind == "event" and ended is not None and started is not None and ended < started:
            raise source.refuse(
                f"column ended_at: {ended} is before started_at {started}: "
                "an event ends after it starts",
                line,
                locate("ended_at"),
            )
        content = tuple(sorted((k, v) for k, v in record.items() if k != "id"))
        if content in contents:
            raise source.refuse(
                f"this row repeats line {contents[content]} value for value: remove the "
                "duplicate, or tell the two apart (e.g. by sampled_at or method) if both are real",
                line,
            )
        contents[content] = line
        records.append(record)
        lines.append(line)
    return records, lines


# -- continuous series --------------------------------------------------------------------


class _TagState:
    """Per tag while streaming: the last timestamp and the points not yet chunked."""

    __slots__ = ("count", "first_line", "last", "last_line", "points", "start")

    def __init__(self) -> None:
        self.points: list[tuple[str, str, int]] = []
        self.first_line = 0
        self.last = ""
        self.last_line = 0
        self.start = ""
        self.count = 0


# A run of points ready to become a chunk: tag, points, first and last line.
_Run = tuple[str, list[tuple[str, str, int]], int, int]


class ContinuousImport:
    """A continuous CSV or JSON Lines file, read as a stream of chunks.

    Iterating (or :meth:`chunks`) reads the file once and yields each tag's points as a
    :class:`SeriesChunk` once ``chunk_points`` are collected; the rest when the file ends.
    Memory holds at most ``chunk_points`` points per tag. After a complete pass,
    :attr:`original_sha256` is the SHA-256 of the file's bytes. :meth:`validate` is the
    same pass without compression; :func:`build_submissions` runs it first.
    """

    def __init__(
        self,
        path: _PathArg,
        terms: Mapping[str, Any],
        *,
        tags: set[str] | frozenset[str] | None = None,
        chunk_points: int = CHUNK_POINTS,
        data_class: str = "continuous",
    ) -> None:
        if chunk_points < 1:
            raise ValueError("chunk_points must be at least 1")
        self.path = path
        self.file = str(path)
        self.data_class = data_class
        self.format, columns = _terms_format(terms, data_class)
        if sorted(columns) != sorted(_CONTINUOUS_COLUMNS):
            raise ValidationFailed(
                f"the continuous format {self.format} has columns {','.join(columns)}; this "
                f"importer reads {','.join(_CONTINUOUS_COLUMNS)} in any order",
                field=f"terms.data_classes.{data_class}.format.columns",
            )
        self.columns = columns
        self.tags = None if tags is None else frozenset(tags)
        self.chunk_points = chunk_points
        self.original_sha256: str | None = None
        self.summary: ContinuousSummary | None = None
        self._counts: tuple[int, dict[str, TagSummary]] | None = None

    def __iter__(self) -> Iterator[SeriesChunk]:
        return self.chunks()

    def chunks(self) -> Iterator[SeriesChunk]:
        """Read the file, yielding encoded chunks; raises :class:`ImportRefused` at a fault."""
        for tag, points, first_line, last_line in self._runs():
            chunk = encode_chunk(points)
            # gzip's trailer ends with the uncompressed size (mod 2**32; chunks are far smaller).
            size = int.from_bytes(base64.b64decode(chunk["content"])[-4:], "little")
            yield SeriesChunk(tag, chunk, first_line, last_line, size)

    def validate(self) -> ContinuousSummary:
        """Read the whole file and check it, without compressing; remember the summary."""
        digests: list[str] = []
        for _tag, points, _first, _last in self._runs():
            data = "".join([f"{stamp},{value},{quality}\n" for stamp, value, quality in points])
            digests.append(hashlib.sha256(data.encode()).hexdigest())
        # _runs sets both once it has read the file to the end.
        assert self.original_sha256 is not None and self._counts is not None
        rows, series = self._counts
        self.summary = ContinuousSummary(
            self.file, self.format, rows, series, tuple(digests), self.original_sha256
        )
        return self.summary

    def _runs(self) -> Iterator[_Run]:
        source = _File(self.path)
        self.original_sha256 = None
        self._counts = None
        try:
            states: dict[str, _TagState] = {}
            rows = 0
            points = self._jsonl_points(source) if source.jsonl else self._csv_points(source)
            for line, text, tag, stamp, value, quality in points:
                state = states.get(tag)
                if state is None:
                    state = states[tag] = self._new_tag(source, line, text, tag)
                    state.start = stamp
                if stamp <= state.last:
                    again = "repeats" if stamp == state.last else "is before"
                    raise source.refuse(
                        f"column timestamp: {stamp} {again} the timestamp of tag {tag} on line "
                        f"{state.last_line} ({state.last}): each tag's timestamps must strictly "
                        "increase, so sort the file by time and drop repeated rows",
                        line,
                        self._column(text, "timestamp"),
                    )
                if not state.points:
                    state.first_line = line
                state.points.append((stamp, value, quality))
                state.last, state.last_line = stamp, line
                state.count += 1
                rows += 1
                if len(state.points) >= self.chunk_points:
                    yield tag, state.points, state.first_line, line
                    state.points = []
            if not rows:
                raise source.refuse(
                    f"the file holds no data: expected lines {','.join(self.columns)}", 2
                )
            for tag, state in states.items():
                if state.points:
                    yield tag, state.points, state.first_line, state.last_line
            self.original_sha256 = source.sha256()
            self._counts = (
                rows,
                {
                    tag: TagSummary(state.count, state.start, state.last)
                    for tag, state in states.items()
                },
            )
        finally:
            source.close()

    def _new_tag(self, source: _File, line: int, text: str | None, tag: str) -> _TagState:
        if not tag.strip() or len(tag) > 200:
            raise source.refuse(
                "column tag: expected a tag name of 1-200 characters",
                line,
                self._column(text, "tag"),
            )
        if self.tags is not None and tag not in self.tags:
            raise source.refuse(
                f"column tag: unknown tag {tag!r}: expected one of {', '.join(sorted(self.tags))}",
                line,
                self._column(text, "tag"),
            )
        return _TagState()

    def _column(self, text: str | None, name: str) -> int:
        """Where column ``name`` is: its CSV position, or its place on a JSON line."""
        return self.columns.index(name) + 1 if text is None else _json_column(text, name)

    def _csv_points(self, source: _File) -> Iterator[tuple[int, str | None, str, str, str, int]]:
        reader = csv.reader(source.text, strict=True)
        expected = ",".join(self.columns)
        line = end = 0
        try:
            header: list[str] = []
            for header in reader:
                line, end = end + 1, reader.line_num
                if header:
                    break
            if not header:
                raise source.refuse(f"the file is empty: expected the header line {expected}", 1)
            if header != self.columns:
                position = next(
                    (
                        i
                        for i, pair in enumerate(zip(header, self.columns, strict=False))
                        if pair[0] != pair[1]
                    ),
                    min(len(header), len(self.columns)),
                )
                raise source.refuse(
                    f"the header is {','.join(header)[:200]}, expected {expected} "
                    f"(format {self.format})",
                    line,
                    position + 1,
                )
            t, s, v, q = (self.columns.index(name) for name in _CONTINUOUS_COLUMNS)
            latest = _latest()
            exact_time = TIMESTAMP.fullmatch
            exact_decimal = DECIMAL.fullmatch
            qualities = _QUALITIES.get
            day = ""
            # The hot loop of a million-row import: the common, already canonical row costs
            # two regex matches and a lookup; anything else takes the slower path that
            # normalises or explains.
            for cells in reader:
                line, end = end + 1, reader.line_num
                if len(cells) != 4:
                    if not cells:
                        continue
                    raise source.refuse(
                        f"expected 4 fields ({expected}), found {len(cells)}",
                        line,
                        min(len(cells), 4) + 1,
                    )
                stamp, value, quality = cells[s], cells[v], qualities(cells[q])
                try:
                    if exact_time(stamp) is None or stamp > latest:
                        column = s
                        stamp = _ledger_time(stamp, latest)
                    elif stamp[:10] != day:
                        column = s
                        _calendar_date(stamp)
                        day = stamp[:10]
                    if exact_decimal(value) is None:
                        column = v
                        value = _decimal_text(value)
                    if quality is None:
                        column = q
                        quality = _quality(cells[q])
                except _Bad as exc:
                    name = self.columns[column]
                    raise source.refuse(f"column {name}: {exc.message}", line, column + 1) from None
                yield line, None, cells[t], stamp, value, quality
        except (csv.Error, UnicodeDecodeError) as exc:
            raise source.unreadable(exc, end + 1) from None

    def _jsonl_points(self, source: _File) -> Iterator[tuple[int, str | None, str, str, str, int]]:
        latest = _latest()
        for line, text in source.lines():
            values = source.json_object(line, text)
            for name in values:
                if name not in _CONTINUOUS_COLUMNS:
                    raise source.refuse(
                        f"member {name!r} is not a column of format {self.format}: expected "
                        f"{', '.join(self.columns)}",
                        line,
                        _json_column(text, name),
                    )
            for name in self.columns:
                if values.get(name) is None:
                    raise source.refuse(
                        f"member {name!r} is missing: every line needs {', '.join(self.columns)}",
                        line,
                    )
            name = "tag"
            try:
                tag = values["tag"]
                if not isinstance(tag, str):
                    raise _Bad(f"{_show(tag)} is not text: expected a tag name")
                name = "timestamp"
                stamp = _ledger_time(values["timestamp"], latest)
                name = "value"
                value = _decimal_text(values["value"])
                name = "quality"
                quality = _quality(values["quality"])
            except _Bad as exc:
                raise source.refuse(
                    f"column {name}: {exc.message}", line, _json_column(text, name)
                ) from None
            yield line, text, tag, stamp, value, quality


def _quality(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255:
        return value
    found = _QUALITIES.get(value) if isinstance(value, str) else None
    if found is None:
        raise _Bad(f"{_show(value)} is not a quality: expected an integer from 0 to 255")
    return found


def stream_continuous(
    path: _PathArg,
    terms: Mapping[str, Any],
    *,
    tags: set[str] | frozenset[str] | None = None,
    chunk_points: int = CHUNK_POINTS,
    data_class: str = "continuous",
) -> ContinuousImport:
    """A continuous file as a stream of :class:`SeriesChunk` (iterate the result), for
    ``data_class`` (a class of the continuous form).

    ``tags``, when given, are the only tags accepted. After iterating to the end,
    ``.original_sha256`` holds the SHA-256 of the file's bytes.
    """
    return ContinuousImport(
        path, terms, tags=tags, chunk_points=chunk_points, data_class=data_class
    )


def validate_continuous(
    path: _PathArg,
    terms: Mapping[str, Any],
    tags: set[str] | frozenset[str] | None = None,
    *,
    chunk_points: int = CHUNK_POINTS,
) -> ContinuousSummary:
    """Check a whole continuous file in one streaming pass, before signing any of it."""
    return ContinuousImport(path, terms, tags=tags, chunk_points=chunk_points).validate()


# -- submissions --------------------------------------------------------------------------


def build_submissions(
    source: ImportedRecords | ContinuousImport,
    *,
    source_system: str,
    schema_version: str = "1.0",
    max_points: int = DEFAULT_MAX_POINTS,
    max_records: int = MAX_RECORDS,
) -> Iterator[dict[str, Any]]:
    """``DataSubmitted`` payloads for an import, each with a fresh submission uuid4.

    Records go ``max_records`` to a payload. Continuous chunks go whole, at most
    ``max_points`` points (and the ledger's 1,000 tags and 64 MiB) to a payload; a chunk
    larger than ``max_points`` travels alone. A continuous file is validated completely
    (:meth:`ContinuousImport.validate`, unless done already) before the first payload, and
    each chunk is compared with what was validated, so a file changed in between is
    refused at the changed chunk, before its payload is yielded.
    """
    if not isinstance(source_system, str) or not source_system.strip() or len(source_system) > 100:
        raise ValidationFailed(
            "expected the source system's id, 1-100 characters", field="source_system"
        )
    if (
        not isinstance(schema_version, str)
        or not schema_version.strip()
        or len(schema_version) > 50
    ):
        raise ValidationFailed("expected a schema version, 1-50 characters", field="schema_version")
    if max_points < 1 or not 1 <= max_records <= MAX_RECORDS:
        raise ValueError(f"max_points must be >= 1 and max_records from 1 to {MAX_RECORDS}")
    header = {"source_system": source_system, "schema_version": schema_version}
    if isinstance(source, ImportedRecords):
        return _record_submissions(source, header, max_records)
    summary = source.summary or source.validate()
    return _series_submissions(source, summary, header, max_points)


def _payload(
    kind: str,
    data_format: str,
    digest: str,
    header: Mapping[str, str],
    content: object,
    *,
    series: bool = False,
) -> dict[str, Any]:
    return {
        "submission": str(uuid.uuid4()),
        "kind": kind,
        **header,
        "format": data_format,
        "original_sha256": digest,
        "series" if series else "records": content,
    }


def _record_submissions(
    source: ImportedRecords, header: Mapping[str, str], max_records: int
) -> Iterator[dict[str, Any]]:
    for offset in range(0, len(source.records), max_records):
        batch = source.records[offset : offset + max_records]
        yield _payload(source.kind, source.format, source.original_sha256, header, batch)


def _series_submissions(
    source: ContinuousImport,
    summary: ContinuousSummary,
    header: Mapping[str, str],
    max_points: int,
) -> Iterator[dict[str, Any]]:
    expected = iter(summary.chunk_sha256)
    series: dict[str, list[dict[str, Any]]] = {}
    points = size = 0

    def payload() -> dict[str, Any]:
        content = [{"tag": tag, "chunks": chunks} for tag, chunks in series.items()]
        return _payload(
            source.data_class,
            source.format,
            summary.original_sha256,
            header,
            content,
            series=True,
        )

    for item in source.chunks():
        if item.chunk["sha256"] != next(expected, None):
            raise ImportRefused(
                f"lines {item.first_line}-{item.last_line} differ from the file that was "
                "validated: the file changed, so validate and import it again",
                file=source.file,
                line=item.first_line,
                column=1,
            )
        full = (
            points + item.count > max_points
            or size + item.size > MAX_DECOMPRESSED_BYTES
            or (item.tag not in series and len(series) >= MAX_SERIES)
        )
        if series and full:
            yield payload()
            series, points, size = {}, 0, 0
        series.setdefault(item.tag, []).append(item.chunk)
        points += item.count
        size += item.size
    if source.original_sha256 != summary.original_sha256:
        raise ImportRefused(
            f"the file's SHA-256 is now {source.original_sha256}, not the validated "
            f"{summary.original_sha256}: the file changed, so validate and import it again",
            file=source.file,
            line=1,
            column=1,
        )
    if series:
        yield payload()
