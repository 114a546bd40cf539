"""The events table holds each event's Merkle leaf bytes verbatim, and `verify` checks them
as stored; ledgers holding events in the library's older JSON form read and verify too."""

from __future__ import annotations

import hashlib
import json

import orjson
import pytest
import sqlalchemy as sa
from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, MapperDeserialisationError
from eventsourcing.persistence import StoredEvent as StoredRow
from nacl.signing import SigningKey

import ledger.log.verify.rows as verify_module
from ledger.application import Ledger
from ledger.canonical import canonical_bytes
from ledger.config import Settings
from ledger.domain.catalogue import SCHEMA_VERSION
from ledger.log.checkpoints import Notary
from ledger.log.merkle import leaf_hash, root_of
from ledger.log.tree import MerkleTree
from ledger.log.verify import verify_ledger
from ledger.version import SOFTWARE_VERSION
from tests.support.world import ORIGIN, Actor, World, build_world

EVENTS = "ledger_events"


class LedgerOfTheOlderForm(Ledger):
    """Stores events as ledgers created before the leaf form did: the library's JSON."""

    name = "Ledger"  # the same tables

    def construct_mapper(self) -> Mapper:  # type: ignore[type-arg]
        return Application.construct_mapper(self)


def states(ledger: Ledger) -> list[tuple[int, bytes]]:
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT id, state FROM {EVENTS} ORDER BY id")).all()
    return [(position, bytes(state)) for position, state in rows]


def add_key(world: World, party: str) -> None:
    key = SigningKey(hashlib.sha256(f"{party} another key".encode()).digest())
    world.add_key(party, key)


def test_a_stored_event_is_its_canonical_leaf(world: World) -> None:
    stored = dict(states(world.ledger))
    for recorded in world.ledger.iter_log():
        event = recorded.event
        canonical = canonical_bytes(
            {
                "envelope": dict(event.envelope),
                "recorded_at": event.recorded_at,
                "signature": event.signature,
                "written_by": {
                    "schema_version": SCHEMA_VERSION,
                    "software_version": SOFTWARE_VERSION,
                },
            }
        )
        assert stored[recorded.position] == canonical == event.leaf_bytes()


def test_the_tree_hashes_the_stored_bytes(world: World) -> None:
    tree = MerkleTree(world.ledger)
    tree.catch_up()
    expected = [leaf_hash(state) for _, state in states(world.ledger)]
    assert [tree.leaf(index)[1] for index in range(tree.size())] == expected
    assert tree.root() == root_of(expected)


def test_verify_checks_leaves_as_stored_without_decoding_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    Notary(world.ledger, world.notary.key).checkpoint_now()
    decoded: list[int] = []
    slow_path = verify_module._check_decoded

    def counted(row, *args):  # type: ignore[no-untyped-def]
        decoded.append(row[0])
        return slow_path(row, *args)

    monkeypatch.setattr(verify_module, "_check_decoded", counted)
    report = verify_ledger(world.ledger, workers=1)
    assert report.ok, report.problems
    assert report.events == len(states(world.ledger))
    assert decoded == []


@pytest.mark.parametrize("indent", [None, 1], ids=["spaced", "indented"])
def test_a_leaf_rewritten_in_another_json_form_is_found(world: World, indent: int | None) -> None:
    Notary(world.ledger, world.notary.key).checkpoint_now()
    position, state = states(world.ledger)[3]
    # The same event, the same signature, the same JSON value: only the bytes differ.
    rewritten = json.dumps(orjson.loads(state), ensure_ascii=True, indent=indent).encode()
    with world.ledger.engine.begin() as conn:
        conn.execute(
            sa.text(f"UPDATE {EVENTS} SET state = :s WHERE id = :p"),
            {"s": rewritten, "p": position},
        )
    report = verify_ledger(world.ledger, workers=1)
    assert not report.ok
    found = [str(problem) for problem in report.errors if problem.position == position]
    assert any("not the canonical leaf" in message for message in found), found
    assert not any("signature" in message for message in found), found


def test_events_in_the_older_json_form_still_read_and_verify(
    settings: Settings, notary: Actor
) -> None:
    older = LedgerOfTheOlderForm.initialise(settings, ORIGIN, notary.public_key)
    build_world(older, notary)
    older.close()
    ledger = Ledger.open(settings)
    try:
        world = World(ledger, notary, {})
        world.admit("gamma-cmo", "Gamma Biologics s.r.o.", "cmo")
        add_key(world, "gamma-cmo")
        kinds = [state[:12] for _, state in states(ledger)]
        assert kinds[0] == b'{"timestamp"' and kinds[-1] == b'{"envelope":'
        leaves = [recorded.event.leaf_bytes() for recorded in ledger.iter_log()]
        tree = MerkleTree(ledger)
        tree.catch_up()
        assert tree.root() == root_of([leaf_hash(leaf) for leaf in leaves])
        Notary(ledger, notary.key).checkpoint_now()
        report = verify_ledger(ledger, workers=1)
        assert report.ok, report.problems
        assert report.events == len(leaves)
    finally:
        ledger.close()


def _stored(world: World, index: int) -> StoredRow:
    ledger = world.ledger
    notification = ledger.recorder.select_notifications(start=index, limit=1)[0]
    return StoredRow(
        originator_id=notification.originator_id,
        originator_version=notification.originator_version,
        topic=notification.topic,
        state=notification.state,
    )


def test_an_event_with_more_than_the_signed_fields_is_stored_as_the_library_stores_it(
    world: World,
) -> None:
    mapper = world.ledger.mapper
    event = mapper.to_domain_event(_stored(world, 2))
    event.__dict__["note"] = "not part of the leaf"
    stored = mapper.to_stored_event(event)
    assert stored.state.startswith(b'{"timestamp":')
    assert mapper.to_domain_event(stored).__dict__["note"] == "not part of the leaf"


def test_a_leaf_of_an_event_class_now_in_version_2_is_upcast(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = _stored(world, 2)
    cls = type(world.ledger.mapper.to_domain_event(row))

    def upcast(state: dict[str, object]) -> None:
        state["upcast"] = True

    monkeypatch.setattr(cls, "class_version", 2, raising=False)
    monkeypatch.setattr(cls, "upcast_v1_v2", staticmethod(upcast), raising=False)
    assert world.ledger.mapper.to_domain_event(row).__dict__["upcast"] is True


def test_an_unreadable_leaf_is_a_deserialisation_error(world: World) -> None:
    row = _stored(world, 2)
    broken = StoredRow(row.originator_id, row.originator_version, row.topic, b'{"envelope":{')
    with pytest.raises(MapperDeserialisationError):
        world.ledger.mapper.to_domain_event(broken)


def test_a_changed_envelope_fails_its_signature_and_the_checkpoint(world: World) -> None:
    Notary(world.ledger, world.notary.key).checkpoint_now()
    position, state = states(world.ledger)[1]
    tampered = state.replace(b"Helios", b"Helioz")
    with world.ledger.engine.begin() as conn:
        conn.execute(
            sa.text(f"UPDATE {EVENTS} SET state = :s WHERE id = :p"), {"s": tampered, "p": position}
        )
    found = verify_ledger(world.ledger, workers=1)
    assert {p.position for p in found.errors} == {position, None}  # None: the checkpoint
    assert any("signature does not verify" in str(p) for p in found.errors)
