"""Audit-trail review and disposition (R13, R14): the sponsor reviews an ended batch's audit
trail as a signed checkpoint shows it, then releases, rejects or quarantines the batch;
every disposition out of sequence is refused with its code and field, and nothing is
stored."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest

from ledger.domain.batches import Batch
from ledger.domain.subjects import batch_subject
from ledger.errors import Forbidden, ValidationFailed
from tests.support.agreements import propose_and_sign, refused
from tests.support.batches import (
    end_batch,
    event_records,
    refusal,
    register_batch,
    submit_data,
)
from tests.support.persons import person_key, ready_person
from tests.support.world import Actor, World

SPONSOR, CMO = "northwind-bio", "contoso-cmo"
BATCH = "NWB101-25-201"
SUBJECT = batch_subject(BATCH)
DEVIATION, OOT = "E-001", "E-003"


def _qa(party: str = SPONSOR) -> Actor:
    """The person of ``party`` who reviews and dispositions (see :func:`ready_person`)."""
    return Actor(party, person_key(party, "j.smith"), person="j.smith")


def _batch_with_deviations(world: World, *, ended: bool = True) -> uuid.UUID:
    ready_person(world, SPONSOR)
    agreement = propose_and_sign(world)
    register_batch(world, agreement, BATCH)
    submit_data(world, BATCH, "event", event_records())
    if ended:
        end_batch(world, BATCH)
    return agreement


def _acknowledge(world: World, *records: str) -> None:
    world[SPONSOR].submit(
        world.ledger,
        "DataAcknowledged",
        SUBJECT,
        {"records": list(records)},
        meaning="acknowledged",
    )


def _review(world: World, *, by: Actor | None = None, **overrides: Any) -> None:
    size = world.ledger.head()  # the latest checkpoint holds every event so far
    payload: dict[str, Any] = {
        "batch": BATCH,
        "checkpoint_size": size,
        "checkpoint_root": hashlib.sha256(f"root {size}".encode()).hexdigest(),
        "outcome": "no unexplained changes; deviation E-001 investigated",
    }
    payload.update(overrides)
    (by or _qa()).submit(world.ledger, "AuditTrailReviewed", SUBJECT, payload, meaning="reviewed")


def _disposition(
    world: World,
    disposition: str = "released",
    *,
    by: Actor | None = None,
    reason: str | None = "reviewed; within specification",
    **overrides: Any,
) -> None:
    payload = {"batch": BATCH, "disposition": disposition, **overrides}
    (by or _qa()).submit(
        world.ledger,
        "BatchDispositioned",
        SUBJECT,
        payload,
        meaning="dispositioned",
        reason=reason,
    )


def _ready(world: World) -> None:
    """An ended batch, its deviations acknowledged and its audit trail reviewed."""
    _batch_with_deviations(world)
    _acknowledge(world, DEVIATION, OOT)
    _review(world)


def _batch(world: World) -> Batch:
    batch = world.ledger.get_aggregate(SUBJECT, Batch)
    assert batch is not None
    return batch


def test_r13_a_batch_is_released_only_after_its_audit_trail_is_reviewed(world: World):
    _ready(world)
    _disposition(world, "released")
    batch = _batch(world)
    assert batch.disposition is not None
    assert batch.disposition["disposition"] == "released"
    assert batch.disposition["by"] == SPONSOR
    assert batch.disposition["reason"] == "reviewed; within specification"
    assert [r["covers_version"] for r in batch.audit_reviews] == [4]  # reg, data, end, ack
    assert batch.disposition["review_version"] == batch.audit_reviews[-1]["version"] == 5


def test_r13_a_batch_without_an_audit_trail_review_is_not_dispositioned(world: World):
    _batch_with_deviations(world)
    _acknowledge(world, DEVIATION, OOT)
    with refused(world, Forbidden, "subject"):
        _disposition(world)


def test_r14_a_batch_that_has_not_ended_is_not_reviewed_nor_dispositioned(world: World):
    _batch_with_deviations(world, ended=False)
    _acknowledge(world, DEVIATION, OOT)
    with refused(world, Forbidden, "subject"):
        _review(world)
    with refused(world, Forbidden, "subject"):
        _disposition(world)


def test_r13_a_review_older_than_the_batch_s_last_event_does_not_allow_a_disposition(
    world: World,
):
    _batch_with_deviations(world)
    _review(world)  # before the acknowledgements
    _acknowledge(world, DEVIATION, OOT)
    with refused(world, Forbidden, "subject"):
        _disposition(world)
    _review(world)  # a new review, at a checkpoint that holds the acknowledgement
    _disposition(world, "rejected", reason="deviation E-001 impacts product quality")
    assert _batch(world).disposition is not None


def test_r13_a_checkpoint_too_small_to_hold_the_batch_s_last_event_is_refused(world: World):
    _batch_with_deviations(world)
    _acknowledge(world, DEVIATION, OOT)
    # The batch's last event is its version 4: no checkpoint of 3 leaves holds it.
    with refused(world, ValidationFailed, "payload.checkpoint_size"):
        _review(world, checkpoint_size=3)


def test_r13_release_of_a_batch_with_an_unacknowledged_deviation_is_refused_naming_it(
    world: World,
):
    _batch_with_deviations(world)
    _acknowledge(world, OOT)
    _review(world)
    error = refusal(world, Forbidden, "subject", lambda: _disposition(world))
    assert f"record {DEVIATION} (deviation, version 1)" in error.message


@pytest.mark.parametrize("by", [CMO, "helios-tx", "agency-inspectorate"])
def test_r13_only_the_sponsor_reviews_and_dispositions(world: World, by: str):
    _ready(world)
    other = ready_person(world, by, "m.weber")
    with refused(world, Forbidden, "signer"):
        _review(world, by=other)
    with refused(world, Forbidden, "signer"):
        _disposition(world, by=other)


def test_r13_disposition_signed_by_an_organisation_key_is_refused(world: World):
    _ready(world)
    with refused(world, Forbidden, "person"):
        _review(world, by=world[SPONSOR])
    with refused(world, Forbidden, "person"):
        _disposition(world, by=world[SPONSOR])
    _disposition(world)
    batch = _batch(world)
    assert batch.disposition is not None
    assert batch.disposition["disposition"] == "released"


def test_r13_a_disposition_without_a_reason_is_refused(world: World):
    _ready(world)
    with refused(world, ValidationFailed, "reason"):
        _disposition(world, reason=None)


@pytest.mark.parametrize("disposition", ["approved", "RELEASED", ""])
def test_r13_an_unknown_disposition_is_refused(world: World, disposition: str):
    _ready(world)
    with refused(world, ValidationFailed, "payload.disposition"):
        _disposition(world, disposition)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"batch": "NWB101-25-999"}, "payload.batch"),
        ({"checkpoint_size": 0}, "payload.checkpoint_size"),
        ({"checkpoint_size": "12"}, "payload.checkpoint_size"),
        ({"checkpoint_root": "not-hex"}, "payload.checkpoint_root"),
        ({"outcome": ""}, "payload.outcome"),
    ],
)
def test_r13_a_malformed_review_is_refused(world: World, overrides: dict[str, Any], field: str):
    _batch_with_deviations(world)
    with refused(world, ValidationFailed, field):
        _review(world, **overrides)


def test_r13_a_disposition_naming_another_batch_is_refused(world: World):
    _ready(world)
    with refused(world, ValidationFailed, "payload.batch"):
        _disposition(world, batch="NWB101-25-999")


def test_r13_a_quarantined_batch_is_dispositioned_again_after_a_new_review(world: World):
    _ready(world)
    _disposition(world, "quarantined", reason="awaiting the deviation's CAPA")
    with refused(world, Forbidden, "subject"):  # the quarantine is not yet reviewed
        _disposition(world, "released")
    _review(world)
    _disposition(world, "released", reason="CAPA closed")
    _review(world)
    with refused(world, Forbidden, "subject"):  # released is final
        _disposition(world, "rejected", reason="changed my mind")
