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
``tests/cpv/test_inputs.py`` recomputes the digest with ``hashlib`` and ``json`` only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise

from ledger.canonical import canonical_bytes
from ledger.domain.formats import BATCH_ID, DECIMAL, RECORD_ID
from ledger.errors import ValidationFailed

__all__ = ["CpvInput", "canonical_input_bytes", "canonical_rows", "inputs_digest"]


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

    def as_json(self) -> dict[str, str | int]:
        return {
            "batch": self.batch,
            "limits_version": self.limits_version,
            "record_id": self.record_id,
            "value": self.value,
        }


def _check(row: object, index: int) -> CpvInput:
    field = f"rows[{index}]"
    if not isinstance(row, CpvInput):
        raise ValidationFailed("expected a CpvInput", field=field)
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


def canonical_rows(rows: Iterable[CpvInput]) -> list[dict[str, str | int]]:
    """The rows checked, in canonical order, as JSON objects."""
    checked = [_check(row, index) for index, row in enumerate(rows)]
    if not checked:
        raise ValidationFailed("no inputs", field="rows")
    ordered = sorted(checked, key=lambda r: (r.batch, r.record_id))
    for before, after in pairwise(ordered):
        if (before.batch, before.record_id) == (after.batch, after.record_id):
            raise ValidationFailed(
                f"record {after.record_id} of batch {after.batch} appears twice", field="rows"
            )
    return [row.as_json() for row in ordered]


def canonical_input_bytes(rows: Iterable[CpvInput]) -> bytes:
    """The exact bytes :func:`inputs_digest` hashes (see the module docstring)."""
    return canonical_bytes(canonical_rows(rows), float_free=True)


def inputs_digest(rows: Iterable[CpvInput]) -> str:
    """Lowercase hex SHA-256 of :func:`canonical_input_bytes`."""
    return hashlib.sha256(canonical_input_bytes(rows)).hexdigest()
