"""Importers turn a CMO's CSV and JSON Lines exports into submissions the ledger accepts,
checked against the agreement's format before anything is signed; a refused file names its
file, line and column and leaves the ledger untouched (R15, R16)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from clients.importers import (
    ContinuousImport,
    ImportedRecords,
    ImportRefused,
    build_submissions,
    read_discrete,
    read_events,
    stream_continuous,
    validate_continuous,
)
from ledger.domain.agreements import Agreement
from ledger.domain.batches import Batch
from ledger.domain.commitments import committed
from ledger.domain.formats import decode_chunk
from ledger.domain.subjects import batch_subject
from ledger.errors import ValidationFailed
from ledger.log.openings import read_openings
from ledger.timeutil import format_utc
from tests.support.agreements import propose_and_sign
from tests.support.batches import (
    CMO,
    continuous_points,
    discrete_records,
    event_records,
    refusal,
    register_batch,
)
from tests.support.world import World, agreement_terms

BATCH = "NWB101-24-007"
START = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
TAGS = {"BR1.TEMP", "BR1.PH", "BR1.DO"}
TERMS = agreement_terms()
DISCRETE_HEADER = "parameter,value,unit,sampled_at,method"
EVENT_HEADER = "kind,started_at,ended_at,severity,description"
CONTINUOUS_HEADER = "tag,timestamp,value,quality"


@pytest.fixture
def terms(world: World) -> dict[str, Any]:
    """The terms in force for a registered batch, read back from the ledger."""
    agreement_id = propose_and_sign(world)
    register_batch(world, agreement_id, BATCH, started_at=START)
    agreement = world.ledger.get_aggregate(agreement_id, Agreement)
    assert agreement is not None
    return agreement.terms


def _write(path: Path, lines: Iterable[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def _csv_line(values: Iterable[object]) -> str:
    return ",".join(f'"{v}"' if "," in str(v) else str(v) for v in values)


def _records_file(path: Path, records: list[dict[str, Any]], columns: list[str]) -> Path:
    """Records as CSV (header ``columns``) or, for a ``.jsonl`` path, one object per line."""
    if path.suffix == ".jsonl":
        lines = [json.dumps({c: r[c] for c in columns if c in r}) for r in records]
        return _write(path, lines)
    return _write(
        path, [",".join(columns), *(_csv_line(r.get(c, "") for c in columns) for r in records)]
    )


def _interleaved(
    minutes: int, tags: Iterable[str] = ("BR1.TEMP", "BR1.PH", "BR1.DO")
) -> list[tuple[str, str, str, int]]:
    """A historian export: one row per tag and minute, the tags interleaved, as PI writes them."""
    series = {tag: continuous_points(tag, START, minutes) for tag in tags}
    return [(tag, *series[tag][minute]) for minute in range(minutes) for tag in series]


def _continuous_file(path: Path, rows: Iterable[tuple[str, str, object, object]]) -> Path:
    if path.suffix == ".jsonl":
        keys = ("tag", "timestamp", "value", "quality")
        return _write(path, [json.dumps(dict(zip(keys, row, strict=True))) for row in rows])
    return _write(path, [CONTINUOUS_HEADER, *(_csv_line(row) for row in rows)])


def _submit(world: World, payloads: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Sign each payload as the CMO and append it; return what the ledger stored."""
    head = world.ledger.head()
    for payload in payloads:
        world[CMO].submit(
            world.ledger, "DataSubmitted", batch_subject(BATCH), payload, meaning="submitted"
        )
    return [dict(r.event.envelope["payload"]) for r in world.ledger.read(head)]


def _batch(world: World) -> Batch:
    batch = world.ledger.get_aggregate(batch_subject(BATCH), Batch)
    assert batch is not None
    return batch


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refused(
    world: World, where: str, action: Callable[[], object], *expected: str
) -> ImportRefused:
    """Expect a refusal at ``where`` (``<file>:<line>:<column>``) and an unchanged ledger."""
    error = refusal(world, ImportRefused, where, action)
    assert isinstance(error, ImportRefused)
    assert where in str(error)
    for text in expected:
        assert text in error.message, error.message
    return error


def _deliver_records(
    world: World, read: Callable[..., ImportedRecords], path: Path, terms: Mapping[str, Any]
) -> Callable[[], object]:
    return lambda: _submit(
        world, build_submissions(read(path, terms), source_system="contoso-lims")
    )


def _deliver_series(
    world: World, path: Path, terms: Mapping[str, Any], max_points: int = 20
) -> Callable[[], object]:
    """Stream, validate and submit a continuous file in chunks of 10 points."""

    def deliver() -> object:
        source = stream_continuous(path, terms, tags=TAGS, chunk_points=10)
        payloads = build_submissions(
            source, source_system="contoso-pi-historian", max_points=max_points
        )
        return _submit(world, payloads)

    return deliver


# -- discrete results and events ----------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_discrete_results_are_imported_and_accepted_by_the_ledger(
    world: World, terms, tmp_path: Path, suffix: str
):
    records = discrete_records(sampled_at=START + timedelta(days=7))
    records[0]["media_lot_supplier"] = "Irvine Scientific lot 4471"
    columns = [*DISCRETE_HEADER.split(","), "media_lot_supplier"]
    path = _records_file(tmp_path / f"lims-{BATCH}{suffix}", records, columns)

    imported = read_discrete(path, terms)

    assert imported.original_sha256 == _sha256(path)
    assert [r["id"] for r in imported.records] == [f"discrete-{line}" for line in imported.lines]
    stored = _submit(world, build_submissions(imported, source_system="contoso-lims"))
    assert len(stored) == 1
    assert stored[0]["format"] == "discrete-csv/v1"
    assert stored[0]["original_sha256"] == _sha256(path)
    first = stored[0]["records"][0]
    assert first["parameter"] == "viable cell density, day 7"
    assert (first["value"], first["unit"]) == ("18.4", "10*6/mL")
    # Signed as its commitment; the value is the opening stored beside the event.
    commitment = committed(first["media_lot_supplier"])
    assert commitment is not None
    opening = read_openings(world.ledger.engine, [commitment])[commitment]
    assert opening.value == "Irvine Scientific lot 4471"
    assert "media_lot_supplier" not in stored[0]["records"][1]
    assert set(_batch(world).records) == {r["id"] for r in imported.records}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_events_are_imported_and_accepted_by_the_ledger(
    world: World, terms, tmp_path: Path, suffix: str
):
    records = event_records(started_at=START + timedelta(days=5, hours=3))
    records[0]["description"] = "BR1.TEMP above 37.5 Cel for 42 min, chiller trip; batch on hold"
    columns = ["id", *EVENT_HEADER.split(",")]
    path = _records_file(tmp_path / f"deviations{suffix}", records, columns)

    stored = _submit(
        world, build_submissions(read_events(path, terms), source_system="contoso-mes")
    )

    sent = stored[0]["records"]
    assert [r["id"] for r in sent] == ["E-001", "E-002", "E-003"]
    assert sent[0]["description"].endswith("chiller trip; batch on hold")
    assert "ended_at" not in sent[1]
    batch = _batch(world)
    assert [batch.records[i]["event_kind"] for i in ("E-001", "E-002", "E-003")] == [
        "deviation",
        "alarm",
        "oot",
    ]


def test_times_become_the_ledgers_utc_form_and_decimals_stay_strings(tmp_path: Path):
    path = _write(
        tmp_path / "results.csv",
        [
            DISCRETE_HEADER,
            "titer at harvest,4.620,g/L,2024-03-15T06:30:00Z,Protein A HPLC",
            "endotoxin,5e-2,EU/mL,2024-03-15T06:45:00.5+00:00,LAL kinetic chromogenic",
            "bioburden,0,[CFU]/mL,2024-03-15T07:00:00.123000Z,membrane filtration",
        ],
    )

    records = read_discrete(path, TERMS).records

    assert [r["sampled_at"] for r in records] == [
        "2024-03-15T06:30:00.000Z",
        "2024-03-15T06:45:00.500Z",
        "2024-03-15T07:00:00.123Z",
    ]
    assert [r["value"] for r in records] == ["4.620", "0.05", "0"]


def test_records_are_split_over_submissions_of_at_most_max_records(tmp_path: Path):
    rows = [
        f"titer at harvest,4.{i:02d},g/L,2024-03-15T06:{i:02d}:00Z,Protein A HPLC"
        for i in range(25)
    ]
    imported = read_discrete(_write(tmp_path / "titers.csv", [DISCRETE_HEADER, *rows]), TERMS)

    payloads = list(build_submissions(imported, source_system="contoso-lims", max_records=10))

    assert [len(p["records"]) for p in payloads] == [10, 10, 5]
    assert len({p["submission"] for p in payloads}) == 3
    assert all(uuid.UUID(p["submission"]).version == 4 for p in payloads)
    assert {p["original_sha256"] for p in payloads} == {imported.original_sha256}


# -- continuous series --------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_continuous_export_is_chunked_and_accepted_by_the_ledger(
    world: World, terms, tmp_path: Path, suffix: str
):
    rows = _interleaved(1440)
    path = _continuous_file(tmp_path / f"BR-2000-1{suffix}", rows)

    source = stream_continuous(path, terms, tags=TAGS, chunk_points=600)
    stored = _submit(
        world, build_submissions(source, source_system="contoso-pi-historian", max_points=2000)
    )

    # 3 tags x 1440 points in chunks of at most 600 (600, 600, 240), at most 2000 points a payload.
    assert len(stored) == 3
    for payload in stored:
        assert sum(c["count"] for e in payload["series"] for c in e["chunks"]) <= 2000
        assert payload["original_sha256"] == _sha256(path)
        assert payload["format"] == "continuous-csv/v1"
    assert source.original_sha256 == _sha256(path)
    batch = _batch(world)
    for tag in TAGS:
        chunks = sorted(batch.current_chunks(tag).values(), key=lambda c: c["start"])
        assert [c["count"] for c in chunks] == [600, 600, 240]
    received = [
        (entry["tag"], *point)
        for payload in stored
        for entry in payload["series"]
        for chunk in entry["chunks"]
        for point in decode_chunk(chunk)
    ]
    assert sorted(received) == sorted(rows)


def test_chunks_are_yielded_while_the_file_is_still_being_read(tmp_path: Path):
    rows = _interleaved(100)
    rows.append(("BR1.PH", "not a time", "7.05", 192))
    source = stream_continuous(_continuous_file(tmp_path / "pi.csv", rows), TERMS, chunk_points=10)

    received = []
    with pytest.raises(ImportRefused):
        for chunk in source:
            received.append(chunk)

    # Every tag's first chunks left before the faulty last line was read.
    assert len(received) == 30
    assert {c.count for c in received} == {10}
    assert received[0].tag == "BR1.TEMP"
    assert (received[0].first_line, received[0].last_line) == (2, 29)
    assert source.original_sha256 is None


def test_validation_summarises_the_file_without_keeping_it(tmp_path: Path):
    path = _continuous_file(tmp_path / "pi.csv", _interleaved(95))

    summary = validate_continuous(path, TERMS, TAGS, chunk_points=40)

    assert summary.rows == 285
    assert summary.original_sha256 == _sha256(path)
    assert summary.series["BR1.DO"].count == 95
    assert summary.series["BR1.DO"].start == "2024-03-01T08:00:00.000Z"
    assert summary.series["BR1.DO"].end == format_utc(START + timedelta(minutes=94))
    chunks = list(stream_continuous(path, TERMS, chunk_points=40))
    assert summary.chunk_sha256 == tuple(c.chunk["sha256"] for c in chunks)


def test_continuous_values_are_normalised_like_the_ledger_stores_them(tmp_path: Path):
    path = _continuous_file(
        tmp_path / "pi.csv",
        [
            ("BR1.DO", "2024-03-01T08:00:00Z", "40.2", "192"),
            ("BR1.DO", "2024-03-01T08:01:00.000+00:00", "4.02e1", "64"),
            ("BR1.DO", "2024-03-01T08:02:00.250Z", "-0.5", "0"),
        ],
    )

    (chunk,) = stream_continuous(path, TERMS)

    points = decode_chunk(chunk.chunk)
    assert points == [
        ("2024-03-01T08:00:00.000Z", "40.2", 192),
        ("2024-03-01T08:01:00.000Z", "40.2", 64),
        ("2024-03-01T08:02:00.250Z", "-0.5", 0),
    ]
    assert chunk.size == len("".join(f"{t},{v},{q}\n" for t, v, q in points))
    assert (chunk.first_line, chunk.last_line) == (2, 4)


def test_a_file_changed_after_validation_is_refused_before_its_changed_part_is_submitted(
    tmp_path: Path,
):
    rows = _interleaved(40, ("BR1.TEMP",))
    path = _continuous_file(tmp_path / "pi.csv", rows)
    source = ContinuousImport(path, TERMS, chunk_points=10)
    source.validate()
    rows[25] = ("BR1.TEMP", rows[25][1], "39.99", 192)
    _continuous_file(path, rows)

    payloads = build_submissions(source, source_system="contoso-pi-historian", max_points=10)
    received = []
    with pytest.raises(ImportRefused) as info:
        for payload in payloads:
            received.append(payload)

    # Lines 2-21 went out in the first two chunks; the payload of the second waits for the
    # third, whose lines 22-31 now differ from what was validated.
    assert len(received) == 1
    assert info.value.field == f"{path}:22:1"
    assert "the file changed" in info.value.message


def test_submission_options_are_checked_before_any_reading():
    with pytest.raises(ValidationFailed) as info:
        build_submissions(
            ImportedRecords("f.csv", "discrete", "discrete-csv/v1", [], [], "0" * 64),
            source_system=" ",
        )
    assert info.value.field == "source_system"


# -- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "column", "expected"),
    [
        ("parameter,value,units,sampled_at,method", 3, "expected 'unit'"),
        ("parameter,value,unit,sampled_at", 5, "ends before column 'method'"),
        ("id,parameter,value,unit,sampled_at,method,batch_ref", 7, "'batch_ref', which is neither"),
        ("value,parameter,unit,sampled_at,method", 1, "expected 'parameter'"),
    ],
)
def test_a_discrete_file_with_a_header_unlike_the_agreement_format_is_refused(
    world: World, terms, tmp_path: Path, header: str, column: int, expected: str
):
    path = _write(
        tmp_path / "lims.csv",
        [header, "titer at harvest,4.62,g/L,2024-03-15T06:30:00Z,Protein A HPLC"],
    )

    error = _refused(
        world, f"{path}:1:{column}", _deliver_records(world, read_discrete, path, terms), expected
    )

    assert "discrete-csv/v1" in error.message


def test_a_continuous_file_with_a_wrong_header_is_refused(world: World, terms, tmp_path: Path):
    path = _write(
        tmp_path / "pi.csv", ["tag,time,value,quality", "BR1.TEMP,2024-03-01T08:00:00Z,37.0,192"]
    )

    _refused(
        world,
        f"{path}:1:2",
        _deliver_series(world, path, terms),
        "expected tag,timestamp,value,quality",
    )


@pytest.mark.parametrize(
    ("unit", "expected"),
    [("°C", "'°C' is not a unit code"), ("g / L", "without spaces"), ("", "column unit is empty")],
)
def test_a_result_with_a_unit_that_is_not_a_ucum_code_is_refused(
    world: World, terms, tmp_path: Path, unit: str, expected: str
):
    path = _write(
        tmp_path / "lims.csv",
        [
            DISCRETE_HEADER,
            "titer at harvest,4.62,g/L,2024-03-15T06:30:00Z,Protein A HPLC",
            f"culture temperature,37.1,{unit},2024-03-15T06:30:00Z,probe TT-101",
        ],
    )

    _refused(world, f"{path}:3:3", _deliver_records(world, read_discrete, path, terms), expected)


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2024-03-15T06:30:00", "has no UTC offset"),
        ("2024-03-15T07:30:00+01:00", "convert it to UTC, i.e. 2024-03-15T06:30:00.000Z"),
        ("15/03/2024 06:30", "is not a time: expected an RFC 3339 UTC time"),
        ("2024-02-30T06:30:00Z", "not a valid date"),
        ("2024-03-15T06:30:00.0001Z", "sub-millisecond"),
        ("2099-03-15T06:30:00Z", "in the future"),
    ],
)
def test_a_result_with_a_time_that_is_not_an_exact_utc_instant_is_refused(
    world: World, terms, tmp_path: Path, stamp: str, expected: str
):
    path = _write(
        tmp_path / "lims.csv",
        [DISCRETE_HEADER, f"titer at harvest,4.62,g/L,{stamp},Protein A HPLC"],
    )

    _refused(
        world,
        f"{path}:2:4",
        _deliver_records(world, read_discrete, path, terms),
        "column sampled_at",
        expected,
    )


@pytest.mark.parametrize(
    ("row", "column", "expected"),
    [
        (("BR1.PH", "2024-03-01 09:00", "7.05", "192"), 2, "is not a time"),
        (("BR1.PH", "2024-03-01T09:00:00-05:00", "7.05", "192"), 2, "2024-03-01T14:00:00.000Z"),
        (("BR1.PH", "2024-03-01T08:30:00.000Z", "7,05", "192"), 3, "decimal with a point"),
        (("BR1.PH", "2024-03-01T08:30:00.000Z", "7.05", "300"), 4, "integer from 0 to 255"),
        (("BR2.TEMP", "2024-03-01T08:30:00.000Z", "37.0", "192"), 1, "unknown tag 'BR2.TEMP'"),
    ],
)
def test_a_continuous_row_that_does_not_fit_is_refused_and_nothing_is_signed(
    world: World, terms, tmp_path: Path, row, column: int, expected: str
):
    # The faulty row comes after several payloads' worth of good rows.
    rows = [*_interleaved(30), row]
    path = _continuous_file(tmp_path / "pi.csv", rows)

    _refused(
        world,
        f"{path}:{len(rows) + 1}:{column}",
        _deliver_series(world, path, terms, max_points=20),
        expected,
    )


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2024-03-01T08:10:00.000Z", "is before the timestamp"),
        ("2024-03-01T08:20:00.000Z", "repeats the timestamp"),
    ],
)
def test_an_out_of_order_or_repeated_timestamp_is_refused_naming_both_lines(
    world: World, terms, tmp_path: Path, stamp: str, expected: str
):
    rows = _interleaved(21)
    rows.append(("BR1.TEMP", stamp, "37.01", 192))
    path = _continuous_file(tmp_path / "pi.csv", rows)

    error = _refused(
        world, f"{path}:65:2", _deliver_series(world, path, terms, max_points=20), expected
    )

    # Line 62 holds BR1.TEMP at 08:20, the tag's last point before the faulty line.
    assert "tag BR1.TEMP on line 62" in error.message


def test_a_repeated_row_is_refused_naming_the_line_it_repeats(world: World, terms, tmp_path: Path):
    titer = "titer at harvest,4.62,g/L,2024-03-15T06:30:00Z,Protein A HPLC"
    path = _write(
        tmp_path / "lims.csv",
        [
            DISCRETE_HEADER,
            titer,
            "high molecular weight species,0.8,%,2024-03-15T06:30:00Z,SE-HPLC",
            titer,
        ],
    )

    _refused(
        world, f"{path}:4:1", _deliver_records(world, read_discrete, path, terms), "repeats line 2"
    )


def test_a_repeated_record_id_is_refused_naming_the_line_that_uses_it(
    world: World, terms, tmp_path: Path
):
    path = _write(
        tmp_path / "deviations.csv",
        [
            f"id,{EVENT_HEADER}",
            "DEV-24-031,deviation,2024-03-06T11:00:00Z,2024-03-06T11:42:00Z,major,Chiller trip",
            "DEV-24-031,alarm,2024-03-06T11:03:00Z,,minor,BR1.TEMP high-high alarm",
        ],
    )

    _refused(
        world,
        f"{path}:3:1",
        _deliver_records(world, read_events, path, terms),
        "already used on line 2",
    )


def test_an_event_that_ends_before_it_starts_is_refused(world: World, terms, tmp_path: Path):
    path = _write(
        tmp_path / "deviations.csv",
        [EVENT_HEADER, "deviation,2024-03-06T11:00:00Z,2024-03-06T10:00:00Z,major,Chiller trip"],
    )

    _refused(
        world, f"{path}:2:3", _deliver_records(world, read_events, path, terms), "before started_at"
    )


def test_an_event_of_an_unknown_kind_is_refused_listing_the_kinds(
    world: World, terms, tmp_path: Path
):
    path = _write(
        tmp_path / "events.csv", [EVENT_HEADER, "incident,2024-03-06T11:00:00Z,,major,Chiller trip"]
    )

    _refused(
        world,
        f"{path}:2:1",
        _deliver_records(world, read_events, path, terms),
        "expected one of deviation, alarm",
    )


def test_a_json_lines_refusal_points_at_the_member_on_its_line(world: World, terms, tmp_path: Path):
    good = {
        "parameter": "titer at harvest",
        "value": "4.62",
        "unit": "g/L",
        "sampled_at": "2024-03-15T06:30:00Z",
        "method": "Protein A HPLC",
    }
    bad = {**good, "sampled_at": "2024-03-15T06:30:00"}
    path = _write(tmp_path / "lims.jsonl", [json.dumps(good), "", json.dumps(bad)])
    column = json.dumps(bad).index('"sampled_at"') + 1

    _refused(
        world,
        f"{path}:3:{column}",
        _deliver_records(world, read_discrete, path, terms),
        "no UTC offset",
    )


_TWICE = '{"parameter": "titer", "parameter": "titer at harvest"}'
_UNKNOWN = '{"parameter": "titer at harvest", "batch_ref": "x"}'
_TRUNCATED = '{"parameter": "titer at harvest",'


@pytest.mark.parametrize(
    ("line", "column", "expected"),
    [
        (_TWICE, _TWICE.rindex('"parameter"') + 1, "appears twice"),
        (_UNKNOWN, _UNKNOWN.index('"batch_ref"') + 1, "'batch_ref' is neither"),
        (_TRUNCATED, len(_TRUNCATED) + 1, "not valid JSON"),
        ('["titer at harvest"]', 1, "one JSON object per line"),
    ],
)
def test_malformed_json_lines_are_refused(
    world: World, terms, tmp_path: Path, line: str, column: int, expected: str
):
    path = _write(tmp_path / "lims.jsonl", [line])

    _refused(
        world, f"{path}:1:{column}", _deliver_records(world, read_discrete, path, terms), expected
    )


@pytest.mark.parametrize(
    ("content", "where", "expected"),
    [
        (b"", "1:1", "the file is empty"),
        (b"parameter,value,unit,sampled_at,method\n", "1:1", "holds no records"),
        (b'parameter,value,unit,sampled_at,method\n"titer,4.62\n', "2:1", "not valid CSV"),
        (b"parameter,value,unit,sampled_at,method\ntiter,4.62,g/L\n", "2:4", "expected 5 fields"),
        (
            b"parameter,value,unit,sampled_at,method\nt\xe9ter,4.62,g/L,2024-03-15T06:30:00Z,HPLC\n",
            "2:2",
            "not UTF-8",
        ),
    ],
)
def test_an_empty_or_unreadable_file_is_refused(
    world: World, terms, tmp_path: Path, content: bytes, where: str, expected: str
):
    path = tmp_path / "lims.csv"
    path.write_bytes(content)

    _refused(
        world, f"{path}:{where}", _deliver_records(world, read_discrete, path, terms), expected
    )


def test_a_continuous_file_without_data_is_refused(tmp_path: Path):
    path = _write(tmp_path / "pi.csv", [CONTINUOUS_HEADER])

    with pytest.raises(ImportRefused) as info:
        validate_continuous(path, TERMS)

    assert info.value.field == f"{path}:2:1"
    assert "holds no data" in info.value.message


def test_an_agreement_without_the_data_class_cannot_be_imported_against(tmp_path: Path):
    terms = agreement_terms()
    del terms["data_classes"]["event"]
    path = _write(tmp_path / "events.csv", [EVENT_HEADER])

    with pytest.raises(ValidationFailed) as info:
        read_events(path, terms)

    assert info.value.field == "terms.data_classes.event"
