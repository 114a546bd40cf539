"""Periodic reviews (R21, R29): signed by both agreement parties, next one due within cadence."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from ledger.domain.reviews import Review, add_months
from ledger.errors import BadSignature, Forbidden, NotFound, ValidationFailed
from ledger.timeutil import format_utc, now_utc, parse_utc
from tests.support.agreements import complete_review, propose_and_sign, refused, review_payload
from tests.support.world import World, agreement_terms


def _submit(world: World, by: str, review_id: uuid.UUID, body: dict[str, Any]) -> None:
    world[by].submit(world.ledger, "ReviewCompleted", review_id, body, meaning="completed")


def test_review_signed_by_both_parties_is_recorded(world: World):
    agreement_id = propose_and_sign(world)
    period_end = format_utc(now_utc() - timedelta(hours=1))
    appended = complete_review(
        world,
        agreement_id,
        "northwind-bio",
        "contoso-cmo",
        period_end=period_end,
        outcome="Six-month review: DO limits tightened to 35-50 %, pH drift within NOR.",
    )
    review = world.ledger.repository.get(appended.subject, version=1)
    assert isinstance(review, Review)
    assert review.agreement == str(agreement_id)
    assert (review.completed_by, review.countersigned_by) == ("northwind-bio", "contoso-cmo")
    assert review.period_end == period_end
    assert review.next_due == format_utc(add_months(parse_utc(period_end, field="t"), 6))
    assert review.completed_at == appended.recorded_at


def test_review_submitted_by_the_cmo_and_countersigned_by_the_sponsor_is_recorded(world: World):
    agreement_id = propose_and_sign(world)
    complete_review(world, agreement_id, "contoso-cmo", "northwind-bio")


def test_review_without_a_countersignature_is_refused(world: World):
    agreement_id = propose_and_sign(world)
    review_id = uuid.uuid4()
    body = review_payload(world, agreement_id, review_id, None)
    with refused(world, ValidationFailed, "payload.countersignature"):
        _submit(world, "northwind-bio", review_id, body)


@pytest.mark.parametrize("countersigner", ["northwind-bio", "helios-tx", "agency-inspectorate"])
def test_review_countersigned_by_anyone_but_the_other_party_is_refused(
    world: World, countersigner: str
):
    agreement_id = propose_and_sign(world)
    review_id = uuid.uuid4()
    body = review_payload(world, agreement_id, review_id, countersigner)
    with refused(world, Forbidden, "payload.countersignature.signer"):
        _submit(world, "northwind-bio", review_id, body)


def test_review_countersignature_over_a_different_body_is_refused(world: World):
    agreement_id = propose_and_sign(world)
    review_id = uuid.uuid4()
    body = review_payload(world, agreement_id, review_id, "contoso-cmo")
    body["outcome"] = "All parameters confirmed."
    with refused(world, BadSignature, "payload.countersignature.signature"):
        _submit(world, "northwind-bio", review_id, body)


def test_review_countersignature_for_another_subject_is_refused(world: World):
    agreement_id = propose_and_sign(world)
    body = review_payload(world, agreement_id, uuid.uuid4(), "contoso-cmo")
    with refused(world, BadSignature, "payload.countersignature.signature"):
        _submit(world, "northwind-bio", uuid.uuid4(), body)


def test_review_by_a_party_outside_the_agreement_is_refused(world: World):
    agreement_id = propose_and_sign(world)
    review_id = uuid.uuid4()
    body = review_payload(world, agreement_id, review_id, "contoso-cmo")
    with refused(world, Forbidden, "signer"):
        _submit(world, "helios-tx", review_id, body)


def test_review_under_an_unsigned_agreement_is_refused(world: World):
    agreement_id = uuid.uuid4()
    world["northwind-bio"].submit(
        world.ledger,
        "AgreementProposed",
        agreement_id,
        {"terms": agreement_terms()},
        meaning="authored",
    )
    with refused(world, Forbidden, "payload.agreement"):
        complete_review(world, agreement_id, "northwind-bio", "contoso-cmo")


def _months_after(period_end: str, months: int, **delta: float) -> str:
    return format_utc(add_months(parse_utc(period_end, field="t"), months) + timedelta(**delta))


PERIOD_END = format_utc(now_utc() - timedelta(days=1))
REVIEW_REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({"next_due": PERIOD_END}, "payload.next_due"),
    ({"next_due": _months_after(PERIOD_END, 7, milliseconds=1)}, "payload.next_due"),
    ({"next_due": None}, "payload.next_due"),
    ({"period_end": format_utc(now_utc() + timedelta(days=2))}, "payload.period_end"),
    ({"outcome": "x" * 4001}, "payload.outcome"),
    ({"outcome": None}, "payload.outcome"),
    ({"parameters_confirmed": ["do"]}, "payload.parameters_confirmed[0]"),
    ({"parameters_revised": "all"}, "payload.parameters_revised"),
    ({"minutes": "attached"}, "payload.minutes"),
]


@pytest.mark.parametrize(("payload", "field"), REVIEW_REFUSALS, ids=[f for _, f in REVIEW_REFUSALS])
def test_each_invalid_review_member_is_refused_naming_its_field(
    world: World, payload: dict[str, Any], field: str
):
    agreement_id = propose_and_sign(world)
    payload = {"period_end": PERIOD_END, **payload}
    with refused(world, ValidationFailed, field):
        complete_review(world, agreement_id, "northwind-bio", "contoso-cmo", **payload)


def test_next_due_may_be_one_month_beyond_the_cadence(world: World):
    agreement_id = propose_and_sign(world)
    complete_review(
        world,
        agreement_id,
        "northwind-bio",
        "contoso-cmo",
        period_end=PERIOD_END,
        next_due=_months_after(PERIOD_END, 7),
    )


def test_review_naming_an_unknown_parameter_is_refused(world: World):
    agreement_id = propose_and_sign(world)
    # Neither an unused id nor the id of something that is not a parameter will do.
    for not_a_parameter in (uuid.uuid4(), agreement_id):
        with refused(world, NotFound, "payload.parameters_revised[0]"):
            complete_review(
                world,
                agreement_id,
                "northwind-bio",
                "contoso-cmo",
                parameters_revised=[str(not_a_parameter)],
            )


def test_add_months_clamps_to_the_end_of_the_month():
    end_of_august = parse_utc("2024-08-31T10:00:00Z", field="t")
    assert add_months(end_of_august, 6) == parse_utc("2025-02-28T10:00:00Z", field="t")
    assert add_months(end_of_august, 18) == parse_utc("2026-02-28T10:00:00Z", field="t")
    assert add_months(parse_utc("2023-08-31T00:00:00Z", field="t"), 6) == parse_utc(
        "2024-02-29T00:00:00Z", field="t"
    )
    assert add_months(parse_utc("2024-12-15T00:00:00Z", field="t"), 1) == parse_utc(
        "2025-01-15T00:00:00Z", field="t"
    )
