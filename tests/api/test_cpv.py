"""Continued process verification as a query (R26): the chart, rules and capability of a
parameter's results as the ledger knew them at a position, reproducible byte for byte, with
a digest anyone recomputes, only for parties who may read the data; signals and their
acknowledgement."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from clients.bundle import CPV_FILE, MANIFEST, REPORT, TRACE, sha256_file, verify_bundle
from clients.client import LedgerClient
from clients.evidence import export_evidence, sign_manifest
from ledger.config import Settings
from ledger.cpv import (
    CpvInput,
    capability_individuals,
    capability_subgroups,
    evaluate_chart,
    individuals_chart,
    inputs_digest,
    xbar_r_chart,
)
from ledger.cpv.evidence import analysis_inputs
from ledger.domain.formats import decode_chunk, encode_chunk
from ledger.domain.subjects import baseline_subject, batch_subject
from ledger.evidence.export import CPV as CLIENT_CPV
from ledger.evidence.export import TYPED_POINTS
from ledger.timeutil import format_utc, now_utc
from tests.support.agreements import grant, propose_and_sign, sign_retroactively
from tests.support.batches import (
    continuous_series,
    data_payload,
    define_parameter,
    register_batch,
    submit_data,
)
from tests.support.server import Server, running_server
from tests.support.world import World, actor_of

CPV = CLIENT_CPV.replace("pointsJson", TYPED_POINTS)
"""The client's analysis with typed points: the schema's contract."""

pytestmark = pytest.mark.xdist_group("cpv")

NORTHWIND, CONTOSO, FABRIKAM, REGULATOR = (
    "northwind-bio",
    "contoso-cmo",
    "fabrikam-cmo",
    "agency-inspectorate",
)
PH, TEMP, DO = "pH", "culture temperature", "dissolved oxygen"
UNITS = {PH: "[pH]", TEMP: "Cel", DO: "%"}
BATCHES = 30
BASELINE = 20
SERIES_BATCHES = 24
TAG = "BR1.PH"
MIGRATED = "history migrated from the paper batch records"

SIGNALS = """
query($a: ID!) {
  cpvSignals(agreementId: $a) {
    parameter baseline baselineId inputsDigest knownAt reasons cpk cpkThreshold acknowledged
    violations { rule batches }
    acknowledgements { by at comment }
  }
}
"""


@dataclass
class Built:
    """What the module's world holds, for the tests to name."""

    agreement: str = ""
    signals_agreement: str = ""
    position: int = 0
    batches: list[str] = field(default_factory=list)
    ph: list[str] = field(default_factory=list)
    temperature: list[list[str]] = field(default_factory=list)
    do: list[str] = field(default_factory=list)
    do_batches: list[str] = field(default_factory=list)
    continuous_agreement: str = ""
    series_batches: list[str] = field(default_factory=list)
    series: list[list[tuple[str, str, int]]] = field(default_factory=list)
    """The points of each continuous batch's BR1.PH, in time order."""


@dataclass
class Served:
    server: Server
    world: World
    built: Built

    def call(self, party: str, query: str, variables: dict[str, Any]) -> Any:
        return self.server.call(self.world[party], query, variables)


def _record(batch: str, index: int, parameter: str, value: str) -> dict[str, Any]:
    return {
        "id": f"{parameter[:2].upper()}-{index:03d}",
        "parameter": parameter,
        "value": value,
        "unit": UNITS[parameter],
        "sampled_at": format_utc(now_utc()),
        "method": "in-process control",
    }


def _records(batch: str, results: dict[str, list[str]]) -> list[dict[str, Any]]:
    found = []
    for parameter, values in results.items():
        found += [_record(batch, i, parameter, v) for i, v in enumerate(values, 1)]
    return found


def _define_baseline(world: World, agreement: str, parameter: str, batches: list[str]) -> None:
    payload = {"agreement": agreement, "parameter": parameter, "name": "PPQ", "batches": batches}
    world[CONTOSO].submit(
        world.ledger,
        "BaselineDefined",
        baseline_subject(agreement, parameter, "PPQ"),
        payload,
        meaning="authored",
        reason="process performance qualification campaign",
    )


def _build(world: World) -> Built:
    built = Built()
    rng = random.Random(26)
    agreement = propose_and_sign(world)
    built.agreement = str(agreement)
    define_parameter(world, agreement, PH)
    define_parameter(world, agreement, TEMP)
    for number in range(1, BATCHES + 1):
        name = f"CPV-A-{number:03d}"
        register_batch(world, agreement, name, started_at=now_utc())
        ph = f"{rng.gauss(7.05, 0.02):.3f}"
        temperature = [f"{rng.gauss(37.0, 0.05):.2f}" for _ in range(3)]
        submit_data(world, name, "discrete", _records(name, {PH: [ph], TEMP: temperature}))
        built.batches.append(name)
        built.ph.append(ph)
        built.temperature.append(temperature)
    for parameter in (PH, TEMP):
        _define_baseline(world, built.agreement, parameter, built.batches[:BASELINE])
    # Fabrikam may see the agreement and its continuous data, not its discrete results.
    grant(world, agreement, NORTHWIND, FABRIKAM, data_classes=["continuous"])

    signals = propose_and_sign(world)
    built.signals_agreement = str(signals)
    define_parameter(world, signals, DO)
    for number in range(1, 27):
        name = f"CPV-S-{number:03d}"
        register_batch(world, signals, name, started_at=now_utc())
        # The last batch lies far beyond the limits of the first 20: Nelson rule 1.
        value = "58.5" if number == 26 else f"{rng.gauss(40.0, 1.0):.1f}"
        submit_data(world, name, "discrete", _records(name, {DO: [value]}))
        built.do_batches.append(name)
        built.do.append(value)
    _define_baseline(world, built.signals_agreement, DO, built.do_batches[:BASELINE])
    _build_continuous(world, built)
    built.position = world.ledger.head()
    return built


def _build_continuous(world: World, built: Built) -> None:
    """pH measured by the tag BR1.PH: 30 one-minute points in chunks of 10 per batch."""
    since = format_utc(now_utc() - timedelta(days=1))
    agreement = sign_retroactively(world, since)
    built.continuous_agreement = str(agreement)
    define_parameter(world, agreement, PH, effective_from=since, reason=MIGRATED)
    for number in range(1, SERIES_BATCHES + 1):
        name = f"CPV-C-{number:03d}"
        started = now_utc() - timedelta(hours=1)
        register_batch(world, agreement, name, started_at=started)
        # A probe excursion of 0, 1 or 2 minutes lifts pH by 0.8, beyond its action limit.
        excursion = (5, number % 3)
        entry = continuous_series(
            TAG, started, 30, seed=number, chunk_points=10, excursion=excursion
        )
        submit_data(world, name, "continuous", [entry])
        built.series_batches.append(name)
        built.series.append([p for chunk in entry["chunks"] for p in decode_chunk(chunk)])
    _define_baseline(world, built.continuous_agreement, PH, built.series_batches[:BASELINE])
    grant(world, agreement, NORTHWIND, FABRIKAM, data_classes=["continuous"])


@pytest.fixture(scope="module")
def served(api_settings: Settings, api_world: World) -> Iterator[Served]:
    built = _build(api_world)
    with running_server(api_settings, api_world.notary.key) as server:
        yield Served(server, api_world, built)


def _analysis(
    served: Served, parameter: str, *, party: str = NORTHWIND, **variables: Any
) -> dict[str, Any]:
    asked = {"a": served.built.agreement, "p": parameter, "b": "PPQ", **variables}
    data, errors = served.call(party, CPV, asked)
    assert errors == [], errors
    found: dict[str, Any] = data["cpv"]
    return found


def _approx(value: float) -> Any:
    return pytest.approx(value, rel=1e-12, abs=1e-12)


def test_an_individuals_chart_and_capability_match_the_statistics_core(served: Served) -> None:
    built = served.built
    answer = _analysis(served, PH, k=built.position)
    values = [float(v) for v in built.ph]
    chart = individuals_chart(values, baseline_values=values[:BASELINE])
    assert answer["chart"] == "I-MR"
    assert answer["knownAt"] == built.position
    assert answer["baselineBatches"] == built.batches[:BASELINE]
    points = answer["points"]
    assert points, "the analysis charted nothing"
    assert [p["batch"] for p in points] == built.batches
    assert [p["index"] for p in points] == list(range(BATCHES))
    assert [p["records"][0]["value"] for p in points] == built.ph
    assert [p["value"] for p in points] == [_approx(v) for v in values]
    limits = chart.individuals
    assert answer["location"] == {
        "centre": _approx(limits.centre),
        "lower": _approx(limits.lower),
        "upper": _approx(limits.upper),
    }
    assert answer["dispersion"]["upper"] == _approx(chart.moving_range.upper)
    expected_rules = [
        (v.rule, [built.batches[i] for i in v.indexes]) for v in evaluate_chart(chart)
    ]
    assert [(v["rule"], v["batches"]) for v in answer["violations"]] == expected_rules
    capability = capability_individuals(values, lsl=6.90, usl=7.20)
    studies = answer["capability"]
    assert len(studies) == 1, studies
    study = studies[0]
    assert (study["lsl"], study["usl"], study["n"]) == ("6.90", "7.20", BATCHES)
    assert capability.cp is not None and capability.pp is not None
    assert capability.normality is not None
    for name, index in (
        ("cp", capability.cp),
        ("cpk", capability.cpk),
        ("pp", capability.pp),
        ("ppk", capability.ppk),
    ):
        assert study[name]["value"] == _approx(index.value)
        assert study[name]["interval"]["lower"] == _approx(index.interval.lower)
        assert study[name]["interval"]["upper"] == _approx(index.interval.upper)
    assert study["normality"]["statistic"] == _approx(capability.normality.statistic)
    assert study["normality"]["pValue"] == _approx(capability.normality.p_value)


def test_replicates_per_batch_give_an_xbar_r_chart_with_the_batch_as_subgroup(
    served: Served,
) -> None:
    built = served.built
    answer = _analysis(served, TEMP, k=built.position)
    groups = [[float(v) for v in group] for group in built.temperature]
    chart = xbar_r_chart(groups, baseline_subgroups=groups[:BASELINE])
    assert (answer["chart"], answer["subgroupSize"]) == ("XBAR-R", 3)
    assert answer["location"]["centre"] == _approx(chart.location.centre)
    assert answer["location"]["upper"] == _approx(chart.location.upper)
    assert answer["dispersion"]["upper"] == _approx(chart.dispersion.upper)
    capability = capability_subgroups(groups, lsl=36.5, usl=37.5)
    assert answer["capability"], "no capability study"
    assert answer["capability"][0]["cpk"]["value"] == _approx(capability.cpk.value)


def test_the_inputs_digest_is_recomputed_from_the_returned_points(served: Served) -> None:
    answer = _analysis(served, PH, k=served.built.position)
    rows = [
        {
            "batch": point["batch"],
            "limits_version": record["limitsVersion"],
            "record_id": record["recordId"],
            "value": record["value"],
        }
        for point in answer["points"]
        for record in point["records"]
    ]
    assert rows, "the analysis used no results"
    rows.sort(key=lambda r: (r["batch"], r["record_id"]))
    text = json.dumps(rows, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert answer["inputsDigest"] == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_an_analysis_at_a_position_answers_the_same_bytes_after_more_batches_and_a_revision(
    served: Served,
) -> None:
    built, server = served.built, served.server
    asked = {"a": built.agreement, "p": PH, "b": "PPQ", "k": built.position}
    before, errors = served.call(NORTHWIND, CPV, asked)
    assert errors == [], errors
    assert before["cpv"]["checkpoint"] is not None, "no signed checkpoint covers the position"
    contoso = served.world[CONTOSO]
    added = []
    for number in (1, 2):
        name = f"CPV-A-LATE-{number}"
        register = {
            "agreement": built.agreement,
            "batch": name,
            "product": "NWB-101",
            "site": "contoso-site-a",
            "started_at": format_utc(now_utc()),
        }
        server.submit(contoso, "BatchRegistered", batch_subject(name), register, meaning="authored")
        payload = data_payload("discrete", _records(name, {PH: ["7.190"]}))
        server.submit(contoso, "DataSubmitted", batch_subject(name), payload, meaning="submitted")
        added.append(name)
    server.submit(
        served.world[NORTHWIND],
        "BaselineRevised",
        baseline_subject(built.agreement, PH, "PPQ"),
        {"batches": built.batches[5:25]},
        meaning="authored",
        reason="the first five batches ran before the scale-up",
    )
    after, errors = served.call(NORTHWIND, CPV, asked)
    assert errors == [], errors
    assert json.dumps(after, sort_keys=True) == json.dumps(before, sort_keys=True)
    now = _analysis(served, PH)
    assert [p["batch"] for p in now["points"]][-2:] == added
    assert (now["baselineVersion"], now["baselineBatches"]) == (2, built.batches[5:25])


def test_a_valid_time_window_charts_only_the_batches_started_in_it(served: Served) -> None:
    built = served.built
    whole = _analysis(served, PH, k=built.position)
    points = whole["points"]
    assert points, "the analysis charted nothing"
    start, end = points[3]["validAt"], points[26]["validAt"]
    window = _analysis(served, PH, k=built.position, f=start, t=end)
    inside = [p["batch"] for p in points if start <= p["validAt"] <= end]
    assert [p["batch"] for p in window["points"]] == inside
    assert (window["validFrom"], window["validTo"]) == (start, end)


@pytest.mark.parametrize("party", [FABRIKAM, REGULATOR])
def test_a_party_without_a_grant_for_the_discrete_data_is_forbidden(
    served: Served, party: str
) -> None:
    asked = {"a": served.built.agreement, "p": PH, "b": "PPQ", "k": served.built.position}
    data, errors = served.call(party, CPV, asked)
    assert data is None or data.get("cpv") is None
    assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"]


@pytest.mark.parametrize(
    ("variables", "code", "field"),
    [
        ({"p": "no such parameter"}, "NOT_FOUND", "parameter"),
        ({"b": "no such baseline"}, "NOT_FOUND", "baseline"),
        ({"k": 10**9}, "VALIDATION_FAILED", "knownAt"),
        (
            {"f": "2030-01-02T00:00:00Z", "t": "2030-01-01T00:00:00Z"},
            "VALIDATION_FAILED",
            "validTo",
        ),
    ],
)
def test_a_bad_question_is_refused_with_its_code_and_field(
    served: Served, variables: dict[str, Any], code: str, field: str
) -> None:
    asked = {"a": served.built.agreement, "p": PH, "b": "PPQ", **variables}
    _, errors = served.call(NORTHWIND, CPV, asked)
    assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in errors] == [(code, field)]


def _signals(served: Served) -> list[dict[str, Any]]:
    data, errors = served.call(NORTHWIND, SIGNALS, {"a": served.built.signals_agreement})
    assert errors == [], errors
    found: list[dict[str, Any]] = data["cpvSignals"]
    return found


def test_a_rule_violation_raises_a_signal_that_an_acknowledgement_marks(served: Served) -> None:
    built = served.built
    signals = _signals(served)
    assert [s["parameter"] for s in signals] == [DO]
    signal = signals[0]
    assert signal["acknowledged"] is False
    beyond = [v["batches"] for v in signal["violations"] if v["rule"] == 1]
    assert [built.do_batches[-1]] in beyond, signal["violations"]
    served.server.submit(
        served.world[CONTOSO],
        "CpvSignalAcknowledged",
        uuid.UUID(signal["baselineId"]),
        {
            "baseline": signal["baselineId"],
            "inputs_digest": signal["inputsDigest"],
            "comment": "DO probe drift on CPV-S-026; deviation DEV-2025-031 opened",
        },
        meaning="acknowledged",
    )
    again = _signals(served)
    assert [s["inputsDigest"] for s in again] == [signal["inputsDigest"]]
    assert again[0]["acknowledged"] is True
    assert [a["by"] for a in again[0]["acknowledgements"]] == [CONTOSO]


# -- in the evidence bundle ---------------------------------------------------------------

RECOMPUTE = """
import hashlib, json, sys
analyses = json.load(open(sys.argv[1], encoding="utf-8"))
for analysis in analyses:
    rows = sorted(
        (
            {"batch": p["batch"], "limits_version": r["limitsVersion"],
             "record_id": r["recordId"], "value": r["value"]}
            for p in analysis["points"] for r in p["records"]
        ),
        key=lambda row: (row["batch"], row["record_id"]),
    )
    text = json.dumps(rows, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    print(analysis["parameter"], hashlib.sha256(text.encode("utf-8")).hexdigest())
"""


@pytest.fixture(scope="module")
def bundle(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Northwind's evidence bundle of the last baseline batch, exported once."""
    actor = served.world[NORTHWIND]
    batch = served.built.batches[BASELINE - 1]
    with LedgerClient(served.server.url, actor.party_id, actor.key) as client:
        return export_evidence(client, batch, tmp_path_factory.mktemp("cpv") / batch)


def test_the_bundle_holds_each_analysis_of_the_batch_s_parameters_as_of_its_trace(
    served: Served, bundle: Path
) -> None:
    analyses = json.loads((bundle / CPV_FILE).read_text("utf-8"))
    assert analyses, "the batch's parameters have baselines"
    assert sorted(a["parameter"] for a in analyses) == sorted([PH, TEMP])
    trace = json.loads((bundle / TRACE).read_text("utf-8"))
    for analysis in analyses:
        assert analysis["knownAt"] == trace["position"]
        asked = {"a": served.built.agreement, "p": analysis["parameter"], "b": "PPQ"}
        data, errors = served.call(NORTHWIND, CPV, {**asked, "k": trace["position"]})
        assert errors == []
        again = data["cpv"]
        if analysis["checkpoint"] is None:  # no checkpoint covered the position yet then
            again["checkpoint"] = None
        assert again == analysis
    report = verify_bundle(bundle)
    assert report.problems == []
    html = (bundle / REPORT).read_text("utf-8")
    assert html.count('class="cpv-chart"') == 2
    assert all(a["inputsDigest"] in html for a in analyses)


def test_a_script_importing_no_server_code_recomputes_the_bundle_s_inputs_digests(
    bundle: Path,
) -> None:
    analyses = json.loads((bundle / CPV_FILE).read_text("utf-8"))
    assert analyses, "the bundle holds analyses"
    # -I: isolated, so nothing of this repository is importable by the script.
    found = subprocess.run(
        [sys.executable, "-I", "-c", RECOMPUTE, str(bundle / CPV_FILE)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    assert sorted(line for line in found if line) == sorted(
        f"{a['parameter']} {a['inputsDigest']}" for a in analyses
    )


def _resigned(bundle: Path, tmp_path: Path, change: Any) -> Path:
    """A copy whose cpv.json ``change`` altered, re-hashed and re-signed by the exporter:
    what the manifest's signature cannot catch, the recomputation must."""
    copy = Path(shutil.copytree(bundle, tmp_path / "copy"))
    analyses = json.loads((copy / CPV_FILE).read_text("utf-8"))
    change(analyses)
    (copy / CPV_FILE).write_text(json.dumps(analyses), "utf-8")
    manifest = json.loads((copy / MANIFEST).read_text("utf-8"))
    manifest["files"][CPV_FILE] = sha256_file(copy / CPV_FILE)
    (copy / MANIFEST).write_text(json.dumps(manifest), "utf-8")
    sign_manifest(copy, manifest, NORTHWIND, actor_of(NORTHWIND).key)
    return copy


def _own_record(analyses: list[dict[str, Any]], batch: str) -> dict[str, Any]:
    point = next(p for p in analyses[0]["points"] if p["batch"] == batch)
    record: dict[str, Any] = point["records"][0]
    return record


def test_a_changed_input_of_the_batch_is_found_even_with_its_digest_recomputed(
    served: Served, bundle: Path, tmp_path: Path
) -> None:
    batch = served.built.batches[BASELINE - 1]

    def change(analyses: list[dict[str, Any]]) -> None:
        _own_record(analyses, batch)["value"] = "9.999"
        rows = [
            CpvInput(p["batch"], r["recordId"], r["value"], r["limitsVersion"])
            for p in analyses[0]["points"]
            for r in p["records"]
        ]
        analyses[0]["inputsDigest"] = inputs_digest(rows)

    problems = verify_bundle(_resigned(bundle, tmp_path, change)).problems
    assert any("is charted as '9.999', its current signed value is" in p for p in problems)


def test_a_digest_that_is_not_the_inputs_digest_is_found(bundle: Path, tmp_path: Path) -> None:
    def change(analyses: list[dict[str, Any]]) -> None:
        analyses[0]["inputsDigest"] = "0" * 64

    problems = verify_bundle(_resigned(bundle, tmp_path, change)).problems
    assert problems, "the changed digest is found"
    assert all("is not its inputs' digest" in p for p in problems)


READS = """
query($a: ID!, $after: String) {
  dataReads(agreement: $a, first: 500, after: $after) {
    reads { reader batch fields } endCursor hasNextPage
  }
}
"""


def test_r11_a_sponsors_analysis_logs_a_read_of_each_batch_it_uses(served: Served) -> None:
    built = served.built
    _analysis(served, PH, k=built.position)
    batches: set[str] = set()
    after = None
    while True:
        data, errors = served.call(CONTOSO, READS, {"a": built.agreement, "after": after})
        assert errors == [], errors
        page = data["dataReads"]
        batches |= {
            r["batch"]
            for r in page["reads"]
            if r["reader"] == NORTHWIND and r["fields"] == ["Query.cpv"]
        }
        if not page["hasNextPage"]:
            break
        after = page["endCursor"]
    assert set(built.batches) <= batches  # (earlier analyses here charted later batches too)


# -- a continuous tag's per-batch summaries -----------------------------------------------

CPV_SERIES = """
query($a: ID!, $p: String!, $b: String!, $k: Int, $s: CpvStatistic) {
  cpv(agreementId: $a, parameter: $p, baseline: $b, knownAt: $k, statistic: $s) {
    chart statistic tag knownAt baselineBatches warnings inputsDigest
    location { centre lower upper } dispersion { centre lower upper }
    points {
      index batch validAt value dispersion limitsVersion
      records { recordId }
      summary {
        tag dataClass first last count mean min max timeOutsideLimitsMs limitsVersion chunks
      }
    }
    violations { rule batches }
    capability { limitsVersion lsl usl n cpk { value } }
  }
}
"""


def _series_call(
    served: Served, statistic: str | None, *, party: str = NORTHWIND, **variables: Any
) -> tuple[Any, list[dict[str, Any]]]:
    asked = {"a": served.built.continuous_agreement, "p": PH, "b": "PPQ", "s": statistic}
    data, errors = served.call(party, CPV_SERIES, {**asked, **variables})
    return data, errors


def _series_analysis(served: Served, statistic: str, **variables: Any) -> dict[str, Any]:
    data, errors = _series_call(served, statistic, **variables)
    assert errors == [], errors
    found: dict[str, Any] = data["cpv"]
    return found


def _summary_digest(answer: dict[str, Any]) -> str:
    """The inputs digest of a continuous analysis, from the answer alone (docs/cpv.md)."""
    rows = [
        {
            "batch": p["batch"],
            "chunks": sorted(p["summary"]["chunks"]),
            "count": p["summary"]["count"],
            "limits_version": p["summary"]["limitsVersion"],
            "max": p["summary"]["max"],
            "mean": p["summary"]["mean"],
            "min": p["summary"]["min"],
            "statistic": answer["statistic"],
            "tag": p["summary"]["tag"],
            "time_outside_limits_ms": None
            if p["summary"]["timeOutsideLimitsMs"] is None
            else int(p["summary"]["timeOutsideLimitsMs"]),
        }
        for p in answer["points"]
    ]
    rows.sort(key=lambda r: (r["batch"], r["tag"]))
    text = json.dumps(rows, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_the_batch_means_of_a_continuous_tag_give_an_individuals_chart_end_to_end(
    served: Served,
) -> None:
    built = served.built
    answer = _series_analysis(served, "MEAN", k=built.position)
    means = [float(sum(Decimal(p[1]) for p in points) / len(points)) for points in built.series]
    chart = individuals_chart(means, baseline_values=means[:BASELINE])
    assert (answer["chart"], answer["statistic"], answer["tag"]) == ("I-MR", "MEAN", TAG)
    points = answer["points"]
    assert points, "the analysis charted nothing"
    assert [p["batch"] for p in points] == built.series_batches
    assert [p["value"] for p in points] == [pytest.approx(m, rel=1e-12) for m in means]
    assert all(p["records"] == [] for p in points)
    summaries = [p["summary"] for p in points]
    assert [s["count"] for s in summaries] == [30] * SERIES_BATCHES
    assert [float(s["min"]) for s in summaries] == [
        float(min(Decimal(p[1]) for p in points)) for points in built.series
    ]
    assert all(len(s["chunks"]) == 3 and s["limitsVersion"] == 1 for s in summaries)
    limits = chart.individuals
    assert answer["location"]["centre"] == pytest.approx(limits.centre, rel=1e-12)
    assert answer["location"]["upper"] == pytest.approx(limits.upper, rel=1e-12)
    assert answer["dispersion"]["upper"] == pytest.approx(chart.moving_range.upper, rel=1e-12)
    expected = [
        (v.rule, [built.series_batches[i] for i in v.indexes]) for v in evaluate_chart(chart)
    ]
    assert [(v["rule"], v["batches"]) for v in answer["violations"]] == expected
    capability = capability_individuals(means, lsl=6.90, usl=7.20)
    assert [(c["lsl"], c["usl"], c["n"]) for c in answer["capability"]] == [
        ("6.90", "7.20", SERIES_BATCHES)
    ]
    assert answer["capability"][0]["cpk"]["value"] == pytest.approx(capability.cpk.value)
    assert answer["inputsDigest"] == _summary_digest(answer)


def test_time_outside_limits_is_charted_in_seconds_without_a_capability_study(
    served: Served,
) -> None:
    answer = _series_analysis(served, "TIME_OUTSIDE_LIMITS", k=served.built.position)
    points = answer["points"]
    assert points, "the analysis charted nothing"
    assert [p["value"] for p in points] == [
        p["summary"]["timeOutsideLimitsMs"] / 1000 for p in points
    ]
    assert sorted({p["value"] for p in points}) == [0.0, 60.0, 120.0]
    assert answer["capability"] == []
    assert any("no capability" in w for w in answer["warnings"])
    mean = _series_analysis(served, "MEAN", k=served.built.position)
    assert answer["inputsDigest"] != mean["inputsDigest"]  # the statistic is an input


@pytest.mark.parametrize(
    ("agreement", "statistic", "why"),
    [
        ("agreement", "MEAN", "has discrete results"),
        ("continuous_agreement", None, "choose the statistic"),
    ],
)
def test_a_statistic_that_does_not_apply_to_the_parameter_is_refused_naming_it(
    served: Served, agreement: str, statistic: str | None, why: str
) -> None:
    asked = {"a": getattr(served.built, agreement), "k": served.built.position}
    _, errors = _series_call(served, statistic, **asked)
    assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in errors] == [
        ("VALIDATION_FAILED", "statistic")
    ]
    assert why in errors[0]["message"]


@pytest.mark.parametrize(("party", "allowed"), [(FABRIKAM, True), (REGULATOR, False)])
def test_the_grants_that_open_the_series_decide_who_charts_its_summaries(
    served: Served, party: str, allowed: bool
) -> None:
    data, errors = _series_call(served, "MAX", party=party, k=served.built.position)
    if allowed:
        assert errors == [], errors
        assert len(data["cpv"]["points"]) == SERIES_BATCHES
    else:
        assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"]


def test_a_continuous_analysis_at_a_position_answers_the_same_bytes_after_more_data(
    served: Served,
) -> None:
    built, server = served.built, served.server
    contoso = served.world[CONTOSO]
    asked = {"k": built.position}
    before, errors = _series_call(served, "MEAN", **asked)
    assert errors == [], errors
    name = "CPV-C-LATE"
    started = now_utc() - timedelta(minutes=40)
    register = {
        "agreement": built.continuous_agreement,
        "batch": name,
        "product": "NWB-101",
        "site": "contoso-site-a",
        "started_at": format_utc(started),
    }
    server.submit(contoso, "BatchRegistered", batch_subject(name), register, meaning="authored")
    entry = continuous_series(TAG, started, 30, seed=99, chunk_points=10)
    payload = data_payload("continuous", [entry])
    server.submit(contoso, "DataSubmitted", batch_subject(name), payload, meaning="submitted")
    first = before["cpv"]["points"][0]
    replaced = datetime.fromisoformat(first["summary"]["first"].replace("Z", "+00:00"))
    recalibrated = continuous_series(TAG, replaced, 10, seed=7)
    correction = {
        "submission": str(uuid.uuid4()),
        "supersedes_chunks": [encode_chunk(built.series[0][:10])["sha256"]],
        "series": [recalibrated],
    }
    server.submit(
        contoso,
        "DataCorrected",
        batch_subject(first["batch"]),
        correction,
        meaning="corrected",
        reason="pH probe recalibrated",
    )

    after, errors = _series_call(served, "MEAN", **asked)
    assert errors == [], errors
    assert json.dumps(after, sort_keys=True) == json.dumps(before, sort_keys=True)
    now = _series_analysis(served, "MEAN")
    assert [p["batch"] for p in now["points"]][-1] == name
    assert now["points"][0]["summary"]["chunks"] != first["summary"]["chunks"]
    assert now["inputsDigest"] != before["cpv"]["inputsDigest"]


@pytest.fixture(scope="module")
def series_bundle(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Northwind's evidence bundle of the last continuous baseline batch, exported once."""
    actor = served.world[NORTHWIND]
    batch = served.built.series_batches[BASELINE - 1]
    with LedgerClient(served.server.url, actor.party_id, actor.key) as client:
        return export_evidence(client, batch, tmp_path_factory.mktemp("cpv-series") / batch)


def test_a_continuous_batch_s_bundle_holds_the_batch_means_analysis_and_verifies(
    served: Served, series_bundle: Path
) -> None:
    analyses = json.loads((series_bundle / CPV_FILE).read_text("utf-8"))
    assert [(a["parameter"], a["statistic"], a["tag"]) for a in analyses] == [(PH, "MEAN", TAG)]
    assert analyses[0]["inputsDigest"] == _summary_digest(analyses[0])
    report = verify_bundle(series_bundle)
    assert report.problems == []
    assert any("time outside limits" in note for note in report.notes)


def test_a_changed_summary_of_the_batch_is_found_even_with_its_digest_recomputed(
    served: Served, series_bundle: Path, tmp_path: Path
) -> None:
    batch = served.built.series_batches[BASELINE - 1]

    def change(analyses: list[dict[str, Any]]) -> None:
        point = next(p for p in analyses[0]["points"] if p["batch"] == batch)
        point["summary"]["mean"] = "9.9"
        analyses[0]["inputsDigest"] = inputs_digest(analysis_inputs(analyses[0]))

    problems = verify_bundle(_resigned(series_bundle, tmp_path, change)).problems
    assert any(f"the mean of {TAG} of batch {batch} is charted as '9.9'" in p for p in problems)
