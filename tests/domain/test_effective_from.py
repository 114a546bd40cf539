"""Terms and limits take effect when their approval is recorded, or from an earlier
``effective_from`` given with a reason (history migrated from paper): never in the future,
never before what they build on, and always shown as retroactive."""

from __future__ import annotations

import uuid
from datetime import timedelta

from ledger.domain.agreements import Agreement
from ledger.domain.parameters import Parameter
from ledger.domain.subjects import parameter_subject
from ledger.errors import ValidationFailed
from ledger.timeutil import format_utc, now_utc
from tests.support.agreements import MIGRATED, refused, sign_retroactively
from tests.support.batches import define_parameter
from tests.support.world import World, agreement_terms

SPONSOR, CMO = "northwind-bio", "contoso-cmo"


def test_terms_signed_with_a_past_effective_from_and_a_reason_take_effect_then(
    world: World,
) -> None:
    since = format_utc(now_utc() - timedelta(days=400))
    agreement = world.ledger.get_aggregate(sign_retroactively(world, since), Agreement)
    assert agreement is not None
    assert agreement.history[0]["effective_from"] == since


def test_a_retroactive_effective_from_without_a_reason_is_refused(world: World) -> None:
    since = format_utc(now_utc() - timedelta(days=400))
    agreement = uuid.uuid4()
    world[SPONSOR].submit(
        world.ledger,
        "AgreementProposed",
        agreement,
        {"terms": agreement_terms()},
        meaning="authored",
    )
    with refused(world, ValidationFailed, "reason"):
        world[CMO].submit(
            world.ledger, "AgreementSigned", agreement, {"effective_from": since}, meaning="signed"
        )


def test_an_effective_from_in_the_future_is_refused(world: World) -> None:
    agreement = sign_retroactively(world, format_utc(now_utc() - timedelta(days=30)))
    later = format_utc(now_utc() + timedelta(days=1))
    with refused(world, ValidationFailed, "payload.effective_from"):
        define_parameter(world, agreement, "pH", effective_from=later)


def test_limits_cannot_take_effect_before_the_agreement_was_in_force(world: World) -> None:
    agreement = sign_retroactively(world, format_utc(now_utc() - timedelta(days=30)))
    too_early = format_utc(now_utc() - timedelta(days=60))
    with refused(world, ValidationFailed, "payload.effective_from"):
        define_parameter(world, agreement, "pH", effective_from=too_early, reason=MIGRATED)


def test_limits_migrated_from_paper_are_in_force_from_their_effective_from(world: World) -> None:
    since = now_utc() - timedelta(days=30)
    agreement = sign_retroactively(world, format_utc(since))
    when = format_utc(since + timedelta(days=1))
    define_parameter(world, agreement, "pH", effective_from=when, reason=MIGRATED)
    found = world.ledger.get_aggregate(parameter_subject(agreement, "pH"), Parameter)
    assert found is not None
    assert found.limits_history[0]["effective_from"] == when
    assert found.limits_at(since + timedelta(days=2)) is not None
    assert found.limits_at(since) is None
