"""``results_digest``: the inputs digest of many results from plain rows, the same digest and
the same refusals as ``inputs_digest`` of the same rows as ``CpvInput``s; and
``batch_results_digest``, the same again from each batch's results as a chart holds them."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ledger.cpv import CpvInput, inputs_digest
from ledger.cpv.inputs import BatchResults, ResultRow, batch_results_digest, results_digest
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


class Text(str):
    """A str that formats itself as other text: its characters are what is hashed."""

    def __format__(self, spec: str) -> str:
        return "formatted"


def _batches(rows: list[ResultRow]) -> list[BatchResults]:
    """``rows`` as batches of (record id, value) pairs, each with its first row's version."""
    found: dict[str, tuple[str, int, list[tuple[str, str]]]] = {}
    for batch, record, value, version in rows:
        found.setdefault(batch, (batch, version, []))[2].append((record, value))
    return list(found.values())


def _flat(batches: list[Any]) -> list[ResultRow]:
    return [
        (name, record, value, version)
        for name, version, found in batches
        for record, value in found
    ]


def _text(first: str, rest: str, least: int, most: int) -> st.SearchStrategy[str]:
    return st.builds(
        str.__add__, st.sampled_from(first), st.text(rest, min_size=least, max_size=most)
    )


good_names, good_ids = _text("AB9", "AB9.-", 1, 3), _text("rR1", "r1:/.", 0, 3)
good_values = st.integers(-(10**5), 10**5).map(lambda n: f"{n / 1000:.3f}")
good_versions = st.integers(1, 2**53 - 1) | st.sampled_from([1, 2])
good_batches = st.lists(
    st.tuples(good_names, good_versions, st.lists(st.tuples(good_ids, good_values), max_size=6)),
    max_size=8,
)
batches = st.lists(
    st.tuples(
        good_names | st.sampled_from(["B 1", "-B", "B"]),
        good_versions | st.sampled_from([0, 2**53, True]),
        st.lists(
            st.tuples(
                good_ids | st.sampled_from(["", "r 1", "r\u00e9"]),
                good_values | st.sampled_from(["1e3", "NaN", " 7.0", "07.0"]),
            ),
            max_size=6,
        ),
    ),
    max_size=8,
)


@given(batches)
def test_batches_hash_or_are_refused_as_their_rows_are(found: list[BatchResults]) -> None:
    rows = _flat(found)
    try:
        expected = results_digest(rows)
    except ValidationFailed as slow:
        with pytest.raises(ValidationFailed) as fast:
            batch_results_digest(found)
        assert (fast.value.field, fast.value.message) == (slow.field, slow.message)
    else:
        assert batch_results_digest(found) == expected


@given(good_batches, st.randoms())
def test_batches_in_record_id_order_hash_as_their_rows_in_any_order(
    found: list[BatchResults], rng: random.Random
) -> None:
    named = {name: (name, version, sorted(dict(pairs).items())) for name, version, pairs in found}
    ordered: list[BatchResults] = [batch for batch in named.values() if batch[2]]
    rows = _flat(ordered)
    assume(rows)
    rng.shuffle(ordered)
    rng.shuffle(rows)
    expected = inputs_digest([CpvInput(*row) for row in rows])
    assert batch_results_digest(ordered) == results_digest(rows) == expected


def test_a_chart_s_batches_hash_as_their_rows_do() -> None:
    rows = _rows(200, 20, seed=8)
    found = _batches(rows)
    random.Random(2).shuffle(found)
    assert batch_results_digest(found) == results_digest(rows)


@pytest.mark.parametrize(
    "other",
    [
        [("B-001", 1, [("r2", "7.01"), ("r1", "7.02")])],
        [("B-001", 1, [("r1", "7.01")]), ("B-001", 2, [("r2", "7.02")])],
        [("B-001", 1, [("r1", "7.01")]), ("B-001", 1, [("r1", "7.02")])],
        [("B-001", 2**53, [("r1", "7.01")])],
        [("B-001", 2**70, [("r1", "7.01")])],
        [("B-001", True, [("r1", "7.01")])],
        [("B-001", 1.0, [("r1", "7.01")])],
        [("B-001", 0, [("r1", "7.01")])],
        [("B 001", 1, [("r1", "7.01")])],
        [("B-001", 1, [("r1", 7.01)])],
        [("B-001", 1, [("r1", "7.010e0")])],
        [("B-001", 1, [(Text("r1"), "7.01")])],
        [(Text("B-001"), 1, [("r1", "7.01")])],
        [("B-001", 1, [("r1", "7.01")]), ("B-002", 1, [])],
        [("B-001", 1, [])],
        [],
    ],
)
def test_any_other_batches_are_hashed_or_refused_as_their_rows_are(other: list[Any]) -> None:
    try:
        expected = results_digest(_flat(other))
    except ValidationFailed as slow:
        with pytest.raises(ValidationFailed) as fast:
            batch_results_digest(other)
        assert (fast.value.field, fast.value.message) == (slow.field, slow.message)
    else:
        assert batch_results_digest(other) == expected
