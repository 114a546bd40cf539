"""Access grants (R10, R11, R24, R28): only the owner grants, regulators are time-boxed."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from ledger.application import Appended
from ledger.domain.grants import Grant
from ledger.domain.scope import DataItem
from ledger.errors import Forbidden, NotFound, ValidationFailed
from ledger.timeutil import format_utc, now_utc, parse_utc
from tests.support.agreements import grant, propose_and_sign, refused
from tests.support.world import World, agreement_terms


def _open(granted: Grant, when: datetime) -> bool:
    return granted.scope.is_active_at(format_utc(when))


def _covers(
    granted: Grant,
    data_class: str,
    parameter: str | None = None,
    batch: str | None = None,
    data_time: datetime | None = None,
) -> bool:
    when = None if data_time is None else format_utc(data_time)
    return granted.scope.covers(DataItem(granted.agreement, data_class, batch, parameter, when))


def _grant(world: World, grant_id: uuid.UUID, version: int | None = None) -> Grant:
    found = world.ledger.repository.get(grant_id, version=version)
    assert isinstance(found, Grant)
    return found


def _in(days: float) -> str:
    return format_utc(now_utc() + timedelta(days=days))


def _revoke(world: World, grant_id: uuid.UUID, by: str, reason: str | None = "done") -> Appended:
    return world[by].submit(
        world.ledger, "AccessRevoked", grant_id, {}, meaning="revoked", reason=reason
    )


def _cmo_owns_events(world: World) -> uuid.UUID:
    terms = agreement_terms()
    terms["data_classes"]["event"]["owner"] = "contoso-cmo"
    return propose_and_sign(world, terms=terms)


def test_owner_grants_its_data_to_a_second_cmo_for_a_tech_transfer(world: World):
    agreement_id = propose_and_sign(world)
    before = now_utc() - timedelta(seconds=1)
    grant_id = grant(
        world,
        agreement_id,
        "northwind-bio",
        "fabrikam-cmo",
        data_classes=["continuous", "discrete"],
        purpose="NWB-101 tech transfer to Fabrikam",
    )
    granted = _grant(world, grant_id)
    assert (granted.grantor, granted.grantee) == ("northwind-bio", "fabrikam-cmo")
    assert granted.agreement == str(agreement_id)
    assert granted.data_classes == ["continuous", "discrete"]
    assert granted.valid_from == granted.granted_at
    assert granted.valid_until is None
    assert not granted.include_confidential
    assert not _open(granted, before)
    assert _open(granted, now_utc() + timedelta(days=3650))
    assert _covers(granted, "continuous", parameter="pH", batch="NWB101-24-001")
    assert not _covers(granted, "event")


def test_grant_by_a_party_that_does_not_own_the_data_is_refused(world: World):
    agreement_id = _cmo_owns_events(world)
    with refused(world, Forbidden, "payload.data_classes[1]"):
        grant(
            world, agreement_id, "contoso-cmo", "fabrikam-cmo", data_classes=["event", "discrete"]
        )
    # Its own class it may grant.
    grant(world, agreement_id, "contoso-cmo", "northwind-bio", data_classes=["event"])


def test_regrant_by_a_grantee_is_refused(world: World):
    agreement_id = propose_and_sign(world)
    grant(world, agreement_id, "northwind-bio", "fabrikam-cmo", data_classes=["continuous"])
    with refused(world, Forbidden, "payload.data_classes[0]"):
        grant(world, agreement_id, "fabrikam-cmo", "helios-tx", data_classes=["continuous"])


@pytest.mark.parametrize("grantee", ["agency-inspectorate", "qa-auditor-llc"])
def test_regulator_and_auditor_grants_without_an_end_are_refused(world: World, grantee: str):
    agreement_id = propose_and_sign(world)
    with refused(world, ValidationFailed, "payload.valid_until"):
        grant(world, agreement_id, "northwind-bio", grantee, valid_until=None)


def test_regulator_grant_longer_than_90_days_is_refused(world: World):
    agreement_id = propose_and_sign(world)
    start = now_utc()
    with refused(world, ValidationFailed, "payload.valid_until"):
        grant(
            world,
            agreement_id,
            "northwind-bio",
            "agency-inspectorate",
            valid_from=format_utc(start),
            valid_until=format_utc(start + timedelta(days=90, milliseconds=1)),
        )
    grant_id = grant(
        world,
        agreement_id,
        "northwind-bio",
        "agency-inspectorate",
        valid_from=format_utc(start),
        valid_until=format_utc(start + timedelta(days=90)),
    )
    inspection = _grant(world, grant_id)
    assert _open(inspection, start + timedelta(days=89))
    assert not _open(inspection, start + timedelta(days=90))


def test_confidential_grant_by_the_sponsor_is_refused(world: World):
    agreement_id = propose_and_sign(world)
    with refused(world, Forbidden, "payload.include_confidential"):
        grant(
            world, agreement_id, "northwind-bio", "agency-inspectorate", include_confidential=True
        )


def test_confidential_grant_by_the_cmo_opens_only_the_confidential_elements(world: World):
    agreement_id = propose_and_sign(world)
    grant_id = grant(
        world,
        agreement_id,
        "contoso-cmo",
        "agency-inspectorate",
        data_classes=["event"],
        include_confidential=True,
        purpose="inspection: shared equipment schedule around the temperature excursion",
    )
    granted = _grant(world, grant_id)
    assert granted.include_confidential
    assert _covers(granted, "event")


def test_confidential_grant_under_terms_without_confidential_elements_is_refused(world: World):
    terms = agreement_terms()
    terms["confidential_elements"] = []
    agreement_id = propose_and_sign(world, terms=terms)
    with refused(world, ValidationFailed, "payload.include_confidential"):
        grant(world, agreement_id, "contoso-cmo", "agency-inspectorate", include_confidential=True)


def test_grant_to_an_unknown_party_or_to_oneself_is_refused(world: World):
    agreement_id = propose_and_sign(world)
    with refused(world, NotFound, "payload.grantee"):
        grant(world, agreement_id, "northwind-bio", "nobody-inc")
    with refused(world, ValidationFailed, "payload.grantee"):
        grant(world, agreement_id, "northwind-bio", "northwind-bio")


GRANT_REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({"data_classes": []}, "payload.data_classes"),
    ({"data_classes": ["images"]}, "payload.data_classes[0]"),
    ({"data_classes": ["discrete", "discrete"]}, "payload.data_classes[1]"),
    ({"parameters": ["pH", "pH"]}, "payload.parameters[1]"),
    ({"batches": [7]}, "payload.batches[0]"),
    ({"window": {}}, "payload.window"),
    (
        {"window": {"from": "2026-01-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}},
        "payload.window.until",
    ),
    ({"window": {"from": "yesterday"}}, "payload.window.from"),
    ({"valid_from": _in(2), "valid_until": _in(1)}, "payload.valid_until"),
    ({"valid_from": _in(-9), "valid_until": _in(-1)}, "payload.valid_until"),
    ({"purpose": None}, "payload.purpose"),
    ({"include_confidential": "yes"}, "payload.include_confidential"),
    ({"agreement": "not-a-uuid"}, "payload.agreement"),
    ({"scope": "everything"}, "payload.scope"),
]


@pytest.mark.parametrize(("scope", "field"), GRANT_REFUSALS, ids=[f for _, f in GRANT_REFUSALS])
def test_each_invalid_grant_member_is_refused_naming_its_field(
    world: World, scope: dict[str, Any], field: str
):
    agreement_id = propose_and_sign(world)
    with refused(world, ValidationFailed, field):
        grant(world, agreement_id, "northwind-bio", "fabrikam-cmo", **scope)


def test_grant_covers_only_its_parameters_batches_and_window(world: World):
    agreement_id = propose_and_sign(world)
    grant_id = grant(
        world,
        agreement_id,
        "northwind-bio",
        "qa-auditor-llc",
        data_classes=["continuous"],
        parameters=["pH", "dissolved oxygen"],
        batches=["NWB101-24-007"],
        window={"from": "2024-03-01T00:00:00Z", "until": "2024-03-15T00:00:00Z"},
    )
    scoped = _grant(world, grant_id)
    inside = parse_utc("2024-03-07T12:00:00Z", field="t")
    assert _covers(scoped, "continuous", "pH", "NWB101-24-007", inside)
    assert not _covers(scoped, "discrete", "pH", "NWB101-24-007", inside)
    assert not _covers(scoped, "continuous", "culture temperature", "NWB101-24-007", inside)
    assert not _covers(scoped, "continuous", "pH", "NWB101-24-006", inside)
    assert not _covers(scoped, "continuous", "pH", "NWB101-24-007", inside + timedelta(days=8))
    window_from = parse_utc("2024-03-01T00:00:00Z", field="t")
    window_until = parse_utc("2024-03-15T00:00:00Z", field="t")
    assert _covers(scoped, "continuous", "pH", "NWB101-24-007", window_from)
    assert not _covers(scoped, "continuous", "pH", "NWB101-24-007", window_until)
    # A restriction is met only when the item says it is inside.
    assert not _covers(scoped, "continuous", None, "NWB101-24-007", inside)
    assert not _covers(scoped, "continuous", "pH", None, inside)
    assert not _covers(scoped, "continuous", "pH", "NWB101-24-007", None)


def test_backdated_grant_opens_nothing_before_it_was_recorded(world: World):
    agreement_id = propose_and_sign(world)
    before = now_utc() - timedelta(minutes=1)
    grant_id = grant(world, agreement_id, "northwind-bio", "fabrikam-cmo", valid_from=_in(-30))
    assert not _open(_grant(world, grant_id), before)


def test_revocation_by_anyone_but_the_grantor_is_refused(world: World):
    agreement_id = propose_and_sign(world)
    grant_id = grant(world, agreement_id, "northwind-bio", "fabrikam-cmo")
    for other in ("fabrikam-cmo", "contoso-cmo", "helios-tx"):
        with refused(world, Forbidden, "signer"):
            _revoke(world, grant_id, other)


def test_revocation_without_a_reason_is_refused(world: World):
    agreement_id = propose_and_sign(world)
    grant_id = grant(world, agreement_id, "northwind-bio", "fabrikam-cmo")
    with refused(world, ValidationFailed, "reason"):
        _revoke(world, grant_id, "northwind-bio", reason=None)


def test_revoked_grant_stays_in_the_history(world: World):
    agreement_id = propose_and_sign(world)
    grant_id = grant(world, agreement_id, "northwind-bio", "fabrikam-cmo")
    while_open = now_utc()
    time.sleep(0.005)  # the revocation must be recorded in a later millisecond
    revoked = _revoke(world, grant_id, "northwind-bio", reason="tech transfer completed")
    revoked_at = parse_utc(revoked.recorded_at, field="t")

    closed = _grant(world, grant_id)
    assert closed.revoked_at == revoked.recorded_at
    assert closed.revoke_reason == "tech transfer completed"
    assert _open(closed, while_open)
    assert not _open(closed, revoked_at)
    assert _grant(world, grant_id, version=1).revoked_at is None
    with refused(world, Forbidden, "subject"):
        _revoke(world, grant_id, "northwind-bio", reason="again")
