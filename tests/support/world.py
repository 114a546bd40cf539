"""A believable sponsor-CMO world for tests: the parties of docs/world (WORLD.md) and their keys."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import rfc8785
from nacl.signing import SigningKey

from ledger.application import Appended, Ledger
from ledger.domain.commitments import commit_records
from ledger.domain.parties import NOTARY
from ledger.domain.subjects import party_subject
from ledger.keys import encode_public_key, key_id
from ledger.log.envelope import ENVELOPE_DOMAIN
from ledger.timeutil import format_utc, now_utc

ORIGIN = "ledger.test/cmo"

PARTIES: dict[str, tuple[str, str]] = {
    "northwind-bio": ("Northwind Biologics Inc.", "sponsor"),
    "helios-tx": ("Helios Therapeutics Ltd.", "sponsor"),
    "contoso-cmo": ("Contoso Contract Manufacturing GmbH", "cmo"),
    "fabrikam-cmo": ("Fabrikam Biomanufacturing LLC", "cmo"),
    "agency-inspectorate": ("National Medicines Agency, Inspectorate", "regulator"),
    "qa-auditor-llc": ("QA Auditor LLC", "auditor"),
}


def _seed(name: str) -> bytes:
    # Deterministic keys keep failures reproducible across runs.
    return uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.keys.test").bytes * 2


@dataclass
class Actor:
    """A party (or the notary) holding one signing key; with ``person``, a person of the
    party signing with their own key."""

    party_id: str
    key: SigningKey
    keys: dict[str, SigningKey] = field(default_factory=dict)
    person: str | None = None

    @property
    def key_id(self) -> str:
        return key_id(self.key.verify_key)

    @property
    def public_key(self) -> str:
        return encode_public_key(self.key)

    def envelope(
        self,
        type_: str,
        subject: uuid.UUID,
        payload: Mapping[str, Any],
        *,
        version: int,
        prev: str | None,
        meaning: str,
        reason: str | None = None,
        signed_at: datetime | None = None,
        origin: str = ORIGIN,
    ) -> dict[str, Any]:
        envelope: dict[str, Any] = {
            "ledger": origin,
            "type": type_,
            "subject": str(subject),
            "version": version,
            "prev": prev,
            "payload": dict(payload),
            "signer": self.party_id,
            "key": self.key_id,
            "signed_at": format_utc(signed_at or now_utc()),
            "meaning": meaning,
        }
        if reason is not None:
            envelope["reason"] = reason
        if self.person is not None:
            envelope["person"] = self.person
        return envelope

    def sign(self, envelope: Mapping[str, Any]) -> str:
        """Sign exactly these bytes, even a malformed envelope (tests need to)."""
        message = ENVELOPE_DOMAIN + rfc8785.dumps(dict(envelope))
        return base64.b64encode(self.key.sign(message).signature).decode("ascii")

    def prepare(
        self,
        ledger: Ledger,
        type_: str,
        subject: uuid.UUID,
        payload: Mapping[str, Any],
        *,
        meaning: str,
        reason: str | None = None,
        **overrides: Any,
    ) -> tuple[dict[str, Any], str]:
        """An envelope for the subject's next version, signed."""
        version, prev = ledger.next_version(subject)
        envelope = self.envelope(
            type_, subject, payload, version=version, prev=prev, meaning=meaning, reason=reason
        )
        envelope.update(overrides)
        return envelope, self.sign(envelope)

    def submit(
        self,
        ledger: Ledger,
        type_: str,
        subject: uuid.UUID,
        payload: Mapping[str, Any],
        *,
        meaning: str,
        reason: str | None = None,
        openings: list[dict[str, Any]] | None = None,
    ) -> Appended:
        """Sign and append; confidential elements in clear are committed and opened
        beside the envelope unless ``openings`` are given."""
        if openings is None:
            payload, openings = committed_payload(payload)
        envelope, signature = self.prepare(
            ledger, type_, subject, payload, meaning=meaning, reason=reason
        )
        return ledger.append(envelope, signature, openings or None)


@dataclass
class World:
    """The notary and every party of the world, admitted to one ledger."""

    ledger: Ledger
    notary: Actor
    actors: dict[str, Actor]

    def __getitem__(self, party_id: str) -> Actor:
        return self.actors[party_id]

    def admit(self, party_id: str, legal_name: str, role: str) -> Actor:
        actor = Actor(party_id, SigningKey(_seed(party_id)))
        self.notary.submit(
            self.ledger,
            "PartyAdmitted",
            party_subject(party_id),
            {
                "party": party_id,
                "legal_name": legal_name,
                "role": role,
                "public_key": actor.public_key,
            },
            meaning="approved",
        )
        self.actors[party_id] = actor
        return actor

    def add_key(self, party_id: str, key: SigningKey) -> Appended:
        """The party registers another of its keys (``KeyAdded``)."""
        return self[party_id].submit(
            self.ledger,
            "KeyAdded",
            party_subject(party_id),
            {"public_key": encode_public_key(key), "purpose": "party"},
            meaning="authored",
        )


def actor_of(party_id: str) -> Actor:
    """The actor of an admitted world party (its keys are derived from its id)."""
    return Actor(party_id, SigningKey(_seed(party_id)))


def notary_actor() -> Actor:
    return Actor(NOTARY, SigningKey(_seed(NOTARY)))


def build_world(ledger: Ledger, notary: Actor) -> World:
    world = World(ledger, notary, {})
    for party_id, (legal_name, role) in PARTIES.items():
        world.admit(party_id, legal_name, role)
    return world


CONFIDENTIAL_ELEMENTS = ["media_lot_supplier", "shared_equipment_schedule", "other_client_ref"]


def committed_payload(
    payload: Mapping[str, Any],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``payload`` with the confidential elements of its records committed, and their
    openings (as sent beside the envelope)."""
    records = payload.get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return dict(payload), []
    committed, openings = commit_records(records, CONFIDENTIAL_ELEMENTS)
    return {**payload, "records": committed}, [o.as_json() for o in openings]


def agreement_terms(sponsor: str = "northwind-bio", cmo: str = "contoso-cmo") -> dict[str, Any]:
    """Quality-agreement terms as in WORLD.md (Northwind <-> Contoso by default)."""
    product = "NWB-101" if sponsor == "northwind-bio" else "HEL-7"
    return {
        "sponsor": sponsor,
        "cmo": cmo,
        "title": f"Quality agreement {sponsor} / {cmo} for {product}",
        "products": [product],
        "sites": ["contoso-site-a"],
        "data_classes": {
            "continuous": {
                "owner": sponsor,
                "delivery": {"within_hours": 24, "after": "batch_end"},
                "format": {
                    "name": "continuous-csv/v1",
                    "columns": ["tag", "timestamp", "value", "quality"],
                },
            },
            "discrete": {
                "owner": sponsor,
                "delivery": {"within_hours": 72, "after": "batch_end"},
                "format": {
                    "name": "discrete-csv/v1",
                    "columns": ["parameter", "value", "unit", "sampled_at", "method"],
                },
            },
            "event": {
                "owner": sponsor,
                "delivery": {"within_hours": 24, "after": "detection"},
                "format": {
                    "name": "event-csv/v1",
                    "columns": ["kind", "started_at", "ended_at", "severity", "description"],
                },
            },
        },
        "confidential_elements": list(CONFIDENTIAL_ELEMENTS),
        "ip_rule": "negotiated",
        "review_cadence_months": 6,
        "deviation_deadline_hours": 24,
        # Results of parameters not (yet) in the registry are stored, flagged.
        "unregistered": "flag",
    }


FORM_COLUMNS: dict[str, list[str]] = {
    "discrete": ["parameter", "value", "unit", "sampled_at", "method"],
    "event": ["kind", "started_at", "ended_at", "severity", "description"],
    "continuous": ["tag", "timestamp", "value", "quality"],
}


def class_spec(
    owner: str, form: str | None, delivery: Mapping[str, Any], format_name: str
) -> dict[str, Any]:
    """One member of ``data_classes``: ``form`` left out when ``None`` (a default name)."""
    spec: dict[str, Any] = {
        "owner": owner,
        "delivery": dict(delivery),
        "format": {"name": format_name, "columns": list(FORM_COLUMNS[form or "discrete"])},
    }
    if form is not None:
        spec["form"] = form
    return spec


def terms_with_classes(
    classes: Mapping[str, Mapping[str, Any]],
    sponsor: str = "northwind-bio",
    cmo: str = "contoso-cmo",
) -> dict[str, Any]:
    """:func:`agreement_terms` with exactly ``classes`` as its data classes."""
    terms = agreement_terms(sponsor, cmo)
    terms["data_classes"] = {name: dict(spec) for name, spec in classes.items()}
    return terms


def submit_signed_at(
    actor: Actor,
    ledger: Ledger,
    type_: str,
    subject: uuid.UUID,
    payload: Mapping[str, Any],
    *,
    meaning: str,
    signed_at: datetime,
) -> Appended:
    """Sign at ``signed_at`` (a fake clock's time) and append, elements committed."""
    committed, openings = committed_payload(payload)
    version, prev = ledger.next_version(subject)
    envelope = actor.envelope(
        type_, subject, committed, version=version, prev=prev, meaning=meaning, signed_at=signed_at
    )
    return ledger.append(envelope, actor.sign(envelope), openings or None)
