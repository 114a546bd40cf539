"""Encrypted keystores: one Ed25519 private key per file, protected by a passphrase.

A keystore is a JSON file (mode 0600)::

    {"format": "cmo-ledger-keystore/v1",
     "party": "contoso-cmo", "key_id": "...", "public_key": "ed25519:...",
     "kdf": {"name": "argon2id", "opslimit": N, "memlimit": N, "salt": "<base64>"},
     "ciphertext": "<base64 of SecretBox output: 24-byte nonce || box>"}

The box key is argon2id(passphrase, salt) with the stored limits; the plaintext is the
32-byte seed followed by the canonical JSON of the header (format, party, key_id,
public_key), so a header edited on disk no longer matches its sealed copy and is refused.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import secrets
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.pwhash
import nacl.secret
import nacl.utils
from nacl.exceptions import CryptoError
from nacl.signing import SigningKey

from ledger.canonical import canonical_bytes
from ledger.config import PREFIX, Settings
from ledger.errors import ConfigurationError, ValidationFailed
from ledger.keys import decode_public_key, encode_public_key, key_id

__all__ = [
    "FORMAT",
    "PASSPHRASE_FILE",
    "Keystore",
    "WrongPassphrase",
    "create_keystore",
    "generated_passphrase_file",
    "kdf_limits_from_env",
    "load_keystore",
    "read_public",
]

FORMAT = "cmo-ledger-keystore/v1"
PASSPHRASE_FILE = "notary.passphrase"
_SEED_BYTES = 32
_ARGON = nacl.pwhash.argon2id
_PROFILES = {
    "moderate": (_ARGON.OPSLIMIT_MODERATE, _ARGON.MEMLIMIT_MODERATE),
    "interactive": (_ARGON.OPSLIMIT_INTERACTIVE, _ARGON.MEMLIMIT_INTERACTIVE),
    "min": (_ARGON.OPSLIMIT_MIN, _ARGON.MEMLIMIT_MIN),
}
_LIMITS = {
    "opslimit": (_ARGON.OPSLIMIT_MIN, _ARGON.OPSLIMIT_MAX),
    "memlimit": (_ARGON.MEMLIMIT_MIN, _ARGON.MEMLIMIT_MAX),
}


class WrongPassphrase(ValidationFailed):
    """The passphrase does not open the keystore."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"wrong passphrase for keystore {path}: retry with the passphrase it was created "
            "with (if that was it, the file's kdf or ciphertext has been altered)",
            field="passphrase",
        )
        self.path = path


@dataclass(frozen=True, slots=True)
class Keystore:
    """The public part of a keystore."""

    party: str
    key_id: str
    public_key: str

    def header(self) -> dict[str, str]:
        """The header fields that are sealed with the key."""
        return {
            "format": FORMAT,
            "party": self.party,
            "key_id": self.key_id,
            "public_key": self.public_key,
        }


def kdf_limits_from_env(environ: Mapping[str, str]) -> tuple[int, int]:
    """argon2id (opslimit, memlimit) for ``CMO_LEDGER_KDF_PROFILE`` (default ``moderate``)."""
    profile = environ.get(PREFIX + "KDF_PROFILE") or Settings().kdf_profile
    if profile not in _PROFILES:
        raise ConfigurationError(
            f"unknown KDF profile {profile!r}: set it to one of {', '.join(_PROFILES)}",
            field=PREFIX + "KDF_PROFILE",
        )
    return _PROFILES[profile]


def create_keystore(
    path: Path,
    party: str,
    passphrase: str,
    *,
    signing_key: SigningKey | None = None,
    overwrite: bool = False,
    opslimit: int = _ARGON.OPSLIMIT_MODERATE,
    memlimit: int = _ARGON.MEMLIMIT_MODERATE,
) -> Keystore:
    """Write a keystore for ``party`` holding ``signing_key`` (or a new key).

    Refuses to replace an existing file unless ``overwrite``.
    """
    if not party:
        raise ValidationFailed("a keystore needs a party id", field="party")
    if not passphrase:
        raise ValidationFailed(
            "an empty passphrase protects nothing: choose one", field="passphrase"
        )
    _check_limit("opslimit", opslimit)
    _check_limit("memlimit", memlimit)
    # Checked before the slow key derivation; the O_EXCL open still settles any race.
    if not overwrite and os.path.lexists(path):
        raise _exists(path)
    key = SigningKey.generate() if signing_key is None else signing_key
    keystore = Keystore(party, key_id(key.verify_key), encode_public_key(key))
    salt = nacl.utils.random(_ARGON.SALTBYTES)
    box = nacl.secret.SecretBox(_derive(passphrase, salt, opslimit, memlimit))
    plaintext = bytes(key) + canonical_bytes(keystore.header())
    document = {
        **keystore.header(),
        "kdf": {
            "name": "argon2id",
            "opslimit": opslimit,
            "memlimit": memlimit,
            "salt": base64.b64encode(salt).decode("ascii"),
        },
        "ciphertext": base64.b64encode(box.encrypt(plaintext)).decode("ascii"),
    }
    content = json.dumps(document, indent=2) + "\n"
    if overwrite:
        _replace_private(path, content)
    else:
        try:
            _create_private(path, content)
        except FileExistsError:
            raise _exists(path) from None
    return keystore


def read_public(path: Path) -> Keystore:
    """The public header, without the passphrase (authenticated only by ``load_keystore``)."""
    return _header(_read(path))


def load_keystore(path: Path, passphrase: str) -> tuple[Keystore, SigningKey]:
    """Decrypt a keystore; refuse a wrong passphrase or an edited file."""
    document = _read(path)
    keystore = _header(document)
    kdf = document.get("kdf")
    if not isinstance(kdf, dict):
        raise ValidationFailed("missing or not an object", field="kdf")
    if kdf.get("name") != "argon2id":
        raise ValidationFailed(
            f"unsupported key derivation {kdf.get('name')!r}, expected 'argon2id'",
            field="kdf.name",
        )
    salt = _b64(kdf, "salt", "kdf.salt")
    if len(salt) != _ARGON.SALTBYTES:
        raise ValidationFailed(
            f"salt has {len(salt)} bytes, expected {_ARGON.SALTBYTES}", field="kdf.salt"
        )
    opslimit = _check_limit("opslimit", kdf.get("opslimit"))
    memlimit = _check_limit("memlimit", kdf.get("memlimit"))
    ciphertext = _b64(document, "ciphertext", "ciphertext")
    box = nacl.secret.SecretBox(_derive(passphrase, salt, opslimit, memlimit))
    try:
        plaintext = box.decrypt(ciphertext)
    except CryptoError:
        raise WrongPassphrase(path) from None
    _check_sealed_header(path, keystore, plaintext[_SEED_BYTES:])
    key = SigningKey(plaintext[:_SEED_BYTES])
    if key_id(key.verify_key) != keystore.key_id:
        raise ValidationFailed(
            f"keystore {path} holds a key that is not {keystore.key_id}: "
            "restore the file from a backup",
            field="key_id",
        )
    return keystore, key


def generated_passphrase_file(directory: Path) -> tuple[str, Path]:
    """The passphrase kept in ``directory/notary.passphrase``, created (mode 0600) if missing."""
    path = directory / PASSPHRASE_FILE
    try:
        passphrase = secrets.token_urlsafe(32)
        _create_private(path, passphrase + "\n")
        return passphrase, path
    except FileExistsError:
        pass
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise ConfigurationError(
            f"{path} can be read by other users: run `chmod 600 {path}`",
            field="CMO_LEDGER_PASSPHRASE",
        )
    passphrase = path.read_text(encoding="utf-8").strip()
    if not passphrase:
        raise ConfigurationError(
            f"{path} is empty: put the notary keystore's passphrase in it, "
            "or set CMO_LEDGER_PASSPHRASE",
            field="CMO_LEDGER_PASSPHRASE",
        )
    return passphrase, path


def _derive(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return _ARGON.kdf(
        nacl.secret.SecretBox.KEY_SIZE,
        passphrase.encode("utf-8"),
        salt,
        opslimit=opslimit,
        memlimit=memlimit,
    )


def _exists(path: Path) -> FileExistsError:
    return FileExistsError(
        f"{path} already exists; refusing to overwrite a key: "
        "choose another file, or move the old one away first"
    )


def _create_private(path: Path, content: str) -> None:
    """Write a new file that is mode 0600 from the moment it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _replace_private(path: Path, content: str) -> None:
    """Atomically replace ``path``: the old file stays whole until the new one is on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file with mode 0600.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no keystore at {path}: check the path, or create one with `cmo-ledger keygen`"
        ) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            f"{path} is not a keystore (not JSON: {exc})", field="keystore"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ValidationFailed(f"{path} is not a keystore (not UTF-8)", field="keystore") from exc
    if not isinstance(document, dict):
        raise ValidationFailed(f"{path} is not a keystore (not a JSON object)", field="keystore")
    if document.get("format") != FORMAT:
        raise ValidationFailed(
            f"{path} has format {document.get('format')!r}, expected {FORMAT!r}",
            field="format",
        )
    return document


def _header(document: Mapping[str, Any]) -> Keystore:
    keystore = Keystore(
        _text(document, "party"), _text(document, "key_id"), _text(document, "public_key")
    )
    if key_id(decode_public_key(keystore.public_key)) != keystore.key_id:
        raise ValidationFailed("is not the key id of public_key", field="key_id")
    return keystore


def _check_sealed_header(path: Path, keystore: Keystore, sealed: bytes) -> None:
    """Refuse a header that differs from the copy encrypted with the key."""
    if sealed == canonical_bytes(keystore.header()):
        return
    try:
        original = json.loads(sealed)
    except (json.JSONDecodeError, UnicodeDecodeError):
        original = None
    if isinstance(original, dict):
        for name, value in keystore.header().items():
            if original.get(name) != value:
                raise ValidationFailed(
                    f"keystore {path} was edited (sealed value is {original.get(name)!r}): "
                    "restore the file from a backup",
                    field=name,
                )
    raise ValidationFailed(
        f"keystore {path} has a malformed sealed header: restore the file from a backup",
        field="ciphertext",
    )


def _text(document: Mapping[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise ValidationFailed("missing or not a non-empty string", field=name)
    return value


def _b64(document: Mapping[str, Any], name: str, field: str) -> bytes:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise ValidationFailed("missing or not a non-empty string", field=field)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed("not valid base64", field=field) from exc


def _check_limit(name: str, value: object) -> int:
    low, high = _LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationFailed(
            f"argon2id {name} must be an integer from {low} to {high}", field=f"kdf.{name}"
        )
    return value
