"""``results_digest``: the inputs digest of many results from plain rows, the same digest and
the same refusals as ``inputs_digest`` of the same rows as ``CpvInput``s."""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from ledger.cpv import CpvInput, inputs_digest
from ledger.cpv.inputs import ResultRow, results_digest
from ledger.errors import ValidationFailed


def _rows(batches: int, replicates: int, seed: int) -> list[ResultRow]:
    rng = random.Random(seed)
    return [
        (f"B-{batch:04d}", f"r{index}", f"{rng.gauss(7.05, 0.02):.3f}", 1 + batch % 3)
        for batch in range(batches)
        for index in range(1, replicates + 1)
    ]


def test_many_results_hash_in_their_documented_format_whatever_their_order() -> None:
    rows = _rows(50, 20, seed=3)
    objects = sorted(
        ({"batch": b, "limits_version": v, "record_id": r, "value": x} for b, r, x, v in rows),
        key=lambda row: (row["batch"], row["record_id"]),
    )
    text = json.dumps(objects, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    expected = hashlib.sha256(text.encode("utf-8")).hexdigest()
    shuffled = list(rows)
    random.Random(5).shuffle(shuffled)
    assert results_digest(rows) == results_digest(shuffled) == expected
    assert results_digest(rows) == inputs_digest([CpvInput(*row) for row in rows])


def test_record_ids_sort_by_code_point_not_by_number() -> None:
    rows: list[ResultRow] = [("B-001", "r10", "1.0", 1), ("B-001", "r9", "2.0", 1)]
    assert results_digest(rows) == inputs_digest([CpvInput(*row) for row in rows])


GOOD: ResultRow = ("B-001", "r1", "7.01", 1)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ([], "rows"),
        ([GOOD, ("B-001", "r2", 7.02, 1)], "rows[1].value"),
        ([GOOD, ("B-001", "r2", "NaN", 1)], "rows[1].value"),
        ([GOOD, ("B-001", "r2", "1e3", 1)], "rows[1].value"),
        ([GOOD, ("B 002", "r1", "7.02", 1)], "rows[1].batch"),
        ([GOOD, ("B-002", "", "7.02", 1)], "rows[1].record_id"),
        ([GOOD, ("B-002", "r1", "7.02", 0)], "rows[1].limits_version"),
        ([GOOD, ("B-002", "r1", "7.02", True)], "rows[1].limits_version"),
        ([GOOD, ("B-002", "r1", "7.02", 1.0)], "rows[1].limits_version"),
        ([GOOD, ("B-001", "r1", "7.02", 1)], "rows"),
        ([GOOD, GOOD], "rows"),
    ],
)
def test_a_bad_row_is_refused_naming_the_field_inputs_digest_names(
    bad: list[ResultRow], field: str
) -> None:
    with pytest.raises(ValidationFailed) as fast:
        results_digest(bad)
    with pytest.raises(ValidationFailed) as slow:
        inputs_digest([CpvInput(*row) for row in bad])
    assert (fast.value.field, fast.value.message) == (slow.value.field, slow.value.message)
    assert fast.value.field == field
