"""Continued process verification baselines (R26): ``BaselineDefined``, ``BaselineRevised``,
``CpvSignalAcknowledged``.

A baseline names the batches whose results set a parameter's control limits. It is its own
subject, derived from the agreement, the parameter's name and the baseline's name
(:func:`ledger.domain.subjects.baseline_subject`), so a client addresses it by name. Either
party of the agreement defines it and either may revise its batch list (a revision needs a
reason). Every version of the list stays in :attr:`Baseline.history`; the CPV query reads the
list as it stood at the log position it answers for (``docs/cpv.md``).

``CpvSignalAcknowledged`` records that a party has seen a CPV signal: the event names the
baseline (its own subject), the inputs digest of the analysis that raised the signal
(:func:`ledger.cpv.inputs.inputs_digest`) and a comment. A new analysis (new data, a new
baseline list) has a new digest and raises its signal afresh.

Payloads::

    BaselineDefined         agreement, parameter (its name), name, batches (2..1000 batch
                            names of the agreement, no duplicates); envelope reason optional
    BaselineRevised         batches (the new list); envelope reason required
    CpvSignalAcknowledged   baseline (the subject), inputs_digest (hex SHA-256), comment
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.agreements import Agreement, agreement_in_force, require_agreement_party
from ledger.domain.batches import Batch
from ledger.domain.catalogue import Command, EventSpec, SignedAggregate, register
from ledger.domain.fields import Fields
from ledger.domain.formats import BATCH_ID
from ledger.domain.parameters import Parameter
from ledger.domain.payloads import MAX_BASELINE_BATCHES
from ledger.domain.subjects import baseline_subject, batch_subject, parameter_subject
from ledger.errors import Forbidden, NotFound, ValidationFailed

__all__ = ["MAX_COMMENT", "MIN_BASELINE_BATCHES", "Baseline"]

MIN_BASELINE_BATCHES = 2
"""Fewer batches give no moving range: no control limits."""
MAX_COMMENT = 2000
MAX_NAME = 100


class Baseline(SignedAggregate):
    """A named list of batches whose results set a parameter's control limits.

    ``history`` lists ``{"version", "batches", "recorded_at", "signer", "reason"}``, one
    entry per definition or revision (``version`` numbers the lists, 1 = as defined).
    ``acknowledgements`` maps an inputs digest to ``{"by", "at", "comment"}`` (the first
    acknowledgement of each digest by each party is kept, in order).
    """

    TOPIC = "cmo.Baseline.v1"

    class Created(Aggregate.Created):
        TOPIC = "cmo.Baseline.Created.v1"

    @event("BaselineDefined", topic="cmo.BaselineDefined.v1")
    def __init__(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        payload = envelope["payload"]
        self.agreement: str = payload["agreement"]
        self.parameter: str = payload["parameter"]
        self.name: str = payload["name"]
        self.defined_by: str = envelope["signer"]
        self.history: list[dict[str, Any]] = []
        self.acknowledgements: dict[str, list[dict[str, Any]]] = {}
        self._new_list(envelope, recorded_at)

    @event("BaselineRevised", topic="cmo.BaselineRevised.v1")
    def _revised(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        self._new_list(envelope, recorded_at)

    @event("CpvSignalAcknowledged", topic="cmo.CpvSignalAcknowledged.v1")
    def _acknowledged(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        payload = envelope["payload"]
        self.acknowledgements.setdefault(payload["inputs_digest"], []).append(
            {"by": envelope["signer"], "at": recorded_at, "comment": payload["comment"]}
        )

    def _new_list(self, envelope: dict[str, Any], recorded_at: str) -> None:
        self.history = [
            *self.history,
            {
                "version": len(self.history) + 1,
                "batches": list(envelope["payload"]["batches"]),
                "recorded_at": recorded_at,
                "signer": envelope["signer"],
                "reason": envelope.get("reason"),
            },
        ]

    @property
    def batches(self) -> list[str]:
        """The batch list in force."""
        return list(self.history[-1]["batches"])


# -- checks -------------------------------------------------------------------------------


def _read_name(payload: Fields, name: str) -> str:
    value = payload.text(name, max_len=MAX_NAME)
    if value != value.strip() or not value.isprintable():
        raise ValidationFailed(
            "a name is printable text without leading or trailing spaces",
            field=payload.field(name),
        )
    return value


def _read_batches(command: Command, payload: Fields, agreement: Agreement) -> list[str]:
    """The batch list: 2..1000 unique names, each a batch registered under ``agreement``."""
    values = payload.items("batches", max_items=MAX_BASELINE_BATCHES)
    if len(values) < MIN_BASELINE_BATCHES:
        raise ValidationFailed(
            f"a baseline lists at least {MIN_BASELINE_BATCHES} batches (control limits need "
            "a moving range); it lists "
            f"{len(values)}",
            field="payload.batches",
        )
    seen: set[str] = set()
    for index, value in enumerate(values):
        field = f"payload.batches[{index}]"
        if not isinstance(value, str) or not BATCH_ID.match(value):
            raise ValidationFailed("expected a batch id such as NWB101-24-001", field=field)
        if value in seen:
            raise ValidationFailed(f"batch {value} is listed twice", field=field)
        seen.add(value)
        batch = command.state.find(batch_subject(value), Batch)
        if batch is None:
            raise NotFound(f"no batch {value}", field=field)
        if batch.agreement != str(agreement.id):
            raise ValidationFailed(
                f"batch {value} was made under another agreement ({batch.agreement})",
                field=field,
            )
    return [str(v) for v in values]


def _baseline_agreement(command: Command, baseline: Baseline) -> Agreement:
    return agreement_in_force(command, UUID(baseline.agreement), field="subject")


# -- rules --------------------------------------------------------------------------------


def _defined_rule(command: Command) -> None:
    payload = command.payload
    agreement_id = payload.uuid("agreement")
    agreement = agreement_in_force(command, agreement_id)
    require_agreement_party(command, agreement)
    parameter_name = _read_name(payload, "parameter")
    parameter = command.state.find(parameter_subject(agreement_id, parameter_name), Parameter)
    if parameter is None:
        raise NotFound(
            f"the agreement has no parameter {parameter_name!r}", field="payload.parameter"
        )
    if parameter.retired_at is not None:
        raise Forbidden(
            f"parameter {parameter_name!r} was retired at {parameter.retired_at}",
            field="payload.parameter",
        )
    name = _read_name(payload, "name")
    if "/" in name:
        raise ValidationFailed("a baseline name holds no '/'", field="payload.name")
    expected = baseline_subject(agreement_id, parameter_name, name)
    if command.envelope.subject != expected:
        raise ValidationFailed(
            f"the subject of baseline {name!r} of {parameter_name!r} must be {expected}",
            field="subject",
        )
    _read_batches(command, payload, agreement)


def _revised_rule(command: Command) -> None:
    baseline: Baseline = command.subject
    agreement = _baseline_agreement(command, baseline)
    require_agreement_party(command, agreement)
    batches = _read_batches(command, command.payload, agreement)
    if batches == baseline.batches:
        raise ValidationFailed(
            "the baseline already lists exactly these batches: change the list",
            field="payload.batches",
        )


def _acknowledged_rule(command: Command) -> None:
    baseline: Baseline = command.subject
    agreement = _baseline_agreement(command, baseline)
    require_agreement_party(command, agreement)
    payload = command.payload
    named = payload.uuid("baseline")
    if named != command.envelope.subject:
        raise ValidationFailed(
            f"payload.baseline must be the envelope's subject ({command.envelope.subject})",
            field="payload.baseline",
        )
    digest = payload.sha256("inputs_digest")
    payload.text("comment", max_len=MAX_COMMENT)
    for earlier in baseline.acknowledgements.get(digest, []):
        if earlier["by"] == command.signer:
            raise ValidationFailed(
                f"{command.signer} already acknowledged this signal at {earlier['at']}",
                field="payload.inputs_digest",
            )


register(
    EventSpec(
        "BaselineDefined",
        Baseline,
        frozenset({"authored"}),
        _defined_rule,
        signers="the agreement's sponsor or CMO (party key); the agreement must be in force",
        description="names the batches whose results set a parameter's CPV control limits "
        "(baseline list version 1)",
    ),
    EventSpec(
        "BaselineRevised",
        Baseline,
        frozenset({"authored"}),
        _revised_rule,
        apply="_revised",
        reason_required=True,
        signers="the agreement's sponsor or CMO (party key)",
        description="replaces the baseline's batch list (a new list version); analyses as of "
        "earlier positions keep the old list",
    ),
    EventSpec(
        "CpvSignalAcknowledged",
        Baseline,
        frozenset({"acknowledged"}),
        _acknowledged_rule,
        apply="_acknowledged",
        signers="the agreement's sponsor or CMO (party key)",
        description="acknowledges the CPV signal of the analysis with this inputs digest "
        "(rule violation or Cpk below the agreement's cpk_threshold)",
    ),
)
