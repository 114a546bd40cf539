"""R31: every event records the software and catalogue schema version that recorded it.

They sit in the event's Merkle leaf (``written_by``), beside the signed envelope and
outside it. Events recorded by an earlier release have no ``written_by``: their leaves
hash exactly as before, they read with both versions ``None``, and ``verify`` passes on a
ledger holding old and new events alike.
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa

from ledger.application import Ledger
from ledger.canonical import canonical_bytes
from ledger.config import Settings
from ledger.domain.catalogue import SCHEMA_VERSION
from ledger.log.checkpoints import Notary
from ledger.log.verify import verify_ledger
from ledger.version import SOFTWARE_VERSION, WrittenBy
from tests.support.server import running_server
from tests.support.world import ORIGIN, Actor, World, build_world

EVENTS = "ledger_events"
WRITTEN_BY = {"schema_version": SCHEMA_VERSION, "software_version": SOFTWARE_VERSION}


class LedgerOfAnEarlierRelease(Ledger):
    """Records events as releases before R31 did: no ``written_by`` in the leaf."""

    name = "Ledger"  # the same tables

    def written_by(self) -> WrittenBy | None:
        return None


def _states(ledger: Ledger) -> list[tuple[int, bytes]]:
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT id, state FROM {EVENTS} ORDER BY id")).all()
    return [(position, bytes(state)) for position, state in rows]


def _mixed_ledger(settings: Settings, notary: Actor) -> tuple[Ledger, int]:
    """A ledger whose first events an earlier release recorded; returns it and how many."""
    older = LedgerOfAnEarlierRelease.initialise(settings, ORIGIN, notary.public_key)
    build_world(older, notary)
    old_count = older.head()
    older.close()
    ledger = Ledger.open(settings)
    World(ledger, notary, {}).admit("gamma-cmo", "Gamma Biologics s.r.o.", "cmo")
    return ledger, old_count


def test_new_events_record_both_versions_and_old_ones_read_without(
    settings: Settings, notary: Actor
) -> None:
    ledger, old_count = _mixed_ledger(settings, notary)
    try:
        stored = dict(_states(ledger))
        for recorded in ledger.iter_log():
            event = recorded.event
            old = recorded.position <= old_count
            three = {
                "envelope": dict(event.envelope),
                "recorded_at": event.recorded_at,
                "signature": event.signature,
            }
            if old:
                # An old event's leaf is exactly the three-member leaf it always was.
                assert stored[recorded.position] == canonical_bytes(three)
                assert (event.software_version, event.schema_version) == (None, None)
                assert event.written_by is None
            else:
                expected = canonical_bytes({**three, "written_by": WRITTEN_BY})
                assert stored[recorded.position] == expected == event.leaf_bytes()
                assert event.software_version == SOFTWARE_VERSION
                assert event.schema_version == SCHEMA_VERSION
            # The signed envelope never carries them.
            assert "written_by" not in event.envelope
            assert "software_version" not in event.envelope
        assert any(r.event.written_by is not None for r in ledger.iter_log())
    finally:
        ledger.close()


def test_verify_passes_on_a_ledger_of_old_and_new_events(settings: Settings, notary: Actor) -> None:
    ledger, _ = _mixed_ledger(settings, notary)
    try:
        Notary(ledger, notary.key).checkpoint_now()
        report = verify_ledger(ledger, workers=1)
        assert report.ok, report.problems
        assert report.events == len(_states(ledger))
    finally:
        ledger.close()


def test_changing_the_recorded_version_breaks_verify(settings: Settings, notary: Actor) -> None:
    ledger, _ = _mixed_ledger(settings, notary)
    try:
        Notary(ledger, notary.key).checkpoint_now()
        position, state = _states(ledger)[-1]
        document = orjson.loads(state)
        document["written_by"]["software_version"] = "9.9.9"
        forged = canonical_bytes(document)
        with ledger.engine.begin() as conn:
            conn.execute(
                sa.text(f"UPDATE {EVENTS} SET state = :s WHERE id = :p"),
                {"s": forged, "p": position},
            )
        report = verify_ledger(ledger, workers=1)
        assert not report.ok
        assert any(problem.position == position for problem in report.errors), report.problems
    finally:
        ledger.close()


def test_a_malformed_written_by_is_reported(settings: Settings, notary: Actor) -> None:
    ledger, _ = _mixed_ledger(settings, notary)
    try:
        position, state = _states(ledger)[-1]
        document = orjson.loads(state)
        document["written_by"] = {"software_version": 3}
        with ledger.engine.begin() as conn:
            conn.execute(
                sa.text(f"UPDATE {EVENTS} SET state = :s WHERE id = :p"),
                {"s": canonical_bytes(document), "p": position},
            )
        report = verify_ledger(ledger, workers=1)
        found = [str(p) for p in report.errors if p.position == position]
        assert any("written_by" in message for message in found), found
    finally:
        ledger.close()


QUERY = "{ log(after: 0, first: 500) { events { position softwareVersion schemaVersion } } }"


def test_graphql_shows_the_versions_and_null_for_old_events(
    settings: Settings, notary: Actor
) -> None:
    older = LedgerOfAnEarlierRelease.initialise(settings, ORIGIN, notary.public_key)
    old_world = build_world(older, notary)
    old_count = older.head()
    older.close()
    ledger = Ledger.open(settings)
    gamma = World(ledger, notary, {}).admit("gamma-cmo", "Gamma Biologics s.r.o.", "cmo")
    ledger.close()
    seen: dict[int, tuple[object, object]] = {}
    with running_server(settings, notary.key) as server:
        for actor in (old_world.actors["contoso-cmo"], gamma):
            data, errors = server.call(actor, QUERY, {})
            assert not errors, errors
            for event in data["log"]["events"]:
                seen[event["position"]] = (event["softwareVersion"], event["schemaVersion"])
    assert any(position <= old_count for position in seen)
    assert any(position > old_count for position in seen)
    for position, versions in seen.items():
        expected = (None, None) if position <= old_count else (SOFTWARE_VERSION, SCHEMA_VERSION)
        assert versions == expected, position
