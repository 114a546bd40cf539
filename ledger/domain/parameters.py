"""The parameter registry: ``ParameterDefined``, ``ParameterRevisionProposed``,
``ParameterRevisionApproved``, ``ParameterRevisionRejected``, ``ParameterRetired``.

A parameter (a CPP, CQA, KPI or IPC) belongs to one agreement; its subject is derived from
the agreement and the parameter's name (see :func:`parameter_subject`). Either party
defines it and either may propose a revision; a revision takes effect only when the
other party approves it. Each version of the limits stays in
:attr:`Parameter.limits_history`, so :meth:`Parameter.limits_at` answers which limits
applied at any past time, e.g. when a batch was made (R20).

Limits are ``{"low", "high"}`` decimal strings, either of which may be null (a one-sided
specification) but not both. Action limits enclose alert limits, and a target lies within
the alert limits.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.agreements import Agreement, agreement_in_force, require_agreement_party
from ledger.domain.catalogue import Command, EventSpec, SignedAggregate, register
from ledger.domain.fields import Fields
from ledger.domain.formats import check_unit
from ledger.domain.subjects import parameter_subject
from ledger.domain.validity import effective_from
from ledger.errors import Forbidden, NotFound, ValidationFailed
from ledger.timeutil import parse_utc, require_aware

__all__ = [
    "KINDS",
    "REVISABLE",
    "STATUSES",
    "Parameter",
]

KINDS = ("CPP", "CQA", "KPI", "IPC")
STATUSES = ("hypothesis", "confirmed")
REVISABLE = ("target", "alert", "action", "status", "unit", "rationale")

Limits = dict[str, Any]


class Parameter(SignedAggregate):
    """A process parameter or attribute of one agreement, with every version of its limits.

    ``limits_history`` lists ``{"version", "effective_from", "event_version", "revision",
    "limits": {"unit", "target", "alert", "action"}, "status", "rationale"}``, one entry per
    definition or approved revision; ``version`` numbers the limits (1 = as defined) and
    ``event_version`` is the aggregate version of the event that made them effective.
    ``revisions`` maps each revision id to its proposal and outcome.
    """

    TOPIC = "cmo.Parameter.v1"

    class Created(Aggregate.Created):
        TOPIC = "cmo.Parameter.Created.v1"

    @event("ParameterDefined", topic="cmo.ParameterDefined.v1")
    def __init__(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        payload = envelope["payload"]
        self.agreement: str = payload["agreement"]
        self.name: str = payload["name"]
        self.kind: str = payload["kind"]
        self.defined_by: str = envelope["signer"]
        self.defined_at: str = recorded_at
        self.unit: str = payload["unit"]
        self.target: str | None = payload.get("target")
        self.alert: Limits = _pair(payload["alert"])
        self.action: Limits = _pair(payload["action"])
        self.rationale: str = payload["rationale"]
        self.status: str = payload["status"]
        self.pending: str | None = None
        self.revisions: dict[str, dict[str, Any]] = {}
        self.retired_at: str | None = None
        self.retired_by: str | None = None
        self.limits_history: list[dict[str, Any]] = []
        self._take_effect(None, envelope["version"], effective_from(payload, recorded_at))

    @event("ParameterRevisionProposed", topic="cmo.ParameterRevisionProposed.v1")
    def _revision_proposed(
        self, envelope: dict[str, Any], signature: str, recorded_at: str
    ) -> None:
        self._track(envelope, signature, recorded_at)
        payload = envelope["payload"]
        self.pending = payload["revision"]
        self.revisions[payload["revision"]] = {
            "proposed_by": envelope["signer"],
            "proposed_at": recorded_at,
            "changes": copy.deepcopy(payload["changes"]),
            "change": payload.get("change"),
            "reason": envelope.get("reason"),
            "outcome": "pending",
            "decided_by": None,
            "decided_at": None,
        }

    @event("ParameterRevisionApproved", topic="cmo.ParameterRevisionApproved.v1")
    def _revision_approved(
        self, envelope: dict[str, Any], signature: str, recorded_at: str
    ) -> None:
        self._track(envelope, signature, recorded_at)
        revision = self._decide(envelope, recorded_at, "approved")
        changes = revision["changes"]
        for name in ("target", "unit", "rationale", "status"):
            if name in changes:
                setattr(self, name, changes[name])
        for name in ("alert", "action"):
            if name in changes:
                setattr(self, name, _pair(changes[name]))
        when = effective_from(envelope["payload"], recorded_at)
        self._take_effect(envelope["payload"]["revision"], envelope["version"], when)

    @event("ParameterRevisionRejected", topic="cmo.ParameterRevisionRejected.v1")
    def _revision_rejected(
        self, envelope: dict[str, Any], signature: str, recorded_at: str
    ) -> None:
        self._track(envelope, signature, recorded_at)
        self._decide(envelope, recorded_at, "rejected")

    @event("ParameterRetired", topic="cmo.ParameterRetired.v1")
    def _retired(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        if self.pending is not None:
            self._decide(envelope, recorded_at, "withdrawn", self.pending)
        self.retired_at = recorded_at
        self.retired_by = envelope["signer"]

    def _decide(
        self, envelope: dict[str, Any], recorded_at: str, outcome: str, revision: str = ""
    ) -> dict[str, Any]:
        record = self.revisions[revision or envelope["payload"]["revision"]]
        record.update(outcome=outcome, decided_by=envelope["signer"], decided_at=recorded_at)
        self.pending = None
        return record

    def _take_effect(self, revision: str | None, event_version: int, effective: str) -> None:
        self.limits_history.append(
            {
                "version": len(self.limits_history) + 1,
                "effective_from": effective,
                "event_version": event_version,
                "revision": revision,
                "limits": self.current_limits(),
                "status": self.status,
                "rationale": self.rationale,
            }
        )

    def current_limits(self) -> Limits:
        """Unit, target, alert and action limits in force now."""
        return {
            "unit": self.unit,
            "target": self.target,
            "alert": dict(self.alert),
            "action": dict(self.action),
        }

    @property
    def limits_version(self) -> int:
        """The number of the limits in force (1 = as defined)."""
        return len(self.limits_history)

    def limits_at(self, when: datetime) -> dict[str, Any] | None:
        """The ``limits_history`` entry in force at ``when``; ``None`` before the definition
        and from retirement on."""
        when = require_aware(when, field="when")
        if self.retired_at is not None and when >= parse_utc(self.retired_at, field="when"):
            return None
        found: dict[str, Any] | None = None
        for entry in self.limits_history:
            if parse_utc(entry["effective_from"], field="when") > when:
                break
            found = entry
        return copy.deepcopy(found)

    def limits_of_version(self, version: int) -> dict[str, Any] | None:
        """The ``limits_history`` entry numbered ``version``, or ``None``."""
        if 1 <= version <= len(self.limits_history):
            return copy.deepcopy(self.limits_history[version - 1])
        return None


def _pair(limits: Mapping[str, Any]) -> Limits:
    return {"low": limits.get("low"), "high": limits.get("high")}


# -- checks -------------------------------------------------------------------------------


def _read_pair(fields: Fields) -> Limits:
    fields.only("low", "high")
    pair: Limits = {}
    for side in ("low", "high"):
        pair[side] = str(fields.raw(side)) if fields.has(side) else None
        if pair[side] is not None:
            fields.decimal(side)
    if pair["low"] is None and pair["high"] is None:
        raise ValidationFailed(
            "give a low or a high limit (or both); null means unlimited on that side",
            field=fields.path,
        )
    low, high = pair["low"], pair["high"]
    if low is not None and high is not None and Decimal(low) > Decimal(high):
        raise ValidationFailed("low is above high", field=fields.field("low"))
    return pair


def _read_target(fields: Fields) -> str | None:
    if not fields.has("target"):
        return None
    fields.decimal("target")
    return str(fields.raw("target"))


def _read_name(payload: Fields) -> str:
    name = payload.text("name", max_len=100)
    if name != name.strip() or not name.isprintable():
        raise ValidationFailed(
            "a parameter name is printable text without leading or trailing spaces",
            field="payload.name",
        )
    return name


def _check_limits(
    target: str | None, alert: Limits, action: Limits, field_of: Callable[[str], str]
) -> None:
    """Action limits enclose alert limits; the target lies within the alert limits."""
    for side in ("low", "high"):
        bound = action[side]
        if bound is None:
            continue
        inner = alert[side]
        if inner is None:
            raise ValidationFailed(
                f"the action limits have a {side} limit but the alert limits do not: "
                "action limits must enclose alert limits",
                field=field_of(f"action.{side}"),
            )
        sign = 1 if side == "high" else -1
        if sign * Decimal(inner) > sign * Decimal(bound):
            raise ValidationFailed(
                f"alert {side} {inner} lies outside action {side} {bound}: "
                "action limits must enclose alert limits",
                field=field_of(f"action.{side}"),
            )
    if target is not None:
        value = Decimal(target)
        low, high = alert["low"], alert["high"]
        if (low is not None and value < Decimal(low)) or (
            high is not None and value > Decimal(high)
        ):
            raise ValidationFailed(
                f"target {target} lies outside the alert limits", field=field_of("target")
            )


def _parameter_agreement(command: Command, parameter: Parameter) -> Agreement:
    return agreement_in_force(command, UUID(parameter.agreement), field="subject")


def _require_active(parameter: Parameter) -> None:
    if parameter.retired_at is not None:
        raise Forbidden(
            f"parameter {parameter.name!r} was retired at {parameter.retired_at}",
            field="subject",
        )


# -- rules --------------------------------------------------------------------------------


def _defined_rule(command: Command) -> None:
    payload = command.payload
    agreement_id = payload.uuid("agreement")
    agreement = agreement_in_force(command, agreement_id)
    require_agreement_party(command, agreement)
    name = _read_name(payload)
    if command.envelope.subject != parameter_subject(agreement_id, name):
        raise ValidationFailed(
            f"the subject of parameter {name!r} must be {parameter_subject(agreement_id, name)}",
            field="subject",
        )
    payload.choice("kind", KINDS)
    check_unit(payload.raw("unit"), field="payload.unit")
    target = _read_target(payload)
    alert = _read_pair(payload.object("alert"))
    action = _read_pair(payload.object("action"))
    payload.text("rationale", max_len=2000)
    payload.choice("status", STATUSES)
    _check_limits(target, alert, action, lambda name: f"payload.{name}")
    in_force = agreement.history[0]["effective_from"] if agreement.history else None
    command.effective_time(in_force)


def _proposed_rule(command: Command) -> None:
    parameter: Parameter = command.subject
    agreement = _parameter_agreement(command, parameter)
    require_agreement_party(command, agreement)
    _require_active(parameter)
    if parameter.pending is not None:
        proposer = parameter.revisions[parameter.pending]["proposed_by"]
        raise Forbidden(
            f"revision {parameter.pending} proposed by {proposer} is pending: "
            "approve or reject it first",
            field="subject",
        )
    payload = command.payload
    revision = payload.uuid("revision")
    if revision.version != 4 or str(revision) in parameter.revisions:
        raise ValidationFailed(
            "expected a new random (version 4) UUID for this revision", field="payload.revision"
        )
    changes = payload.object("changes").only(*REVISABLE)
    given = [name for name in REVISABLE if name in changes.data]
    if not given:
        raise ValidationFailed(
            f"change at least one of {', '.join(REVISABLE)}", field="payload.changes"
        )
    merged = parameter.current_limits()
    merged.update(status=parameter.status, rationale=parameter.rationale)
    if "target" in given:
        merged["target"] = _read_target(changes)
    for name in ("alert", "action"):
        if name in given:
            merged[name] = _read_pair(changes.object(name))
    if "unit" in given:
        merged["unit"] = check_unit(changes.raw("unit"), field=changes.field("unit"))
    if "status" in given:
        merged["status"] = changes.choice("status", STATUSES)
    if "rationale" in given:
        merged["rationale"] = changes.text("rationale", max_len=2000)
    for name in given:
        current = getattr(parameter, name)
        if merged[name] == current:
            raise ValidationFailed(
                f"{name} already is {current!r}: leave it out", field=changes.field(name)
            )

    def field_of(name: str) -> str:
        head = name.split(".")[0]
        if head in given:
            return changes.field(name)
        # The combination is wrong, not the unchanged value: blame the change that broke it.
        return changes.field("alert") if "alert" in given else "payload.changes"

    _check_limits(merged["target"], merged["alert"], merged["action"], field_of)
    if payload.has("change"):
        # Imported here: ledger.domain.changes reads parameters (a change's affected ones).
        from ledger.domain.changes import cited_change

        cited_change(command, parameter.agreement, parameter.name)


def _decision_rule(command: Command) -> None:
    parameter: Parameter = command.subject
    agreement = (
        _parameter_agreement(command, parameter)
        if command.envelope.type == "ParameterRevisionApproved"
        else _find_agreement(command, parameter)
    )
    require_agreement_party(command, agreement)
    payload = command.payload
    revision = str(payload.uuid("revision"))
    if parameter.pending is None or parameter.pending != revision:
        record = parameter.revisions.get(revision)
        state = "no such revision" if record is None else f"revision is {record['outcome']}"
        raise ValidationFailed(
            f"{state}; the pending revision is {parameter.pending or 'none'}",
            field="payload.revision",
        )
    proposer = parameter.revisions[revision]["proposed_by"]
    if command.signer == proposer:
        raise Forbidden(
            f"{proposer} proposed revision {revision}; only "
            f"{agreement.counterparty(proposer)} may approve or reject it",
            field="signer",
        )
    if command.envelope.type == "ParameterRevisionApproved":
        change = parameter.revisions[revision].get("change")
        if change is not None:
            from ledger.domain.changes import require_change_approved

            require_change_approved(command, parameter.agreement, change, "payload.revision")
        command.effective_time(parameter.limits_history[-1]["effective_from"])


def _find_agreement(command: Command, parameter: Parameter) -> Agreement:
    agreement = command.state.find(UUID(parameter.agreement), Agreement)
    if agreement is None:  # pragma: no cover - a parameter is only defined under an agreement
        raise NotFound(f"no agreement {parameter.agreement}", field="subject")
    return agreement


def _retired_rule(command: Command) -> None:
    parameter: Parameter = command.subject
    require_agreement_party(command, _find_agreement(command, parameter))
    _require_active(parameter)


register(
    EventSpec(
        "ParameterDefined",
        Parameter,
        frozenset({"authored"}),
        _defined_rule,
        signers="the agreement's sponsor or CMO (party key); the agreement must be in force",
        description="defines a CPP, CQA, KPI or IPC with its unit and limits (limits version 1)",
    ),
    EventSpec(
        "ParameterRevisionProposed",
        Parameter,
        frozenset({"authored"}),
        _proposed_rule,
        apply="_revision_proposed",
        reason_required=True,
        signers="the agreement's sponsor or CMO (party key)",
        description="proposes new values for some of target, alert, action, status, unit, "
        "rationale; at most one revision is pending",
    ),
    EventSpec(
        "ParameterRevisionApproved",
        Parameter,
        frozenset({"approved"}),
        _decision_rule,
        apply="_revision_approved",
        signers="the counterparty of the proposer (party key)",
        description="approves the pending revision: its values are in force from now, as a "
        "new limits version",
    ),
    EventSpec(
        "ParameterRevisionRejected",
        Parameter,
        frozenset({"rejected"}),
        _decision_rule,
        apply="_revision_rejected",
        reason_required=True,
        signers="the counterparty of the proposer (party key)",
        description="rejects the pending revision; the limits stay as they are",
    ),
    EventSpec(
        "ParameterRetired",
        Parameter,
        frozenset({"retired"}),
        _retired_rule,
        apply="_retired",
        reason_required=True,
        signers="the agreement's sponsor or CMO (party key)",
        description="retires the parameter; a pending revision is withdrawn, no limits apply "
        "from now",
    ),
)
