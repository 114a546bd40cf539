"""CPV baselines (R26): either agreement party names the batches that set a parameter's control
limits, revises the list with a reason, and acknowledges a signal; every bad command is
refused with its code and field, and nothing is stored."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ledger.domain.baselines import Baseline
from ledger.domain.subjects import baseline_subject
from ledger.errors import Forbidden, NotFound, ValidationFailed
from tests.support.agreements import propose_and_sign, refused
from tests.support.batches import define_parameter, register_batch
from tests.support.world import World

PARAMETER = "titer at harvest"
BATCHES = ("NWB101-25-101", "NWB101-25-102", "NWB101-25-103")
DIGEST = "ab" * 32


def _agreement_with_batches(world: World) -> uuid.UUID:
    agreement = propose_and_sign(world)
    define_parameter(world, agreement, PARAMETER)
    for name in BATCHES:
        register_batch(world, agreement, name)
    return agreement


def _define(
    world: World,
    agreement: uuid.UUID,
    *,
    by: str = "northwind-bio",
    name: str = "PPQ",
    subject: uuid.UUID | None = None,
    reason: str | None = None,
    **overrides: Any,
) -> uuid.UUID:
    payload: dict[str, Any] = {
        "agreement": str(agreement),
        "parameter": PARAMETER,
        "name": name,
        "batches": list(BATCHES),
    }
    payload.update(overrides)
    chosen = subject or baseline_subject(agreement, str(payload["parameter"]), name)
    world[by].submit(
        world.ledger, "BaselineDefined", chosen, payload, meaning="authored", reason=reason
    )
    return chosen


def _revise(
    world: World, subject: uuid.UUID, batches: list[str], *, by: str, reason: str | None
) -> None:
    world[by].submit(
        world.ledger,
        "BaselineRevised",
        subject,
        {"batches": batches},
        meaning="authored",
        reason=reason,
    )


def _acknowledge(
    world: World, subject: uuid.UUID, *, by: str, digest: str = DIGEST, **overrides: Any
) -> None:
    payload = {"baseline": str(subject), "inputs_digest": digest, "comment": "seen; trending"}
    payload.update(overrides)
    world[by].submit(
        world.ledger, "CpvSignalAcknowledged", subject, payload, meaning="acknowledged"
    )


def test_either_party_defines_a_baseline_and_the_other_revises_it_with_a_reason(world: World):
    agreement = _agreement_with_batches(world)
    subject = _define(world, agreement, by="contoso-cmo")
    _revise(
        world, subject, list(BATCHES[:2]), by="northwind-bio", reason="drop the engineering run"
    )
    baseline = world.ledger.get_aggregate(subject, Baseline)
    assert baseline is not None
    assert [entry["batches"] for entry in baseline.history] == [list(BATCHES), list(BATCHES[:2])]
    assert baseline.history[1]["reason"] == "drop the engineering run"


def test_an_unknown_agreement_is_refused(world: World):
    _agreement_with_batches(world)
    with refused(world, NotFound, "payload.agreement"):
        _define(world, uuid.uuid4())


def test_an_unknown_parameter_is_refused(world: World):
    agreement = _agreement_with_batches(world)
    with refused(world, NotFound, "payload.parameter"):
        _define(world, agreement, parameter="titre at harvst")


def test_an_empty_batch_list_is_refused(world: World):
    agreement = _agreement_with_batches(world)
    with refused(world, ValidationFailed, "payload.batches"):
        _define(world, agreement, batches=[])


def test_a_batch_listed_twice_is_refused(world: World):
    agreement = _agreement_with_batches(world)
    with refused(world, ValidationFailed, "payload.batches[2]"):
        _define(world, agreement, batches=[BATCHES[0], BATCHES[1], BATCHES[0]])


def test_a_batch_of_another_agreement_is_refused(world: World):
    agreement = _agreement_with_batches(world)
    other = propose_and_sign(world, "helios-tx", "contoso-cmo")
    register_batch(world, other, "HEL7-25-101", product="HEL-7")
    with refused(world, ValidationFailed, "payload.batches[1]"):
        _define(world, agreement, batches=[BATCHES[0], "HEL7-25-101"])


def test_a_batch_that_was_never_registered_is_refused(world: World):
    agreement = _agreement_with_batches(world)
    with refused(world, NotFound, "payload.batches[1]"):
        _define(world, agreement, batches=[BATCHES[0], "NWB101-25-999"])


def test_a_party_not_of_the_agreement_may_not_define_a_baseline(world: World):
    agreement = _agreement_with_batches(world)
    with refused(world, Forbidden, "signer"):
        _define(world, agreement, by="fabrikam-cmo")


def test_a_subject_not_derived_from_the_names_is_refused(world: World):
    agreement = _agreement_with_batches(world)
    with refused(world, ValidationFailed, "subject"):
        _define(world, agreement, subject=uuid.uuid4())


def test_a_baseline_name_with_a_slash_is_refused(world: World):
    agreement = _agreement_with_batches(world)
    with refused(world, ValidationFailed, "payload.name"):
        _define(world, agreement, name="PPQ/2025")


def test_a_revision_without_a_reason_is_refused(world: World):
    agreement = _agreement_with_batches(world)
    subject = _define(world, agreement)
    with refused(world, ValidationFailed, "reason"):
        _revise(world, subject, list(BATCHES[:2]), by="northwind-bio", reason=None)


@pytest.mark.parametrize(
    ("batches", "field", "error"),
    [
        ([], "payload.batches", ValidationFailed),
        ([BATCHES[0], BATCHES[0]], "payload.batches[1]", ValidationFailed),
        ([BATCHES[0], "NWB101-25-999"], "payload.batches[1]", NotFound),
        (list(BATCHES), "payload.batches", ValidationFailed),  # unchanged
    ],
)
def test_a_revision_with_a_bad_batch_list_is_refused(
    world: World, batches: list[str], field: str, error: type[ValidationFailed]
):
    agreement = _agreement_with_batches(world)
    subject = _define(world, agreement)
    with refused(world, error, field):
        _revise(world, subject, batches, by="contoso-cmo", reason="new PPQ campaign")


def test_a_party_not_of_the_agreement_may_not_revise_a_baseline(world: World):
    agreement = _agreement_with_batches(world)
    subject = _define(world, agreement)
    with refused(world, Forbidden, "signer"):
        _revise(world, subject, list(BATCHES[:2]), by="helios-tx", reason="not mine to revise")


def test_a_signal_is_acknowledged_once_per_party_and_digest(world: World):
    agreement = _agreement_with_batches(world)
    subject = _define(world, agreement)
    _acknowledge(world, subject, by="northwind-bio")
    _acknowledge(world, subject, by="contoso-cmo")
    baseline = world.ledger.get_aggregate(subject, Baseline)
    assert baseline is not None
    assert [a["by"] for a in baseline.acknowledgements[DIGEST]] == ["northwind-bio", "contoso-cmo"]
    with refused(world, ValidationFailed, "payload.inputs_digest"):
        _acknowledge(world, subject, by="northwind-bio")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"inputs_digest": "not-a-digest"}, "payload.inputs_digest"),
        ({"baseline": str(uuid.UUID(int=7))}, "payload.baseline"),
        ({"comment": ""}, "payload.comment"),
    ],
)
def test_a_malformed_acknowledgement_is_refused(
    world: World, overrides: dict[str, Any], field: str
):
    agreement = _agreement_with_batches(world)
    subject = _define(world, agreement)
    with refused(world, ValidationFailed, field):
        _acknowledge(world, subject, by="contoso-cmo", **overrides)


def test_a_party_not_of_the_agreement_may_not_acknowledge_a_signal(world: World):
    agreement = _agreement_with_batches(world)
    subject = _define(world, agreement)
    with refused(world, Forbidden, "signer"):
        _acknowledge(world, subject, by="agency-inspectorate")


def test_a_cpk_threshold_that_is_not_a_positive_decimal_string_is_refused(world: World):
    from tests.support.world import agreement_terms

    for bad in ("0", "-1.5", 2, True, "10.5", "high"):
        with refused(world, ValidationFailed, "payload.terms.cpk_threshold"):
            propose_and_sign(world, terms={**agreement_terms(), "cpk_threshold": bad})
    assert propose_and_sign(world, terms={**agreement_terms(), "cpk_threshold": "1.67"})
