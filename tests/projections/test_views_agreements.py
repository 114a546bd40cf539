"""Agreements, ownership, parameters, enhancements and reviews, as they stood at any position."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from ledger.domain.commitments import commitment_of
from ledger.log.countersign import countersign
from ledger.timeutil import format_utc, now_utc
from projections.agreements import AGREEMENTS, AMENDMENTS, TERMS
from projections.enhancements import DOSSIERS, ENHANCEMENTS
from projections.ownership import DATA_OWNERSHIP, ENHANCEMENT_OWNERSHIP
from projections.parameters import LIMITS, REVISIONS, parameters_as_of
from projections.reviews import SCHEDULE, review_state
from projections.runner import Projector
from projections.temporal import as_of
from tests.support.agreements import complete_review, propose_and_sign
from tests.support.batches import define_parameter, register_batch
from tests.support.world import ORIGIN, World, agreement_terms

SPONSOR, CMO = "northwind-bio", "contoso-cmo"


def _rows(world: World, table: sa.Table, position: int | None = None, **where: Any) -> list[Any]:
    query = sa.select(table).where(*[table.c[k] == v for k, v in where.items()])
    query = query.where(table.c.valid_to.is_(None) if position is None else as_of(table, position))
    with world.ledger.engine.connect() as conn:
        return [row._mapping for row in conn.execute(query)]


def test_the_do_limits_that_applied_to_a_batch_are_those_in_force_when_it_was_made(
    world: World, projector: Projector
) -> None:
    agreement = propose_and_sign(world)
    do = define_parameter(world, agreement, "dissolved oxygen")
    register_batch(world, agreement, "NWB101-24-007")
    made = world.ledger.head()
    revision = str(uuid.uuid4())
    changes = {"alert": {"low": "35", "high": "50"}, "status": "confirmed"}
    world[CMO].submit(
        world.ledger,
        "ParameterRevisionProposed",
        do,
        {"revision": revision, "changes": changes},
        meaning="authored",
        reason="first six-month review: DO rarely below 35 %",
    )
    world[SPONSOR].submit(
        world.ledger, "ParameterRevisionApproved", do, {"revision": revision}, meaning="approved"
    )

    with world.ledger.engine.connect() as conn:
        (then,) = parameters_as_of(conn, made, str(agreement))
        (now,) = parameters_as_of(conn, world.ledger.head(), str(agreement))
    assert (then["alert_low"], then["alert_high"], then["status"]) == ("32", "55", "hypothesis")
    assert (now["alert_low"], now["alert_high"], now["status"]) == ("35", "50", "confirmed")
    (limits_then,) = _rows(world, LIMITS, made, parameter=str(do))
    assert limits_then["limits_version"] == 1
    (decided,) = _rows(world, REVISIONS, parameter=str(do))
    assert (decided["outcome"], decided["decided_by"]) == ("approved", SPONSOR)


def test_the_terms_in_force_before_an_amendment_stay_answerable(
    world: World, projector: Projector
) -> None:
    agreement = propose_and_sign(world)
    signed = world.ledger.head()
    terms = {**agreement_terms(), "review_cadence_months": 12}
    terms["data_classes"]["continuous"]["owner"] = CMO
    world[CMO].submit(
        world.ledger,
        "AgreementAmended",
        agreement,
        {"terms": terms},
        meaning="authored",
        reason="historian data stays with the CMO",
    )
    world[SPONSOR].submit(world.ledger, "AgreementAmendmentSigned", agreement, {}, meaning="signed")

    (before,) = _rows(world, TERMS, signed, agreement=str(agreement))
    (after,) = _rows(world, TERMS, agreement=str(agreement))
    assert (before["terms_version"], after["terms_version"]) == (1, 2)
    (row,) = _rows(world, AGREEMENTS, agreement=str(agreement))
    assert (row["status"], row["terms_version"], row["pending"]) == ("effective", 2, False)
    (amendment,) = _rows(world, AMENDMENTS, agreement=str(agreement))
    assert (amendment["status"], amendment["decided_by"]) == ("signed", SPONSOR)
    owners = {r["data_class"]: r["owner"] for r in _rows(world, DATA_OWNERSHIP)}
    assert owners == {"continuous": CMO, "discrete": SPONSOR, "event": SPONSOR}
    owners_then = {r["data_class"]: r["owner"] for r in _rows(world, DATA_OWNERSHIP, signed)}
    assert owners_then["continuous"] == SPONSOR


def test_a_disputed_claim_resolved_as_joint_belongs_to_both_and_is_disclosed(
    world: World, projector: Projector
) -> None:
    agreement = propose_and_sign(world)
    claim, salt, dossier = uuid.uuid4(), b"\x07" * 16, b"feed strategy B: glucose bolus day 5"
    payload = {
        "agreement": str(agreement),
        "title": "Fed-batch feed strategy B",
        "summary": "A second glucose bolus on day 5 raises titer by about 12 %.",
        "commitment": commitment_of(salt, dossier),
        "parameter_versions": [],
        "evidence": [],
        "ownership_claimed": "cmo",
    }
    world[CMO].submit(world.ledger, "EnhancementClaimed", claim, payload, meaning="authored")
    claimed_at = world.ledger.head()
    world[SPONSOR].submit(
        world.ledger,
        "EnhancementDisputed",
        claim,
        {},
        meaning="disputed",
        reason="the bolus was the sponsor's proposal",
    )
    body = {"owner": "joint"}
    cosig = countersign(ORIGIN, "EnhancementResolved", str(claim), body, CMO, world[CMO].key)
    world[SPONSOR].submit(
        world.ledger,
        "EnhancementResolved",
        claim,
        {**body, "countersignature": cosig},
        meaning="resolved",
    )
    disclosure = {"dossier": base64.b64encode(dossier).decode(), "salt": salt.hex()}
    world[CMO].submit(world.ledger, "EnhancementDisclosed", claim, disclosure, meaning="disclosed")

    (row,) = _rows(world, ENHANCEMENTS, enhancement=str(claim))
    assert (row["status"], row["owner"], row["priority"]) == ("resolved", "joint", claimed_at)
    assert row["countersigned_by"] == CMO and row["disclosed_at"] is not None
    (owner,) = _rows(world, ENHANCEMENT_OWNERSHIP, enhancement=str(claim))
    assert owner["owner_parties"] == f'["{SPONSOR}","{CMO}"]'
    (disclosed,) = _rows(world, DOSSIERS, enhancement=str(claim))
    assert base64.b64decode(disclosed["dossier"]) == dossier
    (then,) = _rows(world, ENHANCEMENTS, claimed_at, enhancement=str(claim))
    assert then["status"] == "claimed"


def test_an_overdue_review_is_computed_when_asked(world: World, projector: Projector) -> None:
    agreement = propose_and_sign(world)
    (fresh,) = _rows(world, SCHEDULE, agreement=str(agreement))
    assert review_state(fresh, now_utc()) == "due"
    assert review_state(fresh, now_utc() + timedelta(days=200)) == "overdue"

    period_end = now_utc() - timedelta(days=240)
    next_due = format_utc(period_end + timedelta(days=180))
    complete_review(
        world, agreement, SPONSOR, CMO, period_end=format_utc(period_end), next_due=next_due
    )

    (row,) = _rows(world, SCHEDULE, agreement=str(agreement))
    assert row["next_due"] == next_due
    assert review_state(row, now_utc()) == "overdue"
    world[SPONSOR].submit(
        world.ledger, "AgreementTerminated", agreement, {}, meaning="revoked", reason="moved"
    )
    (ended,) = _rows(world, SCHEDULE, agreement=str(agreement))
    assert review_state(ended, now_utc()) == "terminated"
