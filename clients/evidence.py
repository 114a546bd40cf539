"""Export a batch's evidence bundle from the GraphQL API into a directory.

``export_evidence(client, batch, out_dir)`` builds the bundle with
:func:`ledger.evidence.export.build_bundle` (the one definition of what a bundle holds,
shared with the console's download), signs its manifest with the exporter's party key
(``manifest.sig``), so that no file can be rewritten and re-hashed behind its back, and
writes it. ``client`` is anything with a ``graphql(query, variables)`` method that answers
the ``data`` of a signed request and raises on refusal, such as
:class:`clients.client.LedgerClient`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from ledger.clock import SYSTEM, Clock
from ledger.evidence.export import (
    EvidenceRefused,
    GraphQLClient,
    Progress,
    build_bundle,
)
from ledger.evidence.layout import (
    MANIFEST_SIG,
    json_bytes,
    manifest_message,
    signature_document,
)
from ledger.keys import key_id

__all__ = ["EvidenceRefused", "GraphQLClient", "Progress", "export_evidence", "sign_manifest"]


def _prepare(out_dir: Path) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        raise EvidenceRefused(
            f"{out_dir} is not empty: choose a new directory for the bundle", field="out"
        )
    out_dir.mkdir(parents=True, exist_ok=True)


def _write(out_dir: Path, files: Mapping[str, bytes]) -> None:
    for name, content in files.items():
        path = out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def export_evidence(
    client: GraphQLClient,
    batch: str,
    out_dir: Path,
    *,
    key: SigningKey | None = None,
    progress: Progress | None = None,
    checkpoint_wait: float = 30.0,
    clock: Clock = SYSTEM,
) -> Path:
    """Write the evidence bundle of ``batch`` into the new or empty ``out_dir``; return it.

    ``key`` signs the manifest: a key the log admitted for the party the client signs as
    (by default the client's own key, for a :class:`~clients.client.LedgerClient`).
    Waits up to ``checkpoint_wait`` seconds for a signed checkpoint covering the batch's
    latest events; ``clock`` dates the export. Nothing is written when it is refused.
    """
    signing_key = _signing_key(client, key)
    _prepare(out_dir)
    unsigned = build_bundle(
        client,
        batch,
        key_id=key_id(signing_key.verify_key),
        progress=progress,
        checkpoint_wait=checkpoint_wait,
        clock=clock,
    )
    signature = signing_key.sign(unsigned.message).signature
    _write(out_dir, unsigned.signed(key_id(signing_key.verify_key), signature))
    return out_dir


def _signing_key(client: GraphQLClient, key: SigningKey | None) -> SigningKey:
    """``key``, else the key the client signs its requests with."""
    if key is not None:
        return key
    # A LedgerClient holds the key of the party it speaks for, which is the exporter.
    found = getattr(client, "signing_key", None)
    if isinstance(found, SigningKey):
        return found
    raise EvidenceRefused(
        "the manifest must be signed by the exporter: pass key=, the SigningKey of the "
        "party the client signs as",
        field="key",
    )


def sign_manifest(out_dir: Path, manifest: Mapping[str, Any], party: str, key: SigningKey) -> None:
    """Write ``manifest.sig``: ``party``'s signature with ``key`` over ``manifest``."""
    signature = key.sign(manifest_message(manifest)).signature
    document = signature_document(party, key_id(key.verify_key), signature)
    (out_dir / MANIFEST_SIG).write_bytes(json_bytes(document))
