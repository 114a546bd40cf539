"""Persons who sign (21 CFR Part 11, R4, R5, R7, R8): a party admits its persons, someone
else verifies each one's identity, each accepts the signature policy with their own key,
and only then does their signature count, for the meanings the party authorised.

Every refusal is checked for its code and field, and that nothing was stored.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from nacl.signing import SigningKey

from ledger.domain.payloads import POLICY_STATEMENT
from ledger.domain.persons import Person
from ledger.domain.subjects import person_subject
from ledger.errors import (
    Forbidden,
    KeyRevoked,
    UnknownSigner,
    ValidationFailed,
    VersionConflict,
)
from ledger.keys import encode_public_key, key_id
from ledger.log.verify import verify_ledger
from ledger.timeutil import format_utc, now_utc
from tests.support.agreements import refused
from tests.support.persons import (
    accept_policy,
    admit_person,
    person_key,
    ready_person,
    verify_identity,
)
from tests.support.world import Actor, World

SPONSOR, CMO = "northwind-bio", "contoso-cmo"


def _person(world: World, party: str = SPONSOR, person: str = "j.smith") -> Person:
    found = world.ledger.get_aggregate(person_subject(party, person), Person)
    assert found is not None
    return found


def _admit_payload(person: str = "j.smith", **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "party": SPONSOR,
        "person": person,
        "printed_name": "Jane Smith",
        "job_function": "Head of Quality Assurance",
        "meanings": ["reviewed", "dispositioned"],
        "public_key": encode_public_key(person_key(SPONSOR, person)),
    }
    payload.update(overrides)
    return payload


def _admit(world: World, by: Actor, person: str = "j.smith", **overrides: Any) -> None:
    by.submit(
        world.ledger,
        "PersonAdmitted",
        person_subject(SPONSOR, person),
        _admit_payload(person, **overrides),
        meaning="approved",
    )


def _admit_another(world: World, by: Actor) -> None:
    """A signature that needs the signer's authority: ``by`` admits a.okafor."""
    _admit(world, by, "a.okafor", printed_name="Adaeze Okafor", job_function="QA Specialist")


# -- admission ---------------------------------------------------------------------------


def test_r7_a_party_admits_a_person_with_name_function_meanings_and_own_key(world: World):
    person = admit_person(world, SPONSOR, "j.smith", meanings=["reviewed", "dispositioned"])
    admitted = _person(world)
    assert (admitted.printed_name, admitted.job_function) == (
        "Jane Smith",
        "Head of Quality Assurance",
    )
    assert admitted.meanings == ["reviewed", "dispositioned"]
    assert list(admitted.keys) == [person.key_id]
    assert not admitted.may_sign


def test_r7_person_id_is_never_reused(world: World):
    admit_person(world, SPONSOR, "j.smith")
    other_key = encode_public_key(SigningKey.generate())
    with refused(world, VersionConflict, "version"):
        _admit(world, world[SPONSOR], printed_name="John Smith", public_key=other_key)
    assert _person(world).printed_name == "Jane Smith"


def test_r7_only_the_party_itself_admits_its_persons(world: World):
    with refused(world, Forbidden, "signer"):
        _admit(world, world[CMO])
    with refused(world, Forbidden, "signer"):
        _admit(world, world.notary)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"person": "J Smith"}, "payload.person"),
        ({"meanings": []}, "payload.meanings"),
        ({"meanings": ["reviewed", "blessed"]}, "payload.meanings[1]"),
        ({"meanings": ["reviewed", "reviewed"]}, "payload.meanings[1]"),
        ({"printed_name": ""}, "payload.printed_name"),
        ({"public_key": "not-a-key"}, "payload.public_key"),
        ({"party": CMO}, "signer"),
    ],
)
def test_r7_a_malformed_admission_is_refused(
    world: World, overrides: dict[str, Any], field: str
) -> None:
    person = overrides.get("person", "j.smith")
    with refused(world, ValidationFailed if field != "signer" else Forbidden, field):
        world[SPONSOR].submit(
            world.ledger,
            "PersonAdmitted",
            person_subject(SPONSOR, person),
            _admit_payload(**overrides),
            meaning="approved",
        )


def test_r7_a_person_signs_with_their_own_key_not_the_party_s(world: World):
    with refused(world, ValidationFailed, "payload.public_key"):
        _admit(world, world[SPONSOR], public_key=world[SPONSOR].public_key)


# -- who may sign as a person -----------------------------------------------------------


def test_r7_person_not_admitted_cannot_sign(world: World):
    stranger = Actor(SPONSOR, person_key(SPONSOR, "x.nobody"), person="x.nobody")
    with refused(world, UnknownSigner, "person"):
        _admit_another(world, stranger)


def test_r7_person_cannot_sign_for_another_party(world: World):
    ready_person(world, CMO, "m.weber")
    posing = Actor(SPONSOR, person_key(CMO, "m.weber"), person="m.weber")
    with refused(world, UnknownSigner, "person"):
        _admit_another(world, posing)


def test_r7_a_person_signs_only_with_their_own_key(world: World):
    person = ready_person(world, SPONSOR)
    with_party_key = Actor(SPONSOR, world[SPONSOR].key, person=person.person)
    with refused(world, UnknownSigner, "key"):
        _admit_another(world, with_party_key)


def test_r7_signing_before_identity_verification_is_refused(world: World):
    person = admit_person(world, SPONSOR, "j.smith")
    accept_policy(world, person)
    with refused(world, Forbidden, "person"):
        _admit_another(world, person)


def test_r7_signing_before_policy_acceptance_is_refused(world: World):
    person = admit_person(world, SPONSOR, "j.smith")
    verify_identity(world, person)
    with refused(world, Forbidden, "person"):
        _admit_another(world, person)
    accept_policy(world, person)
    _admit_another(world, person)
    assert _person(world, person="a.okafor").printed_name == "Adaeze Okafor"


def test_r7_the_policy_statement_must_be_exactly_the_policy(world: World):
    person = admit_person(world, SPONSOR, "j.smith")
    subject = person_subject(SPONSOR, "j.smith")
    for statement in ("I agree.", POLICY_STATEMENT.rstrip(".")):
        payload = {"person": "j.smith", "statement": statement}
        with refused(world, ValidationFailed, "payload.statement"):
            person.submit(
                world.ledger, "SignaturePolicyAccepted", subject, payload, meaning="accepted"
            )


def test_r7_only_the_person_accepts_the_policy(world: World):
    admit_person(world, SPONSOR, "j.smith")
    payload = {"person": "j.smith", "statement": POLICY_STATEMENT}
    with refused(world, Forbidden, "person"):
        world[SPONSOR].submit(
            world.ledger,
            "SignaturePolicyAccepted",
            person_subject(SPONSOR, "j.smith"),
            payload,
            meaning="accepted",
        )


# -- identity verification ---------------------------------------------------------------


def test_r7_identity_cannot_be_verified_by_the_person_themselves(world: World):
    person = admit_person(world, SPONSOR, "j.smith")
    accept_policy(world, person)
    with refused(world, Forbidden, "person"):
        verify_identity(world, person, by=person)


def test_r7_a_verified_colleague_verifies_an_identity_but_a_party_key_does_not(world: World):
    colleague = ready_person(world, SPONSOR, "a.okafor")
    person = admit_person(world, SPONSOR, "j.smith")
    with refused(world, Forbidden, "person"):
        verify_identity(world, person, by=world[SPONSOR])
    outsider = ready_person(world, CMO, "m.weber")
    with refused(world, Forbidden, "signer"):
        verify_identity(world, person, by=outsider)
    verify_identity(world, person, by=colleague, document="national identity card")
    verified = _person(world).identity_verified
    assert verified is not None
    assert (verified["by"], verified["by_person"]) == (SPONSOR, "a.okafor")


def test_r7_an_unverified_colleague_cannot_verify_an_identity(world: World):
    colleague = admit_person(world, SPONSOR, "a.okafor")
    accept_policy(world, colleague)
    person = admit_person(world, SPONSOR, "j.smith")
    with refused(world, Forbidden, "person"):
        verify_identity(world, person, by=colleague)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"document": "x" * 201}, "payload.document"),
        ({"document": ""}, "payload.document"),
        ({"key": "0" * 32}, "payload.key"),
        ({"person": "a.okafor"}, "payload.person"),
    ],
)
def test_r7_a_malformed_identity_verification_is_refused(
    world: World, overrides: dict[str, Any], field: str
) -> None:
    person = admit_person(world, SPONSOR, "j.smith")
    payload = {"person": "j.smith", "document": "passport", "key": person.key_id, **overrides}
    with refused(world, ValidationFailed, field):
        world.notary.submit(
            world.ledger,
            "IdentityVerified",
            person_subject(SPONSOR, "j.smith"),
            payload,
            meaning="verified",
        )


# -- authority and keys ------------------------------------------------------------------


def test_r5_meaning_outside_the_persons_authority_is_refused(world: World):
    person = ready_person(world, SPONSOR, meanings=["reviewed", "dispositioned"])
    with refused(world, Forbidden, "meaning"):
        _admit_another(world, person)  # PersonAdmitted is signed with "approved"


def test_r8_revoked_person_key_cannot_sign(world: World):
    person = ready_person(world, SPONSOR)
    subject = person_subject(SPONSOR, "j.smith")
    since = format_utc(now_utc() - timedelta(minutes=5))
    world[SPONSOR].submit(
        world.ledger,
        "PersonKeyRevoked",
        subject,
        {"key": person.key_id, "compromised_since": since},
        meaning="revoked",
        reason="laptop stolen",
    )
    with refused(world, KeyRevoked, "key"):
        _admit_another(world, person)
    assert _person(world).key_history.compromised(person.key_id, since, since)


def test_r8_a_person_adds_a_key_with_a_current_key_and_signs_with_it(world: World):
    person = ready_person(world, SPONSOR)
    new_key = person_key(SPONSOR, "j.smith", generation=1)
    subject = person_subject(SPONSOR, "j.smith")
    payload = {"public_key": encode_public_key(new_key)}
    with refused(world, Forbidden, "person"):
        world[SPONSOR].submit(world.ledger, "PersonKeyAdded", subject, payload, meaning="authored")
    person.submit(world.ledger, "PersonKeyAdded", subject, payload, meaning="authored")
    with refused(world, ValidationFailed, "payload.public_key"):
        person.submit(world.ledger, "PersonKeyAdded", subject, payload, meaning="authored")
    person.submit(
        world.ledger,
        "PersonKeyRevoked",
        subject,
        {"key": person.key_id},
        meaning="revoked",
        reason="replaced by a new key",
    )
    renewed = Actor(SPONSOR, new_key, person="j.smith")
    _admit_another(world, renewed)
    assert set(_person(world).keys) == {person.key_id, key_id(new_key.verify_key)}


def test_r8_only_the_person_the_party_or_the_notary_revokes_a_person_key(world: World):
    person = ready_person(world, SPONSOR)
    subject = person_subject(SPONSOR, "j.smith")
    with refused(world, Forbidden, "signer"):
        world[CMO].submit(
            world.ledger,
            "PersonKeyRevoked",
            subject,
            {"key": person.key_id},
            meaning="revoked",
            reason="not ours to revoke",
        )
    with refused(world, ValidationFailed, "payload.key"):
        world.notary.submit(
            world.ledger,
            "PersonKeyRevoked",
            subject,
            {"key": world[SPONSOR].key_id},
            meaning="revoked",
            reason="a party key is not the person's",
        )


def test_r7_the_notary_signs_without_a_person(world: World):
    person = admit_person(world, SPONSOR, "j.smith")
    notary_as_person = Actor(world.notary.party_id, world.notary.key, person="j.smith")
    with refused(world, ValidationFailed, "person"):
        verify_identity(world, person, by=notary_as_person)


def test_r8_verify_checks_person_signatures_and_flags_a_compromised_person_key(world: World):
    person = ready_person(world, SPONSOR)
    _admit_another(world, person)
    assert verify_ledger(world.ledger, workers=1).ok
    world.notary.submit(
        world.ledger,
        "PersonKeyRevoked",
        person_subject(SPONSOR, "j.smith"),
        {"key": person.key_id, "compromised_since": format_utc(now_utc() - timedelta(hours=1))},
        meaning="revoked",
        reason="the person reported the key stolen",
    )
    report = verify_ledger(world.ledger, workers=1)
    assert report.ok, report.errors
    flagged = report.compromised
    assert flagged, "signatures under the compromised person key are flagged"
    assert all(person.key_id in problem.message for problem in flagged)
