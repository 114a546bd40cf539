"""Offline verification of the ledger's checkpoints and proofs, from files alone.

What a verifier needs: the log's verifier key text (``<name>+<key ID>+<base64>``), a
signed checkpoint or a ``c2sp.org/tlog-proof@v1`` text, and the leaf bytes it proves.
Nothing here touches a network or a database; the module imports only the standard
library, PyNaCl, ``ledger.log.merkle`` and ``ledger.log.notes``.

Every failure raises ``VerificationError`` saying what did not verify. As a command::

    python -m clients.offline checkpoint CHECKPOINT_FILE VKEY_FILE
    python -m clients.offline proof PROOF_FILE LEAF_FILE VKEY_FILE
"""

from __future__ import annotations

import argparse
import base64
import binascii
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ledger.log.merkle import (
    EMPTY_ROOT,
    consistency_proof_of,
    inclusion_proof_of,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from ledger.log.notes import (
    Checkpoint,
    NoteError,
    TlogProof,
    parse_checkpoint,
    parse_cosigner_vkey,
    parse_note,
    parse_proof,
    parse_vkey,
    verify_note,
    verify_note_cosignatures,
)

__all__ = [
    "EMPTY_ROOT",
    "Checkpoint",
    "TlogProof",
    "VerificationError",
    "VerifiedAsOf",
    "VerifiedProof",
    "consistency_proof_of",
    "inclusion_proof_of",
    "leaf_hash",
    "main",
    "node_hash",
    "parse_checkpoint",
    "parse_note",
    "parse_proof",
    "root_of",
    "verify_as_of",
    "verify_checkpoint",
    "verify_consistency",
    "verify_consistency_between",
    "verify_cosigners",
    "verify_inclusion",
    "verify_inclusion_against_checkpoint",
    "verify_leaf_hash_against_checkpoint",
    "verify_proof_text",
]


class VerificationError(Exception):
    """A checkpoint, cosignature or proof did not verify; the message says which and why."""


@dataclass(frozen=True)
class VerifiedProof:
    """What a verified tlog-proof establishes: leaf ``index`` is in ``checkpoint``.

    ``extra`` is the proof's unauthenticated extra data; ``cosignatures`` maps each
    required cosigner that verified to its timestamp.
    """

    index: int
    checkpoint: Checkpoint
    extra: bytes | None = None
    cosignatures: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class VerifiedAsOf:
    """What a verified as-of proof establishes: the answer's last event is leaf ``index``
    (at log ``position``) of the tree that ``checkpoint`` commits to."""

    position: int
    index: int
    leaf_hash: bytes
    checkpoint: Checkpoint


def verify_checkpoint(note_text: str, vkey_text: str, *, origin: str | None = None) -> Checkpoint:
    """The checkpoint in ``note_text`` once the log key ``vkey_text`` has signed it.

    Pass ``origin`` to also require the checkpoint's origin line.
    """
    try:
        name, _, key = parse_vkey(vkey_text)
    except NoteError as exc:
        raise VerificationError(f"log verifier key: {exc}") from exc
    try:
        body = verify_note(note_text, [(name, key)])
    except NoteError as exc:
        raise VerificationError(f"checkpoint signature: {exc}") from exc
    try:
        checkpoint = parse_checkpoint(body)
    except NoteError as exc:
        raise VerificationError(f"checkpoint text: {exc}") from exc
    if origin is not None and checkpoint.origin != origin:
        raise VerificationError(
            f"checkpoint is for origin {checkpoint.origin!r}, expected {origin!r}"
        )
    return checkpoint


def verify_cosigners(
    note_text: str, cosigner_vkeys: Sequence[str], *, quorum: int | None = None
) -> dict[str, int]:
    """Cosigner name to timestamp, once at least ``quorum`` (default: all) have cosigned."""
    try:
        cosigners = [parse_cosigner_vkey(text) for text in cosigner_vkeys]
    except NoteError as exc:
        raise VerificationError(f"cosigner verifier key: {exc}") from exc
    try:
        timestamps = verify_note_cosignatures(note_text, [(n, k) for n, _, k in cosigners])
    except NoteError as exc:
        raise VerificationError(f"cosignature: {exc}") from exc
    needed = len(cosigners) if quorum is None else quorum
    if len(timestamps) < needed:
        missing = sorted({name for name, _, _ in cosigners} - timestamps.keys())
        raise VerificationError(
            f"{len(timestamps)} of {needed} required cosignatures; missing: {', '.join(missing)}"
        )
    return timestamps


def verify_inclusion_against_checkpoint(
    leaf_bytes: bytes, index: int, proof_hashes: Sequence[bytes], checkpoint: Checkpoint
) -> None:
    """Check that ``leaf_bytes`` is leaf ``index`` of the tree ``checkpoint`` commits to."""
    verify_leaf_hash_against_checkpoint(leaf_hash(leaf_bytes), index, proof_hashes, checkpoint)


def verify_leaf_hash_against_checkpoint(
    hashed_leaf: bytes, index: int, proof_hashes: Sequence[bytes], checkpoint: Checkpoint
) -> None:
    """Check that the leaf hashed ``hashed_leaf`` is leaf ``index`` of ``checkpoint``'s tree."""
    if not verify_inclusion(
        hashed_leaf, index, checkpoint.size, proof_hashes, checkpoint.root_hash
    ):
        raise VerificationError(
            f"inclusion proof of leaf {index} does not match the checkpoint of "
            f"{checkpoint.origin!r} at size {checkpoint.size}"
        )


def verify_as_of(
    proof: Mapping[str, object], vkey_text: str, *, origin: str | None = None
) -> VerifiedAsOf:
    """Check the ``proof`` of an ``asOf`` answer (as the API returns it, camelCase) offline.

    The checkpoint must be signed by the log key ``vkey_text``, the inclusion proof must be
    of its tree size, and the leaf hash must be that leaf of the tree it commits to.
    """
    checkpoint_field = proof.get("checkpoint")
    inclusion = proof.get("inclusion")
    if not isinstance(checkpoint_field, Mapping) or not isinstance(inclusion, Mapping):
        raise VerificationError("as-of proof: checkpoint and inclusion are required")
    checkpoint = verify_checkpoint(str(checkpoint_field.get("note", "")), vkey_text, origin=origin)
    index, size, position = (
        _integer(inclusion, "leafIndex"),
        _integer(inclusion, "treeSize"),
        _integer(proof, "position"),
    )
    if size != checkpoint.size or index != _integer(proof, "leafIndex"):
        raise VerificationError(
            f"as-of proof: the inclusion proof is of leaf {index} in a tree of {size}, not of "
            f"leaf {proof.get('leafIndex')} in the checkpoint's tree of {checkpoint.size}"
        )
    hashes = inclusion.get("hashes")
    if not isinstance(hashes, list):
        raise VerificationError("as-of proof: inclusion.hashes must be a list")
    hashed_leaf = _base64(proof.get("leafHash"), "leafHash")
    proof_hashes = [_base64(item, "inclusion.hashes") for item in hashes]
    verify_leaf_hash_against_checkpoint(hashed_leaf, index, proof_hashes, checkpoint)
    return VerifiedAsOf(position, index, hashed_leaf, checkpoint)


def _integer(data: Mapping[str, object], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise VerificationError(f"as-of proof: {name} must be a non-negative integer")
    return value


def _base64(value: object, name: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True) if isinstance(value, str) else b""
    except (binascii.Error, ValueError):
        raise VerificationError(f"as-of proof: {name} is not base64") from None


def verify_consistency_between(
    old_checkpoint: Checkpoint, new_checkpoint: Checkpoint, proof: Sequence[bytes]
) -> None:
    """Check that the ``old_checkpoint`` tree is a prefix of the ``new_checkpoint`` tree."""
    old, new = old_checkpoint, new_checkpoint
    if old.origin != new.origin:
        raise VerificationError(
            f"checkpoints are of different logs: {old.origin!r}, {new.origin!r}"
        )
    if old.size > new.size:
        raise VerificationError(f"old checkpoint size {old.size} exceeds new size {new.size}")
    if old.size == 0:
        # RFC 9162 defines no proof from the empty tree: it is a prefix of every tree.
        if old.root_hash != EMPTY_ROOT or proof:
            raise VerificationError("an empty checkpoint needs the empty root and an empty proof")
        return
    if not verify_consistency(old.size, new.size, proof, old.root_hash, new.root_hash):
        raise VerificationError(
            f"consistency proof from size {old.size} to size {new.size} of {old.origin!r} "
            "does not verify"
        )


def verify_proof_text(
    proof_text: str,
    leaf_bytes: bytes,
    vkey_text: str,
    *,
    origin: str | None = None,
    cosigner_vkeys: Sequence[str] = (),
    quorum: int | None = None,
) -> VerifiedProof:
    """Verify a tlog-proof: the log's checkpoint signature, any cosigners, and inclusion."""
    try:
        proof = parse_proof(proof_text)
    except NoteError as exc:
        raise VerificationError(f"tlog-proof: {exc}") from exc
    checkpoint = verify_checkpoint(proof.checkpoint_note, vkey_text, origin=origin)
    cosignatures = (
        verify_cosigners(proof.checkpoint_note, cosigner_vkeys, quorum=quorum)
        if cosigner_vkeys
        else {}
    )
    verify_inclusion_against_checkpoint(leaf_bytes, proof.index, proof.hashes, checkpoint)
    return VerifiedProof(proof.index, checkpoint, proof.extra, cosignatures)


# --------------------------------------------------------------------------- command


def _read_text(path: str) -> str:
    try:
        return Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise VerificationError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise VerificationError(f"{path} is not UTF-8 text") from exc


def _run(args: argparse.Namespace) -> str:
    vkey_text = _read_text(args.vkey).strip()
    if args.command == "checkpoint":
        checkpoint = verify_checkpoint(_read_text(args.checkpoint), vkey_text)
        return f"OK: checkpoint of {checkpoint.origin} at size {checkpoint.size}"
    leaf = Path(args.leaf).read_bytes()
    result = verify_proof_text(_read_text(args.proof), leaf, vkey_text)
    return (
        f"OK: leaf {result.index} is in {result.checkpoint.origin} at size {result.checkpoint.size}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Verify a checkpoint or a tlog-proof from files; 0 when it verifies, 1 otherwise."""
    parser = argparse.ArgumentParser(prog="python -m clients.offline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    checkpoint = commands.add_parser("checkpoint", help="verify a signed checkpoint")
    checkpoint.add_argument("checkpoint")
    checkpoint.add_argument("vkey")
    proof = commands.add_parser("proof", help="verify a tlog-proof for a leaf")
    proof.add_argument("proof")
    proof.add_argument("leaf")
    proof.add_argument("vkey")
    args = parser.parse_args(argv)
    try:
        print(_run(args))
    except (VerificationError, OSError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
