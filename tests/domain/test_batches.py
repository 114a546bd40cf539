"""Batches and their data: registered and delivered by the CMO in the agreement's formats
(R15, R16, R29), corrected with a reason without losing the originals (R1, R12), deviations
acknowledged by the sponsor (R23)."""

from __future__ import annotations

import base64
import copy
import functools
import gzip
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nacl.signing import SigningKey

from ledger.domain.batches import Batch
from ledger.domain.commitments import committed
from ledger.domain.formats import MAX_DECOMPRESSED_BYTES, decode_chunk, encode_chunk
from ledger.domain.subjects import batch_subject, party_subject
from ledger.errors import (
    Forbidden,
    KeyRevoked,
    LedgerError,
    LimitExceeded,
    NotFound,
    ValidationFailed,
)
from ledger.keys import encode_public_key
from ledger.timeutil import format_utc, now_utc
from tests.support.agreements import propose_and_sign
from tests.support.batches import (
    CMO,
    SPONSOR,
    continuous_points,
    continuous_series,
    data_payload,
    discrete_records,
    end_batch,
    event_records,
    refusal,
    register_batch,
    submit_data,
)
from tests.support.world import Actor, World, agreement_terms

BATCH = "NWB101-24-001"
START = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def _batch(world: World, batch_id: str = BATCH, version: int | None = None) -> Batch:
    found = world.ledger.repository.get(batch_subject(batch_id), version=version)
    assert isinstance(found, Batch)
    return found


def _running_batch(world: World, batch_id: str = BATCH) -> uuid.UUID:
    agreement_id = propose_and_sign(world)
    register_batch(world, agreement_id, batch_id)
    return agreement_id


def _register(world: World, by: str, **payload: Any) -> object:
    body = {
        "agreement": payload.pop("agreement"),
        "batch": BATCH,
        "product": "NWB-101",
        "site": "contoso-site-a",
        "started_at": format_utc(now_utc() - timedelta(days=1)),
    }
    body.update(payload)
    subject = payload.get("subject") or batch_subject(str(body["batch"]))
    body.pop("subject", None)
    return world[by].submit(world.ledger, "BatchRegistered", subject, body, meaning="authored")


def _correct(world: World, payload: dict[str, Any], reason: str | None = "typo") -> object:
    return world[CMO].submit(
        world.ledger,
        "DataCorrected",
        batch_subject(BATCH),
        {"submission": str(uuid.uuid4()), **payload},
        meaning="corrected",
        reason=reason,
    )


def _acknowledge(world: World, records: list[str], by: str = SPONSOR) -> object:
    return world[by].submit(
        world.ledger,
        "DataAcknowledged",
        batch_subject(BATCH),
        {"records": records},
        meaning="acknowledged",
    )


def _source_actor(world: World, source: str = "contoso-pi-historian") -> Actor:
    key = SigningKey(hashlib.sha256(source.encode()).digest())
    world[CMO].submit(
        world.ledger,
        "KeyAdded",
        party_subject(CMO),
        {"public_key": encode_public_key(key), "purpose": "source-system", "source": source},
        meaning="authored",
    )
    return Actor(CMO, key)


def _raw_chunk(text: str, **overrides: Any) -> dict[str, Any]:
    """A chunk over CSV ``text`` as given, with consistent hash; ``overrides`` replace members."""
    data = text.encode()
    lines = text.splitlines()
    chunk = {
        "start": lines[0].split(",")[0] if lines else "2024-03-01T08:00:00.000Z",
        "end": lines[-1].split(",")[0] if lines else "2024-03-01T08:00:00.000Z",
        "count": max(len(lines), 1),
        "sha256": hashlib.sha256(data).hexdigest(),
        "content": base64.b64encode(gzip.compress(data, mtime=0)).decode(),
    }
    chunk.update(overrides)
    return chunk


@functools.cache
def _bomb() -> dict[str, Any]:
    data = b"2024-03-01T08:00:00.000Z,37.0,192\n" * (MAX_DECOMPRESSED_BYTES // 34 + 2)
    stamp = "2024-03-01T08:00:00.000Z"
    return {
        "start": stamp,
        "end": stamp,
        "count": 1,
        "sha256": hashlib.sha256(data).hexdigest(),
        "content": base64.b64encode(gzip.compress(data, compresslevel=1, mtime=0)).decode(),
    }


# -- registration -------------------------------------------------------------------------


def test_a_batch_is_registered_by_the_cmo_under_an_agreement_in_force(world: World):
    agreement_id = propose_and_sign(world)
    started = now_utc() - timedelta(days=14)
    subject = register_batch(world, agreement_id, BATCH, started_at=started)

    batch = _batch(world)
    assert (
        subject == batch.id == uuid.uuid5(uuid.UUID("aa007c5a-1227-4c7a-9a07-0033465d20ff"), BATCH)
    )
    assert (batch.batch_id, batch.agreement, batch.product, batch.site) == (
        BATCH,
        str(agreement_id),
        "NWB-101",
        "contoso-site-a",
    )
    assert batch.started_at == format_utc(started)
    assert batch.ended_at is None
    assert (batch.submissions, batch.records, batch.chunks, batch.first_arrival) == ({}, {}, {}, {})


def test_registration_under_an_agreement_not_in_force_is_refused(world: World):
    proposed = uuid.uuid4()
    world[SPONSOR].submit(
        world.ledger,
        "AgreementProposed",
        proposed,
        {"terms": agreement_terms()},
        meaning="authored",
    )
    refusal(
        world,
        Forbidden,
        "payload.agreement",
        lambda: _register(world, CMO, agreement=str(proposed)),
    )
    refusal(
        world,
        NotFound,
        "payload.agreement",
        lambda: _register(world, CMO, agreement=str(uuid.uuid4())),
    )


def test_registration_by_the_sponsor_or_another_cmo_is_refused(world: World):
    agreement_id = str(propose_and_sign(world))
    for party in (SPONSOR, "fabrikam-cmo", "agency-inspectorate"):
        refusal(
            world, Forbidden, "signer", lambda p=party: _register(world, p, agreement=agreement_id)
        )


def test_registration_outside_the_agreements_products_and_sites_is_refused(world: World):
    agreement_id = str(propose_and_sign(world))
    cases = [
        ({"product": "HEL-7"}, "payload.product"),
        ({"site": "fabrikam-site-b"}, "payload.site"),
        ({"batch": "NWB101 24 001"}, "payload.batch"),
        ({"subject": batch_subject("NWB101-24-999")}, "subject"),
        ({"started_at": format_utc(now_utc() + timedelta(days=1))}, "payload.started_at"),
        ({"line": "BR-2000-1"}, "payload.line"),
    ]
    for change, field in cases:
        refusal(
            world,
            ValidationFailed,
            field,
            lambda c=change: _register(world, CMO, agreement=agreement_id, **c),
        )


def test_a_batch_ends_once_and_not_before_it_started(world: World):
    _running_batch(world)
    batch = _batch(world)
    refusal(world, Forbidden, "signer", lambda: end_batch(world, BATCH, cmo=SPONSOR))
    too_early = datetime.fromisoformat(batch.started_at) - timedelta(minutes=1)
    refusal(world, ValidationFailed, "payload.ended_at", lambda: end_batch(world, BATCH, too_early))
    ended = now_utc() - timedelta(hours=2)
    end_batch(world, BATCH, ended)
    assert _batch(world).ended_at == format_utc(ended)
    refusal(world, Forbidden, "subject", lambda: end_batch(world, BATCH))


# -- discrete and event records -----------------------------------------------------------


def test_discrete_results_are_delivered_and_the_batch_keeps_only_their_metadata(world: World):
    _running_batch(world)
    records = discrete_records("LIMS-24-001", media_lot_supplier="supplier 7 (confidential)")
    appended = submit_data(world, BATCH, "discrete", records, original_sha256="ab" * 32)

    batch = _batch(world)
    assert set(batch.records) == {record["id"] for record in records}
    assert batch.records["LIMS-24-001-002"] == {
        "class": "discrete",
        "event_kind": None,
        "version": 1,
        "submissions": [next(iter(batch.submissions))],
        "superseded_by": None,
        "acknowledged_version": None,
        "acknowledged_at": None,
        "parameter": "titer at harvest",
        "verified_version": None,
    }
    assert batch.first_arrival == {"discrete": appended.recorded_at}
    state = json.dumps(batch.__dict__, default=str)
    assert "4.62" not in state and "supplier 7" not in state
    # The values live in the log, exactly as signed; the confidential element as its
    # commitment only.
    stored = world.ledger.read(appended.position - 1, 1)[0].event.envelope
    signed = stored["payload"]["records"]
    secret = "media_lot_supplier"
    assert [{k: v for k, v in r.items() if k != secret} for r in signed] == [
        {k: v for k, v in r.items() if k != secret} for r in records
    ]
    commitments = [committed(r[secret]) for r in signed if secret in r]
    assert commitments and all(commitments)
    assert "supplier 7" not in json.dumps(stored)


def test_submission_by_the_wrong_party_is_refused(world: World):
    _running_batch(world)
    for party in (SPONSOR, "fabrikam-cmo"):
        refusal(
            world,
            Forbidden,
            "signer",
            lambda p=party: submit_data(world, BATCH, "discrete", discrete_records(), by=p),
        )


def test_submission_under_an_agreement_no_longer_in_force_is_refused(world: World):
    agreement_id = _running_batch(world)
    world[SPONSOR].submit(
        world.ledger,
        "AgreementTerminated",
        agreement_id,
        {},
        meaning="revoked",
        reason="supply moved to Fabrikam",
    )
    refusal(
        world,
        Forbidden,
        "subject",
        lambda: submit_data(world, BATCH, "discrete", discrete_records()),
    )


def test_a_submission_in_another_format_than_the_agreements_is_refused(world: World):
    _running_batch(world)
    cases = [
        ({"format": "discrete-xlsx/v2"}, "payload.format"),
        ({"kind": "images"}, "payload.kind"),
        ({"submission": str(uuid.uuid1())}, "payload.submission"),
        ({"original_sha256": "not-a-hash"}, "payload.original_sha256"),
        ({"source_system": None}, "payload.source_system"),
        ({"series": []}, "payload.series"),
        ({"records": []}, "payload.records"),
    ]
    for change, field in cases:
        refusal(
            world,
            ValidationFailed,
            field,
            lambda c=change: submit_data(world, BATCH, "discrete", discrete_records(), **c),
        )


def test_a_bad_record_is_refused_naming_the_record_and_field(world: World):
    _running_batch(world)
    submit_data(world, BATCH, "discrete", discrete_records("OLD"))
    future = format_utc(now_utc() + timedelta(days=1))
    discrete_cases: list[tuple[Any, str]] = [
        (lambda r: r[1].pop("unit"), "payload.records[1].unit"),
        (lambda r: r[0].update(operator="j.doe"), "payload.records[0].operator"),
        (lambda r: r[2].update(value="4,62"), "payload.records[2].value"),
        (lambda r: r[2].update(value="high"), "payload.records[2].value"),
        (lambda r: r[3].update(sampled_at="2024-03-01 08:00"), "payload.records[3].sampled_at"),
        (
            lambda r: r[3].update(sampled_at="2024-03-01T08:00:00+02:00"),
            "payload.records[3].sampled_at",
        ),
        (lambda r: r[3].update(sampled_at=future), "payload.records[3].sampled_at"),
        (lambda r: r[4].update(unit="g / L"), "payload.records[4].unit"),
        (lambda r: r[4].update(id=r[0]["id"]), "payload.records[4].id"),
        (lambda r: r[0].update(id="OLD-001"), "payload.records[0].id"),
        (lambda r: r[0].update(id="has space"), "payload.records[0].id"),
        (lambda r: r[1].update(method=""), "payload.records[1].method"),
        (
            lambda r: r[1].update(other_client_ref={"commitment": "7"}),
            "payload.records[1].other_client_ref",
        ),
    ]
    for change, field in discrete_cases:
        records = discrete_records("NEW")
        change(records)
        refusal(
            world,
            ValidationFailed,
            field,
            lambda r=records: submit_data(world, BATCH, "discrete", r),
        )
    event_cases: list[tuple[Any, str]] = [
        (lambda r: r[0].update(kind="fire"), "payload.records[0].kind"),
        (lambda r: r[1].update(severity="serious"), "payload.records[1].severity"),
        (lambda r: r[0].update(ended_at="2020-01-01T00:00:00Z"), "payload.records[0].ended_at"),
        (lambda r: r[2].pop("description"), "payload.records[2].description"),
        (lambda r: r[2].update(parameter="titer"), "payload.records[2].parameter"),
    ]
    for change, field in event_cases:
        records = event_records()
        change(records)
        refusal(
            world, ValidationFailed, field, lambda r=records: submit_data(world, BATCH, "event", r)
        )
    assert set(_batch(world).records) == {f"OLD-{n:03d}" for n in range(1, 6)}


def test_event_records_are_delivered_with_an_optional_end(world: World):
    _running_batch(world)
    records = event_records(started_at=START)
    appended = submit_data(world, BATCH, "event", records)
    batch = _batch(world)
    assert {rid: r["event_kind"] for rid, r in batch.records.items()} == {
        "E-001": "deviation",
        "E-002": "alarm",
        "E-003": "oot",
    }
    assert batch.first_arrival == {"event": appended.recorded_at}


# -- continuous chunks --------------------------------------------------------------------


def test_chunks_encode_and_decode_to_the_same_points():
    points = continuous_points("BR1.PH", START, 1500)
    chunk = encode_chunk(points)
    assert (chunk["start"], chunk["end"], chunk["count"]) == (points[0][0], points[-1][0], 1500)
    assert decode_chunk(chunk) == points
    assert encode_chunk(points) == chunk, "encoding is deterministic"
    with pytest.raises(ValueError):
        encode_chunk([])
    with pytest.raises(ValidationFailed) as caught:
        decode_chunk({**chunk, "count": 1499})
    assert caught.value.field == "chunk.count"


def test_continuous_data_is_delivered_in_chunks_and_the_batch_keeps_their_ranges(world: World):
    _running_batch(world)
    series = [
        continuous_series("BR1.TEMP", START, 1440, chunk_points=600, excursion=(300, 42)),
        continuous_series("BR1.PH", START, 1440, chunk_points=600),
    ]
    appended = submit_data(world, BATCH, "continuous", series)
    batch = _batch(world)
    assert len(batch.chunks) == 6
    temp = [c for c in batch.chunks.values() if c["tag"] == "BR1.TEMP"]
    assert [(c["start"], c["count"]) for c in temp] == [
        (format_utc(START), 600),
        (format_utc(START + timedelta(minutes=600)), 600),
        (format_utc(START + timedelta(minutes=1200)), 240),
    ]
    assert temp[-1]["end"] == format_utc(START + timedelta(minutes=1439))
    assert batch.first_arrival == {"continuous": appended.recorded_at}
    assert "content" not in json.dumps(batch.__dict__, default=str)
    stored = world.ledger.read(appended.position - 1, 1)[0].event.envelope["payload"]
    points = [p for chunk in stored["series"][0]["chunks"] for p in decode_chunk(chunk)]
    assert points == continuous_points("BR1.TEMP", START, 1440, excursion=(300, 42))


def _submit_chunk(world: World, chunk: dict[str, Any], *, position: int = 0) -> object:
    good = continuous_series("BR1.DO", START, 30, chunk_points=10)["chunks"]
    chunks = [*good[:position], chunk, *good[position:]]
    return submit_data(world, BATCH, "continuous", [{"tag": "BR1.DO", "chunks": chunks}])


def test_a_chunk_whose_hash_count_or_range_does_not_match_its_content_is_refused(world: World):
    _running_batch(world)
    late = START + timedelta(hours=1)
    chunk = encode_chunk(continuous_points("BR1.DO", late, 20))
    cases = [
        ({"sha256": hashlib.sha256(b"other").hexdigest()}, "sha256"),
        ({"sha256": "ABC"}, "sha256"),
        ({"count": 19}, "count"),
        ({"start": format_utc(late + timedelta(minutes=1))}, "start"),
        ({"end": format_utc(late)}, "end"),
        ({"end": "2024-03-01T09:19:00Z"}, "end"),
        ({"content": "not base64!"}, "content"),
        ({"content": base64.b64encode(b"plain text").decode()}, "content"),
        ({"content": chunk["content"][:40]}, "content"),
        ({"tag": "BR1.DO"}, "tag"),
    ]
    for change, name in cases:
        refusal(
            world,
            ValidationFailed,
            f"payload.series[0].chunks[2].{name}",
            lambda c=change: _submit_chunk(world, {**chunk, **c}, position=2),
        )


def test_non_increasing_timestamps_and_bad_lines_are_refused_naming_the_line(world: World):
    _running_batch(world)
    points = continuous_points("BR1.DO", START + timedelta(hours=1), 20)
    lines = [f"{t},{v},{q}" for t, v, q in points]
    field = "payload.series[0].chunks[1].content"

    def with_line(number: int, line: str | None) -> str:
        changed = list(lines)
        if line is None:
            del changed[number - 1]
        else:
            changed[number - 1] = line
        return "".join(f"{item}\n" for item in changed)

    cases = [
        (with_line(17, lines[15]), "line 17: timestamp"),
        (with_line(17, lines[16].replace(",192", ",256")), "line 17: quality"),
        (with_line(5, lines[4].replace(",192", "")), "line 5: expected timestamp,value,quality"),
        (with_line(5, lines[4].split(",")[0] + ",4O.1,192"), "line 5: value"),
        (with_line(3, "2024-04-31" + lines[2][10:]), "line 3: 2024-04-31 is not a calendar date"),
        (with_line(3, lines[2].replace(".000Z", "Z")), "line 3: timestamp"),
        (with_line(3, ""), "line 3: empty line"),
        ("".join(f"{item}\n" for item in lines)[:-1], "line 20: the last line must end"),
        ("", "holds no points"),
    ]
    for text, message in cases:
        error = refusal(
            world,
            ValidationFailed,
            field,
            lambda t=text: _submit_chunk(world, _raw_chunk(t), position=1),
        )
        assert message in str(error), str(error)


def test_chunks_that_overlap_data_already_delivered_are_refused(world: World):
    _running_batch(world)
    first = continuous_series("BR1.TEMP", START, 120, chunk_points=60)
    submit_data(world, BATCH, "continuous", [first])
    again = continuous_series("BR1.TEMP", START + timedelta(minutes=90), 60, seed=8)
    refusal(
        world,
        ValidationFailed,
        "payload.series[0].chunks[0].start",
        lambda: submit_data(world, BATCH, "continuous", [again]),
    )
    refusal(
        world,
        ValidationFailed,
        "payload.series[0].chunks[0].sha256",
        lambda: submit_data(
            world, BATCH, "continuous", [{"tag": "BR1.PH", "chunks": first["chunks"][:1]}]
        ),
    )
    backwards = {
        "tag": "BR1.PH",
        "chunks": list(reversed(continuous_series("BR1.PH", START, 20, chunk_points=10)["chunks"])),
    }
    refusal(
        world,
        ValidationFailed,
        "payload.series[0].chunks[1].start",
        lambda: submit_data(world, BATCH, "continuous", [backwards]),
    )
    twice = continuous_series("BR1.PH", START, 10)
    refusal(
        world,
        ValidationFailed,
        "payload.series[1].tag",
        lambda: submit_data(world, BATCH, "continuous", [twice, twice]),
    )
    # The next hours of the same tag are fine.
    submit_data(
        world,
        BATCH,
        "continuous",
        [continuous_series("BR1.TEMP", START + timedelta(minutes=120), 60)],
    )


def test_a_gzip_bomb_is_refused_before_it_is_inflated(world: World):
    _running_batch(world)
    refusal(
        world,
        LimitExceeded,
        "payload.series[0].chunks[0].content",
        lambda: submit_data(world, BATCH, "continuous", [{"tag": "BR1.DO", "chunks": [_bomb()]}]),
    )


def test_100k_points_in_one_submission_are_accepted_and_read_back(world: World):
    _running_batch(world)
    tags = ["BR1.TEMP", "BR1.PH", "BR1.DO", "BR1.AGIT", "BR1.PRES"]
    series = [continuous_series(tag, START, 20_000) for tag in tags]
    appended = submit_data(world, BATCH, "continuous", series)
    stored = world.ledger.read(appended.position - 1, 1)[0].event.envelope["payload"]
    points = [len(decode_chunk(c)) for entry in stored["series"] for c in entry["chunks"]]
    batch = _batch(world)
    assert sum(points) == 100_000
    assert len(batch.chunks) == 10 and sum(c["count"] for c in batch.chunks.values()) == 100_000


# -- source systems -----------------------------------------------------------------------


def test_a_source_system_key_of_the_cmo_submits_data_and_nothing_else(world: World):
    _running_batch(world)
    historian = _source_actor(world)
    series = [continuous_series("BR1.TEMP", START, 60)]
    submit_data(world, BATCH, "continuous", series, by=historian)
    assert len(_batch(world).chunks) == 1
    later = [continuous_series("BR1.TEMP", START + timedelta(hours=1), 60)]
    refusal(
        world,
        ValidationFailed,
        "payload.source_system",
        lambda: submit_data(
            world, BATCH, "continuous", later, by=historian, source_system="contoso-lims"
        ),
    )
    refusal(
        world,
        Forbidden,
        "key",
        lambda: historian.submit(
            world.ledger,
            "BatchEnded",
            batch_subject(BATCH),
            {"ended_at": format_utc(now_utc())},
            meaning="completed",
        ),
    )


def test_a_revoked_source_system_key_is_refused(world: World):
    _running_batch(world)
    historian = _source_actor(world)
    world[CMO].submit(
        world.ledger,
        "KeyRevoked",
        party_subject(CMO),
        {"key": historian.key_id},
        meaning="revoked",
        reason="historian replaced",
    )
    series = [continuous_series("BR1.TEMP", START, 60)]
    refusal(
        world,
        KeyRevoked,
        "key",
        lambda: submit_data(world, BATCH, "continuous", series, by=historian),
    )


# -- corrections --------------------------------------------------------------------------


def test_a_correction_without_reason_is_refused(world: World):
    _running_batch(world)
    submit_data(world, BATCH, "discrete", discrete_records())
    fixed = discrete_records()[1:2]
    refusal(
        world,
        ValidationFailed,
        "reason",
        lambda: _correct(world, {"supersedes": ["R-002"], "records": fixed}, reason=None),
    )


def test_a_correction_supersedes_a_record_and_the_original_stays_readable(world: World):
    _running_batch(world)
    first = submit_data(world, BATCH, "discrete", discrete_records())
    original = _batch(world)
    fixed = copy.deepcopy(discrete_records()[1:2])
    fixed[0]["value"] = "4.26"
    _correct(
        world,
        {"supersedes": ["R-002"], "records": fixed},
        reason="transcription error: 4.62 for 4.26",
    )

    batch = _batch(world)
    titer = batch.records["R-002"]
    correction = next(s for s, meta in batch.submissions.items() if meta["correction"])
    assert (titer["version"], titer["superseded_by"]) == (2, None)
    assert titer["submissions"] == [*original.records["R-002"]["submissions"], correction]
    assert batch.first_arrival == {"discrete": first.recorded_at}
    # The superseded value stays in the log and in the batch as it was (R1).
    before = _batch(world, version=original.version)
    assert before.records["R-002"]["version"] == 1
    values = [
        r["value"]
        for stored in world.ledger.iter_log()
        if stored.subject == batch.id
        and stored.event.envelope["type"] in ("DataSubmitted", "DataCorrected")
        for r in stored.event.envelope["payload"]["records"]
        if r["id"] == "R-002"
    ]
    assert values == ["4.62", "4.26"]


def test_a_correction_may_withdraw_a_record_or_add_one_under_a_new_id(world: World):
    _running_batch(world)
    submit_data(world, BATCH, "discrete", discrete_records())
    extra = discrete_records("RETEST")[4:5]
    _correct(
        world, {"supersedes": ["R-005"], "records": extra}, reason="bioburden sample mislabelled"
    )
    batch = _batch(world)
    assert batch.records["R-005"]["superseded_by"] is not None
    assert not batch.is_current("R-005") and batch.is_current("RETEST-005")
    assert batch.records["RETEST-005"]["version"] == 1


def test_a_correction_of_an_unknown_or_already_superseded_record_is_refused(world: World):
    _running_batch(world)
    submit_data(world, BATCH, "discrete", discrete_records())
    submit_data(world, BATCH, "event", event_records())
    _correct(world, {"supersedes": ["R-005"], "records": []}, reason="sample mislabelled")
    cases: list[tuple[type[LedgerError], dict[str, Any], str]] = [
        (NotFound, {"supersedes": ["R-404"], "records": []}, "payload.supersedes[0]"),
        (
            ValidationFailed,
            {"supersedes": ["R-001", "R-005"], "records": []},
            "payload.supersedes[1]",
        ),
        (
            ValidationFailed,
            {"supersedes": ["R-001", "R-001"], "records": []},
            "payload.supersedes[1]",
        ),
        (
            ValidationFailed,
            {"supersedes": ["R-001", "E-001"], "records": []},
            "payload.supersedes[1]",
        ),
        (ValidationFailed, {"supersedes": [], "records": []}, "payload.supersedes"),
        (
            ValidationFailed,
            {"supersedes": ["R-001"], "records": discrete_records()[3:4]},
            "payload.records[0].id",
        ),
        (
            ValidationFailed,
            {"supersedes": ["E-001"], "records": discrete_records()[:1]},
            "payload.records[0].method",
        ),
        (ValidationFailed, {"supersedes": ["R-001"], "series": []}, "payload.series"),
    ]
    for error, payload, field in cases:
        refusal(world, error, field, lambda p=payload: _correct(world, p))
    refusal(
        world,
        Forbidden,
        "signer",
        lambda: world[SPONSOR].submit(
            world.ledger,
            "DataCorrected",
            batch_subject(BATCH),
            {"submission": str(uuid.uuid4()), "supersedes": ["R-001"], "records": []},
            meaning="corrected",
            reason="sponsor cannot correct CMO data",
        ),
    )


def test_a_continuous_correction_supersedes_chunks_after_a_sensor_recalibration(world: World):
    _running_batch(world)
    submit_data(
        world, BATCH, "continuous", [continuous_series("BR1.PH", START, 120, chunk_points=60)]
    )
    batch = _batch(world)
    old = sorted(batch.chunks, key=lambda d: batch.chunks[d]["start"])
    recalibrated = continuous_series("BR1.PH", START + timedelta(minutes=60), 60, seed=99)
    refusal(
        world,
        ValidationFailed,
        "payload.series[0].chunks[0].start",
        lambda: _correct(world, {"supersedes_chunks": [old[0]], "series": [recalibrated]}),
    )
    refusal(
        world,
        NotFound,
        "payload.supersedes_chunks[0]",
        lambda: _correct(world, {"supersedes_chunks": ["0" * 64], "series": [recalibrated]}),
    )
    _correct(
        world,
        {"supersedes_chunks": [old[1]], "series": [recalibrated]},
        reason="pH probe recalibrated",
    )
    batch = _batch(world)
    assert batch.chunks[old[1]]["superseded_by"] is not None
    assert set(batch.current_chunks("BR1.PH")) == {old[0], recalibrated["chunks"][0]["sha256"]}
    refusal(
        world,
        ValidationFailed,
        "payload.supersedes_chunks[0]",
        lambda: _correct(world, {"supersedes_chunks": [old[1]], "series": []}),
    )


# -- acknowledgements ---------------------------------------------------------------------


def test_the_sponsor_acknowledges_deviations_oos_and_oot(world: World):
    _running_batch(world)
    submit_data(world, BATCH, "event", event_records())
    submit_data(world, BATCH, "discrete", discrete_records())
    refusal(world, Forbidden, "signer", lambda: _acknowledge(world, ["E-001"], by=CMO))
    refusal(world, Forbidden, "signer", lambda: _acknowledge(world, ["E-001"], by="helios-tx"))
    refusal(world, ValidationFailed, "payload.records[0]", lambda: _acknowledge(world, ["E-002"]))
    refusal(world, ValidationFailed, "payload.records[0]", lambda: _acknowledge(world, ["R-001"]))
    refusal(world, NotFound, "payload.records[1]", lambda: _acknowledge(world, ["E-001", "E-404"]))
    _acknowledge(world, ["E-001", "E-003"])
    batch = _batch(world)
    assert batch.records["E-001"]["acknowledged_version"] == 1
    assert batch.records["E-003"]["acknowledged_at"] is not None
    refusal(world, ValidationFailed, "payload.records[0]", lambda: _acknowledge(world, ["E-001"]))
    # A corrected deviation is a new version, to be acknowledged again.
    fixed = event_records()[:1]
    fixed[0]["severity"] = "critical"
    _correct(world, {"supersedes": ["E-001"], "records": fixed}, reason="reclassified by QA")
    _acknowledge(world, ["E-001"])
    assert _batch(world).records["E-001"]["acknowledged_version"] == 2


def test_data_payload_helper_matches_the_agreement_formats():
    payload = data_payload("event", event_records())
    assert payload["format"] == agreement_terms()["data_classes"]["event"]["format"]["name"]
    assert uuid.UUID(payload["submission"]).version == 4
