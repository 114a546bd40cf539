"""An ``asOf`` answer carries the proof of its place in the log: the last event it reflects,
included in the smallest signed checkpoint that covers it, checked offline."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from clients.client import LedgerClient
from clients.offline import VerificationError, leaf_hash, verify_as_of
from tests.conftest import BACKENDS
from tests.support.data_server import Served, shared_data_server

pytestmark = pytest.mark.xdist_group("data_queries")

NORTHWIND = "northwind-bio"

AS_OF_PROOF = """
query($p: Int!) {
  asOf(position: $p) {
    position
    proof {
      position leafIndex leafHash
      checkpoint { note treeSize rootHash }
      inclusion { leafIndex treeSize hashes }
    }
  }
}
"""
TRAIL = "{ auditTrail(first: 200) { edges { node { position } } } }"


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest) -> Served:
    found = shared_data_server(request, request.param)
    found.server.services.notary.checkpoint_now()
    return found


def ask(served: Served, query: str, **variables: Any) -> Any:
    data, errors = served.call(NORTHWIND, query, variables)
    assert errors == [], errors
    return data


def notary_key(served: Served) -> str:
    return str(ask(served, "{ ledger { notaryKey } }")["ledger"]["notaryKey"])


def test_as_of_answer_proves_its_last_event_is_in_a_signed_checkpoint(served: Served) -> None:
    position = served.data.positions["before_correction"]
    answer = ask(served, AS_OF_PROOF, p=position)["asOf"]
    proof = answer["proof"]
    assert proof is not None
    verified = verify_as_of(proof, notary_key(served))
    positions = [e["node"]["position"] for e in ask(served, TRAIL)["auditTrail"]["edges"]]
    assert positions, "the audit trail is empty"
    assert verified.position == max(p for p in positions if p <= position)
    assert verified.checkpoint.size > verified.index


def test_the_proof_names_the_smallest_checkpoint_covering_the_event(served: Served) -> None:
    proof = ask(served, AS_OF_PROOF, p=served.data.positions["before_correction"])["asOf"]["proof"]
    services = served.server.services
    smallest = services.notary.covering(proof["leafIndex"])
    assert smallest is not None
    assert proof["checkpoint"]["treeSize"] == smallest.size
    _, stored_hash = services.tree.leaf(proof["leafIndex"])
    assert base64.b64decode(proof["leafHash"]) == stored_hash


def test_the_leaf_hash_is_the_event_the_log_holds(served: Served) -> None:
    proof = ask(served, AS_OF_PROOF, p=served.data.positions["built"])["asOf"]["proof"]
    event = served.server.services.event_by_leaf(proof["leafIndex"])
    assert event.position == proof["position"]
    leaf = served.server.services.tree.leaf(proof["leafIndex"])[1]
    assert base64.b64decode(proof["leafHash"]) == leaf
    assert leaf != leaf_hash(b"")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("leafHash",), base64.b64encode(b"\x01" * 32).decode()),
        (("leafIndex",), 0),
        (("inclusion", "treeSize"), 1),
        (("checkpoint", "note"), "not a signed note\n"),
    ],
)
def test_a_changed_as_of_proof_does_not_verify(
    served: Served, path: tuple[str, ...], value: object
) -> None:
    proof = ask(served, AS_OF_PROOF, p=served.data.positions["built"])["asOf"]["proof"]
    verify_as_of(proof, notary_key(served))
    changed = copy.deepcopy(proof)
    target = changed
    for name in path[:-1]:
        target = target[name]
    assert target[path[-1]] != value
    target[path[-1]] = value
    with pytest.raises(VerificationError):
        verify_as_of(changed, notary_key(served))


def test_as_of_before_any_event_has_no_proof(served: Served) -> None:
    assert ask(served, AS_OF_PROOF, p=0)["asOf"]["proof"] is None


def test_the_client_checks_an_as_of_proof_against_the_pinned_notary_key(served: Served) -> None:
    actor = served.data.world[NORTHWIND]
    position = served.data.positions["built"]
    with LedgerClient(served.server.url, actor.party_id, actor.key) as client:
        answer = client.as_of(position=position)
    assert answer["position"] == position
    assert answer["proof"] is not None
    assert answer["proof"]["position"] <= position
