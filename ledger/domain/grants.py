"""Access grants: ``AccessGranted`` and ``AccessRevoked`` (R10, R11, R24, R28).

A grant opens data of one agreement to one party. Only the owner of a data class under
the terms in force may grant it; a grantee cannot pass it on. The agreement's CMO alone
may grant its confidential elements (``include_confidential``), and such a grant opens
only those elements of the classes in scope, never the data itself. Grants to regulators
and auditors are time-boxed: they must end, at most 90 days after they start.

The subject is a UUID (uuid4) chosen by the grantor. Payload::

    agreement               the agreement (in force)
    grantee                 an admitted party other than the grantor
    data_classes            non-empty, unique: classes the terms in force define
    parameters, batches     optional lists of names / batch ids narrowing the scope
    window                  optional {"from", "until"}: the data times the grant opens
    valid_from              optional, default recorded_at (a grant never opens before it)
    valid_until             optional; required (<= valid_from + 90 days) for regulators/auditors
    purpose                 text
    include_confidential    optional, default false
    enhancements            optional, default false: opens the agreement's enhancement claims
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from eventsourcing.domain import Aggregate, event

from ledger.domain.agreements import agreement_in_force
from ledger.domain.catalogue import Command, EventSpec, SignedAggregate, register
from ledger.domain.fields import Fields
from ledger.domain.scope import GrantScope
from ledger.errors import Forbidden, NotFound, ValidationFailed
from ledger.timeutil import format_utc, parse_utc
from ledger.wording import article

__all__ = ["MAX_TIME_BOXED", "TIME_BOXED_ROLES", "Grant"]

TIME_BOXED_ROLES = ("regulator", "auditor")
MAX_TIME_BOXED = timedelta(days=90)


def _utc(text: str | None) -> str | None:
    # One spelling per instant (milliseconds, Z) keeps stored times comparable as text.
    return None if text is None else format_utc(parse_utc(text, field="time"))


def _time(text: str) -> datetime:
    return parse_utc(text, field="time")


class Grant(SignedAggregate):
    """One party's access to part of an agreement's data, for a period.

    With ``include_confidential`` the grant opens only the confidential elements of the
    classes in scope; without it, the data in scope with confidential elements masked.
    """

    TOPIC = "cmo.Grant.v1"

    class Created(Aggregate.Created):
        TOPIC = "cmo.Grant.Created.v1"

    @event("AccessGranted", topic="cmo.AccessGranted.v1")
    def __init__(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        payload = envelope["payload"]
        window = payload.get("window")
        self.agreement: str = payload["agreement"]
        self.grantor: str = envelope["signer"]
        self.grantee: str = payload["grantee"]
        self.data_classes: list[str] = list(payload["data_classes"])
        self.parameters: list[str] = list(payload.get("parameters") or [])
        self.batches: list[str] = list(payload.get("batches") or [])
        self.window: dict[str, str | None] | None = (
            None
            if window is None
            else {"from": _utc(window.get("from")), "until": _utc(window.get("until"))}
        )
        self.granted_at: str = recorded_at
        self.valid_from: str = _utc(payload.get("valid_from")) or recorded_at
        self.valid_until: str | None = _utc(payload.get("valid_until"))
        self.purpose: str = payload["purpose"]
        self.include_confidential: bool = bool(payload.get("include_confidential", False))
        self.enhancements: bool = bool(payload.get("enhancements", False))
        self.revoked_at: str | None = None
        self.revoked_by: str | None = None
        self.revoke_reason: str | None = None

    @event("AccessRevoked", topic="cmo.AccessRevoked.v1")
    def _revoked(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        self.revoked_at = recorded_at
        self.revoked_by = envelope["signer"]
        self.revoke_reason = envelope.get("reason")

    @property
    def scope(self) -> GrantScope:
        """What the grant opens, to whom and when (:mod:`ledger.domain.scope` decides)."""
        window = self.window or {}
        return GrantScope(
            id=str(self.id),
            agreement=self.agreement,
            grantor=self.grantor,
            grantee=self.grantee,
            data_classes=frozenset(self.data_classes),
            parameters=frozenset(self.parameters),
            batches=frozenset(self.batches),
            window_from=window.get("from"),
            window_until=window.get("until"),
            starts_at=self.valid_from,
            ends_at=self.valid_until,
            granted_at=self.granted_at,
            revoked_at=self.revoked_at,
            include_confidential=self.include_confidential,
            enhancements=bool(self.__dict__.get("enhancements", False)),
        )


def _unique_names(payload: Fields, name: str, *, optional: bool) -> list[str]:
    values = payload.texts(name, optional=optional)
    if not values and not optional:
        raise ValidationFailed("name at least one", field=payload.field(name))
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise ValidationFailed(
                f"{value!r} is listed twice", field=f"{payload.field(name)}[{index}]"
            )
        seen.add(value)
    return values


def _granted_rule(command: Command) -> None:
    payload = command.payload
    agreement = agreement_in_force(command, payload.uuid("agreement"))
    grantee_id = payload.text("grantee", max_len=63)
    grantee = command.state.party(grantee_id)
    if grantee is None:
        raise NotFound(f"no admitted party {grantee_id!r}", field="payload.grantee")
    if grantee_id == command.signer:
        raise ValidationFailed("a party cannot grant access to itself", field="payload.grantee")
    classes = _unique_names(payload, "data_classes", optional=False)
    for index, data_class in enumerate(classes):
        # A retired class's data stays readable through the grants made while it was
        # defined; a new grant opens only classes the terms in force define.
        agreement.class_terms(data_class, field=f"payload.data_classes[{index}]")
    if payload.boolean("include_confidential", default=False):
        _check_confidential_grantor(command, agreement.cmo, agreement.terms)
    else:
        for index, data_class in enumerate(classes):
            owner = agreement.owner_of(data_class)
            if owner != command.signer:
                raise Forbidden(
                    f"{data_class} data of this agreement belongs to {owner}: only {owner} "
                    "may grant access to it",
                    field=f"payload.data_classes[{index}]",
                )
    _unique_names(payload, "parameters", optional=True)
    _unique_names(payload, "batches", optional=True)
    # Only owners of a data class grant, and they are the agreement's parties: either may
    # open the agreement's enhancement claims to the grantee.
    payload.boolean("enhancements", default=False)
    _check_window(payload)
    _check_validity(command, payload, grantee.role)
    payload.text("purpose", max_len=1000)


def _check_confidential_grantor(command: Command, cmo: str, terms: dict[str, Any]) -> None:
    if command.signer != cmo:
        raise Forbidden(
            f"confidential elements are the CMO's: only {cmo} may grant them",
            field="payload.include_confidential",
        )
    if not terms["confidential_elements"]:
        raise ValidationFailed(
            "the agreement names no confidential elements: there is nothing to include",
            field="payload.include_confidential",
        )


def _check_window(payload: Fields) -> None:
    if not payload.has("window"):
        return
    window = payload.object("window").only("from", "until")
    start, until = window.optional_time("from"), window.optional_time("until")
    if start is None and until is None:
        raise ValidationFailed("give from, until or both", field="payload.window")
    if start is not None and until is not None and until <= start:
        raise ValidationFailed("until must be after from", field="payload.window.until")


def _check_validity(command: Command, payload: Fields, grantee_role: str) -> None:
    valid_from = payload.optional_time("valid_from") or command.now
    valid_until = payload.optional_time("valid_until")
    if valid_until is not None:
        if valid_until <= valid_from:
            raise ValidationFailed(
                "valid_until must be after valid_from", field="payload.valid_until"
            )
        if valid_until <= command.now:
            raise ValidationFailed("valid_until is already past", field="payload.valid_until")
    if grantee_role in TIME_BOXED_ROLES:
        if valid_until is None:
            raise ValidationFailed(
                f"grants to {article(grantee_role)} are time-boxed (R28): give valid_until, "
                f"at most {MAX_TIME_BOXED.days} days after valid_from",
                field="payload.valid_until",
            )
        if valid_until - valid_from > MAX_TIME_BOXED:
            raise ValidationFailed(
                f"grants to {article(grantee_role)} last at most {MAX_TIME_BOXED.days} days (R28)",
                field="payload.valid_until",
            )


def _revoked_rule(command: Command) -> None:
    grant: Grant = command.subject
    command.require_signer(grant.grantor)
    if grant.revoked_at is not None:
        raise Forbidden(f"the grant was already revoked at {grant.revoked_at}", field="subject")


register(
    EventSpec(
        "AccessGranted",
        Grant,
        frozenset({"granted"}),
        _granted_rule,
        signers="the owner of every data class in scope; the agreement's CMO for "
        "include_confidential",
        description="opens data of an agreement (or only its confidential elements) to a party",
    ),
    EventSpec(
        "AccessRevoked",
        Grant,
        frozenset({"revoked"}),
        _revoked_rule,
        apply="_revoked",
        reason_required=True,
        signers="the grantor",
        description="closes a grant from now on; it stays in the history",
    ),
)
