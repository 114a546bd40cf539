"""Corrective and preventive actions: ``CapaOpened``, ``CapaClosed``.

Either party of an agreement in force opens a CAPA against the deviation, OOS or OOT
records of one of the agreement's batches (current event records of
:attr:`ledger.domain.batches.Batch.records`, of the kinds
:data:`~ledger.domain.formats.ACKNOWLEDGEABLE_KINDS`) and names its owner, one of the
agreement's parties. Only the owner closes it, with the effectiveness check that shows the
action worked and a reason. A CAPA is open until it is closed; the batch shows its open
CAPAs (``Batch.capas`` in the API).

The subject is derived from the agreement and the CAPA id
(:func:`ledger.domain.subjects.capa_subject`), so an id names one CAPA of an agreement and
is never reused. Payloads::

    CapaOpened   agreement, capa (an id such as CAPA-2026-003), batch (its name), records
                 (1..100 record ids of the batch, no duplicates), description, owner (the
                 agreement's sponsor or CMO)
    CapaClosed   effectiveness_check (text); envelope reason required
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate, event

from ledger.domain.agreements import Agreement, agreement_in_force, require_agreement_party
from ledger.domain.batches import Batch
from ledger.domain.catalogue import Command, EventSpec, SignedAggregate, register
from ledger.domain.changes import MAX_DESCRIPTION, read_reference
from ledger.domain.fields import Fields
from ledger.domain.formats import ACKNOWLEDGEABLE_KINDS, BATCH_ID
from ledger.domain.payloads import MAX_CAPA_RECORDS
from ledger.domain.subjects import batch_subject, capa_subject
from ledger.errors import Forbidden, NotFound, ValidationFailed

__all__ = ["MAX_EFFECTIVENESS_CHECK", "Capa"]

MAX_EFFECTIVENESS_CHECK = 4000


class Capa(SignedAggregate):
    """One CAPA: the batch records it addresses, its owner, and its closure."""

    TOPIC = "cmo.Capa.v1"

    class Created(Aggregate.Created):
        TOPIC = "cmo.Capa.Created.v1"

    @event("CapaOpened", topic="cmo.CapaOpened.v1")
    def __init__(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        payload = envelope["payload"]
        self.agreement: str = payload["agreement"]
        self.capa_id: str = payload["capa"]
        self.batch: str = payload["batch"]
        self.records: list[str] = list(payload["records"])
        self.description: str = payload["description"]
        self.owner: str = payload["owner"]
        self.opened_by: str = envelope["signer"]
        self.opened_at: str = recorded_at
        self.closed_at: str | None = None
        self.effectiveness_check: str | None = None
        self.close_reason: str | None = None

    @event("CapaClosed", topic="cmo.CapaClosed.v1")
    def _closed(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        self.closed_at = recorded_at
        self.effectiveness_check = envelope["payload"]["effectiveness_check"]
        self.close_reason = envelope.get("reason")


# -- checks -------------------------------------------------------------------------------


def _read_batch(command: Command, payload: Fields, agreement: Agreement) -> Batch:
    name = payload.raw("batch")
    if not isinstance(name, str) or not BATCH_ID.match(name):
        raise ValidationFailed("expected a batch id such as NWB101-24-001", field="payload.batch")
    batch = command.state.find(batch_subject(name), Batch)
    if batch is None or batch.agreement != str(agreement.id):
        raise NotFound(f"the agreement has no batch {name}", field="payload.batch")
    return batch


def _read_records(payload: Fields, batch: Batch, agreement: Agreement) -> None:
    """1..100 unique ids of the batch's current deviation, OOS or OOT records."""
    ids = payload.texts("records", max_items=MAX_CAPA_RECORDS)
    if not ids:
        raise ValidationFailed(
            "name the deviation, OOS or OOT records the CAPA addresses", field="payload.records"
        )
    for index, record_id in enumerate(ids):
        field = f"payload.records[{index}]"
        if record_id in ids[:index]:
            raise ValidationFailed(f"record {record_id} is listed twice", field=field)
        record = batch.records.get(record_id)
        if record is None:
            raise NotFound(f"batch {batch.batch_id} has no record {record_id}", field=field)
        if not batch.is_current(record_id):
            raise ValidationFailed(
                f"record {record_id} was withdrawn by correction {record['superseded_by']}",
                field=field,
            )
        kind = record["event_kind"]
        if agreement.form_of(record["class"]) != "event" or kind not in ACKNOWLEDGEABLE_KINDS:
            raise ValidationFailed(
                f"record {record_id} is {kind or 'not an event record'}; a CAPA addresses "
                f"{', '.join(ACKNOWLEDGEABLE_KINDS)} records",
                field=field,
            )


# -- rules --------------------------------------------------------------------------------


def _opened_rule(command: Command) -> None:
    payload = command.payload
    agreement_id = payload.uuid("agreement")
    agreement = agreement_in_force(command, agreement_id)
    require_agreement_party(command, agreement)
    capa_id = read_reference(payload, "capa")
    expected = capa_subject(agreement_id, capa_id)
    if command.envelope.subject != expected:
        raise ValidationFailed(f"the subject of CAPA {capa_id} must be {expected}", field="subject")
    batch = _read_batch(command, payload, agreement)
    _read_records(payload, batch, agreement)
    payload.text("description", max_len=MAX_DESCRIPTION)
    owner = payload.text("owner", max_len=64)
    if not agreement.is_party(owner):
        raise ValidationFailed(
            f"the owner of a CAPA is {agreement.sponsor} or {agreement.cmo}",
            field="payload.owner",
        )


def _closed_rule(command: Command) -> None:
    capa: Capa = command.subject
    command.require_signer(capa.owner)
    if capa.closed_at is not None:
        raise Forbidden(
            f"CAPA {capa.capa_id} was already closed at {capa.closed_at}", field="subject"
        )
    command.payload.text("effectiveness_check", max_len=MAX_EFFECTIVENESS_CHECK)


register(
    EventSpec(
        "CapaOpened",
        Capa,
        frozenset({"authored"}),
        _opened_rule,
        signers="the agreement's sponsor or CMO (party key); the agreement must be in force",
        description="opens a CAPA against deviation, OOS or OOT records of a batch, owned by "
        "one of the agreement's parties",
    ),
    EventSpec(
        "CapaClosed",
        Capa,
        frozenset({"closed"}),
        _closed_rule,
        apply="_closed",
        reason_required=True,
        signers="the CAPA's owner (party key)",
        description="closes the CAPA with the effectiveness check that shows the action worked",
    ),
)
