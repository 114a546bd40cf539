"""``asOf`` answers from the views as they stood at a position, with access decided now;
``traceBatch`` gives an auditor one batch end to end, with verifiable signatures."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import rfc8785
from nacl.signing import VerifyKey

from ledger.keys import decode_public_key
from ledger.log.envelope import ENVELOPE_DOMAIN, decode_signature
from ledger.timeutil import format_utc, now_utc
from tests.conftest import BACKENDS
from tests.support.data_server import Served, shared_data_server
from tests.support.data_world import B1, H1, SECRET
from tests.support.server import codes

pytestmark = pytest.mark.xdist_group("data_queries")

NORTHWIND, HELIOS, CONTOSO = "northwind-bio", "helios-tx", "contoso-cmo"
REGULATOR, AUDITOR = "agency-inspectorate", "qa-auditor-llc"


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest) -> Served:
    return shared_data_server(request, request.param)


def ask(served: Served, party: str, query: str, **variables: Any) -> Any:
    data, errors = served.call(party, query, variables)
    assert errors == [], errors
    return data


# -- asOf --------------------------------------------------------------------------------

TITER_AS_OF = """
query($p: Int) {
  asOf(position: $p) {
    position time
    batch(id: "NWB101-24-001") {
      discrete(parameters: ["titer at harvest"], includeSuperseded: true) {
        id version value status
      }
    }
  }
}
"""


def test_as_of_a_position_the_data_is_as_it_stood_then(served: Served) -> None:
    position = served.data.positions["before_correction"]
    answer = ask(served, NORTHWIND, TITER_AS_OF, p=position)["asOf"]
    assert answer["position"] == position
    assert answer["batch"]["discrete"] == [
        {"id": "R-002", "version": 1, "value": "4.62", "status": "current"}
    ]
    now = ask(served, NORTHWIND, TITER_AS_OF, p=position + 1)["asOf"]["batch"]["discrete"]
    assert [(r["version"], r["status"]) for r in now] == [(1, "superseded"), (2, "current")]


TRAIL = "{ auditTrail(first: 200) { edges { node { position recordedAt type } } } }"
AT_TIME = "query($t: DateTime!) { asOf(time: $t) { position time } }"


def test_as_of_a_time_resolves_to_the_last_position_recorded_by_then(served: Served) -> None:
    edges = ask(served, CONTOSO, TRAIL)["auditTrail"]["edges"]
    corrected = next(e["node"] for e in edges if e["node"]["type"] == "DataCorrected")
    answer = ask(served, CONTOSO, AT_TIME, t=corrected["recordedAt"])["asOf"]
    by_then = [e["node"]["position"] for e in edges if e["node"]["recordedAt"] <= answer["time"]]
    assert answer["time"] == corrected["recordedAt"]
    assert answer["position"] == max(by_then)
    assert answer["position"] >= corrected["position"]


@pytest.mark.parametrize(
    ("query", "variables", "field"),
    [
        ("{ asOf { position } }", {}, "position"),
        ('{ asOf(position: 1, time: "2024-01-01T00:00:00Z") { position } }', {}, "position"),
        ("query($p: Int) { asOf(position: $p) { position } }", {"p": 10**9}, "position"),
        ("{ asOf(position: -1) { position } }", {}, "position"),
        ("query($t: DateTime) { asOf(time: $t) { position } }", "future", "time"),
    ],
)
def test_an_impossible_as_of_is_refused(
    served: Served, query: str, variables: Any, field: str
) -> None:
    if variables == "future":
        variables = {"t": format_utc(now_utc() + timedelta(days=1))}
    _, errors = served.call(NORTHWIND, query, variables)
    assert codes(errors) == ["VALIDATION_FAILED"]
    assert errors[0]["extensions"]["field"] == field


B1_AS_OF = 'query($p: Int!) { asOf(position: $p) { batch(id: "NWB101-24-001") { id } } }'


def test_a_grant_that_was_open_then_but_is_not_now_opens_nothing(served: Served) -> None:
    # At this position the auditor's (since revoked) grant was open.
    position = served.data.positions["auditor_active"]
    grants = ask(
        served,
        NORTHWIND,
        "query($p: Int!) { asOf(position: $p) { grants { id active activeNow status } } }",
        p=position,
    )["asOf"]["grants"]
    revoked = next(g for g in grants if g["id"] == served.data.grants["revoked"])
    assert (revoked["status"], revoked["activeNow"]) == ("active", False)
    data, errors = served.call(AUDITOR, B1_AS_OF, {"p": position})
    assert codes(errors) == ["FORBIDDEN"]
    assert data["asOf"]["batch"] is None


def test_a_grant_open_now_opens_data_recorded_before_it(served: Served) -> None:
    before = served.data.positions["before_correction"]
    answer = ask(served, REGULATOR, TITER_AS_OF, p=before)["asOf"]
    assert answer["batch"]["discrete"][0]["value"] == "4.62"


def test_as_of_the_start_shows_only_what_existed(served: Served) -> None:
    answer = ask(served, CONTOSO, "{ asOf(position: 3) { parties { id } agreements { id } } }")
    assert len(answer["asOf"]["parties"]) == 3
    assert answer["asOf"]["agreements"] == []


# -- traceBatch ----------------------------------------------------------------------------

TRACE = """
query($b: String!) {
  traceBatch(id: $b) {
    position answeredAt
    checkpoint { treeSize rootHash note }
    batch { id agreementId startedAt }
    agreement { id sponsor cmo }
    termsInForce { version inForce }
    parameterLimits { name kind versions { version alert { low high } effectiveFrom } }
    grants { id grantee dataClasses includeConfidential activeNow }
    corrections { reason signer recordedAt }
    deviations { id kind acknowledgedBy acknowledgedAt confidential { element value } masked }
    events { position leafIndex type signer meaning event { envelope signature } }
  }
}
"""


def public_keys(served: Served, party: str) -> dict[str, VerifyKey]:
    """Every party's admitted key, from the PartyAdmitted envelopes (readable by everyone)."""
    query = """
    { auditTrail(filter: {type: "PartyAdmitted"}, first: 50) {
        edges { node { event { envelope } } } } }
    """
    edges = ask(served, party, query)["auditTrail"]["edges"]
    keys = {}
    for edge in edges:
        payload = edge["node"]["event"]["envelope"]["payload"]
        keys[payload["party"]] = decode_public_key(payload["public_key"])
    return keys


def test_the_regulator_traces_a_batch_end_to_end(served: Served) -> None:
    trace = ask(served, REGULATOR, TRACE, b=B1)["traceBatch"]
    assert trace["batch"]["id"] == B1
    assert trace["agreement"] == {"id": served.data.a1, "sponsor": NORTHWIND, "cmo": CONTOSO}
    assert trace["position"] >= served.data.positions["built"]
    assert trace["checkpoint"]["treeSize"] > 0
    assert trace["checkpoint"]["note"].startswith("ledger.test/cmo\n")
    assert [(t["version"], t["inForce"]) for t in trace["termsInForce"]] == [(1, True)]
    limits = {p["name"]: p["versions"] for p in trace["parameterLimits"]}
    assert [v["alert"] for v in limits["dissolved oxygen"]] == [
        {"low": "32", "high": "55"},
        {"low": "35", "high": "50"},
    ]
    assert [v["version"] for v in limits["culture temperature"]] == [1]
    grants = {g["id"] for g in trace["grants"]}
    ids = served.data.grants
    assert {ids["fabrikam"], ids["regulator"], ids["regulator_confidential"]} <= grants
    assert ids["helios"] not in grants
    assert [c["reason"] for c in trace["corrections"]] == [
        "transcription error in the titer (4.62 entered for 4.58)"
    ]
    deviation = trace["deviations"][0]
    assert (deviation["id"], deviation["acknowledgedBy"]) == ("E-001", NORTHWIND)
    assert deviation["masked"] == []
    types = [e["type"] for e in trace["events"]]
    assert types == [
        "BatchRegistered",
        "DataSubmitted",
        "DataSubmitted",
        "DataSubmitted",
        "DataCorrected",
        "DataAcknowledged",
    ]


def test_every_signature_in_a_trace_verifies_offline(served: Served) -> None:
    trace = ask(served, REGULATOR, TRACE, b=B1)["traceBatch"]
    keys = public_keys(served, REGULATOR)
    assert trace["events"], "the trace holds no events"
    for entry in trace["events"]:
        envelope, signature = entry["event"]["envelope"], entry["event"]["signature"]
        assert envelope["signer"] == entry["signer"]
        message = ENVELOPE_DOMAIN + rfc8785.dumps(envelope)
        keys[entry["signer"]].verify(message, decode_signature(signature))
        assert entry["leafIndex"] < trace["checkpoint"]["treeSize"]


def test_the_sponsor_verifies_every_cmo_signature_on_its_batch_without_the_cmos_secrets(
    served: Served,
) -> None:
    data, errors = served.call(NORTHWIND, TRACE, {"b": B1})
    assert errors == []
    trace = data["traceBatch"]
    assert trace["deviations"][0]["masked"] == ["other_client_ref"]
    assert trace["events"], "the trace holds no events"
    assert SECRET not in json.dumps(trace)
    keys = public_keys(served, NORTHWIND)
    for entry in trace["events"]:
        envelope, signature = entry["event"]["envelope"], entry["event"]["signature"]
        message = ENVELOPE_DOMAIN + rfc8785.dumps(envelope)
        keys[entry["signer"]].verify(message, decode_signature(signature))


def test_a_narrow_grant_traces_the_batch_but_not_the_data_it_does_not_open(
    served: Served,
) -> None:
    data, errors = served.call(REGULATOR, TRACE, {"b": H1})
    trace = data["traceBatch"]
    assert trace["batch"]["id"] == H1
    assert {g["id"] for g in trace["grants"]} == {served.data.grants["helios"]}
    assert trace["deviations"] is None
    assert ["traceBatch", "deviations"] in [e["path"] for e in errors]
    assert set(codes(errors)) == {"FORBIDDEN"}


@pytest.mark.parametrize("party", [HELIOS, AUDITOR])
def test_a_batch_another_party_may_not_see_cannot_be_traced(served: Served, party: str) -> None:
    data, errors = served.call(party, TRACE, {"b": B1})
    assert codes(errors) == ["FORBIDDEN"]
    assert data is None or data["traceBatch"] is None
