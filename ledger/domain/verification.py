"""Second-person verification of critical values entered by hand (R17, EU GMP Annex 11 §6):
``DataVerified``.

A value is *manual* when the submission that brought it names the reserved source system
``manual`` (:data:`~ledger.domain.formats.MANUAL_SOURCE`): a person typed it, no
validated interface delivered it. A correction carries no source of its own: its records
are manual when a record it supersedes was. Manual values and their corrections are signed
by the person who entered them (:mod:`ledger.domain.batches` refuses a party key alone,
naming ``person``), so the second person is known to be another.

A value is *critical* when it is a discrete result naming a parameter of the agreement's
registry (:mod:`ledger.domain.parameters`) whose criticality status is one of
:data:`CRITICAL_STATUSES` and which is not retired. The registry, not the terms, decides:
both parties of the agreement control it (a status changes only by a revision the other
party approves), and it is where each result's parameter is defined. The status counts as
it stands now, so a parameter confirmed as critical later makes its unverified manual
values wait for verification too, and a retired one releases them.

A manual critical value becomes effective only once a person of the CMO other than the
person who signed its submission verifies it (``DataVerified``). Until then it is shown
unverified and left out of every evaluation: excursions, CPV inputs; and the batch is not
dispositioned (:mod:`ledger.domain.disposition`). A correction makes a new version, which
needs verification again. Values from any other source need none: their check is the
validated interface that delivered them.

Payload::

    DataVerified   batch (its name), submission (the one whose values the person checked:
                   the current version of each record must come from it), records (ids,
                   at least one), comment (optional text). Signed by the agreement's CMO,
                   as the ``person`` who verified (a party key alone is refused:
                   ``person_required``); refused (FORBIDDEN naming ``person``) when the
                   person who signed the submission signs, and (naming the record) for
                   a record that is no manual critical value, is already verified in its
                   current version, or was superseded.
"""

from __future__ import annotations

from typing import Any

from ledger.domain.agreements import Agreement
from ledger.domain.batches import Batch, batch_agreement
from ledger.domain.catalogue import Command, EventSpec, LedgerState, register
from ledger.domain.formats import MAX_RECORDS
from ledger.domain.parameters import Parameter
from ledger.domain.subjects import parameter_subject
from ledger.errors import Forbidden, NotFound, ValidationFailed

__all__ = [
    "CRITICAL_STATUSES",
    "MAX_COMMENT",
    "critical_status",
    "named_batch",
    "needs_verification",
    "unverified",
]

CRITICAL_STATUSES = ("confirmed",)
"""Criticality statuses of the parameter registry whose manual values need verification."""
MAX_COMMENT = 2000


def critical_status(status: object, retired: bool) -> bool:
    """True when a parameter of this registry status (and retirement) is critical."""
    return status in CRITICAL_STATUSES and not retired


def _critical(state: LedgerState, agreement: Agreement, name: str) -> bool:
    parameter = state.find(parameter_subject(agreement.id, name), Parameter)
    return parameter is not None and critical_status(
        parameter.status, parameter.retired_at is not None
    )


def needs_verification(
    batch: Batch, record_id: str, agreement: Agreement, state: LedgerState
) -> bool:
    """True when the record's current version is a manual critical value (verified or not)."""
    record = batch.records[record_id]
    name = record.get("parameter")
    return (
        record["superseded_by"] is None
        and isinstance(name, str)
        and agreement.form_of(record["class"]) == "discrete"
        and batch.is_manual(record_id)
        and _critical(state, agreement, name)
    )


def unverified(batch: Batch, agreement: Agreement, state: LedgerState) -> list[str]:
    """Ids of the batch's manual critical values whose current version is not verified, in
    the order they were first recorded."""
    return [
        record_id
        for record_id, record in batch.records.items()
        if record.get("verified_version") != record["version"]
        and needs_verification(batch, record_id, agreement, state)
    ]


def named_batch(command: Command, batch: Batch) -> None:
    """Refuse a ``payload.batch`` other than the subject's batch name."""
    named = command.payload.text("batch", max_len=64)
    if named != batch.batch_id:
        raise ValidationFailed(
            f"payload.batch must name the subject's batch ({batch.batch_id})",
            field="payload.batch",
        )


def _second_person(command: Command, submission: dict[str, Any], name: str) -> None:
    """Refuse the person who signed the submission (the command path already refused an
    envelope without a person: ``person_required``)."""
    if command.person == submission.get("person"):
        raise Forbidden(
            f"{command.person} signed submission {name}: a second person of the CMO verifies it",
            field="person",
        )


def _check_record(
    command: Command,
    batch: Batch,
    agreement: Agreement,
    submission: str,
    record_id: str,
    field: str,
) -> None:
    record = batch.records.get(record_id)
    if record is None:
        raise NotFound(f"batch {batch.batch_id} has no record {record_id}", field=field)
    if record["superseded_by"] is not None:
        raise ValidationFailed(
            f"record {record_id} was withdrawn by submission {record['superseded_by']}",
            field=field,
        )
    current = record["submissions"][-1]
    if current != submission:
        what = (
            f"version {record['version']} of record {record_id} came with submission {current}"
            if submission in record["submissions"]
            else f"record {record_id} is not in submission {submission}"
        )
        raise ValidationFailed(f"{what}: verify the current version", field=field)
    if not needs_verification(batch, record_id, agreement, command.state):
        raise ValidationFailed(
            f"record {record_id} is no manually entered value of a critical parameter: it "
            "needs no verification",
            field=field,
        )
    if record.get("verified_version") == record["version"]:
        raise ValidationFailed(
            f"record {record_id} (version {record['version']}) is already verified", field=field
        )


def _verified_rule(command: Command) -> None:
    batch: Batch = command.subject
    agreement = batch_agreement(command, batch)
    command.require_signer(agreement.cmo)
    payload = command.payload
    named_batch(command, batch)
    submission = str(payload.uuid("submission"))
    found = batch.submissions.get(submission)
    if found is None:
        raise NotFound(
            f"batch {batch.batch_id} has no submission {submission}", field="payload.submission"
        )
    _second_person(command, found, submission)
    ids = payload.texts("records", max_items=MAX_RECORDS)
    if not ids:
        raise ValidationFailed("name the records you verified", field="payload.records")
    if payload.has("comment"):
        payload.text("comment", max_len=MAX_COMMENT)
    for index, record_id in enumerate(ids):
        field = f"payload.records[{index}]"
        if record_id in ids[:index]:
            raise ValidationFailed(f"record {record_id} is listed twice", field=field)
        _check_record(command, batch, agreement, submission, record_id, field)


register(
    EventSpec(
        "DataVerified",
        Batch,
        frozenset({"verified"}),
        _verified_rule,
        apply="_data_verified",
        person_required=True,
        signers="the agreement's CMO, as a person other than the one who signed the submission",
        description="a second person verifies manually entered values of critical parameters: "
        "they count from now (R17)",
    ),
)
