"""The inputs digest: canonical order, sensitivity, and the documented byte format."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest

from ledger.cpv import CpvInput, SummaryInput, canonical_input_bytes, inputs_digest
from ledger.errors import ValidationFailed

ROWS = [
    CpvInput("B-002", "r1", "37.10", 2),
    CpvInput("B-001", "r2", "36.95", 2),
    CpvInput("B-001", "r10", "-0.5", 1),
]


def by_hand(rows: list[CpvInput]) -> str:
    """The format in ledger/cpv/inputs.py's docstring, with hashlib and json only."""
    ordered = sorted(rows, key=lambda r: (r.batch, r.record_id))
    objects = [
        {
            "batch": r.batch,
            "record_id": r.record_id,
            "value": r.value,
            "limits_version": r.limits_version,
        }
        for r in ordered
    ]
    text = json.dumps(objects, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_documented_byte_format_recomputed_by_hand():
    assert inputs_digest(ROWS) == by_hand(ROWS)
    assert canonical_input_bytes([ROWS[1]]) == (
        b'[{"batch":"B-001","limits_version":2,"record_id":"r2","value":"36.95"}]'
    )


def test_order_does_not_matter():
    assert inputs_digest(ROWS) == inputs_digest(list(reversed(ROWS)))
    assert inputs_digest(ROWS) == inputs_digest(iter(sorted(ROWS, key=lambda r: r.value)))


@pytest.mark.parametrize(
    "changed",
    [
        CpvInput("B-001", "r2", "36.96", 2),
        CpvInput("B-001", "r2", "36.950", 2),
        CpvInput("B-001", "r2", "36.95", 3),
        CpvInput("B-001", "r3", "36.95", 2),
    ],
)
def test_any_change_changes_the_digest(changed):
    assert inputs_digest([ROWS[0], changed, ROWS[2]]) != inputs_digest(ROWS)


def test_the_number_is_read_from_the_decimal_string():
    assert CpvInput("B-001", "r2", "36.95", 2).number == 36.95


@pytest.mark.parametrize(
    ("rows", "field"),
    [
        ([], "rows"),
        ([CpvInput("B-001", "r1", 36.95, 1)], "rows[0].value"),  # type: ignore[arg-type]
        ([CpvInput("B-001", "r1", "NaN", 1)], "rows[0].value"),
        ([CpvInput("B-001", "r1", "1e3", 1)], "rows[0].value"),
        ([CpvInput("B 001", "r1", "1", 1)], "rows[0].batch"),
        ([CpvInput("B-001", "", "1", 1)], "rows[0].record_id"),
        ([CpvInput("B-001", "r1", "1", 0)], "rows[0].limits_version"),
        ([CpvInput("B-001", "r1", "1", True)], "rows[0].limits_version"),
        ([ROWS[0], ROWS[0]], "rows"),
    ],
)
def test_bad_rows_are_refused(rows, field):
    with pytest.raises(ValidationFailed) as caught:
        inputs_digest(rows)
    assert caught.value.field == field


SHA_A, SHA_B = "a" * 64, "b" * 64
SUMMARIES = [
    SummaryInput("B-002", "BR1.PH", "MEAN", 1440, "7.0493125", "6.88", "7.31", 180000, 1, (SHA_B,)),
    SummaryInput("B-001", "BR1.PH", "MEAN", 8, "7.08375", "6.8", "7.3", None, None, (SHA_B, SHA_A)),
]


def summaries_by_hand(rows: list[SummaryInput]) -> str:
    """The summary rows' format in ledger/cpv/inputs.py's docstring, with hashlib and json."""
    objects = [
        {
            "batch": r.batch,
            "chunks": sorted(r.chunks),
            "count": r.count,
            "limits_version": r.limits_version,
            "max": r.max,
            "mean": r.mean,
            "min": r.min,
            "statistic": r.statistic,
            "tag": r.tag,
            "time_outside_limits_ms": r.time_outside_limits_ms,
        }
        for r in sorted(rows, key=lambda r: (r.batch, r.tag))
    ]
    text = json.dumps(objects, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_summary_rows_hash_in_their_documented_format():
    assert inputs_digest(SUMMARIES) == summaries_by_hand(SUMMARIES)
    assert canonical_input_bytes([SUMMARIES[1]]) == (
        b'[{"batch":"B-001","chunks":["' + SHA_A.encode() + b'","' + SHA_B.encode() + b'"],'
        b'"count":8,"limits_version":null,"max":"7.3","mean":"7.08375","min":"6.8",'
        b'"statistic":"MEAN","tag":"BR1.PH","time_outside_limits_ms":null}]'
    )


def test_the_statistic_charted_is_part_of_the_summary_inputs():
    other = [replace(row, statistic="MAX") for row in SUMMARIES]
    assert inputs_digest(other) != inputs_digest(SUMMARIES)


@pytest.mark.parametrize(
    ("rows", "field"),
    [
        ([SUMMARIES[0], ROWS[0]], "rows"),
        ([SUMMARIES[0], SUMMARIES[0]], "rows"),
        ([replace(SUMMARIES[0], statistic="MEDIAN")], "rows[0].statistic"),
        ([replace(SUMMARIES[0], mean="7.05e0")], "rows[0].mean"),
        ([replace(SUMMARIES[0], count=0)], "rows[0].count"),
        ([replace(SUMMARIES[0], time_outside_limits_ms=-1)], "rows[0].time_outside_limits_ms"),
        ([replace(SUMMARIES[0], chunks=())], "rows[0].chunks"),
        ([replace(SUMMARIES[0], chunks=("not a digest",))], "rows[0].chunks"),
        ([replace(SUMMARIES[0], chunks=(f"{'a' * 64},{'b' * 64}",))], "rows[0].chunks"),
        ([replace(SUMMARIES[0], chunks=("a" * 63, "b" * 65))], "rows[0].chunks"),
        ([replace(SUMMARIES[0], chunks=("a" * 64, "B" * 64))], "rows[0].chunks"),
        ([replace(SUMMARIES[0], chunks=("a" * 64, 7))], "rows[0].chunks"),
        ([replace(SUMMARIES[0], chunks=("a" * 64 + "\n",))], "rows[0].chunks"),
    ],
)
def test_bad_summary_rows_are_refused(rows, field):
    with pytest.raises(ValidationFailed) as caught:
        inputs_digest(rows)
    assert caught.value.field == field
