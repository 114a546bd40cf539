"""CAPAs: opened by either party against deviation, OOS or OOT records of one of the
agreement's batches, owned by one of its parties, closed only by the owner with an
effectiveness check and a reason. Every refusal names its field and stores nothing."""

from __future__ import annotations

import uuid
from typing import Any

from ledger.domain.capa import Capa
from ledger.domain.subjects import capa_subject
from ledger.errors import Forbidden, NotFound, ValidationFailed, VersionConflict
from tests.support.agreements import propose_and_sign, refused
from tests.support.batches import discrete_records, event_records, register_batch, submit_data
from tests.support.world import World

SPONSOR, CMO, OTHER_CMO = "northwind-bio", "contoso-cmo", "fabrikam-cmo"
BATCH, OTHER_BATCH = "NWB101-26-301", "NWB101-26-302"
CAPA = "CAPA-2026-003"
DEVIATION, ALARM, OOT = "E-001", "E-002", "E-003"


def _world_with_deviations(world: World) -> uuid.UUID:
    agreement = propose_and_sign(world)
    register_batch(world, agreement, BATCH)
    submit_data(world, BATCH, "event", event_records())
    return agreement


def _open(
    world: World,
    agreement: uuid.UUID,
    *,
    by: str = SPONSOR,
    capa: str = CAPA,
    subject: uuid.UUID | None = None,
    **overrides: Any,
) -> uuid.UUID:
    payload: dict[str, Any] = {
        "agreement": str(agreement),
        "capa": capa,
        "batch": BATCH,
        "records": [DEVIATION, OOT],
        "description": "Chiller trip: add a redundant chiller and an interlock on BR1.TEMP.",
        "owner": CMO,
    }
    payload.update(overrides)
    subject = subject or capa_subject(agreement, capa)
    world[by].submit(world.ledger, "CapaOpened", subject, payload, meaning="authored")
    return subject


def _close(
    world: World,
    subject: uuid.UUID,
    *,
    by: str = CMO,
    reason: str | None = "interlock verified",
    **payload: Any,
) -> None:
    body = {"effectiveness_check": "no temperature excursion in the next 5 batches", **payload}
    world[by].submit(world.ledger, "CapaClosed", subject, body, meaning="closed", reason=reason)


def _capa(world: World, subject: uuid.UUID) -> Capa:
    found = world.ledger.get_aggregate(subject, Capa)
    assert found is not None
    return found


def test_capa_is_opened_against_records_of_a_batch(world: World):
    agreement = _world_with_deviations(world)
    subject = _open(world, agreement)
    capa = _capa(world, subject)
    assert (capa.batch, capa.records, capa.owner) == (BATCH, [DEVIATION, OOT], CMO)
    assert (capa.opened_by, capa.closed_at) == (SPONSOR, None)
    with refused(world, VersionConflict, "version"):
        _open(world, agreement, by=CMO)


def test_capa_must_address_a_deviation_of_the_batch(world: World):
    agreement = _world_with_deviations(world)
    register_batch(world, agreement, OTHER_BATCH)
    submit_data(world, OTHER_BATCH, "discrete", discrete_records("R"))
    with refused(world, NotFound, "payload.records[1]"):
        _open(world, agreement, records=[DEVIATION, "E-999"])
    with refused(world, ValidationFailed, "payload.records[0]"):
        _open(world, agreement, records=[ALARM])
    with refused(world, ValidationFailed, "payload.records[1]"):
        _open(world, agreement, records=[DEVIATION, DEVIATION])
    with refused(world, ValidationFailed, "payload.records"):
        _open(world, agreement, records=[])
    with refused(world, NotFound, "payload.records[0]"):
        _open(world, agreement, batch=OTHER_BATCH, records=[DEVIATION])
    with refused(world, ValidationFailed, "payload.records[0]"):
        _open(world, agreement, batch=OTHER_BATCH, records=["R-001"])
    other = propose_and_sign(world)
    with refused(world, NotFound, "payload.batch"):
        _open(world, other)


def test_capa_is_owned_and_opened_by_the_agreement_parties(world: World):
    agreement = _world_with_deviations(world)
    with refused(world, ValidationFailed, "payload.owner"):
        _open(world, agreement, owner=OTHER_CMO)
    with refused(world, Forbidden, "signer"):
        _open(world, agreement, by=OTHER_CMO)
    with refused(world, ValidationFailed, "subject"):
        _open(world, agreement, capa="CAPA-2026-004", subject=capa_subject(agreement, CAPA))


def test_capa_closes_with_an_effectiveness_check(world: World):
    agreement = _world_with_deviations(world)
    subject = _open(world, agreement)
    with refused(world, Forbidden, "signer"):
        _close(world, subject, by=SPONSOR)
    with refused(world, ValidationFailed, "payload.effectiveness_check"):
        _close(world, subject, effectiveness_check=" ")
    with refused(world, ValidationFailed, "reason"):
        _close(world, subject, reason=None)
    _close(world, subject)
    capa = _capa(world, subject)
    assert capa.effectiveness_check == "no temperature excursion in the next 5 batches"
    assert (capa.close_reason, capa.closed_at is not None) == ("interlock verified", True)
    with refused(world, Forbidden, "subject"):
        _close(world, subject)
