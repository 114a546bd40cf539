"""Persons who sign for the world's parties: admitted, identity verified, policy accepted.

``ready_person`` gives a person whose signature counts; the steps are separate so a test
can stop before any of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from nacl.signing import SigningKey

from ledger.application import Appended
from ledger.domain.payloads import POLICY_STATEMENT
from ledger.domain.subjects import person_subject
from ledger.keys import encode_public_key
from tests.support.world import Actor, World

__all__ = [
    "SIGNING_MEANINGS",
    "accept_policy",
    "admit_person",
    "person_key",
    "ready_person",
    "verify_identity",
]

#: What the world's persons may sign by default: a sponsor's QA head's authority.
SIGNING_MEANINGS = ("reviewed", "dispositioned", "approved", "rejected", "verified", "revoked")
PRINTED_NAMES = {
    "j.smith": ("Jane Smith", "Head of Quality Assurance"),
    "a.okafor": ("Adaeze Okafor", "QA Specialist"),
    "m.weber": ("Markus Weber", "Qualified Person"),
}


def person_key(party: str, person: str, generation: int = 0) -> SigningKey:
    """A deterministic key the person ``generated on their own machine``."""
    return SigningKey(uuid.uuid5(uuid.NAMESPACE_DNS, f"{person}.{party}.{generation}").bytes * 2)


def admit_person(
    world: World,
    party: str,
    person: str,
    *,
    meanings: Sequence[str] = SIGNING_MEANINGS,
    by: Actor | None = None,
) -> Actor:
    """``party`` admits ``person`` (by its party key unless ``by``); the person's actor."""
    printed_name, job_function = PRINTED_NAMES.get(person, (person.title(), "QA Specialist"))
    key = person_key(party, person)
    (by or world[party]).submit(
        world.ledger,
        "PersonAdmitted",
        person_subject(party, person),
        {
            "party": party,
            "person": person,
            "printed_name": printed_name,
            "job_function": job_function,
            "meanings": list(meanings),
            "public_key": encode_public_key(key),
        },
        meaning="approved",
    )
    return Actor(party, key, person=person)


def verify_identity(
    world: World, person: Actor, *, by: Actor | None = None, document: str = "passport"
) -> Appended:
    """The notary (unless ``by``) verifies the person's identity and current key."""
    assert person.person is not None
    return (by or world.notary).submit(
        world.ledger,
        "IdentityVerified",
        person_subject(person.party_id, person.person),
        {"person": person.person, "document": document, "key": person.key_id},
        meaning="verified",
    )


def accept_policy(world: World, person: Actor) -> Appended:
    """The person signs the signature policy's statement with their own key."""
    assert person.person is not None
    return person.submit(
        world.ledger,
        "SignaturePolicyAccepted",
        person_subject(person.party_id, person.person),
        {"person": person.person, "statement": POLICY_STATEMENT},
        meaning="accepted",
    )


def ready_person(
    world: World, party: str, person: str = "j.smith", meanings: Sequence[str] = SIGNING_MEANINGS
) -> Actor:
    """A person of ``party`` whose signature counts: admitted, verified, policy accepted."""
    actor = admit_person(world, party, person, meanings=meanings)
    verify_identity(world, actor)
    accept_policy(world, actor)
    return actor
