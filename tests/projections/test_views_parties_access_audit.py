"""Parties and keys, access grants and the audit index."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from nacl.signing import SigningKey

from ledger.application import Recorded
from ledger.domain.scope import GrantScope
from ledger.domain.subjects import party_subject
from ledger.keys import encode_public_key, key_id
from ledger.log.envelope import StoredEvent
from ledger.timeutil import format_utc, now_utc
from projections.access import grants_as_of
from projections.audit import AUDIT, AuditView, resolve_time
from projections.parties import KEYS
from projections.runner import Projector
from projections.temporal import as_of
from tests.support.agreements import grant, propose_and_sign
from tests.support.batches import discrete_records, register_batch, submit_data
from tests.support.world import World


def _rows(world: World, table: sa.Table, position: int | None = None, **where: Any) -> list[Any]:
    query = sa.select(table).where(*[table.c[k] == v for k, v in where.items()])
    if "valid_to" in table.c:
        query = query.where(
            table.c.valid_to.is_(None) if position is None else as_of(table, position)
        )
    with world.ledger.engine.connect() as conn:
        return [row._mapping for row in conn.execute(query)]


def test_a_revoked_key_shows_when_it_was_valid_and_since_when_it_is_suspect(
    world: World, projector: Projector
) -> None:
    laptop = SigningKey(b"\x11" * 32)
    contoso = world["contoso-cmo"]
    payload = {"public_key": encode_public_key(laptop), "purpose": "party"}
    subject = party_subject("contoso-cmo")
    contoso.submit(world.ledger, "KeyAdded", subject, payload, meaning="authored")
    added = world.ledger.head()
    since = format_utc(now_utc() - timedelta(hours=3))
    contoso.submit(
        world.ledger,
        "KeyRevoked",
        party_subject("contoso-cmo"),
        {"key": key_id(laptop.verify_key), "compromised_since": since},
        meaning="revoked",
        reason="laptop stolen",
    )

    (then,) = _rows(world, KEYS, added, key=key_id(laptop.verify_key))
    (now,) = _rows(world, KEYS, key=key_id(laptop.verify_key))
    assert then["revoked_at"] is None and then["party"] == "contoso-cmo"
    assert (now["compromised_since"], now["revoke_reason"]) == (since, "laptop stolen")
    assert now["added_at"] < now["revoked_at"]


def test_a_grant_is_open_until_revoked_and_stays_in_the_history(
    world: World, projector: Projector
) -> None:
    agreement = propose_and_sign(world)
    grant_id = grant(world, agreement, "northwind-bio", "fabrikam-cmo")
    granted = world.ledger.head()
    world["northwind-bio"].submit(
        world.ledger, "AccessRevoked", grant_id, {}, meaning="revoked", reason="transfer done"
    )

    with world.ledger.engine.connect() as conn:
        (then,) = grants_as_of(conn, granted, grantee="fabrikam-cmo")
        (now,) = grants_as_of(conn, world.ledger.head(), grantee="fabrikam-cmo")
        assert grants_as_of(conn, granted, grantee="helios-tx") == []
    assert (then["status"], now["status"]) == ("active", "revoked")
    assert GrantScope.from_row(then).is_active_at(then["granted_at"])
    assert GrantScope.from_row(now).is_active_at(then["granted_at"])
    assert not GrantScope.from_row(now).is_active_at(now["revoked_at"])
    assert then["include_confidential"] is False
    assert then["data_classes"] == '["continuous","discrete","event"]'


def _granted_and_revoked(world: World) -> uuid.UUID:
    """An agreement in force, and a grant under it revoked with a reason."""
    agreement = propose_and_sign(world)
    grant_id = grant(world, agreement, "northwind-bio", "fabrikam-cmo")
    world["northwind-bio"].submit(
        world.ledger, "AccessRevoked", grant_id, {}, meaning="revoked", reason="done"
    )
    return agreement


def test_the_audit_index_numbers_leaves_densely_and_names_agreement_and_batch(
    world: World, projector: Projector
) -> None:
    agreement = _granted_and_revoked(world)
    register_batch(world, agreement)
    submit_data(world, "NWB101-24-001", "discrete", discrete_records("R"))

    rows = sorted(_rows(world, AUDIT), key=lambda r: r["position"])
    assert [r["leaf_index"] for r in rows] == list(range(world.ledger.head()))
    by_type = {r["type"]: r for r in rows}
    assert by_type["AccessRevoked"]["agreement"] == str(agreement)
    assert by_type["AccessRevoked"]["reason"] == "done"
    assert by_type["DataSubmitted"]["batch"] == "NWB101-24-001"
    assert by_type["DataSubmitted"]["agreement"] == str(agreement)
    assert by_type["PartyAdmitted"]["agreement"] is None


def test_each_audit_column_holds_its_own_field_of_the_event(
    world: World, projector: Projector
) -> None:
    # The audit view writes its rows as tuples in column order: a swapped pair of
    # columns would still compare equal between incremental and rebuilt views.
    _granted_and_revoked(world)

    rows = {r["position"]: r for r in _rows(world, AUDIT)}
    log = list(world.ledger.iter_log())
    assert len(rows) == len(log)
    for recorded in log:
        envelope = recorded.event.envelope
        row = rows[recorded.position]
        names = ("subject", "version", "type", "signer", "key", "meaning", "signed_at")
        assert {n: row[n] for n in names} == {n: envelope[n] for n in names}
        assert row["reason"] == envelope.get("reason")
        assert row["recorded_at"] == recorded.event.recorded_at
        assert row["recorded_through"] >= row["recorded_at"]


def _event(position: int, recorded_at: str) -> Recorded:
    envelope = {
        "subject": str(uuid.uuid4()),
        "version": 1,
        "type": "PartyAdmitted",
        "signer": "notary",
        "key": "0" * 32,
        "meaning": "approved",
        "signed_at": recorded_at,
        "payload": {},
    }
    return Recorded(position, uuid.uuid4(), 1, "t", StoredEvent(envelope, "sig", recorded_at))


def test_a_time_never_resolves_past_an_event_recorded_after_it(projector: Projector) -> None:
    # Two writers' clocks: position 3 was recorded before position 2.
    times = ["2026-01-01T10:00:00.000Z", "2026-01-01T10:00:05.000Z", "2026-01-01T10:00:02.000Z"]
    view = AuditView(projector.ledger)
    with view.tracking.transaction(commit=False) as session:
        view.apply(session, [_event(p, t) for p, t in enumerate(times, 1)])
        conn = session.connection()
        assert resolve_time(conn, "2026-01-01T10:00:01.000Z") == 1
        assert resolve_time(conn, "2026-01-01T10:00:03.000Z") == 1  # 2 came at :05
        assert resolve_time(conn, "2026-01-01T10:00:05.000Z") == 3
        assert resolve_time(conn, "2026-01-01T09:00:00.000Z") == 0
