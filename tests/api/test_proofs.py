"""Proofs served by the API verify offline against `/checkpoint`; witnesses cosign through it."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from clients.offline import (
    VerificationError,
    verify_checkpoint,
    verify_consistency_between,
    verify_cosigners,
    verify_inclusion_against_checkpoint,
    verify_proof_text,
)
from clients.witness import Witness
from ledger.domain.subjects import party_subject
from ledger.keys import encode_public_key
from ledger.log.notes import Checkpoint, format_proof
from tests.support.server import Server, codes
from tests.support.world import Actor, World

pytestmark = pytest.mark.xdist_group("api_proofs")

CMO = "contoso-cmo"
EVENT_WITH_PROOF = """
query($i: Int!, $n: Int) {
  event(leafIndex: $i) {
    leafIndex leafBytes inclusionProof(treeSize: $n) { leafIndex treeSize hashes }
  }
}
"""
INCLUSION = """
query($i: Int!, $n: Int) {
  inclusionProof(leafIndex: $i, treeSize: $n) { leafIndex treeSize hashes }
}
"""
CONSISTENCY = """
query($m: Int!, $n: Int) { consistencyProof(fromSize: $m, toSize: $n) { fromSize toSize hashes } }
"""
COSIGN = """
mutation($n: Int!, $line: String!) {
  cosignCheckpoint(treeSize: $n, cosignature: $line) {
    treeSize note cosignatures { witness time line }
  }
}
"""


def hashes(proof: dict[str, Any]) -> list[bytes]:
    return [base64.b64decode(h) for h in proof["hashes"]]


def add_key(server: Server, actor: Actor) -> dict[str, Any]:
    return server.submit(
        actor,
        "KeyAdded",
        party_subject(actor.party_id),
        {"public_key": encode_public_key(SigningKey.generate()), "purpose": "party"},
        meaning="authored",
    )


def signed_checkpoint(server: Server) -> tuple[str, Checkpoint, str]:
    """Sign the tree as it is now; ``(note, checkpoint, vkey)`` read as a stranger reads them."""
    server.services.notary.checkpoint_now()
    data, _ = server.call(None, "{ ledger { notaryKey } }")
    vkey = data["ledger"]["notaryKey"]
    with server.http(None) as client:
        response = client.get("/checkpoint")
    assert response.headers["content-type"].startswith("text/plain")
    return response.text, verify_checkpoint(response.text, vkey), vkey


def test_an_event_s_inclusion_proof_verifies_against_the_checkpoint(
    server: Server, api_world: World
) -> None:
    submitted = add_key(server, api_world[CMO])
    note, checkpoint, vkey = signed_checkpoint(server)
    data, errors = server.call(
        api_world[CMO], EVENT_WITH_PROOF, {"i": submitted["leafIndex"], "n": checkpoint.size}
    )
    assert errors == []
    event = data["event"]
    leaf = base64.b64decode(event["leafBytes"])
    proof = event["inclusionProof"]
    assert proof["treeSize"] == checkpoint.size
    verify_inclusion_against_checkpoint(leaf, event["leafIndex"], hashes(proof), checkpoint)
    proof_text = format_proof(event["leafIndex"], hashes(proof), note)
    assert verify_proof_text(proof_text, leaf, vkey).index == submitted["leafIndex"]


def test_the_default_proof_size_is_the_latest_checkpoint(server: Server, api_world: World) -> None:
    submitted = add_key(server, api_world[CMO])
    _, checkpoint, _ = signed_checkpoint(server)
    data, errors = server.call(api_world[CMO], INCLUSION, {"i": submitted["leafIndex"]})
    assert errors == []
    assert data["inclusionProof"]["treeSize"] == checkpoint.size


def test_a_changed_leaf_or_proof_does_not_verify(server: Server, api_world: World) -> None:
    submitted = add_key(server, api_world[CMO])
    _, checkpoint, _ = signed_checkpoint(server)
    variables = {"i": submitted["leafIndex"], "n": checkpoint.size}
    event = server.call(api_world[CMO], EVENT_WITH_PROOF, variables)[0]["event"]
    leaf = base64.b64decode(event["leafBytes"])
    proof = hashes(event["inclusionProof"])
    with pytest.raises(VerificationError):
        verify_inclusion_against_checkpoint(leaf + b" ", event["leafIndex"], proof, checkpoint)
    with pytest.raises(VerificationError):
        forged = [bytes(32), *proof[1:]]
        verify_inclusion_against_checkpoint(leaf, event["leafIndex"], forged, checkpoint)


def test_a_consistency_proof_links_an_old_checkpoint_to_a_new_one(
    server: Server, api_world: World
) -> None:
    _, old, _ = signed_checkpoint(server)
    add_key(server, api_world[CMO])
    add_key(server, api_world[CMO])
    _, new, _ = signed_checkpoint(server)
    assert new.size == old.size + 2
    data, errors = server.call(api_world[CMO], CONSISTENCY, {"m": old.size, "n": new.size})
    assert errors == []
    proof = data["consistencyProof"]
    assert (proof["fromSize"], proof["toSize"]) == (old.size, new.size)
    verify_consistency_between(old, new, hashes(proof))
    with pytest.raises(VerificationError):
        verify_consistency_between(old, new, [bytes(32), *hashes(proof)[1:]])


def test_a_witness_cosigns_the_checkpoint_through_the_api(
    server: Server, api_world: World, tmp_path: Path
) -> None:
    regulator = api_world["agency-inspectorate"]
    note, checkpoint, vkey = signed_checkpoint(server)
    witness = Witness(regulator.party_id, regulator.key, tmp_path / "witness.json", vkey)
    line = witness.cosign(note, [])
    data, errors = server.call(regulator, COSIGN, {"n": checkpoint.size, "line": line})
    assert errors == []
    cosigned = data["cosignCheckpoint"]
    assert [c["witness"] for c in cosigned["cosignatures"]] == [regulator.party_id]
    with server.http(None) as client:
        served = client.get("/checkpoint").text
    assert line in served
    assert set(verify_cosigners(served, [witness.vkey()])) == {regulator.party_id}


def test_a_cosignature_must_be_the_caller_s(
    server: Server, api_world: World, tmp_path: Path
) -> None:
    note, checkpoint, vkey = signed_checkpoint(server)
    auditor = api_world["qa-auditor-llc"]
    # The auditor's line, sent by the CMO: its key name is not the caller's party id.
    line = Witness(auditor.party_id, auditor.key, tmp_path / "w.json", vkey).cosign(note, [])
    _, errors = server.call(api_world[CMO], COSIGN, {"n": checkpoint.size, "line": line})
    assert [e["extensions"] for e in errors] == [{"code": "VALIDATION_FAILED", "field": "line"}]
    # The CMO's name, but a key the CMO never registered.
    stranger = Witness(CMO, SigningKey.generate(), tmp_path / "s.json", vkey).cosign(note, [])
    _, errors = server.call(api_world[CMO], COSIGN, {"n": checkpoint.size, "line": stranger})
    assert codes(errors) == ["UNKNOWN_SIGNER"]


@pytest.mark.parametrize(
    ("query", "variables", "code", "field"),
    [
        ("{ checkpoint(treeSize: 100000) { treeSize } }", {}, "NOT_FOUND", "treeSize"),
        (INCLUSION, {"i": 100000}, "NOT_FOUND", "leafIndex"),
        (INCLUSION, {"i": 0, "n": 100000}, "NOT_FOUND", "treeSize"),
        (CONSISTENCY, {"m": 100000}, "VALIDATION_FAILED", "fromSize"),
        (CONSISTENCY, {"m": 1, "n": 100000}, "NOT_FOUND", "toSize"),
        ("{ event(leafIndex: 100000) { type } }", {}, "NOT_FOUND", "leafIndex"),
        ('{ nextVersion(subject: "NOT-A-UUID") { version } }', {}, "VALIDATION_FAILED", "subject"),
    ],
)
def test_requests_outside_the_tree_are_refused_with_a_code_and_field(
    server: Server,
    api_world: World,
    query: str,
    variables: dict[str, Any],
    code: str,
    field: str,
) -> None:
    _, errors = server.call(api_world[CMO], query, variables)
    assert [e["extensions"] for e in errors] == [{"code": code, "field": field}]
