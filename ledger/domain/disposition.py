"""Audit-trail review and batch disposition (R13, R14): ``AuditTrailReviewed``,
``BatchDispositioned``.

Both are events of the batch's own subject (:func:`ledger.domain.subjects.batch_subject`),
recorded on :class:`~ledger.domain.batches.Batch`: the batch's hash chain then orders data,
end, review and disposition (R14: data complete -> audit trail reviewed -> dispositioned),
a disposition's rule reads the reviews and the acknowledgements from one aggregate, any
batch event recorded after a review is visible to it, and the audit view files both
under the batch like every other batch event.

Both are signed by a person of the sponsor (``person_required``, see
:mod:`ledger.domain.persons`): a party key alone is refused. The sponsor reviews the
batch's audit trail as a signed checkpoint of the log shows it (``checkpoint_size``
leaves, ``checkpoint_root`` the checkpoint's root hash, hex) and signs the outcome. The
review must cover every event of the batch recorded so far:

* A rule sees aggregates only (:class:`~ledger.domain.catalogue.LedgerState`), not log
  positions or leaf indexes: positions are given when an append is stored, after the
  rules ran, and an aggregate replays its own events without them. So the rule checks
  coverage by the batch's own versions: each review records the version of the batch's
  last event other than a review (:attr:`Batch.last_change_version`) as its
  ``covers_version``; a disposition needs a review whose ``covers_version`` is the batch's
  ``last_change_version`` now, i.e. no batch event (data, correction, acknowledgement,
  end, an earlier disposition) was recorded after it.
* The checkpoint must be able to hold those events: the batch's events are distinct
  leaves, so a checkpoint that holds its event at version ``v`` has at least ``v``
  leaves. A smaller ``checkpoint_size`` is refused. That the checkpoint is one the notary
  signed, with that root, and that its size exceeds the leaf index of the batch's last
  event, is checked against the tree (``/checkpoint``, inclusion proofs) by whoever
  verifies the trail; the rule cannot read the tree.

Payloads::

    AuditTrailReviewed   batch (its name), checkpoint_size (>= 1), checkpoint_root (hex
                         SHA-256), outcome (text); the batch must have ended
    BatchDispositioned   batch, disposition (released | rejected | quarantined); envelope
                         reason required. Refused unless the batch ended, a review covers
                         every event of the batch, and every current deviation, OOS and
                         OOT record is acknowledged in its current version, and every
                         manually entered critical value is verified (R17,
                         :mod:`ledger.domain.verification`). A quarantined
                         batch may be dispositioned again (after a new review); a released
                         or rejected one may not.
"""

from __future__ import annotations

from ledger.domain.agreements import Agreement
from ledger.domain.batches import Batch, batch_agreement
from ledger.domain.catalogue import Command, EventSpec, register
from ledger.domain.formats import ACKNOWLEDGEABLE_KINDS
from ledger.domain.verification import named_batch, unverified
from ledger.errors import Forbidden, ValidationFailed

__all__ = ["DISPOSITIONS", "FINAL_DISPOSITIONS", "MAX_OUTCOME", "unacknowledged"]

DISPOSITIONS = ("released", "rejected", "quarantined")
FINAL_DISPOSITIONS = frozenset({"released", "rejected"})
MAX_OUTCOME = 2000


def unacknowledged(batch: Batch, agreement: Agreement) -> list[str]:
    """Ids of the batch's current deviation, OOS and OOT records whose current version
    the sponsor has not acknowledged, in the order they were first recorded."""
    return [
        record_id
        for record_id, record in batch.records.items()
        if record["superseded_by"] is None
        and record["event_kind"] in ACKNOWLEDGEABLE_KINDS
        and agreement.form_of(record["class"]) == "event"
        and record["acknowledged_version"] != record["version"]
    ]


def _sponsor_of(command: Command, batch: Batch) -> Agreement:
    """The batch's agreement, after refusing any signer but its sponsor."""
    agreement = batch_agreement(command, batch)
    command.require_signer(agreement.sponsor)
    return agreement


def _require_ended(batch: Batch, what: str) -> None:
    if batch.ended_at is None:
        raise Forbidden(
            f"batch {batch.batch_id} has not ended: record BatchEnded before {what}",
            field="subject",
        )


def _reviewed_rule(command: Command) -> None:
    batch: Batch = command.subject
    _sponsor_of(command, batch)
    payload = command.payload
    named_batch(command, batch)
    size = payload.integer("checkpoint_size", minimum=1)
    payload.sha256("checkpoint_root")
    payload.text("outcome", max_len=MAX_OUTCOME)
    _require_ended(batch, "its audit trail is reviewed")
    if size < batch.last_change_version:
        raise ValidationFailed(
            f"a checkpoint of {size} leaves cannot hold event {batch.last_change_version} of "
            f"batch {batch.batch_id}: review a checkpoint that covers the batch's last event",
            field="payload.checkpoint_size",
        )


def _dispositioned_rule(command: Command) -> None:
    batch: Batch = command.subject
    agreement = _sponsor_of(command, batch)
    named_batch(command, batch)
    command.payload.choice("disposition", DISPOSITIONS)
    _require_ended(batch, "it is dispositioned")
    if batch.disposition is not None and batch.disposition["disposition"] in FINAL_DISPOSITIONS:
        raise Forbidden(
            f"batch {batch.batch_id} was already {batch.disposition['disposition']} at "
            f"{batch.disposition['at']}",
            field="subject",
        )
    if not batch.audit_reviews:
        raise Forbidden(
            f"batch {batch.batch_id} has no AuditTrailReviewed: review its audit trail first",
            field="subject",
        )
    review = batch.audit_reviews[-1]
    if review["covers_version"] != batch.last_change_version:
        raise Forbidden(
            f"the last audit-trail review of batch {batch.batch_id} (version "
            f"{review['version']}, checkpoint size {review['checkpoint_size']}) covers its "
            f"events up to version {review['covers_version']}; event "
            f"{batch.last_change_version} came later: review the audit trail again",
            field="subject",
        )
    pending = unacknowledged(batch, agreement)
    if pending:
        record = batch.records[pending[0]]
        raise Forbidden(
            f"record {pending[0]} ({record['event_kind']}, version {record['version']}) of "
            f"batch {batch.batch_id} is not acknowledged: acknowledge it (DataAcknowledged) "
            "before the disposition",
            field="subject",
        )
    waiting = unverified(batch, agreement, command.state)
    if waiting:
        record = batch.records[waiting[0]]
        raise Forbidden(
            f"record {waiting[0]} (version {record['version']}, {record['parameter']}) of "
            f"batch {batch.batch_id} was entered by hand and is not verified: a second "
            "person of the CMO verifies it (DataVerified) before the disposition",
            field="subject",
        )


register(
    EventSpec(
        "AuditTrailReviewed",
        Batch,
        frozenset({"reviewed"}),
        _reviewed_rule,
        apply="_audit_trail_reviewed",
        person_required=True,
        signers="a person of the agreement's sponsor; the batch must have ended",
        description="records the review of the batch's audit trail as a signed checkpoint "
        "(size, root) shows it, and its outcome (R13)",
    ),
    EventSpec(
        "BatchDispositioned",
        Batch,
        frozenset({"dispositioned"}),
        _dispositioned_rule,
        apply="_dispositioned",
        reason_required=True,
        person_required=True,
        signers="a person of the agreement's sponsor",
        description="releases, rejects or quarantines an ended batch whose audit trail was "
        "reviewed after its last event and whose deviation, OOS and OOT records are all "
        "acknowledged (R13, R14)",
    ),
)
