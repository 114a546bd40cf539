"""The layout of an evidence bundle (``cmo-ledger-evidence/v1``) and its manifest rules.

A bundle is a directory (see ``docs/evidence.md``)::

    manifest.json        format, origin, batch, tree size, exporter, SHA-256 of every other file
    manifest.sig         the exporter's Ed25519 signature over manifest.json (party, key id)
    checkpoint.txt       the signed checkpoint every proof leads to, with its cosignatures
    notary.vkey          the notary's C2SP verifier key
    trace.json           the batch's trace: batch, agreement, terms, limits, grants, entries
    data.json            the batch's data tables: discrete results, event records, tags
    cpv.json             the CPV analyses of the batch's parameters, as of the trace
    events/NNNNNN.json   one per Merkle leaf: the event, its leaf bytes and inclusion proof
    report.html          the same evidence for a person to read

Only the standard library and the ledger's storage-free modules: the exporter, the console
and the offline verifier all read these rules from here.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ledger.canonical import canonical_bytes
from ledger.domain.fields import Fields
from ledger.domain.formats import MAX_DECOMPRESSED_BYTES, ChunkBudget, read_chunk

__all__ = [
    "CHECKPOINT",
    "CPV_FILE",
    "DATA",
    "EVENTS_DIR",
    "FORMAT",
    "MANIFEST",
    "MANIFEST_DOMAIN",
    "MANIFEST_SIG",
    "NOTARY_VKEY",
    "REPORT",
    "TRACE",
    "bundle_files",
    "event_file",
    "json_bytes",
    "manifest_digests",
    "manifest_message",
    "series_points",
    "sha256_bytes",
    "sha256_file",
    "signature_document",
]

FORMAT = "cmo-ledger-evidence/v1"
MANIFEST = "manifest.json"
MANIFEST_SIG = "manifest.sig"
#: Prefixed to the manifest's canonical bytes, so that its signature can never pass for
#: the signature of an envelope, a request or a cosignature made with the same key.
MANIFEST_DOMAIN = b"cmo-ledger/evidence-manifest/v1\n"
CHECKPOINT = "checkpoint.txt"
NOTARY_VKEY = "notary.vkey"
TRACE = "trace.json"
DATA = "data.json"
CPV_FILE = "cpv.json"
REPORT = "report.html"
EVENTS_DIR = "events"


def event_file(leaf_index: int) -> str:
    """The bundle path of the event that is leaf ``leaf_index``."""
    return f"{EVENTS_DIR}/{leaf_index:06d}.json"


def _listed(name: str) -> bool:
    """Whether the manifest lists the file ``name``: all but itself and its signature."""
    return name not in (MANIFEST, MANIFEST_SIG)


def bundle_files(directory: Path) -> Iterator[str]:
    """The files of a bundle directory the manifest lists, in order."""
    for path in sorted(directory.rglob("*")):
        name = path.relative_to(directory).as_posix()
        if path.is_file() and _listed(name):
            yield name


def manifest_digests(files: Mapping[str, bytes]) -> dict[str, str]:
    """The manifest's ``files``: the SHA-256 of each file it lists, by bundle path."""
    return {name: sha256_bytes(files[name]) for name in sorted(files) if _listed(name)}


def manifest_message(manifest: Mapping[str, Any]) -> bytes:
    """The bytes ``manifest.sig`` signs: the domain, then the manifest's RFC 8785 bytes."""
    return MANIFEST_DOMAIN + canonical_bytes(dict(manifest))


def signature_document(party: str, key_id: str, signature: bytes) -> dict[str, str]:
    """``manifest.sig``: who signed the manifest, with which key, and the signature."""
    return {
        "party": party,
        "key_id": key_id,
        "signature": base64.b64encode(signature).decode("ascii"),
    }


def json_bytes(value: Any) -> bytes:
    """A bundle's JSON file as written: sorted keys, indented, ending in a newline."""
    return (json.dumps(value, indent=1, sort_keys=True) + "\n").encode("utf-8")


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return sha256_bytes(path.read_bytes())


def series_points(
    chunk: Mapping[str, Any], budget: ChunkBudget | None = None
) -> list[tuple[str, str, int]]:
    """The ``(timestamp, value, quality)`` points of a continuous chunk, checked as the
    ledger checks it (:mod:`ledger.domain.formats`): never inflated past ``budget`` (one
    submission's allowance when not given), and refused (``LedgerError``) unless its
    SHA-256 matches."""
    points: list[tuple[str, str, int]] = []
    allowance = budget if budget is not None else ChunkBudget(MAX_DECOMPRESSED_BYTES)
    read_chunk(Fields(chunk, "chunk"), allowance, points)
    return points
