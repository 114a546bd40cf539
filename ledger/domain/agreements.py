"""The quality agreement as data: proposal, signature, amendments, termination.

An agreement binds one sponsor and one CMO. Either of them proposes the terms; the other
signs, and from that event's ``recorded_at`` (or its ``effective_from``) the terms are in
force. An amendment proposes full new terms (``AgreementAmended``) that take effect only
when the other party countersigns (``AgreementAmendmentSigned``); it may add or retire
data classes. Every version stays in :attr:`Agreement.history`, so
:meth:`Agreement.terms_at` answers which terms applied at any past time.

The terms, member by member, their delivery rules and an example: ``docs/agreements.md``;
their JSON Schema: :mod:`ledger.domain.terms_schema`; data classes, forms and delivery
rules: :mod:`ledger.domain.data_classes`.
"""

from __future__ import annotations

import copy
import re
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.catalogue import Command, EventSpec, SignedAggregate, register
from ledger.domain.data_classes import check_class_name, check_delivery, check_form, spec_form
from ledger.domain.fields import Fields
from ledger.domain.formats import DATA_CLASSES
from ledger.domain.terms_schema import (
    CPK_THRESHOLD_MAX,
    DEFAULT_REVIEW_CADENCE_MONTHS,
    DEVIATION_DEADLINE_HOURS,
    IP_RULES,
    REVIEW_CADENCE_MONTHS,
    TERMS_MEMBERS,
    UNREGISTERED,
)
from ledger.domain.validity import effective_from
from ledger.errors import Forbidden, NotFound, ValidationFailed
from ledger.timeutil import parse_utc, require_aware

__all__ = [
    "DATA_CLASSES",
    "DEFAULT_REVIEW_CADENCE_MONTHS",
    "IP_RULES",
    "Agreement",
    "agreement_in_force",
    "require_agreement_party",
    "validate_terms",
]

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}\Z")

Terms = dict[str, Any]


class Agreement(SignedAggregate):
    """A sponsor-CMO quality agreement and every version of its terms.

    ``terms`` are the terms in force (while only proposed, the proposal);
    ``history`` lists each version that took effect as
    ``{"version": n, "effective_from": recorded_at, "event_version": v, "terms": {...}}``,
    where ``version`` numbers the terms (1 = as first signed) and ``event_version`` is the
    aggregate version of the event that made them effective.
    """

    TOPIC = "cmo.Agreement.v1"

    class Created(Aggregate.Created):
        TOPIC = "cmo.Agreement.Created.v1"

    @event("AgreementProposed", topic="cmo.AgreementProposed.v1")
    def __init__(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        terms = _normalised(envelope["payload"]["terms"])
        self.sponsor: str = terms["sponsor"]
        self.cmo: str = terms["cmo"]
        self.status: str = "proposed"
        self.proposed_by: str = envelope["signer"]
        self.proposed_at: str = recorded_at
        self.terms: Terms = terms
        self.pending_amendment: dict[str, Any] | None = None
        self.history: list[dict[str, Any]] = []
        self.terminated_at: str | None = None
        self.terminated_by: str | None = None

    @event("AgreementSigned", topic="cmo.AgreementSigned.v1")
    def _signed(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        self.status = "effective"
        when = effective_from(envelope["payload"], recorded_at)
        self._take_effect(self.terms, envelope["version"], when)

    @event("AgreementAmended", topic="cmo.AgreementAmended.v1")
    def _amended(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        self.pending_amendment = {
            "terms": _normalised(envelope["payload"]["terms"]),
            "proposed_by": envelope["signer"],
            "proposed_at": recorded_at,
            "reason": envelope.get("reason"),
        }

    @event("AgreementAmendmentSigned", topic="cmo.AgreementAmendmentSigned.v1")
    def _amendment_signed(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        pending = self.pending_amendment
        assert pending is not None  # the rule refuses a signature with nothing pending
        self.pending_amendment = None
        when = effective_from(envelope["payload"], recorded_at)
        self._take_effect(pending["terms"], envelope["version"], when)

    @event("AgreementAmendmentRejected", topic="cmo.AgreementAmendmentRejected.v1")
    def _amendment_rejected(
        self, envelope: dict[str, Any], signature: str, recorded_at: str
    ) -> None:
        self._track(envelope, signature, recorded_at)
        self.pending_amendment = None

    @event("AgreementTerminated", topic="cmo.AgreementTerminated.v1")
    def _terminated(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        self.status = "terminated"
        self.pending_amendment = None
        self.terminated_at = recorded_at
        self.terminated_by = envelope["signer"]

    def _take_effect(self, terms: Terms, event_version: int, effective: str) -> None:
        self.terms = terms
        self.history = [
            *self.history,
            {
                "version": len(self.history) + 1,
                "effective_from": effective,
                "event_version": event_version,
                "terms": copy.deepcopy(terms),
            },
        ]

    def is_effective(self) -> bool:
        """True once both parties signed, until it is terminated."""
        return self.status == "effective"

    def is_party(self, party_id: str) -> bool:
        """True for the agreement's sponsor and CMO."""
        return party_id in (self.sponsor, self.cmo)

    def counterparty(self, party_id: str) -> str:
        """The other party of the agreement; ``Forbidden`` when ``party_id`` is not a party."""
        if party_id == self.sponsor:
            return self.cmo
        if party_id == self.cmo:
            return self.sponsor
        raise Forbidden(
            f"{party_id} is not a party to this agreement ({self.sponsor} / {self.cmo})",
            field="signer",
        )

    def owner_of(self, data_class: str, *, field: str | None = None) -> str:
        """The party owning ``data_class`` under the terms in force (or proposed)."""
        return str(self.class_terms(data_class, field=field)["owner"])

    def class_terms(self, data_class: str, *, field: str | None = None) -> dict[str, Any]:
        """``data_class``'s member of the terms in force (or proposed); refused naming
        ``field`` and the classes the terms define when they do not define it."""
        classes: dict[str, Any] = self.terms["data_classes"]
        if data_class not in classes:
            raise ValidationFailed(
                f"the agreement defines no data class {data_class[:70]!r} in the terms in "
                f"force: it defines {', '.join(sorted(classes))}" + self._retired_note(data_class),
                field=field,
            )
        return classes[data_class]  # type: ignore[no-any-return]

    def last_class_terms(self, data_class: str) -> dict[str, Any] | None:
        """``data_class``'s member of the latest terms that defined it (retired or not)."""
        for terms in [self.terms, *(entry["terms"] for entry in reversed(self.history))]:
            found = terms["data_classes"].get(data_class)
            if found is not None:
                return found  # type: ignore[no-any-return]
        return None

    def form_of(self, data_class: str) -> str | None:
        """The form of ``data_class``, fixed for the agreement's life (retired classes too)."""
        spec = self.last_class_terms(data_class)
        return None if spec is None else spec_form(data_class, spec)

    def _retired_note(self, data_class: str) -> str:
        if self.last_class_terms(data_class) is None:
            return ""
        return f"; {data_class} was retired by an amendment"

    def terms_at(self, when: datetime) -> Terms | None:
        """The terms in force at ``when``: ``None`` before both signed and once terminated."""
        when = require_aware(when, field="when")
        if self.terminated_at is not None and when >= parse_utc(self.terminated_at, field="when"):
            return None
        found: Terms | None = None
        for entry in self.history:
            if parse_utc(entry["effective_from"], field="when") <= when:
                found = entry["terms"]
            else:
                break
        return copy.deepcopy(found)


def agreement_in_force(
    command: Command, agreement_id: UUID, *, field: str = "payload.agreement"
) -> Agreement:
    """The agreement, if both parties signed it and it is not terminated."""
    agreement = command.state.find(agreement_id, Agreement)
    if agreement is None:
        raise NotFound(f"no agreement {agreement_id}", field=field)
    if agreement.status == "terminated":
        raise Forbidden(
            f"agreement was terminated at {agreement.terminated_at}: nothing more is recorded "
            "under it",
            field=field,
        )
    if not agreement.is_effective():
        raise Forbidden("agreement is not in force: both parties must sign", field=field)
    return agreement


def require_agreement_party(command: Command, agreement: Agreement) -> None:
    """Refuse unless the signer is the agreement's sponsor or CMO."""
    if not agreement.is_party(command.signer):
        raise Forbidden(
            f"only {agreement.sponsor} or {agreement.cmo} may sign {command.envelope.type} "
            "under this agreement",
            field="signer",
        )


def validate_terms(command: Command, terms: Fields) -> Terms:
    """Check terms field by field (every error names ``payload.terms.<field>``)."""
    terms.only(*TERMS_MEMBERS)
    sponsor = _party_with_role(command, terms, "sponsor")
    cmo = _party_with_role(command, terms, "cmo")
    terms.text("title", max_len=300)
    _unique_names(terms, "products", allow_empty=False)
    _unique_names(terms, "sites", allow_empty=False)
    _check_data_classes(terms.object("data_classes"), sponsor, cmo)
    if terms.has("confidential_elements"):
        elements = _unique_names(terms, "confidential_elements", allow_empty=True)
        for index, element in enumerate(elements):
            if not _IDENTIFIER.match(element):
                raise ValidationFailed(
                    "expected an identifier: lowercase letters, digits and underscores, "
                    "starting with a letter",
                    field=f"{terms.field('confidential_elements')}[{index}]",
                )
    terms.choice("ip_rule", IP_RULES)
    if terms.has("review_cadence_months"):
        low, high = REVIEW_CADENCE_MONTHS
        terms.integer("review_cadence_months", minimum=low, maximum=high)
    low, high = DEVIATION_DEADLINE_HOURS
    terms.integer("deviation_deadline_hours", minimum=low, maximum=high)
    if terms.has("unregistered"):
        terms.choice("unregistered", UNREGISTERED)
    if terms.has("cpk_threshold"):
        _check_cpk_threshold(terms)
    return _normalised(dict(terms.data))


def _check_cpk_threshold(terms: Fields) -> None:
    # A number with a fraction travels as a decimal string, like every limit (R26).
    value = terms.decimal("cpk_threshold")
    if not 0 < value <= CPK_THRESHOLD_MAX:
        raise ValidationFailed(
            f'expected a decimal above 0 and at most {CPK_THRESHOLD_MAX}, e.g. "1.33"',
            field=terms.field("cpk_threshold"),
        )


def _check_data_classes(classes: Fields, sponsor: str, cmo: str) -> None:
    """Each class: a name, an owner (sponsor or CMO), a form, a format, a delivery rule."""
    if not classes.data:
        raise ValidationFailed("define at least one data class", field=classes.path)
    for name in classes.data:
        check_class_name(name, field=classes.field(name))
        data_class = classes.object(name).only("owner", "form", "delivery", "format")
        owner = data_class.text("owner", max_len=63)
        if owner not in (sponsor, cmo):
            raise ValidationFailed(
                f"the owner must be the sponsor ({sponsor}) or the CMO ({cmo})",
                field=data_class.field("owner"),
            )
        check_form(name, data_class)
        check_delivery(data_class.object("delivery"))
        data_format = data_class.object("format").only("name", "columns")
        data_format.text("name", max_len=100)
        _unique_names(data_format, "columns", allow_empty=False)


def _normalised(terms: Terms) -> Terms:
    # Defaults are filled when recording, so every stored version states them explicitly.
    result = copy.deepcopy(terms)
    if result.get("review_cadence_months") is None:
        result["review_cadence_months"] = DEFAULT_REVIEW_CADENCE_MONTHS
    if result.get("confidential_elements") is None:
        result["confidential_elements"] = []
    return result


def _party_with_role(command: Command, terms: Fields, role: str) -> str:
    party_id = terms.text(role, max_len=63)
    party = command.state.party(party_id)
    if party is None:
        raise NotFound(f"no admitted party {party_id!r}", field=terms.field(role))
    if party.role != role:
        raise ValidationFailed(
            f"{party_id} is admitted as {party.role}, not as {role}", field=terms.field(role)
        )
    return party_id


def _unique_names(fields: Fields, name: str, *, allow_empty: bool) -> list[str]:
    values = fields.texts(name)
    if not values and not allow_empty:
        raise ValidationFailed("name at least one", field=fields.field(name))
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise ValidationFailed(
                f"{value!r} is listed twice", field=f"{fields.field(name)}[{index}]"
            )
        seen.add(value)
    return values


def _require_status(agreement: Agreement, status: str, what: str) -> None:
    if agreement.status != status:
        raise Forbidden(f"{what}: the agreement is {agreement.status}", field="subject")


def _proposed_rule(command: Command) -> None:
    payload = command.payload
    terms = validate_terms(command, payload.object("terms"))
    if command.signer not in (terms["sponsor"], terms["cmo"]):
        raise Forbidden(
            f"only the sponsor ({terms['sponsor']}) or the CMO ({terms['cmo']}) named in the "
            "terms may propose them",
            field="signer",
        )


def _signed_rule(command: Command) -> None:
    agreement: Agreement = command.subject
    _require_status(agreement, "proposed", "only a proposed agreement can be signed")
    if command.signer == agreement.proposed_by:
        raise Forbidden(
            f"{agreement.proposed_by} proposed these terms; "
            f"{agreement.counterparty(agreement.proposed_by)} must sign them",
            field="signer",
        )
    command.require_signer(agreement.counterparty(agreement.proposed_by))
    command.effective_time()


def _amended_rule(command: Command) -> None:
    agreement: Agreement = command.subject
    require_agreement_party(command, agreement)
    _require_status(agreement, "effective", "only an agreement in force can be amended")
    if agreement.pending_amendment is not None:
        raise Forbidden(
            f"an amendment proposed by {agreement.pending_amendment['proposed_by']} is pending: "
            "sign or reject it first",
            field="subject",
        )
    payload = command.payload
    terms_fields = payload.object("terms")
    for role in ("sponsor", "cmo"):
        current = getattr(agreement, role)
        if terms_fields.data.get(role) != current:
            raise ValidationFailed(
                f"the {role} cannot change: it stays {current}; make a new agreement instead",
                field=terms_fields.field(role),
            )
    terms = validate_terms(command, terms_fields)
    if terms == agreement.terms:
        raise ValidationFailed("the amendment changes nothing", field="payload.terms")
    _keep_forms(agreement, terms, terms_fields.object("data_classes"))


def _keep_forms(agreement: Agreement, terms: Terms, classes: Fields) -> None:
    """A class keeps its form for the agreement's life (retired and added again included),
    so its data, stored in that form, is always read in it."""
    for name, spec in sorted(terms["data_classes"].items()):
        before = agreement.form_of(name)
        if before is not None and spec_form(name, spec) != before:
            raise ValidationFailed(
                f"class {name} holds {before} data: its form cannot change; name a new class "
                "for the other form",
                field=classes.object(name).field("form"),
            )


def _amendment_signed_rule(command: Command) -> None:
    agreement: Agreement = command.subject
    require_agreement_party(command, agreement)
    _require_status(agreement, "effective", "only an agreement in force can be amended")
    pending = agreement.pending_amendment
    if pending is None:
        raise Forbidden("no amendment is pending", field="subject")
    if command.signer == pending["proposed_by"]:
        raise Forbidden(
            f"{pending['proposed_by']} proposed this amendment; "
            f"{agreement.counterparty(pending['proposed_by'])} must countersign it",
            field="signer",
        )
    command.effective_time(agreement.history[-1]["effective_from"] if agreement.history else None)


def _amendment_rejected_rule(command: Command) -> None:
    agreement: Agreement = command.subject
    require_agreement_party(command, agreement)
    if agreement.pending_amendment is None:
        raise Forbidden("no amendment is pending", field="subject")


def _terminated_rule(command: Command) -> None:
    agreement: Agreement = command.subject
    require_agreement_party(command, agreement)
    if agreement.status == "terminated":
        raise Forbidden("the agreement is already terminated", field="subject")


_SIGNING = frozenset({"signed", "approved"})

register(
    EventSpec(
        "AgreementProposed",
        Agreement,
        frozenset({"authored"}),
        _proposed_rule,
        signers="the sponsor or the CMO named in the terms",
        description="proposes quality-agreement terms; nothing is in force until the other signs",
    ),
    EventSpec(
        "AgreementSigned",
        Agreement,
        _SIGNING,
        _signed_rule,
        apply="_signed",
        signers="the counterparty of the proposer",
        description="signs the proposed terms: they are in force from this event's recorded_at",
    ),
    EventSpec(
        "AgreementAmended",
        Agreement,
        frozenset({"authored"}),
        _amended_rule,
        apply="_amended",
        reason_required=True,
        signers="the sponsor or the CMO",
        description="proposes new terms; they take effect only when the other party signs",
    ),
    EventSpec(
        "AgreementAmendmentSigned",
        Agreement,
        _SIGNING,
        _amendment_signed_rule,
        apply="_amendment_signed",
        signers="the counterparty of the amendment's proposer",
        description="countersigns the pending amendment: its terms are in force from now",
    ),
    EventSpec(
        "AgreementAmendmentRejected",
        Agreement,
        frozenset({"rejected"}),
        _amendment_rejected_rule,
        apply="_amendment_rejected",
        reason_required=True,
        signers="the sponsor or the CMO",
        description="withdraws (proposer) or rejects (counterparty) the pending amendment",
    ),
    EventSpec(
        "AgreementTerminated",
        Agreement,
        frozenset({"revoked"}),
        _terminated_rule,
        apply="_terminated",
        reason_required=True,
        signers="the sponsor or the CMO",
        description="ends the agreement (or withdraws a proposal); nothing more is recorded "
        "under it, its history stays readable",
    ),
)
