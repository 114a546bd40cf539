"""Encrypted keystores: one Ed25519 private key per file, protected by a passphrase.

A keystore is a JSON file (mode 0600)::

    {"format": "cmo-ledger-keystore/v1",
     "party": "contoso-cmo", "key_id": "...", "public_key": "ed25519:...",
     "kdf": {"name": "argon2id", "opslimit": N, "memlimit": N, "salt": "<base64>"},
     "ciphertext": "<base64 of SecretBox(nonce || box)>"}

The box key is argon2id(passphrase, salt); the plaintext is the 32-byte seed followed
by the canonical header (format, party, key_id, public_key), so a header edited on disk
no longer decrypts to itself and is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
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
from ledger.errors import ConfigurationError, ValidationFailed
from ledger.keys import encode_public_key, key_id

__all__ = [
    "FORMAT",
    "Keystore",
    "WrongPassphrase",
    "create_keystore",
    "generated_passphrase_file",
    "kdf_limits_from_env",
    "load_keystore",
    "read_public",
]

FORMAT = "cmo-ledger-keystore/v1"
_ARGON = nacl.pwhash.argon2id
_PROFILES = {
    "moderate": (_ARGON.OPSLIMIT_MODERATE, _ARGON.MEMLIMIT_MODERATE),
    "interactive": (_ARGON.OPSLIMIT_INTERACTIVE, _ARGON.MEMLIMIT_INTERACTIVE),
    "min": (_ARGON.OPSLIMIT_MIN, _ARGON.MEMLIMIT_MIN),
}


class WrongPassphrase(ValidationFailed):
    """The passphrase does not open the keystore."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"wrong passphrase for keystore {path}", field="passphrase")


@dataclass(frozen=True, slots=True)
class Keystore:
    """The public part of a keystore."""

    party: str
    key_id: str
    public_key: str

    def header(self) -> dict[str, str]:
        """The authenticated header fields."""
        return {
            "format": FORMAT,
            "party": self.party,
            "key_id": self.key_id,
            "public_key": self.public_key,
        }


def kdf_limits_from_env(environ: Mapping[str, str]) -> tuple[int, int]:
    """argon2id (opslimit, memlimit) for ``CMO_LEDGER_KDF_PROFILE`` (default moderate)."""
    profile = environ.get("CMO_LEDGER_KDF_PROFILE") or "moderate"
    if profile not in _PROFILES:
        raise ConfigurationError(
            f"expected one of {', '.join(_PROFILES)}", field="CMO_LEDGER_KDF_PROFILE"
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
    """Write a new keystore for ``party``; refuse to replace a file unless ``overwrite``."""
    if not passphrase:
        raise ValidationFailed("an empty passphrase protects nothing", field="passphrase")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another file or remove it first")
    key = signing_key or SigningKey.generate()
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
    _write_private(path, json.dumps(document, indent=2) + "\n", overwrite=overwrite)
    return keystore


def read_public(path: Path) -> Keystore:
    """The public header, without the passphrase (not authenticated until loaded)."""
    document = _read(path)
    return Keystore(
        _text(document, "party"), _text(document, "key_id"), _text(document, "public_key")
    )


def load_keystore(path: Path, passphrase: str) -> tuple[Keystore, SigningKey]:
    """Decrypt a keystore; refuse a wrong passphrase or an edited file."""
    document = _read(path)
    keystore = read_public(path)
    kdf = document.get("kdf")
    if not isinstance(kdf, dict) or kdf.get("name") != "argon2id":
        raise ValidationFailed("unsupported key derivation", field="kdf")
    salt = _b64(kdf, "salt", "kdf.salt")
    ciphertext = _b64(document, "ciphertext", "ciphertext")
    opslimit, memlimit = _limit(kdf, "opslimit"), _limit(kdf, "memlimit")
    box = nacl.secret.SecretBox(_derive(passphrase, salt, opslimit, memlimit))
    try:
        plaintext = box.decrypt(ciphertext)
    except CryptoError:
        raise WrongPassphrase(path) from None
    seed, header = plaintext[:32], plaintext[32:]
    key = SigningKey(seed)
    if header != canonical_bytes(keystore.header()) or key_id(key.verify_key) != keystore.key_id:
        raise ValidationFailed(
            "keystore header does not match its encrypted contents: the file was edited",
            field="public_key",
        )
    return keystore, key


def generated_passphrase_file(directory: Path) -> tuple[str, Path]:
    """The passphrase kept in ``directory/notary.passphrase``, created (0600) when missing."""
    path = directory / "notary.passphrase"
    if path.exists():
        return path.read_text(encoding="utf-8").strip(), path
    passphrase = secrets.token_urlsafe(32)
    _write_private(path, passphrase + "\n", overwrite=False)
    return passphrase, path


def _derive(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return _ARGON.kdf(
        nacl.secret.SecretBox.KEY_SIZE,
        passphrase.encode("utf-8"),
        salt,
        opslimit=opslimit,
        memlimit=memlimit,
    )


def _write_private(path: Path, content: str, *, overwrite: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        return
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
    os.replace(temporary, path)


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise FileNotFoundError(f"no keystore at {path}: create one with `cmo-ledger keygen`")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"{path} is not a keystore: {exc}", field="keystore") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValidationFailed(f"{path} is not a {FORMAT} keystore", field="format")
    return document


def _text(document: Mapping[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise ValidationFailed("missing or not a string", field=name)
    return value


def _b64(document: Mapping[str, Any], name: str, field: str) -> bytes:
    try:
        return base64.b64decode(_text(document, name), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed("not valid base64", field=field) from exc


def _limit(kdf: Mapping[str, Any], name: str) -> int:
    value = kdf.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationFailed("expected a positive integer", field=f"kdf.{name}")
    return value
