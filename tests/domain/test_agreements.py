"""The quality agreement as data (R29): proposed by one party, in force once the other signs."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from ledger.domain.agreements import Agreement
from ledger.errors import Forbidden, LedgerError, NotFound, ValidationFailed
from ledger.timeutil import parse_utc
from tests.support.agreements import grant, propose_and_sign, refused
from tests.support.world import World, agreement_terms


def _propose(world: World, by: str = "northwind-bio", terms: Any = None) -> uuid.UUID:
    agreement_id = uuid.uuid4()
    payload = {"terms": agreement_terms() if terms is None else terms}
    world[by].submit(world.ledger, "AgreementProposed", agreement_id, payload, meaning="authored")
    return agreement_id


def _agreement(world: World, agreement_id: uuid.UUID, version: int | None = None) -> Agreement:
    found = world.ledger.repository.get(agreement_id, version=version)
    assert isinstance(found, Agreement)
    return found


def _amended_terms() -> dict[str, Any]:
    terms = agreement_terms()
    terms["data_classes"]["continuous"]["delivery"]["within_hours"] = 12
    return terms


def test_agreement_proposed_by_the_sponsor_and_signed_by_the_cmo_is_in_force(world: World):
    agreement_id = _propose(world, "northwind-bio")
    proposed = _agreement(world, agreement_id)
    assert proposed.status == "proposed"
    assert not proposed.is_effective()
    assert proposed.proposed_by == "northwind-bio"
    assert proposed.history == []

    signed = world["contoso-cmo"].submit(
        world.ledger, "AgreementSigned", agreement_id, {}, meaning="signed"
    )

    agreement = _agreement(world, agreement_id)
    assert agreement.is_effective()
    assert (agreement.sponsor, agreement.cmo) == ("northwind-bio", "contoso-cmo")
    assert agreement.terms == agreement_terms()
    assert agreement.history == [
        {
            "version": 1,
            "effective_from": signed.recorded_at,
            "event_version": 2,
            "terms": agreement_terms(),
        }
    ]
    assert agreement.counterparty("contoso-cmo") == "northwind-bio"
    assert agreement.is_party("northwind-bio") and not agreement.is_party("helios-tx")
    assert agreement.owner_of("event") == "northwind-bio"
    with pytest.raises(Forbidden):
        agreement.counterparty("helios-tx")


def test_agreement_proposed_by_the_cmo_is_signed_by_the_sponsor(world: World):
    agreement_id = _propose(world, "contoso-cmo")
    world["northwind-bio"].submit(
        world.ledger, "AgreementSigned", agreement_id, {}, meaning="approved"
    )
    assert _agreement(world, agreement_id).is_effective()


def test_review_cadence_defaults_to_six_months_and_confidential_elements_to_none(world: World):
    terms = agreement_terms()
    del terms["review_cadence_months"]
    del terms["confidential_elements"]
    agreement = _agreement(world, propose_and_sign(world, terms=terms))
    assert agreement.terms["review_cadence_months"] == 6
    assert agreement.terms["confidential_elements"] == []


def test_proposal_by_a_party_not_named_in_the_terms_is_refused(world: World):
    with refused(world, Forbidden, "signer"):
        _propose(world, "helios-tx")


def test_signature_by_the_proposer_is_refused(world: World):
    agreement_id = _propose(world, "northwind-bio")
    with refused(world, Forbidden, "signer"):
        world["northwind-bio"].submit(
            world.ledger, "AgreementSigned", agreement_id, {}, meaning="signed"
        )
    assert _agreement(world, agreement_id).status == "proposed"


def test_signature_by_a_stranger_is_refused(world: World):
    agreement_id = _propose(world, "northwind-bio")
    for stranger in ("helios-tx", "fabrikam-cmo", "agency-inspectorate"):
        with refused(world, Forbidden, "signer"):
            world[stranger].submit(
                world.ledger, "AgreementSigned", agreement_id, {}, meaning="signed"
            )


def test_signing_an_agreement_twice_is_refused(world: World):
    agreement_id = propose_and_sign(world)
    with refused(world, Forbidden, "subject"):
        world["contoso-cmo"].submit(
            world.ledger, "AgreementSigned", agreement_id, {}, meaning="signed"
        )


@pytest.mark.parametrize(
    ("role", "party", "error"),
    [
        ("sponsor", "contoso-cmo", ValidationFailed),
        ("sponsor", "qa-auditor-llc", ValidationFailed),
        ("cmo", "helios-tx", ValidationFailed),
        ("cmo", "agency-inspectorate", ValidationFailed),
        ("cmo", "unknown-cmo", NotFound),
    ],
)
def test_sponsor_and_cmo_with_the_wrong_role_are_refused(
    world: World, role: str, party: str, error: type[LedgerError]
):
    terms = agreement_terms()
    terms[role] = party
    with refused(world, error, f"payload.terms.{role}"):
        _propose(world, "northwind-bio", terms)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(terms: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = terms
        for name in parents:
            target = target[name]
        target[last] = value

    return change


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def change(terms: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = terms
        for name in parents:
            target = target[name]
        del target[last]

    return change


_CONTINUOUS = "data_classes.continuous"
TERMS_REFUSALS: list[tuple[Callable[[dict[str, Any]], None], str]] = [
    (_set("price", "1000"), "price"),
    (_drop("title"), "title"),
    (_set("title", " "), "title"),
    (_set("products", []), "products"),
    (_set("products", ["NWB-101", "NWB-101"]), "products[1]"),
    (_drop("sites"), "sites"),
    (_set("sites", [""]), "sites[0]"),
    (_set("data_classes", {}), "data_classes"),
    (_set("data_classes.Images", {}), "data_classes.Images"),
    (_set("data_classes.images", {}), "data_classes.images.owner"),
    (_set("data_classes.discrete.owner", "helios-tx"), "data_classes.discrete.owner"),
    (_set(f"{_CONTINUOUS}.delivery.within_hours", 0), f"{_CONTINUOUS}.delivery.within_hours"),
    (_set(f"{_CONTINUOUS}.delivery.within_hours", 8761), f"{_CONTINUOUS}.delivery.within_hours"),
    (_set(f"{_CONTINUOUS}.delivery.after", "shipment"), f"{_CONTINUOUS}.delivery.after"),
    (_drop(f"{_CONTINUOUS}.format.name"), f"{_CONTINUOUS}.format.name"),
    (_set(f"{_CONTINUOUS}.format.columns", []), f"{_CONTINUOUS}.format.columns"),
    (_set(f"{_CONTINUOUS}.format.columns", ["tag", "tag"]), f"{_CONTINUOUS}.format.columns[1]"),
    (_set(f"{_CONTINUOUS}.format.encoding", "utf-8"), f"{_CONTINUOUS}.format.encoding"),
    (_set("confidential_elements", ["Media Lot"]), "confidential_elements[0]"),
    (_set("confidential_elements", ["x", "x"]), "confidential_elements[1]"),
    (_set("ip_rule", "shared"), "ip_rule"),
    (_set("review_cadence_months", 0), "review_cadence_months"),
    (_set("review_cadence_months", 61), "review_cadence_months"),
    (_drop("deviation_deadline_hours"), "deviation_deadline_hours"),
    (_set("deviation_deadline_hours", 721), "deviation_deadline_hours"),
]


@pytest.mark.parametrize(("change", "field"), TERMS_REFUSALS, ids=[f for _, f in TERMS_REFUSALS])
def test_each_invalid_term_is_refused_naming_its_field(
    world: World, change: Callable[[dict[str, Any]], None], field: str
):
    terms = agreement_terms()
    change(terms)
    with refused(world, ValidationFailed, f"payload.terms.{field}"):
        _propose(world, "northwind-bio", terms)


def test_proposal_without_terms_is_refused(world: World):
    with refused(world, ValidationFailed, "payload.terms"):
        world["northwind-bio"].submit(
            world.ledger, "AgreementProposed", uuid.uuid4(), {}, meaning="authored"
        )


def test_grant_under_an_unsigned_agreement_is_refused_as_not_in_force(world: World):
    agreement_id = _propose(world)
    with refused(world, Forbidden, "payload.agreement"):
        grant(world, agreement_id, "northwind-bio", "fabrikam-cmo")
    with refused(world, NotFound, "payload.agreement"):
        grant(world, uuid.uuid4(), "northwind-bio", "fabrikam-cmo")


def test_amendment_takes_effect_only_when_the_other_party_countersigns(world: World):
    agreement_id = propose_and_sign(world)
    world["contoso-cmo"].submit(
        world.ledger,
        "AgreementAmended",
        agreement_id,
        {"terms": _amended_terms()},
        meaning="authored",
        reason="historian exports now run twice a day",
    )
    pending = _agreement(world, agreement_id)
    assert pending.terms == agreement_terms()
    assert pending.pending_amendment is not None
    assert pending.pending_amendment["proposed_by"] == "contoso-cmo"
    assert pending.pending_amendment["terms"] == _amended_terms()

    with refused(world, Forbidden, "signer"):
        world["contoso-cmo"].submit(
            world.ledger, "AgreementAmendmentSigned", agreement_id, {}, meaning="signed"
        )
    with refused(world, Forbidden, "signer"):
        world["helios-tx"].submit(
            world.ledger, "AgreementAmendmentSigned", agreement_id, {}, meaning="signed"
        )
    with refused(world, Forbidden, "subject"):
        world["northwind-bio"].submit(
            world.ledger,
            "AgreementAmended",
            agreement_id,
            {"terms": agreement_terms()},
            meaning="authored",
            reason="a second amendment while one is pending",
        )

    world["northwind-bio"].submit(
        world.ledger, "AgreementAmendmentSigned", agreement_id, {}, meaning="signed"
    )
    agreement = _agreement(world, agreement_id)
    assert agreement.terms == _amended_terms()
    assert agreement.pending_amendment is None
    assert [entry["version"] for entry in agreement.history] == [1, 2]


def test_amendment_without_a_reason_is_refused(world: World):
    agreement_id = propose_and_sign(world)
    with refused(world, ValidationFailed, "reason"):
        world["contoso-cmo"].submit(
            world.ledger,
            "AgreementAmended",
            agreement_id,
            {"terms": _amended_terms()},
            meaning="authored",
        )


@pytest.mark.parametrize(("role", "party"), [("sponsor", "helios-tx"), ("cmo", "fabrikam-cmo")])
def test_amendment_changing_the_sponsor_or_the_cmo_is_refused(world: World, role: str, party: str):
    agreement_id = propose_and_sign(world)
    terms = _amended_terms()
    terms[role] = party
    with refused(world, ValidationFailed, f"payload.terms.{role}"):
        world["northwind-bio"].submit(
            world.ledger,
            "AgreementAmended",
            agreement_id,
            {"terms": terms},
            meaning="authored",
            reason="tech transfer",
        )


def test_amendment_is_validated_like_a_proposal(world: World):
    agreement_id = propose_and_sign(world)
    terms = _amended_terms()
    terms["ip_rule"] = "finders-keepers"
    with refused(world, ValidationFailed, "payload.terms.ip_rule"):
        world["northwind-bio"].submit(
            world.ledger,
            "AgreementAmended",
            agreement_id,
            {"terms": terms},
            meaning="authored",
            reason="new IP rule",
        )


def test_amendment_that_changes_nothing_is_refused(world: World):
    agreement_id = propose_and_sign(world)
    with refused(world, ValidationFailed, "payload.terms"):
        world["northwind-bio"].submit(
            world.ledger,
            "AgreementAmended",
            agreement_id,
            {"terms": agreement_terms()},
            meaning="authored",
            reason="no change",
        )


def test_amendment_before_both_parties_signed_is_refused(world: World):
    agreement_id = _propose(world)
    with refused(world, Forbidden, "subject"):
        world["northwind-bio"].submit(
            world.ledger,
            "AgreementAmended",
            agreement_id,
            {"terms": _amended_terms()},
            meaning="authored",
            reason="changed my mind",
        )


def test_amendment_by_a_stranger_is_refused(world: World):
    agreement_id = propose_and_sign(world)
    with refused(world, Forbidden, "signer"):
        world["helios-tx"].submit(
            world.ledger,
            "AgreementAmended",
            agreement_id,
            {"terms": _amended_terms()},
            meaning="authored",
            reason="meddling",
        )


def test_rejected_amendment_leaves_the_terms_in_force(world: World):
    agreement_id = propose_and_sign(world)
    world["contoso-cmo"].submit(
        world.ledger,
        "AgreementAmended",
        agreement_id,
        {"terms": _amended_terms()},
        meaning="authored",
        reason="faster delivery",
    )
    with refused(world, ValidationFailed, "reason"):
        world["northwind-bio"].submit(
            world.ledger, "AgreementAmendmentRejected", agreement_id, {}, meaning="rejected"
        )
    world["northwind-bio"].submit(
        world.ledger,
        "AgreementAmendmentRejected",
        agreement_id,
        {},
        meaning="rejected",
        reason="our QA cannot review twice a day",
    )
    agreement = _agreement(world, agreement_id)
    assert agreement.pending_amendment is None
    assert agreement.terms == agreement_terms()
    with refused(world, Forbidden, "subject"):
        world["contoso-cmo"].submit(
            world.ledger, "AgreementAmendmentSigned", agreement_id, {}, meaning="signed"
        )


def test_terms_at_answers_the_terms_in_force_at_any_past_time(world: World):
    agreement_id = uuid.uuid4()
    proposed = world["northwind-bio"].submit(
        world.ledger,
        "AgreementProposed",
        agreement_id,
        {"terms": agreement_terms()},
        meaning="authored",
    )
    signed = world["contoso-cmo"].submit(
        world.ledger, "AgreementSigned", agreement_id, {}, meaning="signed"
    )
    amended = world["contoso-cmo"].submit(
        world.ledger,
        "AgreementAmended",
        agreement_id,
        {"terms": _amended_terms()},
        meaning="authored",
        reason="historian exports now run twice a day",
    )
    countersigned = world["northwind-bio"].submit(
        world.ledger, "AgreementAmendmentSigned", agreement_id, {}, meaning="signed"
    )
    at = {
        name: parse_utc(appended.recorded_at, field="recorded_at")
        for name, appended in (
            ("proposed", proposed),
            ("signed", signed),
            ("amended", amended),
            ("countersigned", countersigned),
        )
    }

    agreement = _agreement(world, agreement_id)
    assert agreement.terms_at(at["proposed"]) is None
    assert agreement.terms_at(at["signed"] - timedelta(milliseconds=1)) is None
    assert agreement.terms_at(at["signed"]) == agreement_terms()
    assert agreement.terms_at(at["amended"]) == agreement_terms()
    assert agreement.terms_at(at["countersigned"]) == _amended_terms()
    assert agreement.terms_at(at["countersigned"] + timedelta(days=400)) == _amended_terms()

    # The same answers from the aggregate's own past versions.
    assert _agreement(world, agreement_id, version=1).status == "proposed"
    assert _agreement(world, agreement_id, version=2).terms == agreement_terms()
    at_amendment = _agreement(world, agreement_id, version=3)
    assert at_amendment.terms == agreement_terms()
    assert at_amendment.pending_amendment is not None
    assert _agreement(world, agreement_id, version=4).terms == _amended_terms()
    assert _agreement(world, agreement_id, version=3).terms_at(at["countersigned"]) == (
        agreement_terms()
    )


def test_terminated_agreement_is_no_longer_in_force(world: World):
    agreement_id = propose_and_sign(world)
    signed_at = parse_utc(_agreement(world, agreement_id).history[0]["effective_from"], field="t")
    with refused(world, ValidationFailed, "reason"):
        world["northwind-bio"].submit(
            world.ledger, "AgreementTerminated", agreement_id, {}, meaning="revoked"
        )
    with refused(world, Forbidden, "signer"):
        world["helios-tx"].submit(
            world.ledger, "AgreementTerminated", agreement_id, {}, meaning="revoked", reason="x"
        )
    ended = world["northwind-bio"].submit(
        world.ledger,
        "AgreementTerminated",
        agreement_id,
        {},
        meaning="revoked",
        reason="NWB-101 moves to Fabrikam",
    )
    agreement = _agreement(world, agreement_id)
    assert agreement.status == "terminated"
    assert agreement.terms_at(signed_at) == agreement_terms()
    assert agreement.terms_at(parse_utc(ended.recorded_at, field="t")) is None
    with refused(world, Forbidden, "payload.agreement"):
        grant(world, agreement_id, "northwind-bio", "fabrikam-cmo")
    with refused(world, Forbidden, "subject"):
        world["contoso-cmo"].submit(
            world.ledger, "AgreementTerminated", agreement_id, {}, meaning="revoked", reason="x"
        )
