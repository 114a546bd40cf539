"""``auditTrail`` is a keyset connection on log position: opaque cursors, pages that stay
put while the log grows, filters that never thin an answer about something named."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from nacl.signing import SigningKey

from ledger.domain.subjects import batch_subject, party_subject
from ledger.keys import encode_public_key
from tests.conftest import BACKENDS
from tests.support.data_server import Served, shared_data_server
from tests.support.data_world import B1, H1, SECRET
from tests.support.server import codes

pytestmark = pytest.mark.xdist_group("data_queries")

NORTHWIND, HELIOS, CONTOSO = "northwind-bio", "helios-tx", "contoso-cmo"
FABRIKAM, REGULATOR, AUDITOR = "fabrikam-cmo", "agency-inspectorate", "qa-auditor-llc"
PARTY_EVENTS = {"PartyAdmitted", "KeyAdded", "KeyRevoked"}

PAGE = """
query($f: AuditFilter, $n: Int!, $after: String) {
  auditTrail(filter: $f, first: $n, after: $after) {
    position
    edges { cursor node { position leafIndex subject type signer agreementId batch recordedAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest) -> Served:
    return shared_data_server(request, request.param)


def page(
    served: Served, party: str, size: int, after: str | None = None, **wanted: Any
) -> dict[str, Any]:
    data, errors = served.call(party, PAGE, {"f": wanted or None, "n": size, "after": after})
    assert errors == [], errors
    return dict(data["auditTrail"])


def walk(served: Served, party: str, size: int, **wanted: Any) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        found = page(served, party, size, after, **wanted)
        nodes.extend(edge["node"] for edge in found["edges"])
        if not found["pageInfo"]["hasNextPage"]:
            return nodes
        after = found["pageInfo"]["endCursor"]


def add_key(served: Served, party: str) -> int:
    actor = served.data.world[party]
    payload = {"public_key": encode_public_key(SigningKey.generate()), "purpose": "party"}
    submitted = served.server.submit(
        actor, "KeyAdded", party_subject(party), payload, meaning="authored"
    )
    return int(submitted["position"])


def test_pages_walk_the_trail_in_log_order_without_gaps_or_repeats(served: Served) -> None:
    whole = page(served, CONTOSO, 500)
    assert not whole["pageInfo"]["hasNextPage"]
    walked = walk(served, CONTOSO, 7)
    positions = [node["position"] for node in walked]
    assert positions == sorted(set(positions))
    assert positions[: len(whole["edges"])] == [e["node"]["position"] for e in whole["edges"]]
    leaves = [node["leafIndex"] for node in walked]
    assert leaves == sorted(set(leaves))


def test_cursors_are_opaque_and_pages_say_where_they_stand(served: Served) -> None:
    first = page(served, CONTOSO, 3)
    cursors = [edge["cursor"] for edge in first["edges"]]
    positions = [str(edge["node"]["position"]) for edge in first["edges"]]
    assert not set(cursors) & set(positions)
    assert first["pageInfo"]["startCursor"] == cursors[0]
    assert first["pageInfo"]["endCursor"] == cursors[-1]
    assert (first["pageInfo"]["hasNextPage"], first["pageInfo"]["hasPreviousPage"]) == (True, False)
    second = page(served, CONTOSO, 3, cursors[-1])
    assert second["pageInfo"]["hasPreviousPage"] is True
    assert second["edges"][0]["node"]["position"] > first["edges"][-1]["node"]["position"]


def test_a_page_stays_put_while_events_are_appended(served: Served) -> None:
    first = page(served, NORTHWIND, 4)
    before = [node["position"] for node in walk(served, NORTHWIND, 50)]
    appended = [add_key(served, NORTHWIND) for _ in range(3)]
    rest = walk_after(served, NORTHWIND, 4, first["pageInfo"]["endCursor"])
    seen = [edge["node"]["position"] for edge in first["edges"]] + rest
    assert seen == sorted(set(seen))
    assert seen[: len(before)] == before
    assert seen[len(before) :][-3:] == appended


def walk_after(served: Served, party: str, size: int, after: str) -> list[int]:
    positions: list[int] = []
    cursor: str | None = after
    while cursor is not None:
        found = page(served, party, size, cursor)
        positions.extend(edge["node"]["position"] for edge in found["edges"])
        cursor = found["pageInfo"]["endCursor"] if found["pageInfo"]["hasNextPage"] else None
    return positions


def test_filters_narrow_the_trail(served: Served) -> None:
    of_b1 = walk(served, NORTHWIND, 50, batch=B1)
    assert {node["batch"] for node in of_b1} == {B1}
    assert [node["type"] for node in of_b1][:2] == ["BatchRegistered", "DataSubmitted"]
    by_subject = walk(served, NORTHWIND, 50, subject=str(batch_subject(B1)))
    assert by_subject == of_b1
    corrections = walk(served, NORTHWIND, 50, type="DataCorrected", signer=CONTOSO)
    assert [(n["type"], n["signer"], n["batch"]) for n in corrections] == [
        ("DataCorrected", CONTOSO, B1)
    ]
    of_a1 = walk(served, FABRIKAM, 50, agreement=served.data.a1)
    assert {node["agreementId"] for node in of_a1} == {served.data.a1}
    stamp = corrections[0]["recordedAt"]
    since = walk(served, CONTOSO, 50, **{"from": stamp})
    assert all(node["recordedAt"] >= stamp for node in since)
    until = walk(served, CONTOSO, 50, to=stamp)
    assert all(node["recordedAt"] < stamp for node in until)


@pytest.mark.parametrize(
    ("party", "wanted"),
    [
        (NORTHWIND, {"batch": H1}),
        (NORTHWIND, {"batch": "NWB101-99-999"}),
        (FABRIKAM, {"agreement": "A2"}),
        (NORTHWIND, {"subject": "helios-grant"}),
        (NORTHWIND, {"subject": "unknown"}),
        (AUDITOR, {"batch": B1}),
        (HELIOS, {"subject": str(batch_subject(B1))}),
    ],
)
def test_naming_something_the_caller_may_not_see_is_refused(
    served: Served, party: str, wanted: dict[str, Any]
) -> None:
    names = {
        "A2": served.data.a2,
        "helios-grant": served.data.grants["helios"],
        "unknown": str(uuid.uuid4()),
    }
    wanted = {key: names.get(value, value) for key, value in wanted.items()}
    data, errors = served.call(party, PAGE, {"f": wanted, "n": 10})
    assert codes(errors) == ["FORBIDDEN"]
    assert errors[0]["extensions"]["field"] == f"filter.{next(iter(wanted))}"
    assert data["auditTrail"] is None


def test_an_unnamed_filter_leaves_out_what_the_caller_may_not_see(served: Served) -> None:
    submitted = walk(served, NORTHWIND, 50, type="DataSubmitted")
    assert submitted and {node["agreementId"] for node in submitted} == {served.data.a1}
    by_helios = walk(served, NORTHWIND, 50, signer=HELIOS)
    assert all(node["type"] in PARTY_EVENTS for node in by_helios)


def test_a_stranger_sees_party_events_and_its_own_grants_only(served: Served) -> None:
    nodes = walk(served, AUDITOR, 100)
    own = {served.data.grants[name] for name in ("expired", "revoked", "future")}
    for node in nodes:
        assert node["type"] in PARTY_EVENTS or node["subject"] in own, node
    assert {n["subject"] for n in nodes if n["type"] == "AccessGranted"} == own
    assert [n["type"] for n in nodes if n["type"] == "AccessRevoked"] == ["AccessRevoked"]


def test_as_of_a_position_the_trail_ends_there(served: Served) -> None:
    position = served.data.positions["before_correction"]
    query = """
    query($p: Int!) {
      asOf(position: $p) { auditTrail(first: 500) { position edges { node { position } } } }
    }
    """
    data, errors = served.call(REGULATOR, query, {"p": position})
    assert errors == []
    trail = data["asOf"]["auditTrail"]
    assert trail["position"] == position
    assert max(edge["node"]["position"] for edge in trail["edges"]) == position


ENVELOPES = """
query($f: AuditFilter) {
  auditTrail(filter: $f, first: 50) {
    edges { node { type leafIndex event { leafIndex envelope } } }
  }
}
"""


def test_an_entry_serves_its_envelope_when_its_data_is_open_committed_secrets_and_all(
    served: Served,
) -> None:
    data, errors = served.call(FABRIKAM, ENVELOPES, {"f": {"batch": B1}})
    nodes = [edge["node"] for edge in data["auditTrail"]["edges"]]
    readable = [(n["type"], n["event"] is not None) for n in nodes]
    assert SECRET not in json.dumps(nodes)
    assert readable == [
        ("BatchRegistered", True),
        ("DataSubmitted", True),
        ("DataSubmitted", True),
        ("DataSubmitted", True),
        ("DataCorrected", True),
        ("DataAcknowledged", True),
    ]
    assert errors == []
    for node in nodes:
        assert node["event"]["leafIndex"] == node["leafIndex"]


@pytest.mark.parametrize(
    ("variables", "code", "field"),
    [
        ({"n": 501}, "LIMIT_EXCEEDED", "first"),
        ({"n": 0}, "VALIDATION_FAILED", "first"),
        ({"n": 5, "after": "not a cursor"}, "VALIDATION_FAILED", "after"),
        (
            {"n": 5, "after": base64.b64encode(b"arrayconnection:3").decode()},
            "VALIDATION_FAILED",
            "after",
        ),
    ],
)
def test_a_page_too_large_or_a_foreign_cursor_is_refused(
    served: Served, variables: dict[str, Any], code: str, field: str
) -> None:
    _, errors = served.call(CONTOSO, PAGE, variables)
    assert codes(errors) == [code]
    assert errors[0]["extensions"]["field"] == field
