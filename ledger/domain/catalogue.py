"""The event catalogue: every event type, who may sign it, with which meaning, and its rule.

Each aggregate module registers an :class:`EventSpec` per event type. The command path
(``ledger.application``) looks the type up here, so a type that is not registered is
refused before anything else happens.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.domain.commitments import Openings
from ledger.domain.fields import Fields
from ledger.domain.payloads import members
from ledger.domain.validity import effective_time
from ledger.errors import Forbidden, ValidationFailed
from ledger.log.envelope import Envelope, event_hash

if TYPE_CHECKING:
    from ledger.domain.parties import Party

__all__ = [
    "SCHEMA_VERSION",
    "Command",
    "EventSpec",
    "LedgerState",
    "SignedAggregate",
    "lookup",
    "register",
    "registered_types",
]

_A = TypeVar("_A", bound=Aggregate)

SCHEMA_VERSION = 3
"""The catalogue's schema version, recorded beside every new event (R31, ``written_by``).

Bump it, once per release, when an event type is added or removed or a payload's members,
meanings or rules change: events then say which catalogue they were admitted under.
"""


class SignedAggregate(Aggregate):
    """An aggregate whose every event is a signed envelope.

    Each ``@event`` mutator calls :meth:`_track` first, so the aggregate always knows
    the event hash of its last event: the ``prev`` the next envelope must carry.
    """

    @property
    def last_event_hash(self) -> str | None:
        """Event hash (hex) of this subject's last event."""
        return self.__dict__.get("_last_event_hash")

    def _track(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._last_event_hash = event_hash(envelope, signature)


class LedgerState(Protocol):
    """What a rule may read: current aggregates, including those changed earlier in a batch."""

    max_clock_skew: float
    max_key_lifetime_days: int

    @property
    def notary_key_id(self) -> str:
        """The key id of the notary's key."""
        ...

    def find(self, subject: UUID, kind: type[_A]) -> _A | None:
        """The aggregate, or ``None`` when it does not exist (or is of another kind)."""
        ...

    def party(self, party_id: str) -> Party | None:
        """The admitted party, or ``None``."""
        ...


@dataclass(frozen=True, slots=True)
class Command:
    """One envelope on its way in, with everything its rule needs."""

    envelope: Envelope
    signature: str
    recorded_at: str
    now: datetime
    subject: Any
    state: LedgerState
    openings: Openings = field(default_factory=Openings)

    @property
    def payload(self) -> Fields:
        """The payload, read field by field."""
        return Fields(self.envelope.payload)

    @property
    def signer(self) -> str:
        """The signing party's id."""
        return self.envelope.signer

    @property
    def person(self) -> str | None:
        """The person of the signing party who signed, or ``None`` for a party key."""
        return self.envelope.person

    def effective_time(self, not_before: str | None = None) -> datetime:
        """When the approval this command records takes effect (``payload.effective_from``
        checked by :func:`ledger.domain.validity.effective_time`)."""
        return effective_time(
            self.envelope.payload,
            self.now,
            skew=timedelta(seconds=self.state.max_clock_skew),
            reason=self.envelope.reason,
            not_before=not_before,
        )

    def require_signer(self, *allowed: str) -> None:
        """Refuse unless one of ``allowed`` parties signed."""
        if self.signer not in allowed:
            who = " or ".join(allowed)
            raise Forbidden(f"only {who} may sign {self.envelope.type}", field="signer")


Rule = Callable[[Command], None]


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One event type: the aggregate it belongs to and the rules it is held to.

    ``apply`` names the ``@event`` method that records it on an existing aggregate;
    for a creating event (``apply=None``) the aggregate is created with the event class
    named ``type``. ``source_keys`` lets a party's registered source-system keys (a
    historian, a LIMS) sign it; every other event needs a party key. ``person_required``
    events are signed by a person of the party (:mod:`ledger.domain.persons`), never by
    a party key alone.
    """

    type: str
    aggregate: builtins.type[SignedAggregate]
    meanings: frozenset[str]
    rule: Rule
    apply: str | None = None
    reason_required: bool = False
    source_keys: bool = False
    person_required: bool = False
    description: str = ""
    signers: str = ""

    @property
    def required(self) -> tuple[str, ...]:
        """The payload's members, optional ones marked (:mod:`ledger.domain.payloads`)."""
        return members(self.type)

    @property
    def creates(self) -> bool:
        """True for the event that starts a new subject."""
        return self.apply is None

    def check_meaning_and_reason(self, envelope: Envelope) -> None:
        """Part 11 §11.50: the meaning must fit the event; some events need a reason."""
        if envelope.meaning not in self.meanings:
            allowed = ", ".join(sorted(self.meanings))
            raise ValidationFailed(
                f"meaning {envelope.meaning!r} is not allowed for {self.type}; use {allowed}",
                field="meaning",
            )
        if self.reason_required and not envelope.reason:
            raise ValidationFailed(f"{self.type} requires a reason", field="reason")

    def record(self, command: Command) -> SignedAggregate:
        """Trigger the event on the subject (creating it for a creating event)."""
        kwargs = {
            "envelope": command.envelope.signed_copy(),
            "signature": command.signature,
            "recorded_at": command.recorded_at,
        }
        if self.apply is None:
            event_class = getattr(self.aggregate, self.type)
            return self.aggregate._create(event_class, id=command.envelope.subject, **kwargs)
        getattr(command.subject, self.apply)(**kwargs)
        return command.subject  # type: ignore[no-any-return]


_SPECS: dict[str, EventSpec] = {}


def register(*specs: EventSpec) -> None:
    """Add event types to the catalogue (once each)."""
    for spec in specs:
        if spec.type in _SPECS and _SPECS[spec.type] is not spec:
            raise RuntimeError(f"event type {spec.type} registered twice")
        _SPECS[spec.type] = spec


def lookup(event_type: str) -> EventSpec:
    """The spec of ``event_type``; ``VALIDATION_FAILED`` naming ``type`` when unknown."""
    try:
        return _SPECS[event_type]
    except KeyError:
        raise ValidationFailed(f"unknown event type {event_type!r}", field="type") from None


def registered_types() -> Iterable[EventSpec]:
    """Every registered spec, in registration order."""
    return tuple(_SPECS.values())


def catalogue_markdown() -> str:
    """The event catalogue as a Markdown table (``docs/events.md`` is this text)."""
    lines = [
        "# Event catalogue",
        "",
        "Generated from the registered event types (`python -m ledger.domain.registry`);",
        "a test fails when this file and the code differ.",
        "",
        "| type | aggregate | who may sign | meaning | reason | required payload | what it does |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for spec in registered_types():
        lines.append(
            f"| `{spec.type}` | {spec.aggregate.__name__} | {spec.signers} "
            f"| {', '.join(sorted(spec.meanings))} | {'required' if spec.reason_required else '-'} "
            f"| {', '.join(f'`{name}`' for name in spec.required) or '-'} | {spec.description} |"
        )
    return "\n".join(lines) + "\n"
