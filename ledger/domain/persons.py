"""Persons who sign for a party (21 CFR Part 11: R4, R5, R7): ``PersonAdmitted``,
``IdentityVerified``, ``SignaturePolicyAccepted``, ``PersonKeyAdded``, ``PersonKeyRevoked``.

A party's signature is an organisation's; an electronic signature under Part 11 is a
person's. A party admits each person who signs for it, with the key the person generated
on their own machine and the signature meanings the party authorises them to sign with.
A person's subject id is derived from the party and person ids
(:func:`~ledger.domain.subjects.person_subject`), so a person id, once admitted, is
never admitted again within that party (§11.100(a): never reused, never reassigned).

Before a person's signature counts, two things are recorded (§11.100(b), (c)): someone
checked their identity (the notary, or another person of the party whose own identity
was verified and who accepted the policy), and the person signed
:data:`~ledger.domain.payloads.POLICY_STATEMENT`, word for word, with their own key.

An envelope names the person in its member ``person``, beside ``signer`` (the party) and
``key`` (then a key of the person). The command path checks it with
:func:`signing_key` and :func:`check_authority`: the person is one the signing party
admitted, the key is theirs and valid at ``signed_at``, their identity is verified and
the policy accepted (except to accept it), and the envelope's meaning is one the party
authorised them to sign with (except for events about themselves: accepting the policy,
adding or revoking their own key). Event types marked ``person_required`` (the sponsor's
audit-trail review and disposition) are refused without a person; a party key still
signs everything else (systems, the party's administrative events).

Payloads::

    PersonAdmitted           party (the signer), person (id), printed_name, job_function,
                             meanings (each a meaning of the catalogue), public_key
    IdentityVerified         person, document (what was checked, e.g. "passport"; at most
                             MAX_DOCUMENT characters, never the document itself), key
                             (the key id the person showed they hold: a current key)
    SignaturePolicyAccepted  person, statement (exactly POLICY_STATEMENT); the person signs
    PersonKeyAdded           public_key; the person signs, with a current key
    PersonKeyRevoked         key, compromised_since (optional); the person, the party or
                             the notary signs; envelope reason required
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate, event

from ledger.domain.catalogue import (
    Command,
    EventSpec,
    LedgerState,
    SignedAggregate,
    register,
    registered_types,
)
from ledger.domain.key_history import KeyHistory, KeyRecord
from ledger.domain.parties import NOTARY, check_revocation
from ledger.domain.payloads import MAX_DOCUMENT, POLICY_STATEMENT
from ledger.domain.subjects import person_subject
from ledger.errors import Forbidden, UnknownSigner, ValidationFailed
from ledger.keys import decode_public_key, key_id
from ledger.log.envelope import PERSON_ID, Envelope

__all__ = [
    "MAX_DOCUMENT",
    "POLICY_ACCEPTED",
    "POLICY_STATEMENT",
    "Person",
    "check_authority",
    "signing_key",
]

POLICY_ACCEPTED = "SignaturePolicyAccepted"
"""The one event a person signs before their signature counts."""


class Person(SignedAggregate):
    """A person of a party: who they are, what they may sign, their keys, and whether
    their identity was verified and the signature policy accepted."""

    TOPIC = "cmo.Person.v1"

    class Created(Aggregate.Created):
        TOPIC = "cmo.Person.Created.v1"

    @event("PersonAdmitted", topic="cmo.PersonAdmitted.v1")
    def __init__(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        payload = envelope["payload"]
        self.party_id: str = payload["party"]
        self.person_id: str = payload["person"]
        self.printed_name: str = payload["printed_name"]
        self.job_function: str = payload["job_function"]
        self.meanings: list[str] = list(payload["meanings"])
        self.keys: dict[str, KeyRecord] = {}
        self.identity_verified: dict[str, Any] | None = None
        self.policy_accepted: dict[str, Any] | None = None
        self.key_history.add(payload["public_key"], recorded_at, purpose="person")

    @event("IdentityVerified", topic="cmo.IdentityVerified.v1")
    def _identity_verified(
        self, envelope: dict[str, Any], signature: str, recorded_at: str
    ) -> None:
        self._track(envelope, signature, recorded_at)
        payload = envelope["payload"]
        self.identity_verified = {
            "by": envelope["signer"],
            "by_person": envelope.get("person"),
            "at": recorded_at,
            "document": payload["document"],
            "key": payload["key"],
        }

    @event("SignaturePolicyAccepted", topic="cmo.SignaturePolicyAccepted.v1")
    def _policy_accepted(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        self.policy_accepted = {"at": recorded_at, "statement": envelope["payload"]["statement"]}

    @event("PersonKeyAdded", topic="cmo.PersonKeyAdded.v1")
    def _key_added(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        self.key_history.add(envelope["payload"]["public_key"], recorded_at, purpose="person")

    @event("PersonKeyRevoked", topic="cmo.PersonKeyRevoked.v1")
    def _key_revoked(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        self.key_history.apply("KeyRevoked", envelope["payload"], recorded_at)

    @property
    def name(self) -> str:
        """How messages name the person: ``j.smith of northwind-bio``."""
        return f"{self.person_id} of {self.party_id}"

    @property
    def key_history(self) -> KeyHistory:
        """The person's keys through time (read and written in :attr:`keys`)."""
        return KeyHistory(f"person {self.name}", self.keys)

    @property
    def may_sign(self) -> bool:
        """Identity verified and the signature policy accepted."""
        return self.identity_verified is not None and self.policy_accepted is not None


def _person(state: LedgerState, party: str, person: str) -> Person:
    found = state.find(person_subject(party, person), Person)
    if found is None:
        raise UnknownSigner(f"{person} is not a person admitted by {party}", field="person")
    return found


def signing_key(state: LedgerState, envelope: Envelope, person_id: str, skew: float) -> str:
    """The public key text the envelope's person (``person_id``) signed with: a key of a
    person the signing party admitted, valid at ``signed_at`` (refused as a party key
    would be)."""
    person = _person(state, envelope.signer, person_id)
    return person.key_history.key_for_new_signature(envelope.key, envelope.signed_at, skew)


def check_authority(state: LedgerState, envelope: Envelope, person_id: str) -> None:
    """Refuse the signature of the envelope's person (``person_id``) if their identity is
    not verified or they have not accepted the policy, or if they sign with a meaning the
    party did not authorise them to."""
    person = _person(state, envelope.signer, person_id)
    if envelope.type != POLICY_ACCEPTED:
        if person.identity_verified is None:
            raise Forbidden(
                f"the identity of {person.name} is not verified: the notary or a verified "
                f"person of {person.party_id} records IdentityVerified first",
                field="person",
            )
        if person.policy_accepted is None:
            raise Forbidden(
                f"{person.name} has not accepted the signature policy: sign "
                f"{POLICY_ACCEPTED} first",
                field="person",
            )
    # Events about the person themselves need no authority of the party's.
    if envelope.subject != person.id and envelope.meaning not in person.meanings:
        allowed = ", ".join(person.meanings)
        raise Forbidden(
            f"{person.name} may sign with the meanings {allowed}, not {envelope.meaning!r}: "
            f"{person.party_id} grants others in a new PersonAdmitted",
            field="meaning",
        )


def _catalogue_meanings() -> frozenset[str]:
    return frozenset(meaning for spec in registered_types() for meaning in spec.meanings)


def _admitted_rule(command: Command) -> None:
    payload = command.payload
    party = payload.text("party", max_len=63)
    command.require_signer(party)
    person = payload.text("person", max_len=63)
    if not PERSON_ID.match(person):
        raise ValidationFailed(
            "person ids are lowercase letters, digits, '.', '_' and '-', 1-63 long, e.g. j.smith",
            field="payload.person",
        )
    payload.text("printed_name")
    payload.text("job_function")
    _check_meanings(payload.texts("meanings", max_items=50))
    public_key = decode_public_key(payload.raw("public_key"), field="payload.public_key")
    signer = command.state.party(party)
    if signer is not None and key_id(public_key) in signer.keys:
        raise ValidationFailed(
            f"the key is a key of {party}: a person signs with a key of their own",
            field="payload.public_key",
        )
    if command.envelope.subject != person_subject(party, person):
        raise ValidationFailed(
            f"a person's subject must be {person_subject(party, person)}", field="subject"
        )


def _check_meanings(meanings: list[str]) -> None:
    known = _catalogue_meanings()
    if not meanings:
        raise ValidationFailed("name at least one meaning", field="payload.meanings")
    for index, meaning in enumerate(meanings):
        if meaning not in known:
            raise ValidationFailed(
                f"{meaning!r} is not a signature meaning of this ledger; use "
                f"{', '.join(sorted(known))}",
                field=f"payload.meanings[{index}]",
            )
        if meaning in meanings[:index]:
            raise ValidationFailed(
                f"{meaning!r} is named twice", field=f"payload.meanings[{index}]"
            )


def _named(command: Command, person: Person) -> None:
    if command.payload.text("person", max_len=63) != person.person_id:
        raise ValidationFailed(
            f"payload.person must name the subject's person ({person.person_id})",
            field="payload.person",
        )


def _verified_rule(command: Command) -> None:
    person: Person = command.subject
    _named(command, person)
    if command.signer != NOTARY:
        command.require_signer(person.party_id, NOTARY)
        if command.person is None:
            raise Forbidden(
                f"the notary or a verified person of {person.party_id} verifies an identity, "
                "not a party key: name the verifying person",
                field="person",
            )
        if command.person == person.person_id:
            raise Forbidden(
                f"{person.name} cannot verify their own identity: the notary or another "
                f"verified person of {person.party_id} does",
                field="person",
            )
    payload = command.payload
    payload.text("document", max_len=MAX_DOCUMENT)
    kid = payload.text("key", max_len=32)
    record = person.keys.get(kid)
    if record is None or record["revoked_at"] is not None:
        current = ", ".join(k for k, r in person.keys.items() if r["revoked_at"] is None)
        raise ValidationFailed(
            f"{kid} is not a current key of {person.name} (current: {current or 'none'})",
            field="payload.key",
        )


def _policy_rule(command: Command) -> None:
    person: Person = command.subject
    _require_the_person(command, person, POLICY_ACCEPTED)
    _named(command, person)
    if command.payload.text("statement", max_len=1000) != POLICY_STATEMENT:
        raise ValidationFailed(
            f"the statement must be exactly: {POLICY_STATEMENT}", field="payload.statement"
        )
    if person.policy_accepted is not None:
        raise Forbidden(
            f"{person.name} accepted the signature policy at {person.policy_accepted['at']}",
            field="subject",
        )


def _require_the_person(command: Command, person: Person, what: str) -> None:
    command.require_signer(person.party_id)
    if command.person != person.person_id:
        raise Forbidden(f"only {person.name} signs {what}, with their own key", field="person")


def _key_added_rule(command: Command) -> None:
    person: Person = command.subject
    _require_the_person(command, person, "PersonKeyAdded")
    public_key = decode_public_key(command.payload.raw("public_key"), field="payload.public_key")
    if key_id(public_key) in person.keys:
        raise ValidationFailed("key is already registered", field="payload.public_key")


def _key_revoked_rule(command: Command) -> None:
    person: Person = command.subject
    command.require_signer(person.party_id, NOTARY)
    check_revocation(command, person.keys, person.name)


register(
    EventSpec(
        "PersonAdmitted",
        Person,
        frozenset({"approved"}),
        _admitted_rule,
        signers="the party (a party key, or a person of the party)",
        description="admits a person who signs for the party: printed name, job function, "
        "the meanings they may sign with, and their own key (R4, R7)",
    ),
    EventSpec(
        "IdentityVerified",
        Person,
        frozenset({"verified"}),
        _verified_rule,
        apply="_identity_verified",
        signers="the notary, or another verified person of the same party",
        description="records that the person's identity was checked (which document) "
        "and that they hold a current key (R7)",
    ),
    EventSpec(
        POLICY_ACCEPTED,
        Person,
        frozenset({"accepted"}),
        _policy_rule,
        apply="_policy_accepted",
        signers="the person, with their own key",
        description="the person's statement that their electronic signature is the legally "
        "binding equivalent of their handwritten signature (R7, 21 CFR 11.100(c))",
    ),
    EventSpec(
        "PersonKeyAdded",
        Person,
        frozenset({"authored"}),
        _key_added_rule,
        apply="_key_added",
        signers="the person, with a current key",
        description="adds a key of the person",
    ),
    EventSpec(
        "PersonKeyRevoked",
        Person,
        frozenset({"revoked"}),
        _key_revoked_rule,
        apply="_key_revoked",
        reason_required=True,
        signers="the person, the party or the notary",
        description="revokes a key of the person; signatures at or after compromised_since "
        "are flagged",
    ),
)
