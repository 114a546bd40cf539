"""The read-access log's commitments (R11): ``ReadsRecorded``, signed by the notary.

Every read of a batch's GxP data by a party other than its owner is a row of the server's
``read_access`` table (:mod:`api.read_log`). At most every ``CMO_LEDGER_READ_LOG_INTERVAL``
seconds the notary commits the rows not yet committed with one ``ReadsRecorded`` event: the
Merkle root (RFC 9162, :mod:`ledger.log.merkle`) of their canonical bytes, so that the
access log is itself tamper-evident: a row altered, dropped or inserted afterwards no
longer gives the signed root. The subject is a fresh UUID per event. Payload::

    first   the id of the first row committed
    last    the id of the last row committed
    count   how many rows (ids are increasing; gaps are rows of rolled-back requests)
    root    the Merkle root of the rows' canonical bytes, lowercase hex SHA-256
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate, event

from ledger.domain.catalogue import Command, EventSpec, SignedAggregate, register
from ledger.domain.parties import NOTARY
from ledger.errors import ValidationFailed

__all__ = ["READS_RECORDED", "ReadsRecorded"]

READS_RECORDED = "ReadsRecorded"


class ReadsRecorded(SignedAggregate):
    """One batch of read-access rows the notary committed to."""

    TOPIC = "cmo.ReadsRecordedRecord.v1"

    class Created(Aggregate.Created):
        TOPIC = "cmo.ReadsRecordedRecord.Created.v1"

    @event(READS_RECORDED, topic="cmo.ReadsRecorded.v1")
    def __init__(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        payload = envelope["payload"]
        self.first: int = payload["first"]
        self.last: int = payload["last"]
        self.count: int = payload["count"]
        self.root: str = payload["root"]


def _reads_rule(command: Command) -> None:
    command.require_signer(NOTARY)
    payload = command.payload
    first = payload.integer("first", minimum=1)
    last = payload.integer("last", minimum=first)
    count = payload.integer("count", minimum=1)
    if count > last - first + 1:
        raise ValidationFailed(
            f"count is at most last - first + 1 ({last - first + 1}): one leaf per row",
            field="payload.count",
        )
    payload.sha256("root")


register(
    EventSpec(
        READS_RECORDED,
        ReadsRecorded,
        frozenset({"recorded"}),
        _reads_rule,
        signers="the notary",
        description="commits to a batch of logged reads of GxP data (a Merkle root of its rows)",
    ),
)
