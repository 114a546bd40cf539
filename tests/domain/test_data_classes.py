"""Agreement terms as real agreements are written: classes of their own with a form, periodic
delivery rules, amendments that add or retire classes, and the published terms schema."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ledger.application import Ledger
from ledger.clock import FakeClock
from ledger.config import Settings
from ledger.domain.agreements import Agreement
from ledger.domain.batches import Batch
from ledger.domain.data_classes import DeliveryRule, form_of, period_deliveries, periods
from ledger.domain.payloads import schema_bytes
from ledger.domain.subjects import batch_subject
from ledger.errors import ValidationFailed
from ledger.timeutil import format_utc, now_utc, parse_utc
from projections.deliveries import periodic_deliveries
from projections.runner import Projector
from tests.conftest import BACKENDS, fresh_database
from tests.support.agreements import propose_and_sign, refused
from tests.support.batches import discrete_records, register_batch
from tests.support.world import (
    ORIGIN,
    World,
    agreement_terms,
    build_world,
    class_spec,
    notary_actor,
    submit_signed_at,
    terms_with_classes,
)

ROOT = Path(__file__).resolve().parents[2]
SPONSOR, CMO, REGULATOR = "northwind-bio", "contoso-cmo", "agency-inspectorate"
BATCH = "NWB101-24-301"
PER_BATCH = {"within_hours": 72, "after": "batch_end"}


def _stability(delivery: dict[str, Any] | None = None, form: str | None = "discrete") -> Any:
    return class_spec(SPONSOR, form, delivery or PER_BATCH, "stability-csv/v1")


def _stability_only(delivery: dict[str, Any] | None = None) -> dict[str, Any]:
    return terms_with_classes({"stability": _stability(delivery)})


def _payload(kind: str, format_name: str, prefix: str) -> dict[str, Any]:
    return {
        "submission": str(uuid.uuid4()),
        "kind": kind,
        "source_system": "contoso-lims",
        "schema_version": "1.0",
        "format": format_name,
        "records": discrete_records(prefix),
    }


def _submit(world: World, kind: str, prefix: str, format_name: str = "stability-csv/v1") -> None:
    world[CMO].submit(
        world.ledger,
        "DataSubmitted",
        batch_subject(BATCH),
        _payload(kind, format_name, prefix),
        meaning="submitted",
    )


def _propose(world: World, terms: dict[str, Any]) -> uuid.UUID:
    payload = {"terms": terms}
    subject = uuid.uuid4()
    world[SPONSOR].submit(world.ledger, "AgreementProposed", subject, payload, meaning="authored")
    return subject


def _amend(world: World, agreement_id: uuid.UUID, terms: dict[str, Any]) -> None:
    world[SPONSOR].submit(
        world.ledger,
        "AgreementAmended",
        agreement_id,
        {"terms": terms},
        meaning="authored",
        reason="the stability programme changes",
    )
    world[CMO].submit(world.ledger, "AgreementAmendmentSigned", agreement_id, {}, meaning="signed")


def _grant(world: World, agreement_id: uuid.UUID, classes: list[str]) -> None:
    payload = {
        "agreement": str(agreement_id),
        "grantee": REGULATOR,
        "data_classes": classes,
        "purpose": "inspection of the stability programme",
        "valid_until": format_utc(now_utc() + timedelta(days=14)),
    }
    world[SPONSOR].submit(world.ledger, "AccessGranted", uuid.uuid4(), payload, meaning="granted")


# -- own data classes ------------------------------------------------------------------------


def test_an_agreement_with_only_a_custom_class_accepts_it_and_refuses_discrete(
    world: World,
) -> None:
    agreement_id = propose_and_sign(world, terms=_stability_only())
    register_batch(world, agreement_id, BATCH)
    _submit(world, "stability", "S")
    with refused(world, ValidationFailed, "payload.kind"):
        _submit(world, "discrete", "D", "discrete-csv/v1")
    batch = world.ledger.get_aggregate(batch_subject(BATCH), Batch)
    assert batch is not None
    assert {record["class"] for record in batch.records.values()} == {"stability"}


def test_a_submission_of_an_undefined_class_names_the_classes_the_agreement_defines(
    world: World,
) -> None:
    agreement_id = propose_and_sign(world, terms=_stability_only())
    register_batch(world, agreement_id, BATCH)
    with pytest.raises(ValidationFailed) as refusal:
        _submit(world, "discrete", "D", "discrete-csv/v1")
    assert refusal.value.field == "payload.kind"
    assert "stability" in str(refusal.value)


def test_a_custom_class_name_requires_its_form(world: World) -> None:
    terms = terms_with_classes({"stability": _stability(form=None)})
    with refused(world, ValidationFailed, "payload.terms.data_classes.stability.form"):
        _propose(world, terms)


def test_a_default_class_name_takes_its_name_as_form_and_old_terms_mean_the_same(
    world: World,
) -> None:
    old = agreement_terms()  # the three classes, no form: terms as stored before forms
    agreement_id = propose_and_sign(world, terms=old)
    agreement = world.ledger.get_aggregate(agreement_id, Agreement)
    assert agreement is not None
    assert [form_of(agreement.terms, name) for name in ("continuous", "discrete", "event")] == [
        "continuous",
        "discrete",
        "event",
    ]


@pytest.mark.parametrize("name", ["Stability", "1st_lot", "stability-data", "s" * 64, "_x"])
def test_a_class_name_that_is_no_identifier_is_refused(world: World, name: str) -> None:
    terms = terms_with_classes({name: _stability()})
    with refused(world, ValidationFailed, f"payload.terms.data_classes.{name}"):
        _propose(world, terms)


@pytest.mark.parametrize(
    ("delivery", "member"),
    [
        ({"every_days": 0}, "every_days"),
        ({"every_days": 367}, "every_days"),
        ({"monthly_on_day": 0}, "monthly_on_day"),
        ({"monthly_on_day": 31}, "monthly_on_day"),
        ({"every_days": 7, "within_hours": 24}, "within_hours"),
    ],
)
def test_a_periodic_rule_that_never_fires_is_refused_naming_its_field(
    world: World, delivery: dict[str, Any], member: str
) -> None:
    field = f"payload.terms.data_classes.stability.delivery.{member}"
    with refused(world, ValidationFailed, field):
        _propose(world, _stability_only(delivery))


def test_a_class_of_the_event_form_is_acknowledged_like_events(world: World) -> None:
    deviations = class_spec(SPONSOR, "event", {"within_hours": 24, "after": "detection"}, "dev/1")
    terms = terms_with_classes({"stability": _stability(), "deviations": deviations})
    agreement_id = propose_and_sign(world, terms=terms)
    register_batch(world, agreement_id, BATCH)
    record = {
        "id": "DEV-1",
        "kind": "deviation",
        "started_at": "2024-03-01T08:00:00.000Z",
        "severity": "major",
        "description": "temperature excursion in BR1",
    }
    payload = {**_payload("deviations", "dev/1", "X"), "records": [record]}
    world[CMO].submit(
        world.ledger, "DataSubmitted", batch_subject(BATCH), payload, meaning="submitted"
    )
    world[SPONSOR].submit(
        world.ledger,
        "DataAcknowledged",
        batch_subject(BATCH),
        {"records": ["DEV-1"]},
        meaning="acknowledged",
    )


# -- periodic delivery rules ---------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def clocked(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[World, FakeClock]]:
    clock = FakeClock(ticking=True)
    with fresh_database(request.param, request, tmp_path) as url:
        settings = Settings(database_url=url, data_dir=tmp_path / "data", kdf_profile="min")
        notary = notary_actor()
        ledger = Ledger.initialise(settings, ORIGIN, notary.public_key, clock)
        try:
            yield build_world(ledger, notary), clock
        finally:
            ledger.close()


def test_periodic_deliveries_are_on_time_late_missing_and_awaiting_by_the_clock(
    clocked: tuple[World, FakeClock],
) -> None:
    world, clock = clocked
    agreement_id = propose_and_sign(world, terms=_stability_only({"every_days": 2}))
    agreement = world.ledger.get_aggregate(agreement_id, Agreement)
    assert agreement is not None
    start = parse_utc(agreement.history[0]["effective_from"], field="effective_from")
    register_batch(world, agreement_id, BATCH)
    _submit(world, "stability", "P1")  # within the first period
    clock.advance(timedelta(days=5))
    payload = _payload("stability", "stability-csv/v1", "P2")
    submit_signed_at(
        world[CMO],
        world.ledger,
        "DataSubmitted",
        batch_subject(BATCH),
        payload,
        meaning="submitted",
        signed_at=clock.now(),
    )
    clock.advance(timedelta(days=4))  # asked on day 9: five periods have begun
    projector = Projector(world.ledger).start()
    try:
        projector.catch_up_safely(world.ledger.head())
        with world.ledger.engine.connect() as conn:
            found = periodic_deliveries(
                conn, [str(agreement_id)], world.ledger.head(), clock.now()
            )[str(agreement_id)]
    finally:
        projector.close()
    assert found, "no periodic obligation was computed"
    assert [row["status"] for row in found] == ["on_time", "late", "missing", "missing", "awaiting"]
    assert [row["period"] for row in found] == [1, 2, 3, 4, 5]
    assert found[1]["first_submission"] == payload["submission"]
    assert found[0]["due_at"] == format_utc(start + timedelta(days=2))
    assert {row["rule"] for row in found} == {"every_days"}


def test_monthly_periods_are_due_by_the_end_of_their_day() -> None:
    clock = FakeClock(datetime(2025, 1, 20, 9, 30, tzinfo=UTC))
    start = clock.now()
    clock.advance(timedelta(days=70))
    owed = periods(DeliveryRule(monthly_on_day=15), start, None, clock.now())
    assert owed, "no period began"
    assert [format_utc(p.due) for p in owed] == [
        "2025-02-15T23:59:59.999Z",
        "2025-03-15T23:59:59.999Z",
        "2025-04-15T23:59:59.999Z",
    ]
    arrived = datetime(2025, 2, 10, tzinfo=UTC)
    states = period_deliveries(owed, [(arrived, "s1")], clock.now())
    assert [s.state for s in states] == ["on_time", "missing", "awaiting"]


def test_a_retired_rule_owes_no_period_due_after_its_end() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    owed = periods(
        DeliveryRule(every_days=7), start, start + timedelta(days=10), start + timedelta(days=30)
    )
    assert [p.number for p in owed] == [1]


# -- amendments add and retire classes ------------------------------------------------------


def test_an_amendment_adding_a_class_lets_data_of_it_be_submitted(world: World) -> None:
    agreement_id = propose_and_sign(world, terms=_stability_only())
    register_batch(world, agreement_id, BATCH)
    equipment = class_spec(CMO, "discrete", {"every_days": 7}, "equipment-csv/v1")
    with pytest.raises(ValidationFailed):
        _submit(world, "equipment", "Q0", "equipment-csv/v1")
    _amend(
        world, agreement_id, terms_with_classes({"stability": _stability(), "equipment": equipment})
    )
    _submit(world, "equipment", "Q1", "equipment-csv/v1")
    batch = world.ledger.get_aggregate(batch_subject(BATCH), Batch)
    assert batch is not None and "equipment" in batch.first_arrival


def test_an_amendment_retiring_a_class_refuses_new_submissions_and_new_grants(world: World) -> None:
    discrete = class_spec(SPONSOR, None, PER_BATCH, "discrete-csv/v1")
    terms = terms_with_classes({"stability": _stability(), "discrete": discrete})
    agreement_id = propose_and_sign(world, terms=terms)
    register_batch(world, agreement_id, BATCH)
    _submit(world, "stability", "S")
    _amend(world, agreement_id, terms_with_classes({"discrete": discrete}))
    with refused(world, ValidationFailed, "payload.kind"):
        _submit(world, "stability", "T")
    with refused(world, ValidationFailed, "payload.data_classes[1]"):
        _grant(world, agreement_id, ["discrete", "stability"])
    agreement = world.ledger.get_aggregate(agreement_id, Agreement)
    assert agreement is not None and agreement.form_of("stability") == "discrete"


def test_granting_a_class_the_terms_do_not_define_is_refused(world: World) -> None:
    agreement_id = propose_and_sign(world, terms=_stability_only())
    with refused(world, ValidationFailed, "payload.data_classes[0]"):
        _grant(world, agreement_id, ["discrete"])


def test_a_class_keeps_its_form_across_amendments(world: World) -> None:
    agreement_id = propose_and_sign(world, terms=_stability_only())
    other = terms_with_classes({"stability": _stability(form="event")})
    with pytest.raises(ValidationFailed) as refusal:
        world[SPONSOR].submit(
            world.ledger,
            "AgreementAmended",
            agreement_id,
            {"terms": other},
            meaning="authored",
            reason="stability becomes events",
        )
    assert refusal.value.field == "payload.terms.data_classes.stability.form"


# -- the published schema -------------------------------------------------------------------


def _docs_example() -> dict[str, Any]:
    text = (ROOT / "docs" / "agreements.md").read_text()
    section = text.split("## Complete example", 1)[1]
    found = re.search(r"```json\n(.*?)\n```", section, re.DOTALL)
    assert found is not None, "docs/agreements.md has no complete JSON example"
    example: dict[str, Any] = json.loads(found[1])
    return example


def test_the_committed_terms_schema_is_the_generated_one() -> None:
    committed = ROOT / "docs" / "schema" / "AgreementTerms.json"
    assert committed.read_bytes() == schema_bytes("AgreementTerms"), (
        "docs/schema is stale: run `python -m ledger.domain.payloads docs/schema`"
    )


def test_the_complete_example_of_the_docs_validates_against_the_terms_schema(world: World) -> None:
    schema = json.loads(schema_bytes("AgreementTerms"))
    jsonschema.Draft202012Validator.check_schema(schema)
    example = _docs_example()
    jsonschema.Draft202012Validator(schema).validate(example)
    classes = example["data_classes"]
    assert any(name not in ("discrete", "continuous", "event") for name in classes)
    assert any(
        "every_days" in c["delivery"] or "monthly_on_day" in c["delivery"] for c in classes.values()
    )
    propose_and_sign(world, terms=example)  # and the ledger accepts it


def test_the_proposal_schemas_embed_the_terms_schema() -> None:
    for event_type in ("AgreementProposed", "AgreementAmended"):
        schema = json.loads(schema_bytes(event_type))
        validator = jsonschema.Draft202012Validator(schema)
        validator.validate({"terms": _docs_example()})
        bad = _docs_example()
        bad["data_classes"]["stability"]["delivery"] = {"every_days": 0}
        assert not validator.is_valid({"terms": bad})
