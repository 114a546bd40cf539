"""Process-enhancement claims: ``EnhancementClaimed``, ``EnhancementAcknowledged``,
``EnhancementDisputed``, ``EnhancementResolved``, ``EnhancementDisclosed``.

A party to an agreement claims an improvement to the process (R25). The claim commits to
a confidential dossier by a salted SHA-256 (``SHA-256(salt || dossier)``), names the
parameter versions it starts from and the data that shows the effect, and claims an
owner the agreement's IP rule allows. Its position in the log is its priority. The other
party acknowledges or disputes it; both then sign the resolution (one in the envelope,
the other as a countersignature). The claimant may later disclose the dossier, which
anyone can check against the commitment.

The subject is a uuid4 chosen by the claimant.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.agreements import Agreement, agreement_in_force, require_agreement_party
from ledger.domain.batches import Batch
from ledger.domain.catalogue import Command, EventSpec, SignedAggregate, register
from ledger.domain.commitments import opens
from ledger.domain.fields import Fields
from ledger.domain.parameters import Parameter
from ledger.domain.subjects import batch_subject
from ledger.errors import Forbidden, NotFound, ValidationFailed
from ledger.log.countersign import verify_countersignature

__all__ = ["ALLOWED_OWNERS", "OWNERS", "Enhancement"]

OWNERS = ("sponsor", "cmo", "joint")
ALLOWED_OWNERS: dict[str, tuple[str, ...]] = {
    "sponsor": ("sponsor",),
    "cmo": ("cmo",),
    "joint": ("joint",),
    "negotiated": OWNERS,
}
"""Owners each IP rule of the agreement allows."""
_HEX = re.compile(r"^(?:[0-9a-f]{2}){16,64}\Z")


class Enhancement(SignedAggregate):
    """One enhancement claim and where it stands: claimed, acknowledged, disputed, resolved.

    The dossier itself is never state: only the commitment, and whether (and when) it was
    disclosed; the disclosing event in the log carries it.
    """

    TOPIC = "cmo.Enhancement.v1"

    class Created(Aggregate.Created):
        TOPIC = "cmo.Enhancement.Created.v1"

    @event("EnhancementClaimed", topic="cmo.EnhancementClaimed.v1")
    def __init__(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        payload = envelope["payload"]
        self.agreement: str = payload["agreement"]
        self.claimant: str = envelope["signer"]
        self.claimed_at: str = recorded_at
        self.title: str = payload["title"]
        self.summary: str = payload["summary"]
        self.commitment: str = payload["commitment"]
        self.parameter_versions: list[dict[str, Any]] = [
            {"parameter": item["parameter"], "version": item["version"]}
            for item in payload["parameter_versions"]
        ]
        self.evidence: list[dict[str, Any]] = [
            {"batch": item["batch"], "submission": item["submission"]}
            for item in payload["evidence"]
        ]
        self.ownership_claimed: str = payload["ownership_claimed"]
        self.status: str = "claimed"
        self.responded_by: str | None = None
        self.responded_at: str | None = None
        self.dispute_reason: str | None = None
        self.owner: str | None = None
        self.resolved_at: str | None = None
        self.disclosed_at: str | None = None

    @event("EnhancementAcknowledged", topic="cmo.EnhancementAcknowledged.v1")
    def _acknowledged(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        self.status = "acknowledged"
        self.responded_by = envelope["signer"]
        self.responded_at = recorded_at

    @event("EnhancementDisputed", topic="cmo.EnhancementDisputed.v1")
    def _disputed(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        self.status = "disputed"
        self.responded_by = envelope["signer"]
        self.responded_at = recorded_at
        self.dispute_reason = envelope.get("reason")

    @event("EnhancementResolved", topic="cmo.EnhancementResolved.v1")
    def _resolved(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        self.status = "resolved"
        self.owner = envelope["payload"]["owner"]
        self.resolved_at = recorded_at

    @event("EnhancementDisclosed", topic="cmo.EnhancementDisclosed.v1")
    def _disclosed(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        self.disclosed_at = recorded_at


# -- checks -------------------------------------------------------------------------------


def _find_agreement(command: Command, enhancement: Enhancement) -> Agreement:
    agreement = command.state.find(UUID(enhancement.agreement), Agreement)
    if agreement is None:  # pragma: no cover - a claim is only made under an agreement
        raise NotFound(f"no agreement {enhancement.agreement}", field="subject")
    return agreement


def _check_owner(agreement: Agreement, owner: str, field: str) -> None:
    rule = str(agreement.terms["ip_rule"])
    if owner not in ALLOWED_OWNERS[rule]:
        raise ValidationFailed(
            f"the agreement's IP rule is {rule!r}: an enhancement belongs to "
            f"{' or '.join(ALLOWED_OWNERS[rule])}",
            field=field,
        )


def _check_parameter_versions(command: Command, agreement_id: UUID, items: list[Fields]) -> None:
    for item in items:
        item.only("parameter", "version")
        parameter = command.state.find(item.uuid("parameter"), Parameter)
        if parameter is None or parameter.agreement != str(agreement_id):
            raise NotFound(
                "no parameter with this id under the agreement", field=item.field("parameter")
            )
        version = item.integer("version", minimum=1)
        if parameter.limits_of_version(version) is None:
            raise NotFound(
                f"parameter {parameter.name!r} has limits versions 1 to {parameter.limits_version}",
                field=item.field("version"),
            )


def _check_evidence(command: Command, agreement_id: UUID, items: list[Fields]) -> None:
    for item in items:
        item.only("batch", "submission")
        batch_id = item.text("batch", max_len=64)
        batch = command.state.find(batch_subject(batch_id), Batch)
        if batch is None or batch.agreement != str(agreement_id):
            raise NotFound(f"no batch {batch_id} under the agreement", field=item.field("batch"))
        submission = str(item.uuid("submission"))
        if submission not in batch.submissions:
            raise NotFound(
                f"batch {batch_id} has no submission {submission}",
                field=item.field("submission"),
            )


def _require_counterparty(command: Command, enhancement: Enhancement) -> Agreement:
    agreement = _find_agreement(command, enhancement)
    require_agreement_party(command, agreement)
    if command.signer == enhancement.claimant:
        raise Forbidden(
            f"{enhancement.claimant} made this claim; only "
            f"{agreement.counterparty(enhancement.claimant)} may acknowledge or dispute it",
            field="signer",
        )
    return agreement


def _require_status(enhancement: Enhancement, *allowed: str, what: str) -> None:
    if enhancement.status not in allowed:
        raise Forbidden(f"{what}: the claim is {enhancement.status}", field="subject")


# -- rules --------------------------------------------------------------------------------


def _claimed_rule(command: Command) -> None:
    payload = command.payload
    agreement_id = payload.uuid("agreement")
    agreement = agreement_in_force(command, agreement_id)
    require_agreement_party(command, agreement)
    if command.envelope.subject.version != 4:
        raise ValidationFailed(
            "an enhancement's subject is a random (version 4) UUID", field="subject"
        )
    payload.text("title", max_len=300)
    payload.text("summary", max_len=5000)
    payload.sha256("commitment")
    _check_parameter_versions(
        command, agreement_id, payload.objects("parameter_versions", max_items=1000)
    )
    _check_evidence(command, agreement_id, payload.objects("evidence", max_items=1000))
    owner = payload.choice("ownership_claimed", OWNERS)
    _check_owner(agreement, owner, "payload.ownership_claimed")


def _acknowledged_rule(command: Command) -> None:
    enhancement: Enhancement = command.subject
    _require_counterparty(command, enhancement)
    _require_status(enhancement, "claimed", what="only a new claim can be acknowledged")


def _disputed_rule(command: Command) -> None:
    enhancement: Enhancement = command.subject
    _require_counterparty(command, enhancement)
    _require_status(enhancement, "claimed", what="only a new claim can be disputed")


def _resolved_rule(command: Command) -> None:
    enhancement: Enhancement = command.subject
    agreement = _find_agreement(command, enhancement)
    require_agreement_party(command, agreement)
    _require_status(
        enhancement,
        "acknowledged",
        "disputed",
        what="a claim is resolved once the other party acknowledged or disputed it",
    )
    payload = command.payload
    owner = payload.choice("owner", OWNERS)
    _check_owner(agreement, owner, "payload.owner")
    if not payload.has("countersignature"):
        raise ValidationFailed(
            f"a resolution is signed by both parties: add "
            f"{agreement.counterparty(command.signer)}'s countersignature",
            field="payload.countersignature",
        )
    body = {key: value for key, value in payload.data.items() if key != "countersignature"}
    verify_countersignature(
        command, body, agreement.counterparty(command.signer), field="countersignature"
    )


def _disclosed_rule(command: Command) -> None:
    enhancement: Enhancement = command.subject
    command.require_signer(enhancement.claimant)
    if enhancement.disclosed_at is not None:
        raise Forbidden(
            f"the dossier was already disclosed at {enhancement.disclosed_at}", field="subject"
        )
    payload = command.payload
    salt_text = payload.text("salt", max_len=128)
    if not _HEX.match(salt_text):
        raise ValidationFailed(
            "expected 16 to 64 bytes of salt as lowercase hex", field="payload.salt"
        )
    dossier_text = payload.raw("dossier")
    try:
        if not isinstance(dossier_text, str):
            raise ValueError
        dossier = base64.b64decode(dossier_text, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed("expected the dossier as base64", field="payload.dossier") from None
    if not opens(enhancement.commitment, bytes.fromhex(salt_text), dossier):
        raise ValidationFailed(
            "SHA-256(salt || dossier) does not match the commitment of the claim "
            f"({enhancement.commitment})",
            field="payload.dossier",
        )


register(
    EventSpec(
        "EnhancementClaimed",
        Enhancement,
        frozenset({"authored"}),
        _claimed_rule,
        signers="the agreement's sponsor or CMO (party key); the agreement must be in force",
        description="claims a process enhancement under the agreement's IP rule; its log "
        "position is its priority",
    ),
    EventSpec(
        "EnhancementAcknowledged",
        Enhancement,
        frozenset({"acknowledged"}),
        _acknowledged_rule,
        apply="_acknowledged",
        signers="the claimant's counterparty (party key)",
        description="accepts the claim as made",
    ),
    EventSpec(
        "EnhancementDisputed",
        Enhancement,
        frozenset({"disputed"}),
        _disputed_rule,
        apply="_disputed",
        reason_required=True,
        signers="the claimant's counterparty (party key)",
        description="disputes the claim; the reason says why",
    ),
    EventSpec(
        "EnhancementResolved",
        Enhancement,
        frozenset({"resolved"}),
        _resolved_rule,
        apply="_resolved",
        signers="one party in the envelope, the other in payload.countersignature",
        description="records the owner both parties agreed, after acknowledgement or dispute",
    ),
    EventSpec(
        "EnhancementDisclosed",
        Enhancement,
        frozenset({"disclosed"}),
        _disclosed_rule,
        apply="_disclosed",
        signers="the claimant (party key)",
        description="reveals the committed dossier; SHA-256(salt || dossier) must equal the "
        "commitment",
    ),
)
