"""Change control (R22): ``ChangeProposed``, ``ChangeApproved``, ``ChangeRejected``,
``ChangeImplemented``.

Either party of an agreement in force proposes a change. The proposal says whether it
touches an established condition (``ec_impact``, ICH Q12 §2) and how it is reported to the
regulator (``reporting_category``, 21 CFR 314.70, one of :data:`REPORTING_CATEGORIES`);
the reporting categories of an EC change (:data:`EC_CATEGORIES`) are refused for a change
without EC impact, which is managed in the quality system and at most reported annually.
The counterparty of the proposer approves or rejects it, once. The proposer or the CMO
records its implementation: a change with EC impact only after its approval, a rejected
change never. A change without EC impact may be implemented before the counterparty
decides (it is notified by the proposal).

A parameter revision (``ParameterRevisionProposed``) may cite its change (``change``, the
change id): the change must be one of the same agreement that names the parameter among
its affected parameters, and the revision of a change with EC impact is approved only
once the change is (:func:`cited_change`, :func:`require_change_approved`).

The subject is derived from the agreement and the change id
(:func:`ledger.domain.subjects.change_subject`), so an id names one change of an
agreement and is never reused. Payloads::

    ChangeProposed      agreement, change (an id such as CC-2026-014), title, description,
                        ec_impact (bool), reporting_category, affected_parameters (names
                        of the agreement's parameters in use, no duplicates; may be empty)
    ChangeApproved      no members
    ChangeRejected      no members; envelope reason required
    ChangeImplemented   no members
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.agreements import Agreement, agreement_in_force, require_agreement_party
from ledger.domain.catalogue import Command, EventSpec, SignedAggregate, register
from ledger.domain.fields import Fields
from ledger.domain.formats import REFERENCE_ID
from ledger.domain.parameters import Parameter
from ledger.domain.payloads import MAX_AFFECTED_PARAMETERS
from ledger.domain.subjects import change_subject, parameter_subject
from ledger.errors import Forbidden, NotFound, ValidationFailed

__all__ = [
    "EC_CATEGORIES",
    "MAX_DESCRIPTION",
    "REPORTING_CATEGORIES",
    "Change",
    "cited_change",
    "read_reference",
    "require_change_approved",
]

REPORTING_CATEGORIES = ("prior-approval", "cbe-30", "cbe-0", "annual-report")
"""How a change is reported: prior-approval supplement, changes-being-effected in 30 days
or at once, or the annual report (21 CFR 314.70; ICH Q12 Appendix 2)."""
EC_CATEGORIES = frozenset({"prior-approval", "cbe-30", "cbe-0"})
"""The categories that report a change to an established condition."""
MAX_TITLE = 300
MAX_DESCRIPTION = 5000


class Change(SignedAggregate):
    """One change proposal and where it stands.

    ``decision`` is ``None`` until the counterparty decides, then ``approved`` or
    ``rejected``; ``implemented_at`` is set once the change is implemented.
    """

    TOPIC = "cmo.Change.v1"

    class Created(Aggregate.Created):
        TOPIC = "cmo.Change.Created.v1"

    @event("ChangeProposed", topic="cmo.ChangeProposed.v1")
    def __init__(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        payload = envelope["payload"]
        self.agreement: str = payload["agreement"]
        self.change_id: str = payload["change"]
        self.title: str = payload["title"]
        self.description: str = payload["description"]
        self.ec_impact: bool = payload["ec_impact"]
        self.reporting_category: str = payload["reporting_category"]
        self.affected_parameters: list[str] = list(payload["affected_parameters"])
        self.proposed_by: str = envelope["signer"]
        self.proposed_at: str = recorded_at
        self.decision: str | None = None
        self.decided_by: str | None = None
        self.decided_at: str | None = None
        self.rejection_reason: str | None = None
        self.implemented_by: str | None = None
        self.implemented_at: str | None = None

    @event("ChangeApproved", topic="cmo.ChangeApproved.v1")
    def _approved(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        self._decide(envelope, recorded_at, "approved")

    @event("ChangeRejected", topic="cmo.ChangeRejected.v1")
    def _rejected(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        self._decide(envelope, recorded_at, "rejected")
        self.rejection_reason = envelope.get("reason")

    @event("ChangeImplemented", topic="cmo.ChangeImplemented.v1")
    def _implemented(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        self.implemented_by = envelope["signer"]
        self.implemented_at = recorded_at

    def _decide(self, envelope: dict[str, Any], recorded_at: str, decision: str) -> None:
        self.decision = decision
        self.decided_by = envelope["signer"]
        self.decided_at = recorded_at

    @property
    def status(self) -> str:
        """``implemented``, ``rejected``, ``approved`` or ``proposed``."""
        if self.implemented_at is not None:
            return "implemented"
        return self.decision or "proposed"


# -- checks -------------------------------------------------------------------------------


def read_reference(payload: Fields, name: str) -> str:
    """A change or CAPA number such as ``CC-2026-014`` (:data:`REFERENCE_ID`)."""
    value = payload.raw(name)
    if not isinstance(value, str) or not REFERENCE_ID.match(value):
        raise ValidationFailed(
            "expected an id of 2 to 64 letters, digits, '.', '_' or '-', such as CC-2026-014",
            field=payload.field(name),
        )
    return value


def _read_affected(command: Command, payload: Fields, agreement_id: UUID) -> None:
    values = payload.items("affected_parameters", max_items=MAX_AFFECTED_PARAMETERS)
    seen: set[str] = set()
    for index, name in enumerate(values):
        field = f"payload.affected_parameters[{index}]"
        if not isinstance(name, str) or not name:
            raise ValidationFailed("expected a parameter name", field=field)
        if name in seen:
            raise ValidationFailed(f"parameter {name!r} is listed twice", field=field)
        seen.add(name)
        parameter = command.state.find(parameter_subject(agreement_id, name), Parameter)
        if parameter is None:
            raise NotFound(f"the agreement has no parameter {name!r}", field=field)
        if parameter.retired_at is not None:
            raise Forbidden(
                f"parameter {name!r} was retired at {parameter.retired_at}", field=field
            )


def _find_agreement(command: Command, change: Change) -> Agreement:
    agreement = command.state.find(UUID(change.agreement), Agreement)
    if agreement is None:  # pragma: no cover - a change is only proposed under an agreement
        raise NotFound(f"no agreement {change.agreement}", field="subject")
    return agreement


def cited_change(command: Command, agreement_id: str, parameter: str) -> str:
    """The id of the change a parameter revision cites (``payload.change``): a change of the
    parameter's agreement, not rejected, that names ``parameter`` among those it affects."""
    field = "payload.change"
    change_id = read_reference(command.payload, "change")
    change = command.state.find(change_subject(agreement_id, change_id), Change)
    if change is None:
        raise NotFound(f"the agreement has no change {change_id}", field=field)
    if change.decision == "rejected":
        raise Forbidden(
            f"change {change_id} was rejected at {change.decided_at}: cite another change",
            field=field,
        )
    if parameter not in change.affected_parameters:
        raise ValidationFailed(
            f"change {change_id} does not list parameter {parameter!r} among its affected "
            "parameters: cite the change that does",
            field=field,
        )
    return change_id


def require_change_approved(
    command: Command, agreement_id: str, change_id: str, field: str
) -> None:
    """Refuse while the change with EC impact ``change_id`` is not approved (R22: a change to
    an established condition takes effect only after the counterparty's approval)."""
    change = command.state.find(change_subject(agreement_id, change_id), Change)
    if change is None or not change.ec_impact or change.decision == "approved":
        return
    approver = _find_agreement(command, change).counterparty(change.proposed_by)
    raise Forbidden(
        f"the revision cites change {change_id}, which has EC impact and is "
        f"{change.status}: {approver} approves the change (ChangeApproved) first",
        field=field,
    )


# -- rules --------------------------------------------------------------------------------


def _proposed_rule(command: Command) -> None:
    payload = command.payload
    agreement_id = payload.uuid("agreement")
    agreement = agreement_in_force(command, agreement_id)
    require_agreement_party(command, agreement)
    change_id = read_reference(payload, "change")
    expected = change_subject(agreement_id, change_id)
    if command.envelope.subject != expected:
        raise ValidationFailed(
            f"the subject of change {change_id} must be {expected}", field="subject"
        )
    payload.text("title", max_len=MAX_TITLE)
    payload.text("description", max_len=MAX_DESCRIPTION)
    ec_impact = payload.boolean("ec_impact")
    category = payload.choice("reporting_category", REPORTING_CATEGORIES)
    if not ec_impact and category in EC_CATEGORIES:
        raise ValidationFailed(
            f"{category} reports a change to an established condition: set ec_impact to "
            "true, or report a change without EC impact as annual-report",
            field="payload.reporting_category",
        )
    _read_affected(command, payload, agreement_id)


def _decision_rule(command: Command) -> None:
    change: Change = command.subject
    if command.envelope.type == "ChangeApproved":
        agreement = agreement_in_force(command, UUID(change.agreement), field="subject")
    else:
        agreement = _find_agreement(command, change)
    require_agreement_party(command, agreement)
    if command.signer == change.proposed_by:
        raise Forbidden(
            f"{change.proposed_by} proposed change {change.change_id}; only "
            f"{agreement.counterparty(change.proposed_by)} may approve or reject it",
            field="signer",
        )
    if change.decision is not None:
        raise Forbidden(
            f"change {change.change_id} was already {change.decision} at {change.decided_at}",
            field="subject",
        )


def _implemented_rule(command: Command) -> None:
    change: Change = command.subject
    agreement = agreement_in_force(command, UUID(change.agreement), field="subject")
    # The CMO runs the plant; a sponsor's change may also be recorded by the sponsor.
    command.require_signer(*dict.fromkeys((change.proposed_by, agreement.cmo)))
    if change.implemented_at is not None:
        raise Forbidden(
            f"change {change.change_id} was already implemented at {change.implemented_at}",
            field="subject",
        )
    if change.decision == "rejected":
        raise Forbidden(
            f"change {change.change_id} was rejected at {change.decided_at}: a rejected change "
            "is not implemented",
            field="subject",
        )
    if change.ec_impact and change.decision != "approved":
        approver = agreement.counterparty(change.proposed_by)
        raise Forbidden(
            f"change {change.change_id} has EC impact: it is implemented only after "
            f"{approver} approves it (ChangeApproved)",
            field="subject",
        )


register(
    EventSpec(
        "ChangeProposed",
        Change,
        frozenset({"authored"}),
        _proposed_rule,
        signers="the agreement's sponsor or CMO (party key); the agreement must be in force",
        description="proposes a change with its EC impact, reporting category and affected "
        "parameters (R22)",
    ),
    EventSpec(
        "ChangeApproved",
        Change,
        frozenset({"approved"}),
        _decision_rule,
        apply="_approved",
        person_required=True,
        signers="a person of the proposer's counterparty (its quality unit)",
        description="approves the change (once); a change with EC impact is implemented only "
        "after this",
    ),
    EventSpec(
        "ChangeRejected",
        Change,
        frozenset({"rejected"}),
        _decision_rule,
        apply="_rejected",
        reason_required=True,
        person_required=True,
        signers="a person of the proposer's counterparty (its quality unit)",
        description="rejects the change (once); it is never implemented",
    ),
    EventSpec(
        "ChangeImplemented",
        Change,
        frozenset({"implemented"}),
        _implemented_rule,
        apply="_implemented",
        signers="the proposer or the agreement's CMO (party key)",
        description="records that the change is implemented: not rejected, and approved "
        "first when it has EC impact",
    ),
)
