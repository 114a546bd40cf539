"""Keystores: encrypted at rest, 0600, refused when the passphrase is wrong or the file edited."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import nacl.pwhash
import pytest
from nacl.signing import SigningKey

from ledger.errors import ConfigurationError, ValidationFailed
from ledger.keys import encode_public_key, key_id
from ledger.keystore import (
    create_keystore,
    generated_passphrase_file,
    kdf_limits_from_env,
    load_keystore,
    read_public,
)

FAST = {
    "opslimit": nacl.pwhash.argon2id.OPSLIMIT_MIN,
    "memlimit": nacl.pwhash.argon2id.MEMLIMIT_MIN,
}


@pytest.fixture
def keystore_path(tmp_path: Path) -> Path:
    path = tmp_path / "contoso.key"
    create_keystore(path, "contoso-cmo", "s3cret", signing_key=SigningKey(b"c" * 32), **FAST)
    return path


def test_a_keystore_round_trips_the_key(keystore_path: Path) -> None:
    keystore, key = load_keystore(keystore_path, "s3cret")
    assert bytes(key) == b"c" * 32
    assert keystore.party == "contoso-cmo"
    assert keystore.key_id == key_id(key.verify_key)
    assert keystore.public_key == encode_public_key(key)
    assert read_public(keystore_path) == keystore


def test_the_file_is_private_and_holds_no_plain_seed(keystore_path: Path) -> None:
    assert keystore_path.stat().st_mode & 0o777 == 0o600
    assert base64.b64encode(b"c" * 32).decode() not in keystore_path.read_text()


def test_wrong_passphrase_is_refused_and_names_the_field(keystore_path: Path) -> None:
    with pytest.raises(ValidationFailed) as caught:
        load_keystore(keystore_path, "guess")
    assert (caught.value.code, caught.value.field) == ("VALIDATION_FAILED", "passphrase")


def test_an_existing_keystore_is_not_overwritten(keystore_path: Path) -> None:
    before = keystore_path.read_bytes()
    with pytest.raises(FileExistsError):
        create_keystore(keystore_path, "contoso-cmo", "other", **FAST)
    assert keystore_path.read_bytes() == before


@pytest.mark.parametrize("field", ["party", "key_id", "public_key"])
def test_an_edited_header_is_refused(keystore_path: Path, field: str) -> None:
    document = json.loads(keystore_path.read_text())
    document[field] = (
        encode_public_key(SigningKey.generate()) if field == "public_key" else "x" * 32
    )
    keystore_path.write_text(json.dumps(document))
    with pytest.raises(ValidationFailed):
        load_keystore(keystore_path, "s3cret")


@pytest.mark.parametrize("field", ["ciphertext", "salt"])
def test_edited_ciphertext_or_salt_is_refused(keystore_path: Path, field: str) -> None:
    document = json.loads(keystore_path.read_text())
    holder = document["kdf"] if field == "salt" else document
    raw = bytearray(base64.b64decode(holder[field]))
    raw[-1] ^= 1
    holder[field] = base64.b64encode(bytes(raw)).decode()
    keystore_path.write_text(json.dumps(document))
    with pytest.raises(ValidationFailed):
        load_keystore(keystore_path, "s3cret")


def test_an_unknown_format_is_refused(keystore_path: Path) -> None:
    document = json.loads(keystore_path.read_text())
    document["format"] = "something-else/v9"
    keystore_path.write_text(json.dumps(document))
    with pytest.raises(ValidationFailed) as caught:
        load_keystore(keystore_path, "s3cret")
    assert caught.value.field == "format"


def test_the_generated_passphrase_is_private_and_stable(tmp_path: Path) -> None:
    first, path = generated_passphrase_file(tmp_path)
    second, _ = generated_passphrase_file(tmp_path)
    assert first == second and len(first) >= 32
    assert path.stat().st_mode & 0o777 == 0o600


def test_an_unknown_kdf_profile_names_the_variable() -> None:
    assert kdf_limits_from_env({"CMO_LEDGER_KDF_PROFILE": "min"})[0] == FAST["opslimit"]
    with pytest.raises(ConfigurationError) as caught:
        kdf_limits_from_env({"CMO_LEDGER_KDF_PROFILE": "turbo"})
    assert caught.value.field == "CMO_LEDGER_KDF_PROFILE"
