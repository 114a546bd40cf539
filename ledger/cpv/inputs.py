"""The inputs of a CPV computation and their digest, so anyone can check what was computed on.

A :class:`CpvInput` is one value that went into a chart or a capability study: the batch, the
record id within the batch, the value exactly as the ledger holds it (a decimal string such as
``"37.02"``, never a float) and the version of the parameter's limits it was judged against.

:func:`inputs_digest` is the lowercase hex SHA-256 of these bytes:

1. Put the rows in canonical order: ascending by ``batch``, then by ``record_id``, comparing
   the strings code point by code point (Python's ``sorted``; the ids are ASCII, so this is
   also byte order). Two rows with the same batch and record id are refused.
2. Write each row as a JSON object with exactly four members,
   ``{"batch": str, "limits_version": int, "record_id": str, "value": str}``.
3. Serialise the array of rows as RFC 8785 canonical JSON
   (:func:`ledger.canonical.canonical_bytes`): members sorted by name, no whitespace,
   UTF-8. Because every member is an ASCII string or an integer, this is exactly what
   Python's
   ``json.dumps(rows, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()``
   produces, e.g.::

       [{"batch":"B-001","limits_version":2,"record_id":"r1","value":"37.02"}]

An empty set of inputs is refused: a computation with nothing in it has nothing to prove.
:func:`results_digest` takes many results as plain ``(batch, record_id, value,
limits_version)`` tuples and answers the same digest, or the same refusal.
``tests/cpv/test_inputs.py`` recomputes the digest with ``hashlib`` and ``json`` only.

A continuous parameter is charted by one statistic of per-batch summaries
(:mod:`ledger.cpv.summary`); its inputs are :class:`SummaryInput` rows, one per batch and
tag, hashed the same way: ascending by ``batch`` then ``tag``, each row the object
``{"batch": str, "chunks": [str], "count": int, "limits_version": int | null,
"max": str, "mean": str, "min": str, "statistic": str, "tag": str,
"time_outside_limits_ms": int | null}`` (``chunks``: the SHA-256 of each chunk summarised,
sorted). One computation's rows are all of one kind.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise
from operator import itemgetter, lt

from ledger.canonical import MAX_SAFE_INTEGER, canonical_bytes
from ledger.cpv.summary import STATISTICS
from ledger.domain.formats import BATCH_ID, DECIMAL, RECORD_ID
from ledger.errors import ValidationFailed

__all__ = [
    "BatchResults",
    "CpvInput",
    "ResultRow",
    "SummaryInput",
    "batch_results_digest",
    "canonical_input_bytes",
    "canonical_rows",
    "inputs_digest",
    "results_digest",
]

_PLAIN_DECIMAL = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?", re.ASCII)
_SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)
_SHA256_LIST = re.compile(r"[0-9a-f]{64}(?:,[0-9a-f]{64})*", re.ASCII)
_STATISTICS = frozenset(STATISTICS)


@dataclass(frozen=True)
class CpvInput:
    """One value a CPV computation used, and where it came from."""

    batch: str
    record_id: str
    value: str
    """The value as the ledger records it: a decimal string such as ``"37.02"``."""
    limits_version: int

    @property
    def number(self) -> float:
        """The value as a float, for the statistics."""
        return float(Decimal(self.value))

    def as_json(self) -> dict[str, object]:
        return {
            "batch": self.batch,
            "limits_version": self.limits_version,
            "record_id": self.record_id,
            "value": self.value,
        }


@dataclass(frozen=True)
class SummaryInput:
    """One batch's summary of a continuous tag that a CPV computation charted by
    ``statistic`` (one of :data:`ledger.cpv.summary.STATISTICS`)."""

    batch: str
    tag: str
    statistic: str
    count: int
    mean: str
    min: str
    max: str
    time_outside_limits_ms: int | None
    limits_version: int | None
    chunks: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "batch": self.batch,
            "chunks": sorted(self.chunks),
            "count": self.count,
            "limits_version": self.limits_version,
            "max": self.max,
            "mean": self.mean,
            "min": self.min,
            "statistic": self.statistic,
            "tag": self.tag,
            "time_outside_limits_ms": self.time_outside_limits_ms,
        }


def _whole(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _check_summary(row: SummaryInput, field: str) -> SummaryInput:
    if not isinstance(row.batch, str) or not BATCH_ID.match(row.batch):
        raise ValidationFailed("not a batch id", field=f"{field}.batch")
    if not isinstance(row.tag, str) or not row.tag:
        raise ValidationFailed("expected a tag", field=f"{field}.tag")
    if row.statistic not in _STATISTICS:
        raise ValidationFailed(
            f"expected one of {', '.join(STATISTICS)}", field=f"{field}.statistic"
        )
    if not _whole(row.count, 1):
        raise ValidationFailed("expected a number of points (1 or more)", field=f"{field}.count")
    for name in ("mean", "min", "max"):
        value = getattr(row, name)
        if not isinstance(value, str) or not _PLAIN_DECIMAL.fullmatch(value):
            raise ValidationFailed("expected a decimal string", field=f"{field}.{name}")
    outside = row.time_outside_limits_ms
    if outside is not None and not _whole(outside, 0):
        raise ValidationFailed(
            "expected milliseconds (0 or more) or null", field=f"{field}.time_outside_limits_ms"
        )
    version = row.limits_version
    if version is not None and not _whole(version, 1):
        raise ValidationFailed(
            "expected a limits version number (1 or more) or null", field=f"{field}.limits_version"
        )
    if not _sha256_list(row.chunks):
        raise ValidationFailed("expected chunk SHA-256s", field=f"{field}.chunks")
    return row


def _sha256_list(chunks: object) -> bool:
    """Whether ``chunks`` is a non-empty sequence of SHA-256 hex digests: one match over
    them joined by commas, when no digest holds a comma of its own."""
    if not isinstance(chunks, tuple | list) or not chunks:
        return False
    if not all(isinstance(chunk, str) for chunk in chunks):
        return False
    joined = ",".join(chunks)
    return joined.count(",") == len(chunks) - 1 and _SHA256_LIST.fullmatch(joined) is not None


def _check(row: object, index: int) -> CpvInput | SummaryInput:
    field = f"rows[{index}]"
    if isinstance(row, SummaryInput):
        return _check_summary(row, field)
    if not isinstance(row, CpvInput):
        raise ValidationFailed("expected a CpvInput or a SummaryInput", field=field)
    if not isinstance(row.batch, str) or not BATCH_ID.match(row.batch):
        raise ValidationFailed("not a batch id", field=f"{field}.batch")
    if not isinstance(row.record_id, str) or not RECORD_ID.match(row.record_id):
        raise ValidationFailed("not a record id", field=f"{field}.record_id")
    if not isinstance(row.value, str) or not DECIMAL.fullmatch(row.value):
        raise ValidationFailed('expected a decimal string such as "37.02"', field=f"{field}.value")
    version = row.limits_version
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValidationFailed(
            "expected a limits version number (1 or more)", field=f"{field}.limits_version"
        )
    return row


Inputs = Iterable[CpvInput] | Iterable[SummaryInput]


def _key(row: CpvInput | SummaryInput) -> tuple[str, str]:
    return (row.batch, row.tag) if isinstance(row, SummaryInput) else (row.batch, row.record_id)


def canonical_rows(rows: Inputs) -> Sequence[dict[str, object]]:
    """The rows checked, in canonical order, as JSON objects."""
    checked = [_check(row, index) for index, row in enumerate(rows)]
    if not checked:
        raise ValidationFailed("no inputs", field="rows")
    if len({type(row) for row in checked}) > 1:
        raise ValidationFailed("results and summaries in one computation", field="rows")
    ordered = sorted(checked, key=_key)
    for before, after in pairwise(ordered):
        if _key(before) == _key(after):
            what = "tag" if isinstance(after, SummaryInput) else "record"
            raise ValidationFailed(
                f"{what} {_key(after)[1]} of batch {after.batch} appears twice", field="rows"
            )
    return [row.as_json() for row in ordered]


def canonical_input_bytes(rows: Inputs) -> bytes:
    """The exact bytes :func:`inputs_digest` hashes (see the module docstring)."""
    return canonical_bytes(canonical_rows(rows), float_free=True)


def inputs_digest(rows: Inputs) -> str:
    """Lowercase hex SHA-256 of :func:`canonical_input_bytes`."""
    return hashlib.sha256(canonical_input_bytes(rows)).hexdigest()


ResultRow = tuple[str, str, str, int]
"""The fields of a :class:`CpvInput` in order: batch, record id, value, limits version."""


def results_digest(rows: Sequence[ResultRow]) -> str:
    """``inputs_digest([CpvInput(*row) for row in rows])``: the same digest and the same
    refusals, in one pass over many results.

    Each distinct batch, record id, value and version is checked once (a chart's results
    share them) and plain tuples are sorted without a key; any refusal is left to
    :func:`inputs_digest`, so it names the same row."""
    try:
        ordered = sorted(rows)
        plain = bool(ordered) and _plain_results(ordered)
    except (TypeError, ValueError):  # a row of the wrong shape or kind: refused below
        plain = False
    if not plain:
        return inputs_digest([CpvInput(*row) for row in rows])
    return hashlib.sha256(
        canonical_bytes(
            [
                {"batch": batch, "limits_version": version, "record_id": record, "value": value}
                for batch, record, value, version in ordered
            ],
            float_free=True,
        )
    ).hexdigest()


BatchResults = tuple[str, int, Sequence[tuple[str, str]]]
"""A batch, the limits version its results were judged against, and its results as (record
id, value) pairs."""


def batch_results_digest(batches: Sequence[BatchResults]) -> str:
    """``results_digest`` of the rows ``(batch, record_id, value, version)`` of every result
    of ``batches``: the same digest and the same refusals, from each batch's results as they
    are held.

    When every batch name, record id and value is valid, the names distinct, each batch's
    record ids strictly ascending and each version a whole number from 1 to
    :data:`~ledger.canonical.MAX_SAFE_INTEGER`, every string is plain ASCII that JSON
    writes as it is: each row is written as the canonical object it is, with no object
    made. Anything else is left to :func:`results_digest`."""
    try:
        ordered = sorted(batches, key=itemgetter(0))
        plain = bool(ordered) and _plain_batches(ordered)
    except (TypeError, ValueError):  # a batch of the wrong shape or kind: refused below
        plain = False
    if not plain:
        return results_digest(
            [
                (name, record, value, version)
                for name, version, found in batches
                for record, value in found
            ]
        )
    parts: list[str] = []
    for name, version, found in ordered:
        head = f'{{"batch":"{name}","limits_version":{version},"record_id":"'
        parts.extend([f'{head}{record}","value":"{value}"}}' for record, value in found])
    return hashlib.sha256(f"[{','.join(parts)}]".encode()).hexdigest()


def _plain_batches(batches: Sequence[BatchResults]) -> bool:
    """Whether ``batches`` (sorted by name) are plainly valid: names distinct, record ids
    strictly ascending within each batch, every name, record id and value an exact ``str``
    of its format, every version an exact ``int`` from 1 to ``MAX_SAFE_INTEGER``."""
    names = [name for name, _, _ in batches]
    versions = [version for _, version, _ in batches]
    if not _plain_texts(names, BATCH_ID.match) or not all(map(lt, names, names[1:])):
        return False
    if (
        set(map(type, versions)) != _INT
        or not 1 <= min(versions) <= max(versions) <= MAX_SAFE_INTEGER
    ):
        return False
    records: set[object] = set()
    values: set[object] = set()
    for _, _, found in batches:
        if found:
            ids, numbers = zip(*found, strict=True)
            if not all(map(lt, ids, ids[1:])):
                return False
            records.update(ids)
            values.update(numbers)
    return _plain_texts(records, RECORD_ID.match) and _plain_texts(values, DECIMAL.fullmatch)


def _plain_texts(texts: Collection[object], valid: Callable[[str], object]) -> bool:
    """Whether ``texts`` are some exact ``str``s, each ``valid``."""
    return set(map(type, texts)) == _STR and all(map(valid, texts))  # type: ignore[arg-type]


_INT = frozenset({int})
_STR = frozenset({str})


def _plain_results(rows: Sequence[ResultRow]) -> bool:
    """Whether ``rows`` are valid results, each (batch, record id) once."""
    if len(set(map(itemgetter(0, 1), rows))) != len(rows):
        return False
    batches, records, values, versions = (set(map(itemgetter(i), rows)) for i in range(4))
    # Kinds over every row: True and 1.0 equal 1, so a set of values would hide them.
    if {type(row[3]) for row in rows} != {int} or min(versions) < 1:
        return False
    return (
        all(isinstance(b, str) and BATCH_ID.match(b) for b in batches)
        and all(isinstance(r, str) and RECORD_ID.match(r) for r in records)
        and all(isinstance(v, str) and DECIMAL.fullmatch(v) for v in values)
    )
