"""The append path checks envelopes against aggregates kept in memory, coherent with the log
by its positions: few statements per append, and never a stale ``version``/``prev``
accepted nor a valid one refused, when two ledgers (two processes) share one database."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

import pytest
import sqlalchemy as sa
from nacl.signing import SigningKey

from ledger.application import Ledger
from ledger.domain.subjects import batch_subject, party_subject
from ledger.errors import BadSignature, VersionConflict
from ledger.keys import encode_public_key
from ledger.log.envelope import event_hash
from ledger.log.storage import Storage
from tests.support.agreements import propose_and_sign
from tests.support.batches import data_payload, discrete_records, register_batch, registration
from tests.support.statements import counted
from tests.support.world import Actor, World

CMO = "contoso-cmo"
MAX_STATEMENTS = 6


def _key_added(actor: Actor, ledger: Ledger) -> tuple[dict[str, Any], str]:
    payload = {"public_key": encode_public_key(SigningKey.generate()), "purpose": "party"}
    return actor.prepare(
        ledger, "KeyAdded", party_subject(actor.party_id), payload, meaning="authored"
    )


def _data_chain(
    world: World, batch: str, count: int, prefix: str
) -> list[tuple[dict[str, Any], str]]:
    """``count`` DataSubmitted envelopes chained on the batch, signed by the CMO."""
    cmo = world[CMO]
    subject = batch_subject(batch)
    version, prev = world.ledger.next_version(subject)
    chain: list[tuple[dict[str, Any], str]] = []
    for index in range(count):
        payload = data_payload("discrete", discrete_records(f"{prefix}{index}"))
        envelope = cmo.envelope(
            "DataSubmitted",
            subject,
            payload,
            version=version + index,
            prev=prev,
            meaning="submitted",
        )
        signature = cmo.sign(envelope)
        chain.append((envelope, signature))
        prev = event_hash(envelope, signature)
    return chain


@pytest.mark.parametrize("count", [1, 100])
def test_an_append_reads_once_and_runs_at_most_six_statements(world: World, count: int) -> None:
    agreement = propose_and_sign(world)
    register_batch(world, agreement, "B-STATEMENTS")
    world.ledger.append_many(_data_chain(world, "B-STATEMENTS", 1, "W"))  # the rules' state
    chain = _data_chain(world, "B-STATEMENTS", count, "S")
    with counted(world.ledger) as statements:
        appended = world.ledger.append_many(chain)
    assert len(appended) == count
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
    assert len(reads) == 1, reads  # the log's tail since the last append, nothing per envelope
    assert len(inserts) == 1, inserts  # every event of the batch in one statement
    assert len(statements) <= MAX_STATEMENTS, statements


def test_each_appended_event_is_told_the_position_it_was_stored_at(world: World) -> None:
    agreement = propose_and_sign(world)
    register_batch(world, agreement, "B-POSITIONS")
    chain = _data_chain(world, "B-POSITIONS", 120, "P")
    appended = world.ledger.append_many(chain)
    stored = world.ledger.read_at([each.position for each in appended])
    assert len(stored) == len(chain)
    for each, (envelope, _) in zip(appended, chain, strict=True):
        recorded = stored[each.position]
        assert (recorded.subject, recorded.version) == (each.subject, envelope["version"])
        assert recorded.event.envelope == envelope


def test_a_second_ledger_s_appends_are_seen_before_the_next_check(world: World) -> None:
    first = world.ledger
    second = Ledger.open(first.settings)
    try:
        actor = world[CMO]
        for turn in range(6):
            writer, other = (first, second) if turn % 2 == 0 else (second, first)
            stale = _key_added(actor, other)  # prepared before the writer's append
            writer.append(*_key_added(actor, writer))
            with pytest.raises(VersionConflict):
                other.append(*stale)
            # The valid next version is accepted by the ledger that did not write last.
            other.append(*_key_added(actor, other))
    finally:
        second.close()
    version, _ = first.next_version(party_subject(CMO))
    party = first.party(CMO)
    assert party is not None and party.version == version - 1


def test_a_refused_batch_leaves_no_trace_in_the_state_the_next_append_is_checked_on(
    world: World,
) -> None:
    actor = world[CMO]
    good = _key_added(actor, world.ledger)
    head = world.ledger.head()
    subject = party_subject(CMO)
    # Two changes to the same party, the second not signed by it: all or nothing.
    chained_version = good[0]["version"] + 1
    second = actor.envelope(
        "KeyAdded",
        subject,
        {"public_key": encode_public_key(SigningKey.generate()), "purpose": "party"},
        version=chained_version,
        prev=event_hash(*good),
        meaning="authored",
    )
    forged_signature = Actor(CMO, SigningKey.generate()).sign(second)
    with pytest.raises(BadSignature):
        world.ledger.append_many([good, (second, forged_signature)])
    assert world.ledger.head() == head
    # The first change was applied in memory before the second was refused; the same
    # envelope is accepted now, at the version the stored log expects.
    appended = world.ledger.append(*good)
    assert appended.version == good[0]["version"]


def test_a_group_whose_read_fails_leaves_no_trace_in_the_state_the_next_append_is_checked_on(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    actor = world[CMO]
    good = _key_added(actor, world.ledger)
    agreement = propose_and_sign(world)
    new_batch = batch_subject("NWB101-24-977")
    registered = actor.prepare(
        world.ledger,
        "BatchRegistered",
        new_batch,
        registration(agreement, "NWB101-24-977"),
        meaning="authored",
    )
    head = world.ledger.head()
    asked = Storage.subjects_with_events

    def database_gone(self: Storage, subjects: Collection[uuid.UUID]) -> set[uuid.UUID]:
        if new_batch in subjects:
            raise sa.exc.OperationalError("SELECT", {}, OSError("server closed the connection"))
        return asked(self, subjects)

    with monkeypatch.context() as patch:
        patch.setattr(Storage, "subjects_with_events", database_gone)
        patch.setattr(Storage, "has_events", lambda self, subject: database_gone(self, {subject}))
        with pytest.raises(sa.exc.OperationalError):
            # The first request changes the party in memory; the second's read fails.
            world.ledger.append_group([([good], None), ([registered], None)])
    assert world.ledger.head() == head
    # Nothing was stored: the same envelope is the party's next, and it is accepted.
    assert world.ledger.append(*good).version == good[0]["version"]
