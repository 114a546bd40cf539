"""The access model of the data queries (``docs/access.md``), as pure rules over an
:class:`Authority`.

An :class:`Authority` is what the views say about one caller at one log position: the
agreements it is a party to or holds a grant under (with each data class's owner) and
the grants it holds. Whether a grant is *active* is decided at the moment of the check
(``now``, RFC 3339 UTC text), never at the position a query reads: a grant valid in
March does not open March data in May unless it is still valid.

* Agreements, and their parameters, reviews, deliveries and grants: the sponsor and the
  CMO, and a party holding an active grant under the agreement.
* Enhancement claims, their commitments and disclosed dossiers (and their events): the
  sponsor and the CMO, and an active grantee whose grant names ``enhancements``.
* Batches: the sponsor and the CMO, and an active grantee whose grant opens the batch.
* Data of a class: the class's owner and the CMO, and an active grantee whose grant
  (without ``include_confidential``) covers the class, parameter, batch and data time.
* Confidential elements: the CMO, and an active grantee whose ``include_confidential``
  grant, signed by the CMO, covers the item.
* Events: see :meth:`Authority.event_scope` (metadata) and :func:`event_readable`
  (the signed envelope, which carries the data itself). A confidential element signed as
  a commitment does not withhold its envelope; one signed in clear (before commitments)
  does, from anyone who may not see it.

Whether one grant covers an item and is open is :mod:`ledger.domain.scope`'s to say.
Loading an authority and the per-context cache are in :mod:`api.access`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.domain.commitments import committed
from ledger.domain.reads import READS_RECORDED
from ledger.domain.scope import DataItem, GrantScope
from ledger.errors import Forbidden
from projections.times import utc

__all__ = [
    "CONFIDENTIAL_FREE_MEMBERS",
    "PARTY_EVENTS",
    "AgreementRoles",
    "Authority",
    "EventScope",
    "SubjectFacts",
    "event_readable",
    "forbidden",
    "merge_windows",
    "record_item",
]

PARTY_EVENTS = frozenset(
    {
        "PartyAdmitted",
        "KeyAdded",
        "KeyRevoked",
        # Who signs for a party, and with which keys, is everyone's to check (R5, R7).
        "PersonAdmitted",
        "IdentityVerified",
        "SignaturePolicyAccepted",
        "PersonKeyAdded",
        "PersonKeyRevoked",
    }
)
SECURITY_ALERT = "SecurityAlert"
GRANT_EVENTS = frozenset({"AccessGranted", "AccessRevoked"})
# A batch's review and disposition carry no data of the batch's: whoever sees the batch
# reads them (R13).
BATCH_EVENTS = frozenset(
    {"BatchRegistered", "BatchEnded", "AuditTrailReviewed", "BatchDispositioned"}
)
ENHANCEMENT_EVENTS = frozenset(
    {
        "EnhancementClaimed",
        "EnhancementAcknowledged",
        "EnhancementDisputed",
        "EnhancementResolved",
        "EnhancementDisclosed",
    }
)
#: Record members that are never confidential: the id and the columns of WORLD.md's formats.
CONFIDENTIAL_FREE_MEMBERS = frozenset(
    {
        "id",
        "parameter",
        "value",
        "unit",
        "sampled_at",
        "method",
        "kind",
        "started_at",
        "ended_at",
        "severity",
        "description",
    }
)


def forbidden(message: str, field: str | None = None) -> Forbidden:
    """A ``FORBIDDEN`` refusal naming what was refused."""
    return Forbidden(message, field=field)


@dataclass(frozen=True, slots=True)
class AgreementRoles:
    """An agreement's sponsor and CMO, the owner of each data class (terms in force; a
    retired class keeps its last owner) and each class's form."""

    id: str
    sponsor: str
    cmo: str
    owners: Mapping[str, str] = field(default_factory=dict)
    forms: Mapping[str, str] = field(default_factory=dict)

    def form_of(self, data_class: str) -> str:
        """The class's form (a class the views do not know is taken in its name's form)."""
        return self.forms.get(data_class, data_class)

    def is_party(self, party: str) -> bool:
        """True for the sponsor and the CMO."""
        return party in (self.sponsor, self.cmo)


@dataclass(frozen=True, slots=True)
class EventScope:
    """Which events' metadata a caller may read, as sets the audit query turns into SQL.

    ``agreements``: every event of these; ``batches``: the events of these agreements
    outside batches plus those of the listed batches; ``grants``: the caller's own
    grants' events; party events are everyone's.
    """

    everything: bool
    agreements: frozenset[str]
    batches: Mapping[str, frozenset[str]]
    grants: frozenset[str]

    def admits(
        self, event_type: str, subject: str, agreement: str | None, batch: str | None
    ) -> bool:
        """Whether an event with this audit context is in scope."""
        if self.everything or subject in self.grants:
            return True
        if agreement is None:
            return event_type in PARTY_EVENTS
        if agreement in self.agreements:
            return True
        opened = self.batches.get(agreement)
        return opened is not None and (batch is None or batch in opened)


@dataclass(frozen=True)
class Authority:
    """What one caller may read, per the views at ``position``."""

    party: str
    role: str
    position: int
    agreements: Mapping[str, AgreementRoles]
    grants: tuple[GrantScope, ...] = ()
    notary: bool = False

    def roles(self, agreement: str) -> AgreementRoles | None:
        """The agreement's roles, when the caller has any relation to it."""
        return self.agreements.get(agreement)

    def is_party(self, agreement: str) -> bool:
        """The caller is the agreement's sponsor or CMO."""
        roles = self.agreements.get(agreement)
        return roles is not None and roles.is_party(self.party)

    def active_grants(self, agreement: str, now: str) -> list[GrantScope]:
        """The caller's grants under ``agreement`` that are open at ``now``."""
        return [g for g in self.grants if g.agreement == agreement and g.is_active_at(now)]

    def sees_agreement(self, agreement: str, now: str) -> bool:
        """Sponsor, CMO, or an active grantee under the agreement."""
        return self.is_party(agreement) or bool(self.active_grants(agreement, now))

    def sees_enhancements(self, agreement: str, now: str) -> bool:
        """Sponsor, CMO, or an active grantee whose grant names ``enhancements``: claims,
        their commitments and disclosed dossiers are confidential to the agreement."""
        return self.is_party(agreement) or any(
            g.enhancements for g in self.active_grants(agreement, now)
        )

    def visible_agreements(self, now: str) -> list[str]:
        """Every agreement the caller may see at ``now``, sorted."""
        return sorted(a for a in self.agreements if self.sees_agreement(a, now))

    def sees_batch(self, agreement: str, batch: str, now: str) -> bool:
        """Sponsor, CMO, or an active grantee whose grant opens the batch."""
        if self.is_party(agreement):
            return True
        return any(g.opens_batch(batch) for g in self.active_grants(agreement, now))

    def form_of(self, agreement: str, data_class: str) -> str:
        """The form of ``data_class`` under ``agreement`` (:mod:`ledger.domain.data_classes`)."""
        roles = self.agreements.get(agreement)
        return data_class if roles is None else roles.form_of(data_class)

    def owns(self, item: DataItem) -> bool:
        """The caller owns the item's class under the agreement, or is its CMO."""
        roles = self.agreements.get(item.agreement)
        if roles is None:
            return False
        return self.party == roles.cmo or roles.owners.get(item.data_class) == self.party

    def data_grants(self, item: DataItem, now: str) -> list[GrantScope]:
        """Active grants that open data (not only confidential elements) of the item's kind,
        whatever their parameter and window restrictions."""
        return [
            g
            for g in self.active_grants(item.agreement, now)
            if not g.include_confidential
            and item.data_class in g.data_classes
            and g.opens_batch(item.batch)
        ]

    def sees_data(self, item: DataItem, now: str) -> bool:
        """Owner or CMO, or an active data grant covering the item."""
        return self.owns(item) or any(g.covers(item) for g in self.data_grants(item, now))

    def sees_confidential(self, item: DataItem, now: str) -> bool:
        """The CMO, or an active ``include_confidential`` grant by the CMO covering the item."""
        roles = self.agreements.get(item.agreement)
        if roles is None:
            return False
        if self.party == roles.cmo:
            return True
        return any(
            g.include_confidential and g.grantor == roles.cmo and g.covers(item)
            for g in self.active_grants(item.agreement, now)
        )

    def series_refusal(
        self, item: DataItem, start: str | None, end: str | None, now: str
    ) -> str | None:
        """Why the points of ``item`` (continuous; ``parameter`` = tag) from ``start`` to
        ``end`` (inclusive; None = open) are refused, or None when they may be read."""
        if self.owns(item):
            return None
        grants = [
            g
            for g in self.data_grants(item, now)
            if not g.parameters or item.parameter in g.parameters
        ]
        if not grants:
            return f"no active grant of yours opens {item.parameter} of batch {item.batch}"
        windows = [(g.window_from, g.window_until) for g in grants]
        if any(w == (None, None) for w in windows):
            return None
        for low, high in merge_windows(windows):
            if (low is None or (start is not None and start >= low)) and (
                high is None or (end is not None and end < high)
            ):
                return None
        allowed = "; ".join(
            f"from {lo or '-'} until {hi or '-'}" for lo, hi in merge_windows(windows)
        )
        return (
            f"your grants open {item.parameter} of batch {item.batch} only for data {allowed}: "
            "ask with from and to inside it"
        )

    def event_scope(self, now: str) -> EventScope:
        """The events whose metadata the caller may read at ``now``."""
        agreements: set[str] = set()
        batches: dict[str, frozenset[str]] = {}
        for agreement in self.agreements:
            if self.is_party(agreement):
                agreements.add(agreement)
                continue
            active = self.active_grants(agreement, now)
            if any(not g.batches for g in active):
                agreements.add(agreement)
            elif active:
                batches[agreement] = frozenset(b for g in active for b in g.batches)
        return EventScope(
            everything=self.notary,
            agreements=frozenset(agreements),
            batches=batches,
            grants=frozenset(g.id for g in self.grants),
        )


def merge_windows(
    windows: Iterable[tuple[str | None, str | None]],
) -> list[tuple[str | None, str | None]]:
    """Windows ``[from, until)`` (None = open) merged where they touch or overlap."""
    ordered = sorted(windows, key=lambda w: (w[0] is not None, w[0] or ""))
    merged: list[tuple[str | None, str | None]] = []
    for low, high in ordered:
        if merged:
            last_low, last_high = merged[-1]
            if last_high is None or (low is not None and low <= last_high):
                top = None if last_high is None or high is None else max(last_high, high)
                merged[-1] = (last_low, top)
                continue
        merged.append((low, high))
    return merged


class SubjectFacts:
    """What the event rules look up beyond an event itself (implemented over the views)."""

    def context(self, subject: str) -> tuple[str | None, str | None]:
        """``(agreement, batch)`` of a subject, from its first event."""
        raise NotImplementedError

    def record(self, batch: str, record_id: str) -> DataItem | None:
        """The latest version of a record as a data item."""
        raise NotImplementedError

    def chunk_class(self, batch: str, digest: str) -> str | None:
        """The data class of a stored chunk, or ``None``."""
        raise NotImplementedError


def event_readable(
    authority: Authority, envelope: Mapping[str, Any], facts: SubjectFacts, now: str
) -> bool:
    """Whether the caller may read this signed envelope in full (it carries the data)."""
    if authority.notary:
        return True
    event_type = str(envelope["type"])
    if event_type in PARTY_EVENTS:
        return True
    if event_type == SECURITY_ALERT:  # R9: the party concerned (and the notary, above)
        return bool(envelope["payload"].get("identity") == authority.party)
    if event_type == READS_RECORDED:  # R11: row ids, a count and a root: nobody's data
        return True
    subject = str(envelope["subject"])
    if event_type in GRANT_EVENTS and subject in {g.id for g in authority.grants}:
        return True
    agreement, batch = facts.context(subject)
    if agreement is None:
        agreement = _named_agreement(envelope)
        if agreement is None:
            return False
    if batch is None and event_type == "BatchRegistered":
        batch = str(envelope["payload"].get("batch"))
    if event_type in ENHANCEMENT_EVENTS:
        return authority.sees_enhancements(agreement, now)
    if batch is None:
        return authority.sees_agreement(agreement, now)
    if not authority.sees_batch(agreement, batch, now):
        return False
    return _batch_event_readable(authority, envelope, agreement, batch, facts, now)


def _named_agreement(envelope: Mapping[str, Any]) -> str | None:
    if envelope["type"] == "AgreementProposed":
        return str(envelope["subject"])
    named = envelope["payload"].get("agreement")
    return named if isinstance(named, str) else None


def _batch_event_readable(
    authority: Authority,
    envelope: Mapping[str, Any],
    agreement: str,
    batch: str,
    facts: SubjectFacts,
    now: str,
) -> bool:
    event_type = envelope["type"]
    payload: Mapping[str, Any] = envelope["payload"]
    if event_type in BATCH_EVENTS:
        return True
    if event_type == "DataAcknowledged":
        items = [facts.record(batch, str(rid)) for rid in payload.get("records", ())]
        return all(i is not None and authority.sees_data(i, now) for i in items)
    if event_type not in ("DataSubmitted", "DataCorrected"):
        return False
    if "series" in payload:
        data_class = payload.get("kind")
        if data_class is None:  # a correction: the class of the chunks it supersedes
            data_class = facts.chunk_class(batch, str(payload["supersedes_chunks"][0]))
            if data_class is None:
                return False
        return _series_readable(
            authority, agreement, batch, str(data_class), payload["series"], now
        )
    data_class = payload.get("kind")
    if data_class is None:  # a correction: the class of the records it supersedes
        first = facts.record(batch, str(payload["supersedes"][0]))
        if first is None:
            return False
        data_class = first.data_class
    form = authority.form_of(agreement, str(data_class))
    return _records_readable(
        authority, agreement, batch, (str(data_class), form), payload["records"], now
    )


def _series_readable(
    authority: Authority,
    agreement: str,
    batch: str,
    data_class: str,
    series: Sequence[Any],
    now: str,
) -> bool:
    for entry in series:
        item = DataItem(agreement, data_class, batch, str(entry["tag"]))
        for chunk in entry["chunks"]:
            if authority.series_refusal(item, chunk["start"], chunk["end"], now) is not None:
                return False
    return True


def _records_readable(
    authority: Authority,
    agreement: str,
    batch: str,
    kind: tuple[str, str],
    records: Sequence[Mapping[str, Any]],
    now: str,
) -> bool:
    for record in records:
        item = record_item(agreement, kind, batch, record)
        if not authority.sees_data(item, now):
            return False
        # A committed element shows only its commitment: the envelope stays readable.
        secret = any(
            member not in CONFIDENTIAL_FREE_MEMBERS and committed(value) is None
            for member, value in record.items()
        )
        if secret and not authority.sees_confidential(item, now):
            return False
    return True


def record_item(
    agreement: str, kind: tuple[str, str], batch: str, record: Mapping[str, Any]
) -> DataItem:
    """The data item of a record as submitted, of ``kind`` = (class, form): its data time
    is ``sampled_at`` for the discrete form, ``started_at`` for the event form."""
    data_class, form = kind
    stamp = record.get("sampled_at") if form == "discrete" else record.get("started_at")
    parameter = record.get("parameter") if form == "discrete" else None
    return DataItem(
        agreement,
        data_class,
        batch,
        None if parameter is None else str(parameter),
        None if not isinstance(stamp, str) else utc(stamp),
    )
