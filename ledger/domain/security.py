"""Security alerts (R9): ``SecurityAlert``, signed by the notary.

When one identity (a claimed party) fails to authenticate too often within the lockout
window (bad request signatures, refused console sign-ins), the server locks it for the
cool-down and the notary records why, so that the alert is part of the signed, verifiable
log and the party concerned can see it. The subject is a fresh UUID per alert. Payload::

    identity        the identity locked (the party id the failed attempts claimed)
    failures        failed attempts counted within the window
    window_seconds  the window they were counted over
    locked_until    when the lock ends, RFC 3339 UTC
    kinds           what failed: "request-signature", "console-sign-in"
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate, event

from ledger.domain.catalogue import Command, EventSpec, SignedAggregate, register
from ledger.domain.parties import NOTARY
from ledger.errors import ValidationFailed

__all__ = ["FAILURE_KINDS", "SecurityAlert"]

FAILURE_KINDS = ("request-signature", "console-sign-in")
"""What the security log counts as a failed authentication attempt."""


class SecurityAlert(SignedAggregate):
    """One lockout the notary recorded."""

    TOPIC = "cmo.SecurityAlertRecord.v1"

    class Created(Aggregate.Created):
        TOPIC = "cmo.SecurityAlertRecord.Created.v1"

    @event("SecurityAlert", topic="cmo.SecurityAlert.v1")
    def __init__(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        payload = envelope["payload"]
        self.identity: str = payload["identity"]
        self.failures: int = payload["failures"]
        self.locked_until: str = payload["locked_until"]


def _alert_rule(command: Command) -> None:
    command.require_signer(NOTARY)
    payload = command.payload
    payload.text("identity", max_len=200)
    payload.integer("failures", minimum=1)
    payload.integer("window_seconds", minimum=1)
    payload.time("locked_until")
    kinds = payload.texts("kinds", max_items=len(FAILURE_KINDS))
    unknown = [kind for kind in kinds if kind not in FAILURE_KINDS]
    if unknown or not kinds:
        raise ValidationFailed(
            f"kinds lists one or more of {', '.join(FAILURE_KINDS)}", field="payload.kinds"
        )


register(
    EventSpec(
        "SecurityAlert",
        SecurityAlert,
        frozenset({"alerted"}),
        _alert_rule,
        reason_required=True,
        signers="the notary",
        description="records that an identity was locked after repeated failed sign-ins",
    ),
)
