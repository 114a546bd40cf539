# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""Mutations: submit signed envelopes, cosign checkpoints.

An envelope's ``signer`` must be the authenticated caller (``FORBIDDEN`` otherwise): the
API relays what a party signed, never what another party signed. ``submitEvents`` stores
all of its envelopes or none, and names a refused one as ``envelopes[<index>].<field>``.
A refusal that would tell where a subject the caller may not read stands (it exists, its
version) is ``FORBIDDEN``, as ``nextVersion`` is.
The openings of an envelope's committed confidential elements travel beside it
(``openings``), are checked against the commitments and stored apart from the log; a
purge (``ElementsPurged``) answers the commitments whose openings it deleted.
A mutation returns once the read models reflect it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types.arguments import InputContext

from api.access import may_know_version, not_readable
from api.context import Context
from api.log_fields import Checkpoint, Info, LogEvent
from api.threads import in_thread
from ledger.application import Appended, Recorded
from ledger.errors import (
    Forbidden,
    LedgerError,
    LimitExceeded,
    NotFound,
    ValidationFailed,
    VersionConflict,
)
from ledger.log.envelope import StoredEvent

__all__ = ["LogMutation", "OpeningInput", "SignedEnvelopeInput", "Submitted"]


@strawberry.input(
    description="The salt and value of one committed confidential element of a record."
)
class OpeningInput:
    record: str
    element: str
    salt: str = strawberry.field(description="32 random bytes, lowercase hex.")
    value: JSON = strawberry.field(description="The element's value (text).")


@strawberry.input(description="One signed envelope of a submitEvents batch.")
class SignedEnvelopeInput:
    envelope: JSON
    signature: str
    openings: list[OpeningInput] | None = None


def _signed_envelope_input(
    cls: type[SignedEnvelopeInput], value: Mapping[str, Any], context: InputContext
) -> SignedEnvelopeInput:
    # graphql-core has checked the fields, and the envelope and the signature are taken as
    # sent: only the openings are converted. Resolving each field's type for every item, as
    # Strawberry does otherwise, cost more than a batch's JSON.
    sent = value.get("openings")
    openings = None if sent is None else context.convert(sent, list[OpeningInput], "openings")
    return cls(
        envelope=value["envelope"],
        signature=value["signature"],
        openings=cast("list[OpeningInput] | None", openings),
    )


SignedEnvelopeInput.__strawberry_definition__.from_input = _signed_envelope_input  # type: ignore[attr-defined]


@strawberry.type(description="An accepted envelope: where it was stored, and when.")
class Submitted:
    position: int
    leaf_index: int | None = strawberry.field(description="Its Merkle leaf; null if not yet.")
    recorded_at: str
    event_hash: str = strawberry.field(description="Hex hash the subject's next 'prev' carries.")
    event: LogEvent
    purged: list[str] = strawberry.field(
        default_factory=list,
        description="For ElementsPurged, the receipt: the commitments whose openings were "
        "deleted. The commitments and the log stay.",
    )


def _check_signers(caller_id: str, items: Sequence[tuple[Any, Any]]) -> None:
    batch = len(items) > 1
    for index, (envelope, _) in enumerate(items):
        prefix = f"envelopes[{index}]." if batch else ""
        if not isinstance(envelope, Mapping):
            raise ValidationFailed("envelope must be a JSON object", field=f"{prefix}envelope")
        if envelope.get("signer") != caller_id:
            raise Forbidden(
                f"the envelope's signer must be the caller ({caller_id}): "
                "submit only envelopes you signed",
                field=f"{prefix}signer",
            )


SentOpenings = list[OpeningInput] | None


def _submit(
    context: Context, items: Sequence[tuple[Any, Any]], openings: Sequence[SentOpenings]
) -> list[Submitted]:
    caller = context.require_party()
    limit = context.settings.max_batch
    if len(items) > limit:
        raise LimitExceeded(f"at most {limit} envelopes per batch: split it", field="envelopes")
    _check_signers(caller.party_id, items)
    services = context.services
    sent = [None if o is None else [strawberry.asdict(i) for i in o] for o in openings]
    try:
        appended = services.writer.append_many([(dict(e), s) for e, s in items], sent)
    except (VersionConflict, NotFound, ValidationFailed) as error:
        _hide_subject_state(context, error, items)
        raise
    services.metrics.appended(len(appended))
    leaves = services.leaf_indexes([a.position for a in appended])
    return [
        _submitted(a, envelope, signature, leaves.get(a.position))
        for a, (envelope, signature) in zip(appended, items, strict=True)
    ]


_SEQUENCE_FIELD = re.compile(r"^(?:envelopes\[(\d+)\]\.)?(?:version|prev|subject)$")


def _hide_subject_state(
    context: Context, error: LedgerError, items: Sequence[tuple[Any, Any]]
) -> None:
    """Refuse as FORBIDDEN, as ``nextVersion`` does, a refusal that would tell the caller
    where a subject it may not read stands: that it exists, is of another kind, or its
    version."""
    found = _SEQUENCE_FIELD.match(error.field or "")
    if found is None:
        return
    index = int(found.group(1) or 0)
    subject = items[index][0].get("subject") if index < len(items) else None
    if not isinstance(subject, str):
        return
    try:
        version = context.ledger.next_version(uuid.UUID(subject))[0]
    except ValueError:
        return
    if not may_know_version(context, subject, version):
        raise not_readable(subject, error.field or "subject") from None


def _submitted(
    appended: Appended, envelope: Mapping[str, Any], signature: str, leaf_index: int | None
) -> Submitted:
    stored = StoredEvent(
        dict(envelope), signature, appended.recorded_at, written_by=appended.written_by
    )
    recorded = Recorded(appended.position, appended.subject, appended.version, "", stored)
    return Submitted(
        position=appended.position,
        leaf_index=leaf_index,
        recorded_at=appended.recorded_at,
        event_hash=appended.event_hash,
        event=LogEvent.of(recorded, leaf_index),
        purged=list(appended.purged),
    )


def _cosign(context: Context, tree_size: int, cosignature: str) -> Checkpoint:
    caller = context.require_party()
    context.services.cosign(tree_size, caller.party_id, cosignature)
    return Checkpoint.of(context.services.checkpoint(tree_size))


@strawberry.type
class LogMutation:
    """Root mutations over the log."""

    @strawberry.mutation(
        description="Store one envelope signed by the caller, with the openings of its "
        "committed confidential elements."
    )
    async def submit_event(
        self,
        info: Info,
        envelope: JSON,
        signature: str,
        openings: list[OpeningInput] | None = None,
    ) -> Submitted:
        info.context.require_party()
        submitted = await in_thread(_submit, info.context, [(envelope, signature)], [openings])
        return submitted[0]

    @strawberry.mutation(description="Store envelopes signed by the caller: all of them or none.")
    async def submit_events(self, info: Info, events: list[SignedEnvelopeInput]) -> list[Submitted]:
        info.context.require_party()
        items = [(item.envelope, item.signature) for item in events]
        return await in_thread(_submit, info.context, items, [i.openings for i in events])

    @strawberry.mutation(
        description="Add the caller's C2SP cosignature/v1 line (key name: the caller's party "
        "id) to the checkpoint of treeSize; answers that checkpoint."
    )
    async def cosign_checkpoint(self, info: Info, tree_size: int, cosignature: str) -> Checkpoint:
        info.context.require_party()
        return await in_thread(_cosign, info.context, tree_size, cosignature)
