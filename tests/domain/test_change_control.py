"""Change control (R22): a change proposal carries its EC impact and reporting category; the
counterparty approves or rejects it once; a change with EC impact is implemented only after
its approval, a rejected one never; a parameter revision citing a change with EC impact is
approved only after the change. Every refusal names its field and stores nothing."""

from __future__ import annotations

import uuid
from typing import Any

from ledger.domain.changes import REPORTING_CATEGORIES, Change
from ledger.domain.parameters import Parameter
from ledger.domain.persons import Person
from ledger.domain.subjects import change_subject, person_subject
from ledger.errors import Forbidden, NotFound, ValidationFailed, VersionConflict
from tests.support.agreements import propose_and_sign, refused
from tests.support.batches import define_parameter
from tests.support.persons import person_key, ready_person
from tests.support.world import Actor, World

SPONSOR, CMO, OTHER_CMO = "northwind-bio", "contoso-cmo", "fabrikam-cmo"
CHANGE = "CC-2026-014"
PARAMETER = "dissolved oxygen"
QU = "q.unit"


def _propose(
    world: World, agreement: uuid.UUID, *, by: str = CMO, change: str = CHANGE, **overrides: Any
) -> uuid.UUID:
    payload: dict[str, Any] = {
        "agreement": str(agreement),
        "change": change,
        "title": "Widen the dissolved-oxygen alert band",
        "description": "Sparger replaced; PPQ data support 30-60 % action limits.",
        "ec_impact": True,
        "reporting_category": "prior-approval",
        "affected_parameters": [PARAMETER],
    }
    payload.update(overrides)
    subject = change_subject(agreement, change)
    world[by].submit(world.ledger, "ChangeProposed", subject, payload, meaning="authored")
    return subject


def _quality_unit(world: World, party: str) -> Actor:
    """The person of ``party`` who decides changes (admitted and ready on first use)."""
    if world.ledger.get_aggregate(person_subject(party, QU), Person) is None:
        return ready_person(world, party, QU)
    return Actor(party, person_key(party, QU), person=QU)


def _decide(world: World, subject: uuid.UUID, *, approve: bool = True, by: str = SPONSOR) -> None:
    if approve:
        _quality_unit(world, by).submit(
            world.ledger, "ChangeApproved", subject, {}, meaning="approved"
        )
    else:
        _quality_unit(world, by).submit(
            world.ledger,
            "ChangeRejected",
            subject,
            {},
            meaning="rejected",
            reason="the PPQ data do not support it",
        )


def _implement(world: World, subject: uuid.UUID, *, by: str = CMO) -> None:
    world[by].submit(world.ledger, "ChangeImplemented", subject, {}, meaning="implemented")


def _change(world: World, subject: uuid.UUID) -> Change:
    found = world.ledger.get_aggregate(subject, Change)
    assert found is not None
    return found


def _agreement_with_parameter(world: World) -> tuple[uuid.UUID, uuid.UUID]:
    for party in (SPONSOR, CMO, OTHER_CMO):  # their deciders, before any refusal is awaited
        _quality_unit(world, party)
    agreement = propose_and_sign(world)
    return agreement, define_parameter(world, agreement, PARAMETER)


def test_r22_change_carries_ec_impact_and_reporting_category(world: World):
    agreement, _ = _agreement_with_parameter(world)
    subject = _propose(world, agreement, reporting_category="cbe-30")
    change = _change(world, subject)
    assert (change.ec_impact, change.reporting_category) == (True, "cbe-30")
    assert change.affected_parameters == [PARAMETER]
    assert (change.proposed_by, change.status) == (CMO, "proposed")
    assert REPORTING_CATEGORIES == ("prior-approval", "cbe-30", "cbe-0", "annual-report")


def test_r22_unknown_reporting_category_is_refused(world: World):
    agreement, _ = _agreement_with_parameter(world)
    with refused(world, ValidationFailed, "payload.reporting_category"):
        _propose(world, agreement, reporting_category="notification")
    with refused(world, ValidationFailed, "payload.reporting_category"):
        _propose(world, agreement, ec_impact=False, reporting_category="prior-approval")
    with refused(world, ValidationFailed, "payload.ec_impact"):
        _propose(world, agreement, ec_impact="yes")


def test_r22_a_change_names_only_parameters_of_its_agreement(world: World):
    agreement, _ = _agreement_with_parameter(world)
    with refused(world, NotFound, "payload.affected_parameters[1]"):
        _propose(world, agreement, affected_parameters=[PARAMETER, "no such parameter"])
    with refused(world, ValidationFailed, "payload.affected_parameters[1]"):
        _propose(world, agreement, affected_parameters=[PARAMETER, PARAMETER])
    subject = _propose(
        world,
        agreement,
        affected_parameters=[],
        ec_impact=False,
        reporting_category="annual-report",
    )
    assert _change(world, subject).affected_parameters == []


def test_r22_a_change_id_is_never_reused_and_names_its_subject(world: World):
    agreement, _ = _agreement_with_parameter(world)
    _propose(world, agreement)
    with refused(world, ValidationFailed, "subject"):
        world[CMO].submit(
            world.ledger,
            "ChangeProposed",
            change_subject(agreement, "CC-2026-015"),
            {
                "agreement": str(agreement),
                "change": "CC-2026-016",
                "title": "t",
                "description": "d",
                "ec_impact": False,
                "reporting_category": "annual-report",
                "affected_parameters": [],
            },
            meaning="authored",
        )
    # The subject is the change id's: a second proposal under the same id is a new
    # envelope for an existing subject.
    with refused(world, VersionConflict, "version"):
        _propose(world, agreement, by=SPONSOR)
    with refused(world, ValidationFailed, "payload.change"):
        _propose(world, agreement, change="CC 2026/17")


def test_r22_a_stranger_cannot_propose_a_change(world: World):
    agreement, _ = _agreement_with_parameter(world)
    with refused(world, Forbidden, "signer"):
        _propose(world, agreement, by=OTHER_CMO)


def test_r22_ec_change_cannot_be_implemented_before_approval(world: World):
    agreement, _ = _agreement_with_parameter(world)
    subject = _propose(world, agreement)
    with refused(world, Forbidden, "subject"):
        _implement(world, subject)
    _decide(world, subject)
    _implement(world, subject)
    change = _change(world, subject)
    assert (change.status, change.decided_by, change.implemented_by) == (
        "implemented",
        SPONSOR,
        CMO,
    )
    with refused(world, Forbidden, "subject"):
        _implement(world, subject)


def test_r22_a_change_without_ec_impact_may_be_implemented_at_once(world: World):
    agreement, _ = _agreement_with_parameter(world)
    subject = _propose(world, agreement, ec_impact=False, reporting_category="annual-report")
    _implement(world, subject)
    assert _change(world, subject).status == "implemented"


def test_r22_only_the_counterparty_approves_a_change(world: World):
    agreement, _ = _agreement_with_parameter(world)
    subject = _propose(world, agreement, by=CMO)
    with refused(world, Forbidden, "signer"):
        _decide(world, subject, by=CMO)
    with refused(world, Forbidden, "signer"):
        _decide(world, subject, by=OTHER_CMO)
    _decide(world, subject, by=SPONSOR)
    with refused(world, Forbidden, "subject"):
        _decide(world, subject, by=SPONSOR, approve=False)


def test_r22_a_rejection_needs_a_reason(world: World):
    agreement, _ = _agreement_with_parameter(world)
    subject = _propose(world, agreement)
    with refused(world, ValidationFailed, "reason"):
        _quality_unit(world, SPONSOR).submit(
            world.ledger, "ChangeRejected", subject, {}, meaning="rejected"
        )


def test_r22_rejected_change_cannot_be_implemented(world: World):
    agreement, _ = _agreement_with_parameter(world)
    subject = _propose(world, agreement, ec_impact=False, reporting_category="annual-report")
    _decide(world, subject, approve=False)
    assert _change(world, subject).rejection_reason == "the PPQ data do not support it"
    with refused(world, Forbidden, "subject"):
        _implement(world, subject)
    with refused(world, Forbidden, "subject"):
        _decide(world, subject)


def test_r22_only_the_proposer_or_the_cmo_implements_a_change(world: World):
    agreement, _ = _agreement_with_parameter(world)
    subject = _propose(world, agreement, by=SPONSOR)
    _quality_unit(world, CMO).submit(
        world.ledger, "ChangeApproved", subject, {}, meaning="approved"
    )
    with refused(world, Forbidden, "signer"):
        _implement(world, subject, by=OTHER_CMO)
    _implement(world, subject, by=CMO)


def _propose_revision(world: World, parameter: uuid.UUID, **extra: Any) -> str:
    revision = str(uuid.uuid4())
    payload = {"revision": revision, "changes": {"action": {"low": "28", "high": "60"}}, **extra}
    world[CMO].submit(
        world.ledger,
        "ParameterRevisionProposed",
        parameter,
        payload,
        meaning="authored",
        reason="change control CC-2026-014",
    )
    return revision


def _approve_revision(world: World, parameter: uuid.UUID, revision: str) -> None:
    world[SPONSOR].submit(
        world.ledger,
        "ParameterRevisionApproved",
        parameter,
        {"revision": revision},
        meaning="approved",
    )


def test_r22_revision_citing_an_ec_change_waits_for_its_approval(world: World):
    agreement, parameter = _agreement_with_parameter(world)
    change = _propose(world, agreement)
    revision = _propose_revision(world, parameter, change=CHANGE)
    with refused(world, Forbidden, "payload.revision"):
        _approve_revision(world, parameter, revision)
    _decide(world, change)
    _approve_revision(world, parameter, revision)
    found = world.ledger.get_aggregate(parameter, Parameter)
    assert found is not None
    assert found.revisions[revision]["change"] == CHANGE
    assert found.action == {"low": "28", "high": "60"}


def test_r22_a_revision_cites_a_change_of_its_parameter(world: World):
    agreement, parameter = _agreement_with_parameter(world)
    define_parameter(world, agreement, "pH")
    with refused(world, NotFound, "payload.change"):
        _propose_revision(world, parameter, change=CHANGE)
    _propose(world, agreement, affected_parameters=["pH"])
    with refused(world, ValidationFailed, "payload.change"):
        _propose_revision(world, parameter, change=CHANGE)
    other = propose_and_sign(world)
    define_parameter(world, other, PARAMETER)
    _propose(world, other, change="CC-2026-020")
    with refused(world, NotFound, "payload.change"):
        _propose_revision(world, parameter, change="CC-2026-020")


def test_r22_a_revision_citing_a_change_without_ec_impact_is_approved_at_once(world: World):
    agreement, parameter = _agreement_with_parameter(world)
    _propose(world, agreement, ec_impact=False, reporting_category="annual-report")
    revision = _propose_revision(world, parameter, change=CHANGE)
    _approve_revision(world, parameter, revision)


def test_r22_a_change_decided_with_a_party_key_is_refused(world: World) -> None:
    agreement, _ = _agreement_with_parameter(world)
    subject = _propose(world, agreement)
    for kind, meaning, reason in (
        ("ChangeApproved", "approved", None),
        ("ChangeRejected", "rejected", "not supported"),
    ):
        with refused(world, Forbidden, "person"):
            world[SPONSOR].submit(world.ledger, kind, subject, {}, meaning=meaning, reason=reason)
    assert _change(world, subject).decision is None
