"""The command path refuses every bad envelope with its code and field, storing nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from nacl.signing import SigningKey

from ledger.application import Ledger
from ledger.config import Settings
from ledger.domain.subjects import party_subject
from ledger.errors import LedgerError
from ledger.keys import encode_public_key
from ledger.log.envelope import event_hash
from ledger.timeutil import format_utc, now_utc
from tests.support.world import Actor, World

CMO = "contoso-cmo"


def add_key(world: World, party: str, key: SigningKey) -> None:
    world.add_key(party, key)


def refused(
    ledger: Ledger, envelope: dict[str, Any], signature: str, code: str, field: str
) -> LedgerError:
    head = ledger.head()
    with pytest.raises(LedgerError) as caught:
        ledger.append(envelope, signature)
    assert (caught.value.code, caught.value.field) == (code, field), str(caught.value)
    assert ledger.head() == head, "a refused envelope must store nothing"
    return caught.value


def key_added(world: World, actor: Actor, **overrides: Any) -> tuple[dict[str, Any], str]:
    new_key = SigningKey.generate()
    envelope, _ = actor.prepare(
        world.ledger,
        "KeyAdded",
        party_subject(actor.party_id),
        {"public_key": encode_public_key(new_key), "purpose": "party"},
        meaning="authored",
    )
    envelope.update(overrides)
    return envelope, actor.sign(envelope)


def test_an_accepted_envelope_is_stored_with_signature_and_receipt_time(world: World) -> None:
    envelope, signature = key_added(world, world[CMO])
    appended = world.ledger.append(envelope, signature)
    stored = world.ledger.read(appended.position - 1, 1)[0]
    assert stored.event.envelope == envelope
    assert stored.event.signature == signature
    assert stored.event.recorded_at == appended.recorded_at
    assert appended.recorded_at.endswith("Z") and len(appended.recorded_at) == 24


def test_unknown_signer_is_refused(world: World) -> None:
    stranger = Actor("stranger-pharma", SigningKey.generate())
    envelope, _ = key_added(world, world[CMO], signer="stranger-pharma", key=stranger.key_id)
    refused(world.ledger, envelope, stranger.sign(envelope), "UNKNOWN_SIGNER", "signer")


def test_a_key_of_another_party_is_refused(world: World) -> None:
    sponsor = world["northwind-bio"]
    envelope, _ = key_added(world, world[CMO], key=sponsor.key_id)
    refused(world.ledger, envelope, sponsor.sign(envelope), "UNKNOWN_SIGNER", "key")


def test_a_forged_signature_is_refused(world: World) -> None:
    envelope, _ = key_added(world, world[CMO])
    forger = SigningKey.generate()
    refused(world.ledger, envelope, Actor(CMO, forger).sign(envelope), "BAD_SIGNATURE", "signature")


def test_revoked_key_cannot_sign_after_compromise(world: World) -> None:
    cmo = world[CMO]
    spare = SigningKey.generate()
    add_key(world, CMO, spare)
    since = format_utc(now_utc() - timedelta(minutes=10))
    cmo.submit(
        world.ledger,
        "KeyRevoked",
        party_subject(CMO),
        {"key": cmo.key_id, "compromised_since": since},
        meaning="revoked",
        reason="laptop stolen",
    )
    envelope, signature = key_added(world, cmo)
    refused(world.ledger, envelope, signature, "KEY_REVOKED", "key")
    # The party's other key still works.
    world.actors[CMO] = Actor(CMO, spare)
    world.ledger.append(*key_added(world, world[CMO]))


def test_replay_of_an_accepted_envelope_is_refused(world: World) -> None:
    envelope, signature = key_added(world, world[CMO])
    world.ledger.append(envelope, signature)
    refused(world.ledger, envelope, signature, "VERSION_CONFLICT", "version")


def test_a_wrong_version_is_refused(world: World) -> None:
    envelope, signature = key_added(world, world[CMO], version=5)
    refused(world.ledger, envelope, signature, "VERSION_CONFLICT", "version")


def test_a_wrong_prev_is_refused(world: World) -> None:
    envelope, signature = key_added(world, world[CMO], prev="00" * 32)
    refused(world.ledger, envelope, signature, "VERSION_CONFLICT", "prev")


def test_an_envelope_for_another_ledger_is_refused(world: World) -> None:
    envelope, signature = key_added(world, world[CMO], ledger="ledger.other/cmo")
    refused(world.ledger, envelope, signature, "VALIDATION_FAILED", "ledger")


def test_a_naive_timestamp_is_refused(world: World) -> None:
    envelope, signature = key_added(world, world[CMO], signed_at="2026-03-03T09:15:00")
    refused(world.ledger, envelope, signature, "VALIDATION_FAILED", "signed_at")


def test_a_timestamp_far_in_the_future_is_refused(world: World) -> None:
    future = format_utc(now_utc() + timedelta(hours=2))
    envelope, signature = key_added(world, world[CMO], signed_at=future)
    refused(world.ledger, envelope, signature, "VALIDATION_FAILED", "signed_at")


def test_a_revocation_without_reason_is_refused(world: World) -> None:
    cmo = world[CMO]
    envelope, signature = cmo.prepare(
        world.ledger, "KeyRevoked", party_subject(CMO), {"key": cmo.key_id}, meaning="revoked"
    )
    refused(world.ledger, envelope, signature, "VALIDATION_FAILED", "reason")


def test_a_wrong_meaning_is_refused(world: World) -> None:
    envelope, signature = key_added(world, world[CMO], meaning="approved")
    refused(world.ledger, envelope, signature, "VALIDATION_FAILED", "meaning")


def test_an_unknown_event_type_is_refused(world: World) -> None:
    envelope, signature = key_added(world, world[CMO], type="BatchTeleported")
    refused(world.ledger, envelope, signature, "VALIDATION_FAILED", "type")


def test_an_oversize_payload_is_refused(settings: Settings, notary: Actor) -> None:
    small = Settings(
        database_url=settings.database_url, data_dir=settings.data_dir, max_envelope_bytes=2048
    )
    ledger = Ledger.initialise(small, "ledger.test/cmo", notary.public_key)
    try:
        envelope, _ = notary.prepare(
            ledger,
            "PartyAdmitted",
            party_subject("contoso-cmo"),
            {
                "party": "contoso-cmo",
                "legal_name": "x" * 3000,
                "role": "cmo",
                "public_key": notary.public_key,
            },
            meaning="approved",
        )
        refused(ledger, envelope, notary.sign(envelope), "LIMIT_EXCEEDED", "payload")
    finally:
        ledger.close()


def test_only_the_notary_admits_parties(world: World) -> None:
    cmo = world[CMO]
    newcomer = SigningKey.generate()
    envelope, signature = cmo.prepare(
        world.ledger,
        "PartyAdmitted",
        party_subject("stranger-pharma"),
        {
            "party": "stranger-pharma",
            "legal_name": "Stranger",
            "role": "sponsor",
            "public_key": encode_public_key(newcomer),
        },
        meaning="approved",
    )
    refused(world.ledger, envelope, signature, "FORBIDDEN", "signer")


def test_a_party_cannot_be_admitted_twice(world: World) -> None:
    envelope, _ = world.notary.prepare(
        world.ledger,
        "PartyAdmitted",
        party_subject(CMO),
        {"party": CMO, "legal_name": "Again", "role": "cmo", "public_key": world[CMO].public_key},
        meaning="approved",
    )
    envelope["version"], envelope["prev"] = 1, None
    refused(world.ledger, envelope, world.notary.sign(envelope), "VERSION_CONFLICT", "version")


def test_a_party_subject_must_match_its_id(world: World) -> None:
    envelope, _ = world.notary.prepare(
        world.ledger,
        "PartyAdmitted",
        uuid.uuid4(),
        {
            "party": "stranger-pharma",
            "legal_name": "S",
            "role": "sponsor",
            "public_key": world[CMO].public_key,
        },
        meaning="approved",
    )
    refused(world.ledger, envelope, world.notary.sign(envelope), "VALIDATION_FAILED", "subject")


def test_a_refused_envelope_in_a_batch_stores_none_of_the_batch(world: World) -> None:
    good = key_added(world, world[CMO])
    bad_envelope, _ = key_added(world, world["helios-tx"], version=9)
    bad = (bad_envelope, world["helios-tx"].sign(bad_envelope))
    head = world.ledger.head()
    with pytest.raises(LedgerError) as caught:
        world.ledger.append_many([good, bad])
    assert caught.value.field == "envelopes[1].version"
    assert world.ledger.head() == head


def test_a_batch_may_chain_several_versions_of_one_subject(world: World) -> None:
    cmo = world[CMO]
    first_env, first_sig = key_added(world, cmo)
    second_env, _ = key_added(
        world, cmo, version=first_env["version"] + 1, prev=event_hash(first_env, first_sig)
    )
    second_env["payload"] = {
        "public_key": encode_public_key(SigningKey.generate()),
        "purpose": "party",
    }
    results = world.ledger.append_many([(first_env, first_sig), (second_env, cmo.sign(second_env))])
    assert [r.version for r in results] == [first_env["version"], first_env["version"] + 1]
    assert results[1].position > results[0].position
    assert world.ledger.next_version(party_subject(CMO)) == (
        first_env["version"] + 2,
        results[1].event_hash,
    )
