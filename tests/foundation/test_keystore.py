"""Keystores: encrypted at rest, 0600, refused when the passphrase is wrong or the file edited."""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.pwhash
import pytest
from nacl.signing import SigningKey

from ledger.errors import ConfigurationError, ValidationFailed
from ledger.keys import encode_public_key, key_id
from ledger.keystore import (
    FORMAT,
    Keystore,
    WrongPassphrase,
    create_keystore,
    generated_passphrase_file,
    kdf_limits_from_env,
    load_keystore,
    read_public,
)

OPSLIMIT, MEMLIMIT = kdf_limits_from_env({"CMO_LEDGER_KDF_PROFILE": "min"})
SEED = b"c" * 32
PASSPHRASE = "correct horse battery staple"


def _create(
    path: Path,
    passphrase: str = PASSPHRASE,
    *,
    party: str = "contoso-cmo",
    signing_key: SigningKey | None = None,
    overwrite: bool = False,
) -> Keystore:
    """A keystore with the ``min`` KDF profile, so tests stay fast."""
    return create_keystore(
        path,
        party,
        passphrase,
        signing_key=signing_key,
        overwrite=overwrite,
        opslimit=OPSLIMIT,
        memlimit=MEMLIMIT,
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def _flip_last_byte(holder: dict[str, Any], name: str) -> None:
    raw = bytearray(base64.b64decode(holder[name]))
    raw[-1] ^= 1
    holder[name] = base64.b64encode(bytes(raw)).decode()


@pytest.fixture
def keystore_path(tmp_path: Path) -> Path:
    path = tmp_path / "contoso.key"
    _create(path, signing_key=SigningKey(SEED))
    return path


def test_a_keystore_round_trips_the_key_and_its_header(keystore_path: Path) -> None:
    keystore, key = load_keystore(keystore_path, PASSPHRASE)
    assert bytes(key) == SEED
    assert keystore == Keystore(
        party="contoso-cmo",
        key_id=key_id(SigningKey(SEED).verify_key),
        public_key=encode_public_key(SigningKey(SEED)),
    )


def test_the_public_header_is_readable_without_the_passphrase(keystore_path: Path) -> None:
    keystore, _ = load_keystore(keystore_path, PASSPHRASE)
    assert read_public(keystore_path) == keystore


def test_a_generated_key_gets_the_key_id_of_its_public_key(tmp_path: Path) -> None:
    keystore = _create(tmp_path / "new.key", party="fabrikam")
    _, key = load_keystore(tmp_path / "new.key", PASSPHRASE)
    assert keystore.key_id == key_id(key.verify_key)
    assert keystore.public_key == encode_public_key(key)


def test_the_file_has_the_documented_format(keystore_path: Path) -> None:
    document = json.loads(keystore_path.read_text())
    assert document["format"] == FORMAT == "cmo-ledger-keystore/v1"
    assert set(document) == {"format", "party", "key_id", "public_key", "kdf", "ciphertext"}
    assert document["kdf"]["name"] == "argon2id"
    assert (document["kdf"]["opslimit"], document["kdf"]["memlimit"]) == (OPSLIMIT, MEMLIMIT)
    assert len(base64.b64decode(document["kdf"]["salt"])) == nacl.pwhash.argon2id.SALTBYTES


def test_the_file_is_private_and_holds_no_plain_seed(keystore_path: Path) -> None:
    assert _mode(keystore_path) == 0o600
    text = keystore_path.read_text()
    assert base64.b64encode(SEED).decode() not in text
    assert SEED.decode() not in text


def test_each_keystore_uses_a_fresh_salt(tmp_path: Path) -> None:
    for name in ("a.key", "b.key"):
        _create(tmp_path / name, signing_key=SigningKey(SEED))
    salts = {json.loads((tmp_path / n).read_text())["kdf"]["salt"] for n in ("a.key", "b.key")}
    assert len(salts) == 2


def test_wrong_passphrase_is_refused_and_names_the_field(keystore_path: Path) -> None:
    with pytest.raises(WrongPassphrase) as caught:
        load_keystore(keystore_path, "guess")
    assert isinstance(caught.value, ValidationFailed)
    assert (caught.value.code, caught.value.field) == ("VALIDATION_FAILED", "passphrase")
    assert f"wrong passphrase for keystore {keystore_path}" in caught.value.message


def test_an_empty_passphrase_is_refused_at_creation(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as caught:
        _create(tmp_path / "x.key", "")
    assert caught.value.field == "passphrase"
    assert not (tmp_path / "x.key").exists()


def test_an_existing_keystore_is_not_overwritten(keystore_path: Path) -> None:
    before = keystore_path.read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        _create(keystore_path, "other")
    assert keystore_path.read_bytes() == before


def test_overwrite_replaces_the_keystore_and_keeps_it_private(keystore_path: Path) -> None:
    replacement = _create(keystore_path, "other", overwrite=True)
    keystore, _ = load_keystore(keystore_path, "other")
    assert keystore == replacement
    assert keystore.key_id != key_id(SigningKey(SEED).verify_key)
    assert _mode(keystore_path) == 0o600
    assert [p.name for p in keystore_path.parent.iterdir()] == [keystore_path.name]


@pytest.mark.parametrize("field", ["party", "key_id", "public_key"])
def test_an_edited_header_is_refused(keystore_path: Path, field: str) -> None:
    def change(document: dict[str, Any]) -> None:
        document[field] = {
            "party": "mallory",
            "key_id": "0" * 32,
            "public_key": encode_public_key(SigningKey.generate()),
        }[field]

    _edit(keystore_path, change)
    with pytest.raises(ValidationFailed) as caught:
        load_keystore(keystore_path, PASSPHRASE)
    assert caught.value.field in {field, "key_id"}


def test_a_swapped_key_with_a_consistent_header_is_refused(keystore_path: Path) -> None:
    other = SigningKey.generate()

    def change(document: dict[str, Any]) -> None:
        document["public_key"] = encode_public_key(other)
        document["key_id"] = key_id(other.verify_key)

    _edit(keystore_path, change)
    with pytest.raises(ValidationFailed) as caught:
        load_keystore(keystore_path, PASSPHRASE)
    assert caught.value.field in {"key_id", "public_key"}


def test_edited_ciphertext_is_refused(keystore_path: Path) -> None:
    _edit(keystore_path, lambda document: _flip_last_byte(document, "ciphertext"))
    with pytest.raises(ValidationFailed):
        load_keystore(keystore_path, PASSPHRASE)


def test_an_edited_salt_is_refused(keystore_path: Path) -> None:
    _edit(keystore_path, lambda document: _flip_last_byte(document["kdf"], "salt"))
    with pytest.raises(ValidationFailed):
        load_keystore(keystore_path, PASSPHRASE)


def test_an_unknown_format_is_refused_and_names_the_field(keystore_path: Path) -> None:
    _edit(keystore_path, lambda document: document.update(format="something-else/v9"))
    with pytest.raises(ValidationFailed) as caught:
        load_keystore(keystore_path, PASSPHRASE)
    assert caught.value.field == "format"
    with pytest.raises(ValidationFailed):
        read_public(keystore_path)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.update(kdf="argon2id"), "kdf"),
        (lambda d: d["kdf"].update(name="scrypt"), "kdf.name"),
        (lambda d: d["kdf"].update(opslimit="3"), "kdf.opslimit"),
        (lambda d: d["kdf"].update(memlimit=0), "kdf.memlimit"),
        (lambda d: d["kdf"].update(salt="not base64!"), "kdf.salt"),
        (lambda d: d.pop("ciphertext"), "ciphertext"),
        (lambda d: d.pop("party"), "party"),
    ],
)
def test_a_malformed_field_is_refused_by_name(
    keystore_path: Path, change: Callable[[dict[str, Any]], None], field: str
) -> None:
    _edit(keystore_path, change)
    with pytest.raises(ValidationFailed) as caught:
        load_keystore(keystore_path, PASSPHRASE)
    assert caught.value.field == field


def test_a_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.key"
    path.write_text("not json")
    with pytest.raises(ValidationFailed) as caught:
        load_keystore(path, PASSPHRASE)
    assert caught.value.field == "keystore"


def test_a_missing_keystore_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="cmo-ledger keygen"):
        load_keystore(tmp_path / "absent.key", PASSPHRASE)


def test_kdf_profiles_come_from_the_environment() -> None:
    argon = nacl.pwhash.argon2id
    assert kdf_limits_from_env({}) == (argon.OPSLIMIT_MODERATE, argon.MEMLIMIT_MODERATE)
    assert kdf_limits_from_env({"CMO_LEDGER_KDF_PROFILE": "interactive"}) == (
        argon.OPSLIMIT_INTERACTIVE,
        argon.MEMLIMIT_INTERACTIVE,
    )
    assert (OPSLIMIT, MEMLIMIT) == (argon.OPSLIMIT_MIN, argon.MEMLIMIT_MIN)


def test_an_unknown_kdf_profile_names_the_variable() -> None:
    with pytest.raises(ConfigurationError) as caught:
        kdf_limits_from_env({"CMO_LEDGER_KDF_PROFILE": "turbo"})
    assert caught.value.field == "CMO_LEDGER_KDF_PROFILE"


def test_the_stored_kdf_limits_are_the_ones_used_to_load(tmp_path: Path) -> None:
    path = tmp_path / "interactive.key"
    opslimit, memlimit = kdf_limits_from_env({"CMO_LEDGER_KDF_PROFILE": "interactive"})
    create_keystore(path, "p", PASSPHRASE, opslimit=opslimit, memlimit=memlimit)
    _, key = load_keystore(path, PASSPHRASE)
    assert read_public(path).key_id == key_id(key.verify_key)


def test_the_generated_passphrase_is_private_and_stable(tmp_path: Path) -> None:
    first, path = generated_passphrase_file(tmp_path)
    second, again = generated_passphrase_file(tmp_path)
    assert (first, path) == (second, again)
    assert path == tmp_path / "notary.passphrase"
    assert len(first) >= 32
    assert _mode(path) == 0o600


def test_a_world_readable_passphrase_file_is_refused(tmp_path: Path) -> None:
    _, path = generated_passphrase_file(tmp_path)
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        generated_passphrase_file(tmp_path)
