"""``cmo-ledger person admit|verify|accept-policy`` (R7): a party admits a person, the
notary verifies their identity, the person accepts the policy with their own keystore, and
``audit trail`` shows their printed name beside the meaning (R5)."""

from __future__ import annotations

from pathlib import Path

from ledger.domain.subjects import person_subject
from ledger.keys import encode_public_key, key_id
from ledger.keystore import create_keystore, kdf_limits_from_env
from tests.support.cli import ENV, PASSPHRASE, REGULATOR, SPONSOR, Cli
from tests.support.persons import person_key

PERSON = "c.li"


def _person_keystore(directory: Path) -> Path:
    path = directory / f"{PERSON}.key"
    opslimit, memlimit = kdf_limits_from_env(ENV)
    key = person_key(SPONSOR, PERSON)
    create_keystore(
        path, SPONSOR, PASSPHRASE, signing_key=key, opslimit=opslimit, memlimit=memlimit
    )
    return path


def test_r7_a_person_is_admitted_verified_and_accepts_the_policy_from_the_command_line(
    cli: Cli, tmp_path: Path
) -> None:
    keystore = _person_keystore(tmp_path)
    key = person_key(SPONSOR, PERSON)
    cli.json(SPONSOR, "person", "admit", PERSON, "--printed-name", "Chen Li",
             "--job-function", "QA Specialist", "--meaning", "reviewed",
             "--meaning", "approved", "--public-key", encode_public_key(key))  # fmt: skip
    kid = key_id(key.verify_key)
    cli.json("notary", "person", "verify", SPONSOR, PERSON, "--document", "passport",
             "--key-id", kid)  # fmt: skip
    with_party_key = cli.fails(SPONSOR, "person", "accept-policy", "--as", PERSON,
                               "--person-keystore", str(cli.keystores[SPONSOR]))  # fmt: skip
    assert "key" in with_party_key
    cli.json(SPONSOR, "person", "accept-policy", "--as", PERSON,
             "--person-keystore", str(keystore))  # fmt: skip
    subject = str(person_subject(SPONSOR, PERSON))
    trail = cli.json(SPONSOR, "audit", "trail", "--subject", subject)
    assert [e["type"] for e in trail] == [
        "PersonAdmitted",
        "IdentityVerified",
        "SignaturePolicyAccepted",
    ]
    accepted = trail[-1]
    assert (accepted["person"], accepted["printedName"]) == (PERSON, "Chen Li")
    assert accepted["meaning"] == "accepted"
    assert trail[0]["printedName"] is None


def test_r7_a_meaning_the_catalogue_does_not_know_is_refused_naming_it(cli: Cli) -> None:
    public_key = encode_public_key(person_key(SPONSOR, "d.nobody"))
    line = cli.fails(SPONSOR, "person", "admit", "d.nobody", "--printed-name", "D. Nobody",
                     "--job-function", "QA", "--meaning", "blessed",
                     "--public-key", public_key)  # fmt: skip
    assert "payload.meanings[0]" in line


def test_a_regulator_admits_its_own_person_although_it_creates_no_other_subject(
    cli: Cli,
) -> None:
    inspector = "i.okafor"
    public_key = encode_public_key(person_key(REGULATOR, inspector))
    cli.json(REGULATOR, "person", "admit", inspector, "--printed-name", "Ifeoma Okafor",
             "--job-function", "GMP Inspector", "--meaning", "reviewed",
             "--public-key", public_key)  # fmt: skip
    subject = str(person_subject(REGULATOR, inspector))
    trail = cli.json(REGULATOR, "audit", "trail", "--subject", subject)
    assert [e["type"] for e in trail] == ["PersonAdmitted"]
