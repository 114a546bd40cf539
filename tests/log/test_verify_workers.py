"""Workers read their own ranges of the log: they find what one process finds, and read
the snapshot the verification began with.

Each ledger holds more than two chunks of three events, so two workers check it, each
on a connection of its own.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from ledger.application import Ledger
from ledger.domain.subjects import party_subject
from ledger.keys import encode_public_key
from ledger.log.checkpoints import Notary
from ledger.log.leaf import leaf_bytes
from ledger.log.verify import verify_ledger
from ledger.log.verify.rows import EventSql
from ledger.timeutil import format_utc, now_utc
from tests.support.tamper import EVENTS, execute, new_key, positions, state_of
from tests.support.world import World

CHUNK = 3


@pytest.fixture
def grown(world: World) -> World:
    """Six admissions, a second key for three parties, contoso's first key revoked, a
    checkpoint of those ten, then two more admissions: twelve events."""
    for party in ("contoso-cmo", "helios-tx", "northwind-bio"):
        world.add_key(party, new_key(party, "second key"))
    world.notary.submit(
        world.ledger,
        "KeyRevoked",
        party_subject("contoso-cmo"),
        {"key": world["contoso-cmo"].key_id},
        meaning="revoked",
        reason="laptop lost",
    )
    Notary(world.ledger, world.notary.key).checkpoint_now()
    world.admit("gamma-cmo", "Gamma Biologics s.r.o.", "cmo")
    world.admit("delta-cmo", "Delta Biologics GmbH", "cmo")
    return world


def set_state(ledger: Ledger, position: int, state: bytes) -> None:
    execute(ledger, f"UPDATE {EVENTS} SET state = :s WHERE id = :p", s=state, p=position)


# Each tampers with a row in a later range than the first and says which position
# should be named, and with what.


def changed_byte(world: World) -> tuple[int, str]:
    target = positions(world.ledger)[-2]  # gamma-cmo's admission
    state = state_of(world.ledger, target)
    set_state(world.ledger, target, state.replace(b"Gamma", b"Gamna", 1))
    return target, "signature does not verify"


def forged_signature(world: World) -> tuple[int, str]:
    target = positions(world.ledger)[-1]
    state = state_of(world.ledger, target)
    signature = world["delta-cmo"].key.sign(b"something else").signature
    start = state.index(b'"signature":"') + len(b'"signature":"')
    end = state.index(b'"', start)
    forged = state[:start] + base64.b64encode(signature) + state[end:]
    set_state(world.ledger, target, forged)
    return target, "signature does not verify"


def signed_with_a_revoked_key(world: World) -> tuple[int, str]:
    ledger, party = world.ledger, "contoso-cmo"
    # The party's first key, revoked: its actor still signs with it.
    envelope, signature = world[party].prepare(
        ledger,
        "KeyAdded",
        party_subject(party),
        {"public_key": encode_public_key(new_key(party, "third key")), "purpose": "party"},
        meaning="authored",
    )
    target = ledger.head() + 1
    with ledger.engine.begin() as conn:
        conn.execute(
            ledger.storage.events_table.insert().values(
                id=target,
                originator_id=party_subject(party),
                originator_version=envelope["version"],
                topic="cmo.KeyAdded.v1",
                state=leaf_bytes(envelope, format_utc(now_utc()), signature),
            )
        )
    return target, f"key {world[party].key_id} of {party} was revoked"


def broken_chain(world: World) -> tuple[int, str]:
    kept = positions(world.ledger)
    execute(world.ledger, f"DELETE FROM {EVENTS} WHERE id = :p", p=kept[6])  # contoso's KeyAdded
    return kept[9], "version 3 follows version 1"  # contoso's revocation


TAMPERS: dict[str, Callable[[World], tuple[int, str]]] = {
    "changed byte": changed_byte,
    "forged signature": forged_signature,
    "revoked key": signed_with_a_revoked_key,
    "broken chain": broken_chain,
}


@pytest.mark.parametrize("tamper", TAMPERS)
def test_workers_reading_their_ranges_find_what_one_process_finds(
    grown: World, tamper: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = grown.ledger
    target, expected = TAMPERS[tamper](grown)
    alone = verify_ledger(ledger, workers=1, chunk_size=CHUNK)

    def read_by_the_caller(*_: object) -> None:
        raise AssertionError("with workers, the workers read the rows")

    monkeypatch.setattr(EventSql, "between", read_by_the_caller)
    together = verify_ledger(ledger, workers=2, chunk_size=CHUNK)
    assert together == alone
    assert together.events == len(positions(ledger)) > 2 * CHUNK
    named = [problem.message for problem in together.problems if problem.position == target]
    assert named, together.problems
    assert any(expected in message for message in named), named


def test_a_clean_ledger_verifies_with_workers(grown: World) -> None:
    report = verify_ledger(grown.ledger, workers=2, chunk_size=CHUNK)
    assert report.ok, report.problems
    assert (report.events, report.checkpoints) == (len(positions(grown.ledger)), 1)


def test_workers_read_the_snapshot_the_verification_began_with(
    grown: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = grown.ledger
    before = positions(ledger)
    source = EventSql.source

    def changed_meanwhile(events: EventSql) -> object:
        # Between the snapshot and the workers' first reads: an append, and on
        # PostgreSQL (whose workers share the snapshot) a changed row as well.
        found = source(events)
        grown.admit("late-cmo", "Late Biologics Ltd", "cmo")
        if ledger.settings.is_postgres:
            target = before[-1]
            set_state(ledger, target, state_of(ledger, target).replace(b"Delta", b"Delda"))
        return found

    monkeypatch.setattr(EventSql, "source", changed_meanwhile)
    report = verify_ledger(ledger, workers=2, chunk_size=CHUNK)
    assert report.ok, report.problems
    assert report.events == len(before)
