"""C2SP signed notes, checkpoints, cosignatures and tlog-proofs, with Ed25519 keys.

Formats, as specified at c2sp.org:

* signed-note: ``<text ending in \\n>\\n— <key name> base64(key ID || signature)\\n...``;
  an Ed25519 key ID is ``SHA-256(name || 0x0A || 0x01 || public key)[:4]`` and its
  verifier key text is ``<name>+<hex key ID>+base64(0x01 || public key)``.
* tlog-checkpoint: the note text ``<origin>\\n<tree size>\\n<base64 root hash>\\n``
  followed by optional non-empty extension lines.
* tlog-cosignature (``cosignature/v1``, type byte 0x04): the signature is
  ``key ID || u64 big-endian timestamp || Ed25519 signature`` over
  ``cosignature/v1\\ntime <timestamp>\\n`` followed by the checkpoint text.
* tlog-proof: ``c2sp.org/tlog-proof@v1``, an optional ``extra <base64>`` line,
  ``index <n>``, one base64 inclusion-proof hash per line, a blank line, then the
  signed checkpoint verbatim.

Every malformed input raises ``NoteError``, a ``ValueError``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from nacl.exceptions import CryptoError
from nacl.signing import SigningKey, VerifyKey

__all__ = [
    "COSIGNATURE_V1_HEADER",
    "ED25519_COSIGNATURE_TYPE",
    "ED25519_TYPE",
    "SIGNATURE_PREFIX",
    "TLOG_PROOF_HEADER",
    "Checkpoint",
    "NoteError",
    "NoteSignature",
    "TlogProof",
    "add_signature_lines",
    "cosign",
    "cosignature_message",
    "cosignature_timestamp",
    "cosigner_key_id",
    "cosigner_vkey",
    "format_checkpoint",
    "format_proof",
    "note_key_id",
    "parse_checkpoint",
    "parse_cosigner_vkey",
    "parse_note",
    "parse_proof",
    "parse_vkey",
    "sign_note",
    "verify_cosignature",
    "verify_note",
    "verify_note_cosignatures",
    "vkey",
]

SIGNATURE_PREFIX = "\u2014 "
"""An em dash (U+2014) and a space: how every signature line starts."""

ED25519_TYPE = 0x01
ED25519_COSIGNATURE_TYPE = 0x04
COSIGNATURE_V1_HEADER = "cosignature/v1"
TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"

_KEY_ID_SIZE = 4
_PUBLIC_KEY_SIZE = 32
_ED25519_SIGNATURE_SIZE = 64
_TIMESTAMP_SIZE = 8
_HASH_SIZE = 32
_MAX_SIGNATURES = 100  # the spec requires accepting at least 16
_MAX_PROOF_HASHES = 64  # a tree of fewer than 2**64 leaves needs at most 64
_MAX_UINT64 = 2**64 - 1
_MAX_TIMESTAMP = 2**63 - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


class NoteError(ValueError):
    """A note, key, checkpoint, cosignature or proof is malformed or does not verify."""


class NoteSignature(NamedTuple):
    """One signature line: key name, 4-byte key ID and the signature bytes after it."""

    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class Checkpoint:
    """The parsed text of a tlog-checkpoint."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    @property
    def body(self) -> str:
        """The checkpoint's note text."""
        return format_checkpoint(self.origin, self.size, self.root_hash, self.extensions)


@dataclass(frozen=True)
class TlogProof:
    """The parsed parts of a tlog-proof; ``checkpoint_note`` is the signed note verbatim."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint_note: str
    extra: bytes | None = None


# ---------------------------------------------------------------------- encodings


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    """Strict standard base64: canonical padding and alphabet only."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise NoteError(f"{what} is not valid base64") from None
    if _b64encode(raw) != text:
        raise NoteError(f"{what} is not canonical base64")
    return raw


def _parse_decimal(text: str, what: str, limit: int = _MAX_UINT64) -> int:
    """An ASCII decimal with no leading zeroes, at most ``limit``."""
    if len(text) > 20 or not _DECIMAL.fullmatch(text):
        raise NoteError(f"{what} must be a decimal number without leading zeroes: {text!r}")
    value = int(text)
    if value > limit:
        raise NoteError(f"{what} {value} is too large")
    return value


def _check_text(text: str, what: str) -> None:
    """Notes are UTF-8 with no control characters other than newline."""
    if not isinstance(text, str):
        raise NoteError(f"{what} must be a str")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError(f"{what} is not valid UTF-8") from None
    if _CONTROL.search(text):
        raise NoteError(f"{what} contains a control character other than newline")


def _check_name(name: str) -> None:
    """Key names are non-empty, with no spaces, plus signs or control characters."""
    if not isinstance(name, str) or not name:
        raise NoteError("key name must be a non-empty string")
    if any(c.isspace() or c == "+" for c in name):
        raise NoteError(f"key name {name!r} must not contain spaces, '+' or control characters")
    _check_text(name, "key name")


# ---------------------------------------------------------------------------- keys


def _key_id(name: str, sig_type: int, verify_key: VerifyKey) -> bytes:
    _check_name(name)
    material = name.encode("utf-8") + b"\n" + bytes([sig_type]) + bytes(verify_key)
    return hashlib.sha256(material).digest()[:_KEY_ID_SIZE]


def note_key_id(name: str, verify_key: VerifyKey) -> bytes:
    """SHA-256(name || 0x0A || 0x01 || public key)[:4]: an Ed25519 note key ID."""
    return _key_id(name, ED25519_TYPE, verify_key)


def cosigner_key_id(name: str, verify_key: VerifyKey) -> bytes:
    """SHA-256(name || 0x0A || 0x04 || public key)[:4]: an Ed25519 cosigner key ID."""
    return _key_id(name, ED25519_COSIGNATURE_TYPE, verify_key)


def _vkey(name: str, sig_type: int, verify_key: VerifyKey) -> str:
    key_id = _key_id(name, sig_type, verify_key)
    return f"{name}+{key_id.hex()}+{_b64encode(bytes([sig_type]) + bytes(verify_key))}"


def vkey(name: str, verify_key: VerifyKey) -> str:
    """The verifier key text ``name+<hex key ID>+base64(0x01 || public key)``."""
    return _vkey(name, ED25519_TYPE, verify_key)


def cosigner_vkey(name: str, verify_key: VerifyKey) -> str:
    """The cosigner verifier key text ``name+<hex key ID>+base64(0x04 || public key)``."""
    return _vkey(name, ED25519_COSIGNATURE_TYPE, verify_key)


def _parse_vkey(text: str, sig_type: int) -> tuple[str, bytes, VerifyKey]:
    if not isinstance(text, str):
        raise NoteError("verifier key must be a str")
    # The base64 part may itself contain '+', so split at the first two only.
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise NoteError("verifier key must have the form <name>+<8 hex digits>+<base64>")
    name, key_id_hex, key_b64 = parts
    _check_name(name)
    if not re.fullmatch(r"[0-9a-fA-F]{8}", key_id_hex):
        raise NoteError(f"verifier key ID {key_id_hex!r} is not 8 hex digits")
    material = _b64decode(key_b64, "verifier key material")
    if len(material) != 1 + _PUBLIC_KEY_SIZE or material[0] != sig_type:
        raise NoteError(
            f"verifier key material must be 0x{sig_type:02x} and a 32-byte Ed25519 public key"
        )
    verify_key = VerifyKey(material[1:])
    key_id = bytes.fromhex(key_id_hex)
    if key_id != _key_id(name, sig_type, verify_key):
        raise NoteError("verifier key ID does not match the name and public key")
    return name, key_id, verify_key


def parse_vkey(text: str) -> tuple[str, bytes, VerifyKey]:
    """``(name, key ID, public key)`` from an Ed25519 (type 0x01) verifier key text."""
    return _parse_vkey(text, ED25519_TYPE)


def parse_cosigner_vkey(text: str) -> tuple[str, bytes, VerifyKey]:
    """``(name, key ID, public key)`` from an Ed25519 cosigner (type 0x04) verifier key."""
    return _parse_vkey(text, ED25519_COSIGNATURE_TYPE)


def _ed25519_verifies(verify_key: VerifyKey, message: bytes, signature: bytes) -> bool:
    if len(signature) != _ED25519_SIGNATURE_SIZE:
        return False
    try:
        verify_key.verify(message, signature)
    except CryptoError:
        return False
    return True


# --------------------------------------------------------------------------- notes


def _check_body(body: str) -> None:
    _check_text(body, "note text")
    if not body.endswith("\n"):
        raise NoteError("note text must end with a newline")


def _signature_line(name: str, payload: bytes) -> str:
    return f"{SIGNATURE_PREFIX}{name} {_b64encode(payload)}\n"


def sign_note(body: str, name: str, signing_key: SigningKey) -> str:
    """The signed note: ``body``, a blank line and one Ed25519 signature line."""
    _check_body(body)
    key_id = note_key_id(name, signing_key.verify_key)
    signature = signing_key.sign(body.encode("utf-8")).signature
    return f"{body}\n{_signature_line(name, key_id + signature)}"


def add_signature_lines(note_text: str, lines: Sequence[str]) -> str:
    """``note_text`` with further signature lines (such as cosignatures) appended."""
    parse_note(note_text)
    extra = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    signed = note_text + extra
    parse_note(signed)
    return signed


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise NoteError("signature line must start with an em dash (U+2014) and a space")
    name, space, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not space or not encoded:
        raise NoteError("signature line must be '— <key name> <base64 signature>'")
    _check_name(name)
    raw = _b64decode(encoded, f"signature by {name!r}")
    if len(raw) <= _KEY_ID_SIZE:
        raise NoteError(f"signature by {name!r} is too short")
    return NoteSignature(name, raw[:_KEY_ID_SIZE], raw[_KEY_ID_SIZE:])


def parse_note(text: str) -> tuple[str, list[NoteSignature]]:
    """``(note text, signature lines)``; nothing is verified."""
    _check_text(text, "signed note")
    split = text.rfind("\n\n")
    if split < 0:
        raise NoteError("signed note has no blank line before its signatures")
    body, block = text[: split + 1], text[split + 2 :]
    if not block.endswith("\n"):
        raise NoteError("signed note must end with a signature line and a newline")
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise NoteError(f"signed note has more than {_MAX_SIGNATURES} signatures")
    return body, [_parse_signature_line(line) for line in lines]


def verify_note(text: str, verifiers: Sequence[tuple[str, VerifyKey]]) -> str:
    """The note text, once a signature by one of ``verifiers`` verifies.

    Signatures by unknown keys are ignored; a failing signature by a known key rejects
    the whole note.
    """
    body, signatures = parse_note(text)
    known = {(name, note_key_id(name, key)): key for name, key in verifiers}
    verified = False
    for sig in signatures:
        key = known.get((sig.name, sig.key_id))
        if key is None:
            continue
        if not _ed25519_verifies(key, body.encode("utf-8"), sig.signature):
            raise NoteError(f"signature by {sig.name!r} does not verify")
        verified = True
    if not verified:
        names = ", ".join(sorted({name for name, _ in verifiers})) or "nobody"
        raise NoteError(f"note has no signature by a known key ({names})")
    return body


# --------------------------------------------------------------------- checkpoints


def format_checkpoint(
    origin: str, size: int, root_hash: bytes, extensions: Sequence[str] = ()
) -> str:
    """The checkpoint note text ``origin\\nsize\\nbase64(root)\\n`` plus extension lines."""
    if not origin or "\n" in origin:
        raise NoteError("checkpoint origin must be one non-empty line")
    if not isinstance(size, int) or not 0 <= size <= _MAX_UINT64:
        raise NoteError(f"checkpoint size {size!r} is out of range")
    if len(root_hash) != _HASH_SIZE:
        raise NoteError(f"root hash has {len(root_hash)} bytes, expected {_HASH_SIZE}")
    if any(not line or "\n" in line for line in extensions):
        raise NoteError("checkpoint extension lines must be single non-empty lines")
    body = "\n".join([origin, str(size), _b64encode(bytes(root_hash)), *extensions]) + "\n"
    _check_text(body, "checkpoint")
    return body


def parse_checkpoint(body: str) -> Checkpoint:
    """The checkpoint in a note text (the text only, without signatures)."""
    _check_body(body)
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint needs an origin, a tree size and a root hash line")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise NoteError("checkpoint origin is empty")
    size = _parse_decimal(size_text, "checkpoint tree size")
    root_hash = _b64decode(root_text, "checkpoint root hash")
    if len(root_hash) != _HASH_SIZE:
        raise NoteError(f"checkpoint root hash has {len(root_hash)} bytes, expected 32")
    if any(not line for line in extensions):
        raise NoteError("checkpoint extension lines must not be empty")
    return Checkpoint(origin, size, root_hash, tuple(extensions))


# -------------------------------------------------------------------- cosignatures


def cosignature_message(checkpoint_body: str, timestamp: int) -> bytes:
    """The bytes a cosigner signs: header, time line, then the checkpoint text."""
    parse_checkpoint(checkpoint_body)
    if not isinstance(timestamp, int) or not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp!r} is out of range")
    header = f"{COSIGNATURE_V1_HEADER}\ntime {timestamp}\n"
    return (header + checkpoint_body).encode("utf-8")


def cosign(checkpoint_body: str, name: str, signing_key: SigningKey, timestamp: int) -> str:
    """A ``cosignature/v1`` signature line over the checkpoint, ending in a newline."""
    key_id = cosigner_key_id(name, signing_key.verify_key)
    signature = signing_key.sign(cosignature_message(checkpoint_body, timestamp)).signature
    return _signature_line(name, key_id + timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + signature)


def cosignature_timestamp(signature: NoteSignature) -> int:
    """The timestamp a ``cosignature/v1`` signature claims; nothing is verified."""
    if len(signature.signature) != _TIMESTAMP_SIZE + _ED25519_SIGNATURE_SIZE:
        raise NoteError(f"cosignature by {signature.name!r} has the wrong length")
    timestamp = int.from_bytes(signature.signature[:_TIMESTAMP_SIZE], "big")
    if timestamp > _MAX_TIMESTAMP:
        raise NoteError(f"cosignature by {signature.name!r} has an out-of-range timestamp")
    return timestamp


def _check_cosignature(sig: NoteSignature, checkpoint_body: str, verify_key: VerifyKey) -> int:
    timestamp = cosignature_timestamp(sig)
    message = cosignature_message(checkpoint_body, timestamp)
    if not _ed25519_verifies(verify_key, message, sig.signature[_TIMESTAMP_SIZE:]):
        raise NoteError(f"cosignature by {sig.name!r} does not verify")
    return timestamp


def verify_cosignature(line: str, checkpoint_body: str, name: str, verify_key: VerifyKey) -> int:
    """The timestamp of a ``cosignature/v1`` line by ``name`` over the checkpoint."""
    sig = _parse_signature_line(line.removesuffix("\n"))
    if sig.name != name:
        raise NoteError(f"cosignature is by {sig.name!r}, expected {name!r}")
    if sig.key_id != cosigner_key_id(name, verify_key):
        raise NoteError(f"cosignature key ID does not match the key of {name!r}")
    return _check_cosignature(sig, checkpoint_body, verify_key)


def verify_note_cosignatures(
    text: str, cosigners: Sequence[tuple[str, VerifyKey]]
) -> dict[str, int]:
    """Cosigner name to timestamp for each of ``cosigners`` that cosigned the note.

    Lines by other keys are ignored; a failing cosignature by a known cosigner raises.
    """
    body, signatures = parse_note(text)
    known = {(name, cosigner_key_id(name, key)): key for name, key in cosigners}
    timestamps: dict[str, int] = {}
    for sig in signatures:
        key = known.get((sig.name, sig.key_id))
        if key is not None:
            timestamps[sig.name] = _check_cosignature(sig, body, key)
    return timestamps


# ---------------------------------------------------------------------- tlog-proof


def format_proof(
    index: int, hashes: Sequence[bytes], checkpoint_note: str, extra: bytes | None = None
) -> str:
    """A ``c2sp.org/tlog-proof@v1`` text for the entry at ``index``."""
    if not isinstance(index, int) or not 0 <= index <= _MAX_UINT64:
        raise NoteError(f"proof index {index!r} is out of range")
    if len(hashes) > _MAX_PROOF_HASHES or any(len(h) != _HASH_SIZE for h in hashes):
        raise NoteError("inclusion proof must be at most 64 hashes of 32 bytes")
    parse_note(checkpoint_note)
    lines = [TLOG_PROOF_HEADER]
    if extra is not None:
        lines.append(f"extra {_b64encode(extra)}")
    lines.append(f"index {index}")
    lines.extend(_b64encode(h) for h in hashes)
    return "\n".join(lines) + "\n\n" + checkpoint_note


def _split_line(text: str, what: str) -> tuple[str, str]:
    line, newline, rest = text.partition("\n")
    if not newline:
        raise NoteError(f"tlog-proof ends before its {what}")
    return line, rest


def parse_proof(text: str) -> TlogProof:
    """The parts of a tlog-proof text; the checkpoint note is not verified here."""
    _check_text(text, "tlog-proof")
    header, rest = _split_line(text, "header line")
    if header != TLOG_PROOF_HEADER:
        raise NoteError(f"tlog-proof must start with {TLOG_PROOF_HEADER!r}")
    line, rest = _split_line(rest, "index line")
    extra = None
    if line.startswith("extra "):
        extra = _b64decode(line.removeprefix("extra "), "tlog-proof extra data")
        line, rest = _split_line(rest, "index line")
    if not line.startswith("index "):
        raise NoteError("tlog-proof has no 'index <n>' line")
    index = _parse_decimal(line.removeprefix("index "), "tlog-proof index")
    hashes: list[bytes] = []
    while True:
        line, rest = _split_line(rest, "blank line before the checkpoint")
        if not line:
            break
        if len(hashes) == _MAX_PROOF_HASHES:
            raise NoteError(f"tlog-proof has more than {_MAX_PROOF_HASHES} proof hashes")
        proof_hash = _b64decode(line, "tlog-proof hash")
        if len(proof_hash) != _HASH_SIZE:
            raise NoteError(f"tlog-proof hash has {len(proof_hash)} bytes, expected 32")
        hashes.append(proof_hash)
    parse_note(rest)
    return TlogProof(index, tuple(hashes), rest, extra)
