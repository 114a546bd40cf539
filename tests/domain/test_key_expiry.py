"""R8, key lifecycle: every key expires (its own expires_at, else two years after it was
added), an expired key signs nothing, what it signed before still verifies, and a party
keeps signing by rotating before the expiry."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from nacl.signing import SigningKey

from ledger.application import Appended, Ledger
from ledger.clock import FakeClock
from ledger.config import Settings
from ledger.domain.key_history import DEFAULT_KEY_LIFETIME, EXIT_OK
from ledger.domain.subjects import party_subject
from ledger.errors import KeyRevoked, ValidationFailed
from ledger.keys import encode_public_key
from ledger.log.checkpoints import Notary
from ledger.log.verify import verify_ledger
from ledger.timeutil import format_utc, parse_utc
from tests.support.batches import refusal
from tests.support.world import (
    ORIGIN,
    PARTIES,
    Actor,
    World,
    actor_of,
    build_world,
    submit_signed_at,
)

SPONSOR = "northwind-bio"


def _world(settings: Settings, notary: Actor) -> Iterator[tuple[World, FakeClock]]:
    clock = FakeClock(ticking=True)
    ledger = Ledger.initialise(settings, ORIGIN, notary.public_key, clock)
    try:
        yield build_world(ledger, notary), clock
    finally:
        ledger.close()


@pytest.fixture
def clocked(settings: Settings, notary: Actor) -> Iterator[tuple[World, FakeClock]]:
    yield from _world(settings, notary)


@pytest.fixture
def short_lived(settings: Settings, notary: Actor) -> Iterator[tuple[World, FakeClock]]:
    """A ledger whose keys may last at most a year, with no party admitted yet."""
    clock = FakeClock(ticking=True)
    year = dataclasses.replace(settings, max_key_lifetime_days=365)
    ledger = Ledger.initialise(year, ORIGIN, notary.public_key, clock)
    try:
        yield World(ledger, notary, {}), clock
    finally:
        ledger.close()


def _add_key(
    world: World,
    clock: FakeClock,
    *,
    by: Actor | None = None,
    expires_at: str | None = None,
) -> tuple[Actor, Appended]:
    """The sponsor adds a fresh key, signed now by ``by`` (its first key by default)."""
    key = SigningKey.generate()
    payload = {"public_key": encode_public_key(key), "purpose": "party"}
    if expires_at is not None:
        payload["expires_at"] = expires_at
    appended = submit_signed_at(
        by or world[SPONSOR],
        world.ledger,
        "KeyAdded",
        party_subject(SPONSOR),
        payload,
        meaning="authored",
        signed_at=clock.now(),
    )
    return Actor(SPONSOR, key), appended


def _expiry(world: World, actor: Actor) -> datetime:
    party = world.ledger.party(actor.party_id)
    assert party is not None
    return party.key_history.expires_at(actor.key_id)


def test_r8_key_expires_two_years_after_it_was_added_by_default(
    clocked: tuple[World, FakeClock],
) -> None:
    world, clock = clocked
    assert timedelta(days=730) == DEFAULT_KEY_LIFETIME
    added, appended = _add_key(world, clock)
    expiry = _expiry(world, added)
    assert expiry == parse_utc(appended.recorded_at, field="recorded_at") + timedelta(days=730)

    clock.advance(expiry - clock.now() - timedelta(seconds=1))
    _add_key(world, clock, by=added)  # a second before its expiry it still signs
    clock.advance(timedelta(seconds=1))
    refusal(world, KeyRevoked, "key", lambda: _add_key(world, clock, by=added))


def test_r8_a_key_named_expires_at_expires_then(clocked: tuple[World, FakeClock]) -> None:
    world, clock = clocked
    asked = format_utc(clock.now() + timedelta(days=90))
    added, _ = _add_key(world, clock, expires_at=asked)
    assert format_utc(_expiry(world, added)) == asked


def test_r8_expired_key_cannot_sign(clocked: tuple[World, FakeClock]) -> None:
    world, clock = clocked
    first = world[SPONSOR]
    expiry = _expiry(world, first)
    clock.advance(expiry - clock.now())
    error = refusal(world, KeyRevoked, "key", lambda: _add_key(world, clock, by=first))
    assert f"expired at {format_utc(expiry)}" in error.message, error.message
    assert "rotate" in error.message and "add a new key" in error.message


def test_r8_expiry_beyond_the_maximum_lifetime_is_refused(
    clocked: tuple[World, FakeClock],
) -> None:
    world, clock = clocked
    days = world.ledger.settings.max_key_lifetime_days
    too_late = format_utc(clock.now() + timedelta(days=days, minutes=5))
    error = refusal(
        world,
        ValidationFailed,
        "payload.expires_at",
        lambda: _add_key(world, clock, expires_at=too_late),
    )
    assert f"at most {days} days" in error.message, error.message
    past = format_utc(clock.now() - timedelta(minutes=1))
    refusal(
        world,
        ValidationFailed,
        "payload.expires_at",
        lambda: _add_key(world, clock, expires_at=past),
    )
    unspelt = (clock.now() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    refusal(
        world,
        ValidationFailed,
        "payload.expires_at",
        lambda: _add_key(world, clock, expires_at=unspelt),
    )


def test_r8_a_shorter_maximum_lifetime_needs_an_expiry_within_it(
    short_lived: tuple[World, FakeClock],
) -> None:
    world, clock = short_lived
    sponsor = actor_of(SPONSOR)
    admission = {
        "party": SPONSOR,
        "legal_name": PARTIES[SPONSOR][0],
        "role": PARTIES[SPONSOR][1],
        "public_key": sponsor.public_key,
    }

    def admit(payload: dict[str, str]) -> Appended:
        return submit_signed_at(
            world.notary,
            world.ledger,
            "PartyAdmitted",
            party_subject(SPONSOR),
            payload,
            meaning="approved",
            signed_at=clock.now(),
        )

    # Two years by default would outlast the ledger's maximum of one year.
    refusal(world, ValidationFailed, "payload.expires_at", lambda: admit(admission))
    within = format_utc(clock.now() + timedelta(days=365))
    admit({**admission, "expires_at": within})
    world.actors[SPONSOR] = sponsor
    assert format_utc(_expiry(world, sponsor)) == within
    refusal(world, ValidationFailed, "payload.expires_at", lambda: _add_key(world, clock))


def test_r8_signatures_made_before_expiry_still_verify(clocked: tuple[World, FakeClock]) -> None:
    world, clock = clocked
    added, _ = _add_key(world, clock)
    _add_key(world, clock, by=added)
    clock.advance(_expiry(world, added) - clock.now() + timedelta(days=1))
    assert _expiry(world, world[SPONSOR]) < clock.now()  # every key used above has expired

    Notary(world.ledger, world.notary.key).checkpoint_now()
    report = verify_ledger(world.ledger, workers=1)
    assert report.ok and report.exit_status == EXIT_OK, report.problems
    assert report.events == world.ledger.head()


def test_r8_rotation_before_expiry_keeps_signing(clocked: tuple[World, FakeClock]) -> None:
    world, clock = clocked
    old = world[SPONSOR]
    clock.advance(_expiry(world, old) - clock.now() - timedelta(days=10))
    party = world.ledger.party(SPONSOR)
    assert party is not None
    assert party.key_history.expiring(clock.now()) == [old.key_id]

    successor, _ = _add_key(world, clock, by=old)  # the rotation, signed with the old key
    clock.advance(timedelta(days=11))
    _add_key(world, clock, by=successor)
    refusal(world, KeyRevoked, "key", lambda: _add_key(world, clock, by=old))
    party = world.ledger.party(SPONSOR)
    assert party is not None
    in_force = party.key_history.in_force(clock.now())
    assert successor.key_id in in_force and old.key_id not in in_force
