"""The data queries answer what the views hold: parties, agreements, batches and their
data (column-wise continuous series, downsampled on request), parameters with their
history, grants, enhancements, reviews and deliveries, with scope restrictions refused."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from typing import Any

import pytest

from ledger.timeutil import format_utc
from tests.conftest import BACKENDS
from tests.support.batches import continuous_points
from tests.support.data_server import Served, shared_data_server
from tests.support.data_world import B1, B2, TEMP_MINUTES
from tests.support.server import codes

pytestmark = pytest.mark.xdist_group("data_queries")

NORTHWIND, HELIOS, CONTOSO = "northwind-bio", "helios-tx", "contoso-cmo"
FABRIKAM, REGULATOR = "fabrikam-cmo", "agency-inspectorate"


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest) -> Served:
    return shared_data_server(request, request.param)


def ask(served: Served, party: str, query: str, **variables: Any) -> Any:
    data, errors = served.call(party, query, variables)
    assert errors == [], errors
    return data


def refused(served: Served, party: str, query: str, **variables: Any) -> list[dict[str, Any]]:
    _, errors = served.call(party, query, variables)
    assert codes(errors) == ["FORBIDDEN"], errors
    return errors


# -- parties and agreements --------------------------------------------------------------


def test_the_directory_lists_every_party_and_keys_only_to_their_owner(served: Served) -> None:
    data, errors = served.call(NORTHWIND, "{ parties { id legalName role keys { id } } }")
    by_id = {p["id"]: p for p in data["parties"]}
    assert by_id["helios-tx"]["legalName"] == "Helios Therapeutics Ltd."
    assert by_id["agency-inspectorate"]["role"] == "regulator"
    own = served.data.world[NORTHWIND].key_id
    assert own in {k["id"] for k in by_id[NORTHWIND]["keys"]}
    assert all(p["keys"] is None for pid, p in by_id.items() if pid != NORTHWIND)
    assert len(errors) == len(by_id) - 1
    assert set(codes(errors)) == {"FORBIDDEN"}


AGREEMENT = """
query($a: ID!) {
  agreement(id: $a) {
    id title sponsor cmo status termsVersion effectiveFrom amendmentPending
    terms dataOwners { dataClass owner } termsHistory { version inForce terms }
    batches { id product site startedAt endedAt }
  }
}
"""


def test_an_agreement_carries_its_terms_history_and_batches(served: Served) -> None:
    found = ask(served, NORTHWIND, AGREEMENT, a=served.data.a1)["agreement"]
    assert (found["sponsor"], found["cmo"], found["status"]) == (NORTHWIND, CONTOSO, "effective")
    assert found["termsVersion"] == 1 and found["amendmentPending"] is False
    assert found["terms"]["confidential_elements"] == [
        "media_lot_supplier",
        "shared_equipment_schedule",
        "other_client_ref",
    ]
    assert {(o["dataClass"], o["owner"]) for o in found["dataOwners"]} == {
        ("continuous", NORTHWIND),
        ("discrete", NORTHWIND),
        ("event", NORTHWIND),
    }
    assert [(v["version"], v["inForce"]) for v in found["termsHistory"]] == [(1, True)]
    assert {b["id"] for b in found["batches"]} == {B1, B2}
    assert all(b["product"] == "NWB-101" for b in found["batches"])


LATEST = "query($a: ID!, $n: Int!) { agreement(id: $a) { batches(latest: $n) { id startedAt } } }"


def test_the_latest_batches_of_an_agreement_are_the_last_by_start_time(served: Served) -> None:
    every = ask(served, NORTHWIND, AGREEMENT, a=served.data.a1)["agreement"]["batches"]
    assert len(every) >= 2, "the agreement has batches"
    latest = ask(served, NORTHWIND, LATEST, a=served.data.a1, n=1)["agreement"]["batches"]
    newest = max(every, key=lambda b: (b["startedAt"], b["id"]))
    assert [b["id"] for b in latest] == [newest["id"]]
    wide = ask(served, NORTHWIND, LATEST, a=served.data.a1, n=len(every) + 5)
    assert {b["id"] for b in wide["agreement"]["batches"]} == {b["id"] for b in every}


@pytest.mark.parametrize(("n", "code"), [(0, "VALIDATION_FAILED"), (10**6, "LIMIT_EXCEEDED")])
def test_a_latest_count_out_of_bounds_is_refused_naming_it(
    served: Served, n: int, code: str
) -> None:
    _, errors = served.call(NORTHWIND, LATEST, {"a": served.data.a1, "n": n})
    assert codes(errors) == [code], errors
    assert errors[0]["extensions"]["field"] == "latest"


# -- batch data ----------------------------------------------------------------------------

RESULTS = """
query($b: String!) {
  batch(id: $b) {
    submissions { dataClass correction reason signer }
    current: discrete { id version value status }
    all: discrete(includeSuperseded: true) { id version value status supersededBy }
    events { id kind severity acknowledgedAt acknowledgedBy }
  }
}
"""


def test_a_correction_keeps_the_old_value_readable_and_marks_it_superseded(
    served: Served,
) -> None:
    batch = ask(served, NORTHWIND, RESULTS, b=B1)["batch"]
    current = {r["id"]: r for r in batch["current"]}
    assert current["R-002"] == {"id": "R-002", "version": 2, "value": "4.58", "status": "current"}
    old = [r for r in batch["all"] if r["id"] == "R-002" and r["version"] == 1]
    assert old[0]["value"] == "4.62" and old[0]["status"] == "superseded"
    correction = [s for s in batch["submissions"] if s["correction"]]
    assert correction == [
        {
            "dataClass": "discrete",
            "correction": True,
            "reason": "transcription error in the titer (4.62 entered for 4.58)",
            "signer": CONTOSO,
        }
    ]
    assert old[0]["supersededBy"] is not None


def test_events_show_the_sponsors_acknowledgement(served: Served) -> None:
    events = {e["id"]: e for e in ask(served, NORTHWIND, RESULTS, b=B1)["batch"]["events"]}
    assert events["E-001"]["kind"] == "deviation"
    assert events["E-001"]["acknowledgedBy"] == NORTHWIND
    assert events["E-002"]["acknowledgedAt"] is None


SERIES = """
query($b: String!, $t: String!, $f: DateTime, $to: DateTime, $e: String) {
  batch(id: $b) {
    tags { tag first last points }
    continuous(tag: $t, from: $f, to: $to, every: $e) {
      tag from to every points timestamps values quality min max count
    }
  }
}
"""


def test_a_fourteen_day_series_comes_back_column_wise_point_for_point(served: Served) -> None:
    batch = ask(served, FABRIKAM, SERIES, b=B1, t="BR1.TEMP")["batch"]
    series = batch["continuous"]
    expected = continuous_points(
        "BR1.TEMP", served.data.b1_start, TEMP_MINUTES, excursion=(9000, 42)
    )
    assert series["points"] == TEMP_MINUTES == len(series["timestamps"])
    assert series["timestamps"] == [stamp for stamp, _, _ in expected]
    assert series["values"] == [float(value) for _, value, _ in expected]
    assert series["quality"] == [quality for _, _, quality in expected]
    assert series["min"] is None and series["every"] is None
    tags = {t["tag"]: t for t in batch["tags"]}
    assert tags["BR1.TEMP"]["points"] == TEMP_MINUTES
    assert tags["BR1.TEMP"]["first"] == expected[0][0]


@pytest.mark.parametrize("every", ["1h", "PT1H", "60m"])
def test_downsampling_keeps_min_max_mean_and_count_per_bucket(served: Served, every: str) -> None:
    series = ask(served, NORTHWIND, SERIES, b=B1, t="BR1.TEMP", e=every)["batch"]["continuous"]
    raw = continuous_points("BR1.TEMP", served.data.b1_start, TEMP_MINUTES, excursion=(9000, 42))
    assert series["points"] == TEMP_MINUTES
    assert sum(series["count"]) == TEMP_MINUTES
    assert len(series["timestamps"]) in (14 * 24, 14 * 24 + 1)
    assert all(stamp.endswith(":00:00.000Z") for stamp in series["timestamps"])
    assert series["values"], "the series has no buckets"
    for low, mean, high in zip(series["min"], series["values"], series["max"], strict=True):
        assert low <= mean <= high
    assert max(series["max"]) == max(float(v) for _, v, _ in raw)
    assert min(series["min"]) == min(float(v) for _, v, _ in raw)
    assert min(series["quality"]) == min(q for _, _, q in raw)


def test_a_range_returns_only_the_points_inside_it(served: Served) -> None:
    start = served.data.b1_start + timedelta(days=1)
    end = start + timedelta(minutes=59)
    series = ask(
        served, NORTHWIND, SERIES, b=B1, t="BR1.TEMP", f=format_utc(start), to=format_utc(end)
    )["batch"]["continuous"]
    assert series["points"] == 60
    assert series["timestamps"][0] == format_utc(start)
    assert series["timestamps"][-1] == format_utc(end)


@pytest.mark.parametrize("every", ["5 minutes", "0s", "500ms", "P", "PT"])
def test_a_malformed_bucket_width_is_refused(served: Served, every: str) -> None:
    _, errors = served.call(NORTHWIND, SERIES, {"b": B1, "t": "BR1.TEMP", "e": every})
    assert codes(errors) == ["VALIDATION_FAILED"]
    assert errors[0]["extensions"]["field"] == "every"


def test_a_naive_time_is_refused(served: Served) -> None:
    _, errors = served.call(
        NORTHWIND, SERIES, {"b": B1, "t": "BR1.TEMP", "f": "2024-03-01T08:00:00"}
    )
    assert codes(errors) == ["VALIDATION_FAILED"]


# -- a narrow grant: parameters, batches and a data-time window -----------------------------

NARROW = """
query($p: [String!], $t: String!, $f: DateTime, $to: DateTime) {
  batch(id: "HEL7-24-001") {
    discrete(parameters: $p) { id parameter }
    continuous(tag: $t, from: $f, to: $to) { points }
  }
}
"""


def test_a_narrow_grant_opens_exactly_its_parameters_and_window(served: Served) -> None:
    titer = served.data.h1_titer_at
    window = {"f": format_utc(titer - timedelta(minutes=30)), "to": format_utc(titer)}
    data = ask(served, REGULATOR, NARROW, p=["titer at harvest"], t="BR1.TEMP", **window)
    assert data["batch"]["discrete"] == [{"id": "H-002", "parameter": "titer at harvest"}]
    assert data["batch"]["continuous"]["points"] == 31


@pytest.mark.parametrize(
    ("what", "variables"),
    [
        ("every parameter", {"p": None, "t": "BR1.TEMP"}),
        ("another parameter", {"p": ["endotoxin"], "t": "BR1.TEMP"}),
        ("another tag", {"p": ["titer at harvest"], "t": "BR1.PH"}),
        ("the whole series", {"p": ["titer at harvest"], "t": "BR1.TEMP"}),
    ],
)
def test_asking_beyond_a_narrow_grant_is_refused_not_thinned(
    served: Served, what: str, variables: dict[str, Any]
) -> None:
    data, errors = served.call(REGULATOR, NARROW, variables)
    assert "FORBIDDEN" in codes(errors), what
    refused_fields = {tuple(e["path"]) for e in errors}
    for path in refused_fields:
        assert data["batch"][path[-1]] is None
    assert all("grant" in e["message"] for e in errors)


def test_a_window_outside_the_grant_is_refused(served: Served) -> None:
    late = served.data.h1_titer_at + timedelta(hours=2)
    errors = refused(
        served,
        REGULATOR,
        'query($f: DateTime, $to: DateTime) { batch(id: "HEL7-24-001") { '
        'continuous(tag: "BR1.TEMP", from: $f, to: $to) { points } } }',
        f=format_utc(late),
        to=format_utc(late + timedelta(minutes=10)),
    )
    assert "only for data from" in errors[0]["message"]


# -- parameters ------------------------------------------------------------------------------

PARAMETERS = """
query($a: ID!, $t: DateTime!) {
  parameters(agreementId: $a) {
    name kind unit status limitsVersion alert { low high }
    limitsHistory { version status alert { low high } inForce revision }
    limitsAt(time: $t) { version }
    revisions { outcome proposedBy decidedBy reason changes }
  }
}
"""


def test_a_parameter_keeps_every_version_of_its_limits(served: Served) -> None:
    data = ask(served, FABRIKAM, PARAMETERS, a=served.data.a1, t=format_utc(served.data.b1_start))
    do = {p["name"]: p for p in data["parameters"]}["dissolved oxygen"]
    assert (do["kind"], do["unit"], do["status"], do["limitsVersion"]) == (
        "CPP",
        "%",
        "confirmed",
        2,
    )
    assert do["alert"] == {"low": "35", "high": "50"}
    history = do["limitsHistory"]
    assert [(v["version"], v["status"], v["inForce"]) for v in history] == [
        (1, "hypothesis", False),
        (2, "confirmed", True),
    ]
    assert history[0]["alert"] == {"low": "32", "high": "55"}
    assert do["limitsAt"] is None, "the parameter was defined after the batch started"
    assert do["revisions"][0]["outcome"] == "approved"
    assert do["revisions"][0]["proposedBy"] == CONTOSO
    assert do["revisions"][0]["decidedBy"] == NORTHWIND


# -- grants, enhancements, reviews, deliveries ------------------------------------------------


def test_grants_state_their_scope_and_whether_they_are_open(served: Served) -> None:
    grants = ask(
        served,
        NORTHWIND,
        "{ grants { id grantee purpose active activeNow status includeConfidential } }",
    )["grants"]
    by_id = {g["id"]: g for g in grants}
    ids = served.data.grants
    assert by_id[ids["fabrikam"]]["purpose"] == "tech transfer of NWB-101 to Fabrikam"
    assert by_id[ids["fabrikam"]]["activeNow"] is True
    assert by_id[ids["regulator_confidential"]]["includeConfidential"] is True
    assert (by_id[ids["revoked"]]["status"], by_id[ids["revoked"]]["active"]) == ("revoked", False)
    assert by_id[ids["expired"]]["activeNow"] is False
    assert by_id[ids["future"]]["activeNow"] is False
    active = ask(served, NORTHWIND, "{ grants(active: true) { id } }")["grants"]
    assert {g["id"] for g in active} == {
        ids["fabrikam"],
        ids["regulator"],
        ids["regulator_confidential"],
    }


ENHANCEMENTS = "{ enhancements { id title commitment status owner dossier { dossier salt } } }"


def test_a_dossier_is_served_only_once_disclosed_and_matches_its_commitment(
    served: Served,
) -> None:
    claims = {e["id"]: e for e in ask(served, NORTHWIND, ENHANCEMENTS)["enhancements"]}
    sealed = claims[served.data.enhancements["sealed"]]
    assert sealed["dossier"] is None and sealed["status"] == "claimed"
    disclosed = claims[served.data.enhancements["disclosed"]]
    assert (disclosed["status"], disclosed["owner"]) == ("resolved", "joint")
    salt = bytes.fromhex(disclosed["dossier"]["salt"])
    dossier = base64.b64decode(disclosed["dossier"]["dossier"])
    assert hashlib.sha256(salt + dossier).hexdigest() == disclosed["commitment"]


REVIEWS = """
query($o: Boolean) {
  reviews(overdue: $o) {
    agreementId state overdue nextDue history { outcome completedBy countersignedBy }
  }
}
"""


def test_overdue_reviews_are_found_by_the_filter(served: Served) -> None:
    overdue = ask(served, CONTOSO, REVIEWS, o=True)["reviews"]
    assert [r["agreementId"] for r in overdue] == [served.data.a2]
    assert overdue[0]["state"] == "overdue"
    due = ask(served, CONTOSO, REVIEWS, o=False)["reviews"]
    assert [r["agreementId"] for r in due] == [served.data.a1]
    assert due[0]["history"][0]["countersignedBy"] == CONTOSO


DELIVERIES = """
query($l: Boolean) {
  deliveries(late: $l) { batch dataClass item state late dueAt firstArrivedAt }
}
"""


def test_late_and_missing_deliveries_are_found_by_the_filter(served: Served) -> None:
    late = ask(served, NORTHWIND, DELIVERIES, l=True)["deliveries"]
    states = {(d["batch"], d["dataClass"], d["item"]): d["state"] for d in late}
    assert states[(B2, "discrete", "")] == "late"
    assert states[(B2, "continuous", "")] == "missing"
    assert all(d["late"] for d in late)
    on_time = ask(served, NORTHWIND, DELIVERIES, l=False)["deliveries"]
    assert (B1, "discrete") in {(d["batch"], d["dataClass"]) for d in on_time}
    assert not {(d["batch"], d["dataClass"], d["item"]) for d in on_time} & set(states)


def test_a_helios_batch_named_by_northwind_is_refused(served: Served) -> None:
    refused(served, NORTHWIND, '{ deliveries(batch: "HEL7-24-001") { batch } }')
    refused(
        served, NORTHWIND, "query($a: ID!) { reviews(agreementId: $a) { state } }", a=served.data.a2
    )
