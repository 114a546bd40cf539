"""Confidential elements are signed as salted commitments; their openings travel beside
the envelope, are checked before anything is stored, are stored apart from the log, and
can be purged by their owner (the CMO) while the log and ``verify`` stay intact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ledger.domain.commitments import Opening, commit_records, committed
from ledger.domain.subjects import batch_subject
from ledger.errors import Forbidden, NotFound, ValidationFailed
from ledger.log.envelope import event_hash
from ledger.log.openings import read_openings
from ledger.log.verify import verify_ledger
from ledger.timeutil import format_utc, now_utc
from tests.support.agreements import propose_and_sign
from tests.support.batches import data_payload, discrete_records, refusal, register_batch
from tests.support.world import CONFIDENTIAL_ELEMENTS, World

BATCH = "NWB101-24-001"
CMO, SPONSOR = "contoso-cmo", "northwind-bio"
SUPPLIER = "Irvine Scientific lot 4471 (confidential)"


def _batch(world: World) -> None:
    register_batch(world, propose_and_sign(world), BATCH)


def _committed(value: str = SUPPLIER) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    clear = discrete_records("R")
    clear[1]["media_lot_supplier"] = value
    records, openings = commit_records(clear, CONFIDENTIAL_ELEMENTS)
    return records, [o.as_json() for o in openings]


def _submit(world: World, records: list[dict[str, Any]], openings: list[dict[str, Any]]) -> Any:
    return world[CMO].submit(
        world.ledger,
        "DataSubmitted",
        batch_subject(BATCH),
        data_payload("discrete", records),
        meaning="submitted",
        openings=openings,
    )


def _purge(world: World, commitments: list[str], by: str = CMO, reason: str | None = "ok") -> Any:
    return world[by].submit(
        world.ledger,
        "ElementsPurged",
        batch_subject(BATCH),
        {"commitments": commitments},
        meaning="purged",
        reason=reason,
    )


def test_a_committed_element_is_stored_with_its_opening_apart_from_the_log(world: World):
    _batch(world)
    records, openings = _committed()
    appended = _submit(world, records, openings)

    signed = world.ledger.read(appended.position - 1, 1)[0].event.envelope
    commitment = committed(signed["payload"]["records"][1]["media_lot_supplier"])
    assert commitment is not None
    assert SUPPLIER not in repr(signed)
    stored = read_openings(world.ledger.engine, [commitment])
    assert stored[commitment] == Opening(
        "R-002", "media_lot_supplier", openings[0]["salt"], SUPPLIER
    )


def test_a_confidential_element_in_clear_is_refused(world: World):
    _batch(world)
    records = discrete_records("R")
    records[1]["media_lot_supplier"] = SUPPLIER
    refusal(
        world,
        ValidationFailed,
        "payload.records[1].media_lot_supplier",
        lambda: _submit(world, records, []),
    )


def test_a_commitment_without_an_opening_is_refused(world: World):
    _batch(world)
    records, _ = _committed()
    refusal(
        world,
        ValidationFailed,
        "payload.records[1].media_lot_supplier",
        lambda: _submit(world, records, []),
    )


def test_an_opening_that_does_not_match_its_commitment_is_refused(world: World):
    _batch(world)
    records, openings = _committed()
    openings[0]["value"] = "another supplier"
    refusal(world, ValidationFailed, "openings[0].value", lambda: _submit(world, records, openings))


def test_an_opening_for_an_element_that_is_not_confidential_is_refused(world: World):
    _batch(world)
    records, openings = _committed()
    extra = {"record": "R-001", "element": "method", "salt": "ab" * 32, "value": "HPLC"}
    refusal(
        world,
        ValidationFailed,
        "openings[1].element",
        lambda: _submit(world, records, [*openings, extra]),
    )


def test_an_opening_for_a_record_that_commits_nothing_is_refused(world: World):
    _batch(world)
    records, openings = _committed()
    extra = {"record": "R-001", "element": "media_lot_supplier", "salt": "ab" * 32, "value": "x"}
    refusal(
        world,
        ValidationFailed,
        "openings[1].record",
        lambda: _submit(world, records, [*openings, extra]),
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"salt": "AB" * 32}, "openings[0].salt"),
        ({"salt": "ab" * 16}, "openings[0].salt"),
        ({"value": 7}, "openings[0].value"),
        ({"colour": "red"}, "openings[0].colour"),
    ],
)
def test_a_malformed_opening_is_refused_naming_its_member(
    world: World, change: dict[str, Any], field: str
):
    _batch(world)
    records, openings = _committed()
    openings[0].update(change)
    refusal(world, ValidationFailed, field, lambda: _submit(world, records, openings))


def test_openings_beside_an_event_that_commits_nothing_are_refused(world: World):
    _batch(world)
    opening = {"record": "R-1", "element": "media_lot_supplier", "salt": "ab" * 32, "value": "x"}
    refusal(
        world,
        ValidationFailed,
        "openings[0]",
        lambda: world[CMO].submit(
            world.ledger,
            "BatchEnded",
            batch_subject(BATCH),
            {"ended_at": format_utc(now_utc())},
            meaning="completed",
            openings=[opening],
        ),
    )


def test_a_reused_commitment_is_refused(world: World):
    _batch(world)
    records, openings = _committed()
    _submit(world, records, openings)
    again = [dict(r, id=f"N{r['id']}") for r in records]
    reopened = [dict(o, record=f"N{o['record']}") for o in openings]
    refusal(
        world,
        ValidationFailed,
        "payload.records[1].media_lot_supplier",
        lambda: _submit(world, again, reopened),
    )


def test_the_owner_purges_an_opening_and_the_log_still_verifies(world: World, tmp_path: Path):
    _batch(world)
    records, openings = _committed()
    _submit(world, records, openings)
    commitment = committed(records[1]["media_lot_supplier"])
    assert commitment is not None
    path = world.ledger.settings.sqlite_path()
    files = [] if path is None else [path, path.with_name(path.name + "-wal")]
    if files:
        assert any(SUPPLIER.encode() in f.read_bytes() for f in files if f.exists())

    purged = _purge(world, [commitment], reason="supplier contract ended: retention period over")

    assert purged.purged == (commitment,)
    assert read_openings(world.ledger.engine, [commitment]) == {}
    report = verify_ledger(world.ledger, workers=1)
    assert report.ok, report.problems
    for file in files:  # the value's bytes are gone from the database files
        if file.exists():
            assert SUPPLIER.encode() not in file.read_bytes(), file


def test_only_the_cmo_purges_and_only_what_the_batch_committed_once(world: World):
    _batch(world)
    records, openings = _committed()
    _submit(world, records, openings)
    commitment = committed(records[1]["media_lot_supplier"])
    assert commitment is not None
    refusal(world, Forbidden, "signer", lambda: _purge(world, [commitment], by=SPONSOR))
    refusal(world, NotFound, "payload.commitments[0]", lambda: _purge(world, ["0" * 64]))
    refusal(world, ValidationFailed, "reason", lambda: _purge(world, [commitment], reason=None))
    refusal(world, ValidationFailed, "payload.commitments", lambda: _purge(world, []))
    _purge(world, [commitment])
    refusal(world, ValidationFailed, "payload.commitments[0]", lambda: _purge(world, [commitment]))


def test_a_commitment_opened_in_another_batch_is_refused_naming_the_opening(world: World):
    agreement = propose_and_sign(world)
    register_batch(world, agreement, BATCH)
    register_batch(world, agreement, "NWB101-24-002")
    records, openings = _committed()
    _submit(world, records, openings)
    head = world.ledger.head()
    with pytest.raises(ValidationFailed) as refused:
        world[CMO].submit(
            world.ledger,
            "DataSubmitted",
            batch_subject("NWB101-24-002"),
            data_payload("discrete", records),
            meaning="submitted",
            openings=openings,
        )
    assert refused.value.field == "openings[0]", str(refused.value)
    assert world.ledger.head() == head


def test_a_wrong_opening_in_a_batch_of_envelopes_names_its_envelope(world: World):
    _batch(world)
    first, first_openings = _committed()
    second, second_openings = _committed("another supplier")
    second = [dict(r, id=f"N{r['id']}") for r in second]
    second_openings = [dict(o, record=f"N{o['record']}", value="tampered") for o in second_openings]
    signed = []
    version, prev = world.ledger.next_version(batch_subject(BATCH))
    for records in (first, second):
        envelope = world[CMO].envelope(
            "DataSubmitted",
            batch_subject(BATCH),
            data_payload("discrete", records),
            version=version,
            prev=prev,
            meaning="submitted",
        )
        signature = world[CMO].sign(envelope)
        signed.append((envelope, signature))
        version, prev = version + 1, event_hash(envelope, signature)
    refusal(
        world,
        ValidationFailed,
        "envelopes[1].openings[0].value",
        lambda: world.ledger.append_many(signed, [first_openings, second_openings]),
    )
