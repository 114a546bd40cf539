"""Second-person verification of manually entered critical values (R17, EU GMP Annex 11 §6):
a value a person of the CMO typed for a critical parameter counts only once another person
of the CMO verified it; until then it is shown unverified and the batch is not
dispositioned. Every verification out of turn is refused with its code and field, and
nothing is stored."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from ledger.application import Ledger
from ledger.domain.batches import Batch
from ledger.domain.formats import MANUAL_SOURCE
from ledger.domain.subjects import batch_subject, parameter_subject
from ledger.errors import Forbidden, NotFound, ValidationFailed
from ledger.timeutil import format_utc, now_utc
from projections.data import RECORDS
from projections.rebuild import rebuild
from projections.runner import Projector
from tests.projections.conftest import differences, snapshot
from tests.support.agreements import propose_and_sign, refused
from tests.support.batches import (
    data_payload,
    define_parameter,
    end_batch,
    register_batch,
    revise_parameter,
    submit_data,
)
from tests.support.persons import ready_person
from tests.support.world import Actor, World

SPONSOR, CMO = "northwind-bio", "contoso-cmo"
BATCH = "NWB101-25-301"
SUBJECT = batch_subject(BATCH)
HMW = "high molecular weight species"  # a CQA, confirmed (WORLD.md)
DO = "dissolved oxygen"  # a CPP still a hypothesis
CMO_MEANINGS = ("submitted", "corrected", "verified")


@pytest.fixture
def views(ledger: Ledger) -> Iterator[Projector]:
    """The views, following the ledger."""
    running = Projector(ledger).start()
    try:
        yield running
    finally:
        running.close()


def result(record_id: str, value: str, parameter: str = HMW) -> dict[str, Any]:
    return {
        "id": record_id,
        "parameter": parameter,
        "value": value,
        "unit": "%",
        "sampled_at": format_utc(now_utc() - timedelta(days=1)),
        "method": "SE-HPLC, read off the chromatogram by hand",
    }


class Plant:
    """A batch of the agreement, and the CMO's two persons who enter and check values."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.agreement = propose_and_sign(world)
        define_parameter(world, self.agreement, HMW)
        define_parameter(world, self.agreement, DO)
        register_batch(world, self.agreement, BATCH)
        self.entrant = ready_person(world, CMO, "a.okafor", CMO_MEANINGS)
        self.checker = ready_person(world, CMO, "m.weber", CMO_MEANINGS)

    def enter(self, *records: dict[str, Any], source: str = MANUAL_SOURCE) -> str:
        """The entrant types ``records`` in; the submission's id."""
        submission = str(uuid.uuid4())
        submit_data(
            self.world,
            BATCH,
            "discrete",
            list(records),
            by=self.entrant,
            submission=submission,
            source_system=source,
        )
        return submission

    def correct(self, record: dict[str, Any]) -> str:
        """The entrant corrects a typing error in ``record``; the correction's id."""
        submission = str(uuid.uuid4())
        payload = {"submission": submission, "supersedes": [record["id"]], "records": [record]}
        reason = "typing error: the chromatogram reads otherwise"
        self.entrant.submit(
            self.world.ledger, "DataCorrected", SUBJECT, payload, meaning="corrected", reason=reason
        )
        return submission

    def verify(self, submission: str, *records: str, by: Actor | None = None) -> None:
        payload = {
            "batch": BATCH,
            "submission": submission,
            "records": list(records),
            "comment": "checked against the chromatogram printout",
        }
        (by or self.checker).submit(
            self.world.ledger, "DataVerified", SUBJECT, payload, meaning="verified"
        )

    def batch(self) -> Batch:
        found = self.world.ledger.get_aggregate(SUBJECT, Batch)
        assert found is not None
        return found


def _review(world: World, qa: Actor) -> None:
    size = world.ledger.head()
    review = {
        "batch": BATCH,
        "checkpoint_size": size,
        "checkpoint_root": hashlib.sha256(f"root {size}".encode()).hexdigest(),
        "outcome": "no unexplained changes",
    }
    qa.submit(world.ledger, "AuditTrailReviewed", SUBJECT, review, meaning="reviewed")


def _release(world: World, qa: Actor) -> None:
    released = {"batch": BATCH, "disposition": "released"}
    reason = "reviewed; within specification"
    qa.submit(
        world.ledger,
        "BatchDispositioned",
        SUBJECT,
        released,
        meaning="dispositioned",
        reason=reason,
    )


def _review_and_release(world: World, qa: Actor) -> None:
    _review(world, qa)
    _release(world, qa)


def _view_row(world: World, record_id: str) -> Any:
    query = sa.select(RECORDS).where(RECORDS.c.record_id == record_id)
    with world.ledger.engine.connect() as conn:
        rows = conn.execute(query.where(RECORDS.c.valid_to.is_(None))).all()
    current = [row._mapping for row in rows if row.status == "current"]
    assert len(current) == 1, rows
    return current[0]


def test_r17_manual_critical_value_is_unverified_until_verified(
    world: World, views: Projector
) -> None:
    plant = Plant(world)
    submission = plant.enter(result("M-001", "1.1"))
    row = _view_row(world, "M-001")
    assert (row["manual"], row["verified"], row["verified_by"]) == (True, False, None)
    end_batch(world, BATCH)
    qa = ready_person(world, SPONSOR)
    _review(world, qa)
    with refused(world, Forbidden, "subject"):
        _release(world, qa)
    assert plant.batch().disposition is None

    plant.verify(submission, "M-001")

    row = _view_row(world, "M-001")
    assert (row["verified"], row["verified_by"]) == (True, "m.weber")
    assert row["verified_at"] is not None
    assert plant.batch().records["M-001"]["verified_version"] == 1
    _review_and_release(world, qa)
    disposition = plant.batch().disposition
    assert disposition is not None and disposition["disposition"] == "released"


def test_r17_self_verification_is_refused(world: World) -> None:
    plant = Plant(world)
    submission = plant.enter(result("M-001", "1.1"))
    with refused(world, Forbidden, "person"):
        plant.verify(submission, "M-001", by=plant.entrant)
    with refused(world, Forbidden, "person"):  # the CMO's party key is no person
        plant.verify(submission, "M-001", by=world[CMO])
    assert plant.batch().records["M-001"]["verified_version"] is None


def test_r17_verification_by_the_sponsor_is_refused(world: World) -> None:
    plant = Plant(world)
    submission = plant.enter(result("M-001", "1.1"))
    sponsor_qa = ready_person(world, SPONSOR)
    with refused(world, Forbidden, "signer"):
        plant.verify(submission, "M-001", by=sponsor_qa)


def test_r17_verification_out_of_turn_is_refused_naming_the_record(world: World) -> None:
    plant = Plant(world)
    submission = plant.enter(result("M-001", "1.1"), result("D-001", "41", DO))
    automatic = plant.enter(result("L-001", "0.9"), source="contoso-lims")
    with refused(world, ValidationFailed, "payload.records[0]"):  # not critical
        plant.verify(submission, "D-001")
    with refused(world, ValidationFailed, "payload.records[0]"):  # not manual
        plant.verify(automatic, "L-001")
    with refused(world, ValidationFailed, "payload.records[0]"):  # not in that submission
        plant.verify(submission, "L-001")
    with refused(world, NotFound, "payload.records[0]"):
        plant.verify(submission, "M-404")
    with refused(world, NotFound, "payload.submission"):
        plant.verify(str(uuid.uuid4()), "M-001")
    with refused(world, ValidationFailed, "payload.records[1]"):
        plant.verify(submission, "M-001", "M-001")
    with refused(world, ValidationFailed, "payload.batch"):
        payload = {"batch": "NWB101-25-999", "submission": submission, "records": ["M-001"]}
        plant.checker.submit(world.ledger, "DataVerified", SUBJECT, payload, meaning="verified")
    plant.verify(submission, "M-001")
    with refused(world, ValidationFailed, "payload.records[0]"):  # already verified
        plant.verify(submission, "M-001")


def test_r17_correction_needs_verification_again(world: World, views: Projector) -> None:
    plant = Plant(world)
    first = plant.enter(result("M-001", "1.1"))
    plant.verify(first, "M-001")
    correction = plant.correct(result("M-001", "1.4"))

    row = _view_row(world, "M-001")
    assert (row["record_version"], row["manual"], row["verified"]) == (2, True, False)
    with refused(world, ValidationFailed, "payload.records[0]"):  # version 1 was replaced
        plant.verify(first, "M-001")
    with refused(world, Forbidden, "person"):  # the corrector checks no own correction
        plant.verify(correction, "M-001", by=plant.entrant)
    plant.verify(correction, "M-001")
    assert _view_row(world, "M-001")["verified"] is True
    assert plant.batch().records["M-001"]["verified_version"] == 2


def test_r17_automatic_source_values_need_no_verification(world: World, views: Projector) -> None:
    plant = Plant(world)
    automatic = plant.enter(result("L-001", "1.1"), source="contoso-lims")
    row = _view_row(world, "L-001")
    assert (row["manual"], row["verified"]) == (False, True)
    with refused(world, ValidationFailed, "payload.records[0]"):
        plant.verify(automatic, "L-001")
    end_batch(world, BATCH)
    _review_and_release(world, ready_person(world, SPONSOR))
    assert plant.batch().disposition is not None


def test_r17_a_parameter_confirmed_later_makes_its_manual_values_wait(
    world: World, views: Projector
) -> None:
    plant = Plant(world)
    submission = plant.enter(result("D-001", "41", DO))
    assert _view_row(world, "D-001")["verified"] is True  # a hypothesis: not critical yet
    end_batch(world, BATCH)
    confirmed = {"status": "confirmed"}
    reason = "process characterisation confirmed dissolved oxygen as critical"
    revise_parameter(world, parameter_subject(plant.agreement, DO), confirmed, reason=reason)

    assert _view_row(world, "D-001")["verified"] is False
    qa = ready_person(world, SPONSOR)
    _review(world, qa)
    with refused(world, Forbidden, "subject"):
        _release(world, qa)
    plant.verify(submission, "D-001")
    assert _view_row(world, "D-001")["verified"] is True
    _review_and_release(world, qa)
    incremental = snapshot(views)
    rebuild(world.ledger, page_size=3)  # the re-marking replays the same, page by page
    assert differences(incremental, snapshot(views)) == []


def test_r17_manual_values_are_signed_by_the_person_who_entered_them(world: World) -> None:
    plant = Plant(world)
    typed = data_payload("discrete", [result("M-001", "1.1")], source_system=MANUAL_SOURCE)
    with refused(world, Forbidden, "person"):  # the CMO's party key names nobody
        world[CMO].submit(world.ledger, "DataSubmitted", SUBJECT, typed, meaning="submitted")
    plant.enter(result("M-001", "1.1"))
    correction = {
        "submission": str(uuid.uuid4()),
        "supersedes": ["M-001"],
        "records": [result("M-001", "1.4")],
    }
    with refused(world, Forbidden, "person"):
        world[CMO].submit(
            world.ledger,
            "DataCorrected",
            SUBJECT,
            correction,
            meaning="corrected",
            reason="typing error",
        )
