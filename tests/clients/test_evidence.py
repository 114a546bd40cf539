"""A batch's evidence bundle, exported through the HTTP API, verifies offline with no server
and no database; any change to it is found and named, and its manifest is signed by the
exporter with a key the log admitted; ``report.html`` shows the timeline, the limits, the
data with corrections marked, a control chart per CPP and which checks cover which file
(R28)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey
from typer.testing import CliRunner

from clients.bundle import (
    CHECKPOINT,
    CPV_FILE,
    DATA,
    MANIFEST,
    MANIFEST_SIG,
    NOTARY_VKEY,
    REPORT,
    TRACE,
    sha256_file,
    verify_bundle,
)
from clients.cli import app
from clients.client import LedgerClient
from clients.evidence import EvidenceRefused, export_evidence, sign_manifest
from ledger.domain.limits import tag_for
from ledger.keys import key_id
from ledger.keystore import create_keystore, kdf_limits_from_env
from ledger.log.notes import add_signature_lines, cosign, parse_note, sign_note, vkey
from tests.conftest import BACKENDS
from tests.support.data_server import Served, shared_data_server
from tests.support.data_world import B1
from tests.support.world import actor_of

pytestmark = pytest.mark.xdist_group("data_queries")

REGULATOR, NORTHWIND = "agency-inspectorate", "northwind-bio"


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest) -> Served:
    return shared_data_server(request, request.param)


def client_of(served: Served, party: str) -> LedgerClient:
    actor = served.data.world[party]
    return LedgerClient(served.server.url, actor.party_id, actor.key)


@pytest.fixture(scope="module")
def exported(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The regulator's bundle of B1, exported once per backend; tests change copies."""
    with client_of(served, REGULATOR) as client:
        return export_evidence(client, B1, tmp_path_factory.mktemp("bundle") / "b1")


@pytest.fixture
def bundle(exported: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(exported, tmp_path / "copy"))


def notary_vkey(served: Served) -> str:
    with client_of(served, REGULATOR) as client:
        return str(client.graphql("{ ledger { notaryKey } }")["ledger"]["notaryKey"])


def load(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


def save(bundle: Path, name: str, value: Any) -> None:
    """Rewrite a file, its manifest digest and the manifest's signature, as the exporter
    itself could: what the signed manifest cannot catch, the deeper checks must."""
    (bundle / name).write_text(json.dumps(value), "utf-8")
    rehash(bundle, name)


def rehash(bundle: Path, name: str, *, signer: SigningKey | None = None) -> None:
    """Put a changed file's digest in the manifest and sign it again (by default with the
    exporter's key, the regulator's)."""
    manifest = load(bundle / MANIFEST)
    manifest["files"][name] = sha256_file(bundle / name)
    resign(bundle, manifest, signer=signer)


def resign(bundle: Path, manifest: Any, *, signer: SigningKey | None = None) -> None:
    (bundle / MANIFEST).write_text(json.dumps(manifest), "utf-8")
    key = actor_of(REGULATOR).key if signer is None else signer
    sign_manifest(bundle, manifest, REGULATOR, key)


def forge_report(bundle: Path) -> None:
    """Rewrite report.html and its digest, as someone without the exporter's key would."""
    html = (bundle / REPORT).read_text("utf-8").replace("SUPERSEDED", "current")
    (bundle / REPORT).write_text(html, "utf-8")
    manifest = load(bundle / MANIFEST)
    manifest["files"][REPORT] = sha256_file(bundle / REPORT)
    (bundle / MANIFEST).write_text(json.dumps(manifest), "utf-8")


def last_line(bundle: Path) -> tuple[int, str, str]:
    """``verify-bundle``'s exit code, output and last line."""
    result = CliRunner().invoke(app, ["verify-bundle", str(bundle)])
    return result.exit_code, result.output, result.output.splitlines()[-1]


def event_files(bundle: Path, role: str = "batch") -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted((bundle / "events").glob("*.json")):
        event = load(path)
        if event["role"] == role:
            yield f"events/{path.name}", event


def problems(bundle: Path, vkey_text: str | None = None) -> list[str]:
    return verify_bundle(bundle, vkey=vkey_text).problems


# -- a good bundle -------------------------------------------------------------------------


def test_a_bundle_holds_every_event_of_the_trace_with_one_checkpoint(exported: Path) -> None:
    trace = load(exported / TRACE)
    manifest = load(exported / MANIFEST)
    batch_events = [event for _, event in event_files(exported)]
    assert [e["leaf_index"] for e in batch_events] == [e["leafIndex"] for e in trace["events"]]
    assert {e["proof"]["tree_size"] for _, e in event_files(exported)} == {manifest["tree_size"]}
    key_types = {e["event"]["envelope"]["type"] for _, e in event_files(exported, "key")}
    assert "PartyAdmitted" in key_types
    listed = set(manifest["files"])
    assert {CHECKPOINT, NOTARY_VKEY, TRACE, DATA, REPORT} <= listed
    batch_subject = trace["batch"]["subject"]
    assert [w for w in manifest["withheld"] if w.get("subject") == batch_subject] == []
    assert MANIFEST_SIG not in listed and (exported / MANIFEST_SIG).is_file()


def test_the_manifest_is_signed_by_the_exporter_whose_key_events_are_in_the_bundle(
    exported: Path,
) -> None:
    signature = load(exported / MANIFEST_SIG)
    regulator = actor_of(REGULATOR)
    assert (signature["party"], signature["key_id"]) == (REGULATOR, regulator.key_id)
    admitted = [
        e["event"]["envelope"]
        for _, e in event_files(exported, "key")
        if e["event"]["envelope"]["payload"].get("party") == REGULATOR
    ]
    assert [e["type"] for e in admitted] == ["PartyAdmitted"]
    report = verify_bundle(exported)
    assert report.signed_by == f"{REGULATOR} (key {regulator.key_id})"
    assert f"{MANIFEST}: signed by its exporter {REGULATOR} with key {regulator.key_id}, " in (
        " ".join(report.notes)
    )


def test_verify_bundle_passes_a_good_bundle_with_the_trusted_key(
    served: Served, exported: Path
) -> None:
    result = CliRunner().invoke(
        app, ["verify-bundle", str(exported), "--vkey", notary_vkey(served)]
    )
    assert result.exit_code == 0, result.output
    assert "OK:" in result.output
    assert "taken from the bundle itself" not in result.output


def test_without_vkey_verify_bundle_says_the_key_came_from_the_bundle(exported: Path) -> None:
    result = CliRunner().invoke(app, ["verify-bundle", str(exported)])
    assert result.exit_code == 0, result.output
    assert "the notary key was taken from the bundle itself" in result.output


def test_export_evidence_on_the_command_line_writes_a_bundle_that_verifies(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    actor = served.data.world[REGULATOR]
    opslimit, memlimit = kdf_limits_from_env({"CMO_LEDGER_KDF_PROFILE": "min"})
    keystore = tmp_path / "regulator.key"
    create_keystore(
        keystore, REGULATOR, "pass", signing_key=actor.key, opslimit=opslimit, memlimit=memlimit
    )
    monkeypatch.setenv("CMO_LEDGER_PASSPHRASE", "pass")
    out = tmp_path / "cli-bundle"
    command = ["export-evidence", "--batch", B1, "--out", str(out)]
    result = CliRunner().invoke(app, [*command, "--url", served.server.url, "--key", str(keystore)])
    assert result.exit_code == 0, result.output
    assert verify_bundle(out, vkey=notary_vkey(served)).ok


def test_export_refuses_a_directory_that_is_not_empty(served: Served, tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    with client_of(served, REGULATOR) as client, pytest.raises(EvidenceRefused) as refused:
        export_evidence(client, B1, tmp_path)
    assert refused.value.field == "out"


# -- tampering -----------------------------------------------------------------------------


def test_verify_bundle_refuses_a_file_changed_behind_the_manifest(bundle: Path) -> None:
    data = load(bundle / DATA)
    data["discrete"][0]["value"] = "99.9"
    (bundle / DATA).write_text(json.dumps(data), "utf-8")
    assert f"{DATA}: SHA-256 does not match {MANIFEST} (the file was changed)" in problems(bundle)


def test_verify_bundle_refuses_a_changed_value(bundle: Path) -> None:
    data = load(bundle / DATA)
    row = next(r for r in data["discrete"] if r["id"] == "R-001")
    row["value"] = "19.4"
    save(bundle, DATA, data)
    found = problems(bundle)
    assert len(found) == 1
    assert found[0].startswith(f"{DATA}: discrete record R-001 v1: value '19.4' does not match")


def test_a_chunk_of_an_event_that_failed_verification_is_never_inflated(bundle: Path) -> None:
    name, event = next(
        (name, event)
        for name, event in event_files(bundle)
        if event["event"]["envelope"]["payload"].get("series")
    )
    chunk = event["event"]["envelope"]["payload"]["series"][0]["chunks"][0]
    chunk["content"] = "H4sI" + "A" * 64  # not the signed bytes, and not gzip either
    save(bundle, name, event)
    found = problems(bundle)
    assert any(p.startswith(f"{name}: leaf bytes do not decode") for p in found), found
    assert not any("continuous chunk" in p for p in found), found


def test_verify_bundle_refuses_a_changed_correction_status(bundle: Path) -> None:
    data = load(bundle / DATA)
    row = next(r for r in data["discrete"] if r["id"] == "R-002" and r["version"] == 1)
    row["status"] = "current"
    save(bundle, DATA, data)
    assert any("R-002 v1: status 'current'" in p for p in problems(bundle))


def test_verify_bundle_refuses_a_removed_event(bundle: Path) -> None:
    name, removed = list(event_files(bundle))[2]
    (bundle / name).unlink()
    manifest = load(bundle / MANIFEST)
    del manifest["files"][name]
    resign(bundle, manifest)
    found = problems(bundle)
    leaf, version = removed["leaf_index"], removed["event"]["envelope"]["version"]
    assert f"{TRACE}: event at leaf {leaf} (DataSubmitted) is not in the bundle" in found
    assert any(f"version(s) {version} missing" in p for p in found)


def test_verify_bundle_refuses_swapped_proofs(bundle: Path) -> None:
    (first_name, first), (second_name, second) = list(event_files(bundle))[1:3]
    first["proof"], second["proof"] = second["proof"], first["proof"]
    save(bundle, first_name, first)
    save(bundle, second_name, second)
    found = problems(bundle)
    for name, event in ((first_name, first), (second_name, second)):
        assert any(
            p.startswith(f"{name}: inclusion proof of leaf {event['leaf_index']} does not match")
            for p in found
        ), found


def test_verify_bundle_refuses_a_checkpoint_signed_by_another_key(bundle: Path) -> None:
    note = (bundle / CHECKPOINT).read_text("utf-8")
    body, _ = parse_note(note)
    origin = body.splitlines()[0]
    (bundle / CHECKPOINT).write_text(sign_note(body, origin, SigningKey.generate()), "utf-8")
    rehash(bundle, CHECKPOINT)
    found = problems(bundle)
    assert len(found) == 1
    assert found[0].startswith(f"{CHECKPOINT}: checkpoint signature:")


def test_a_bundle_re_signed_with_its_own_notary_key_fails_against_the_trusted_key(
    served: Served, bundle: Path
) -> None:
    forger = SigningKey.generate()
    body, _ = parse_note((bundle / CHECKPOINT).read_text("utf-8"))
    origin = body.splitlines()[0]
    (bundle / CHECKPOINT).write_text(sign_note(body, origin, forger), "utf-8")
    (bundle / NOTARY_VKEY).write_text(vkey(origin, forger.verify_key) + "\n", "utf-8")
    rehash(bundle, CHECKPOINT)
    rehash(bundle, NOTARY_VKEY)
    # Without the trusted key, the notary-signed PartyAdmitted events no longer verify.
    untrusted = problems(bundle)
    assert any("which is not the notary key checked" in p for p in untrusted), untrusted
    batch_events = [name for name, _ in event_files(bundle)]
    assert all(any(p.startswith(f"{name}: key ") for p in untrusted) for name in batch_events)
    trusted = notary_vkey(served)
    found = problems(bundle, trusted)
    assert found[0].startswith(f"{NOTARY_VKEY}: the bundled notary key")
    assert "is not the key given with --vkey" in found[0]


def test_verify_bundle_refuses_a_vkey_that_is_not_the_notary_s(
    bundle: Path, tmp_path: Path
) -> None:
    origin = load(bundle / MANIFEST)["origin"]
    other = tmp_path / "other.vkey"
    other.write_text(vkey(origin, SigningKey.generate().verify_key), "utf-8")
    result = CliRunner().invoke(app, ["verify-bundle", str(bundle), "--vkey", str(other)])
    assert result.exit_code == 1
    assert f"problem: {NOTARY_VKEY}: the bundled notary key" in result.output
    assert "FAILED:" in result.output


def test_verify_bundle_refuses_an_event_whose_leaf_bytes_differ_from_the_event_shown(
    bundle: Path,
) -> None:
    name, event = next(event_files(bundle))
    event["event"]["recorded_at"] = "2020-01-01T00:00:00.000Z"
    save(bundle, name, event)
    assert problems(bundle) == [
        f"{name}: leaf bytes do not decode to the event shown (envelope, signature, recorded_at)"
    ]


def add_cosignature(bundle: Path, party: str, key: SigningKey) -> None:
    note = (bundle / CHECKPOINT).read_text("utf-8")
    body, _ = parse_note(note)
    line = cosign(body, party, key, int(time.time()))
    (bundle / CHECKPOINT).write_text(add_signature_lines(note, [line]), "utf-8")
    rehash(bundle, CHECKPOINT)


def test_verify_bundle_checks_a_cosignature_with_the_witness_key_in_the_bundle(
    served: Served, bundle: Path
) -> None:
    add_cosignature(bundle, NORTHWIND, served.data.world[NORTHWIND].key)
    report = verify_bundle(bundle)
    assert report.problems == []
    assert f"{CHECKPOINT}: cosigned by {NORTHWIND}" in report.notes


def test_verify_bundle_refuses_a_cosignature_by_a_key_the_bundle_does_not_evidence(
    bundle: Path,
) -> None:
    add_cosignature(bundle, NORTHWIND, SigningKey.generate())
    assert problems(bundle) == [
        f"{CHECKPOINT}: the cosignature by {NORTHWIND} matches no key of {NORTHWIND} "
        "evidenced in the bundle"
    ]


# -- the signed manifest -------------------------------------------------------------------


def test_a_rewritten_report_with_a_rehashed_manifest_fails_verification(bundle: Path) -> None:
    forge_report(bundle)
    assert problems(bundle) == [
        f"{MANIFEST_SIG}: the signature over {MANIFEST} does not verify with key "
        f"{actor_of(REGULATOR).key_id} of {REGULATOR}: {MANIFEST} was changed after the "
        "export (or the signature is not its); do not rely on any file of this bundle"
    ]
    code, _, last = last_line(bundle)
    assert code == 1 and last.startswith("FAILED: 1 problem(s)")


def test_a_manifest_signed_by_a_key_not_in_the_log_fails(bundle: Path) -> None:
    forger = SigningKey.generate()
    forge_report(bundle)
    resign(bundle, load(bundle / MANIFEST), signer=forger)
    found = problems(bundle)
    assert len(found) == 1, found
    assert found[0].startswith(
        f"{MANIFEST_SIG}: key {key_id(forger.verify_key)} of {REGULATOR} is not in the log"
    )
    assert f"{MANIFEST} cannot be trusted; ask {REGULATOR} to export the bundle again" in found[0]
    code, output, last = last_line(bundle)
    assert code == 1 and last.startswith("FAILED:"), output


def test_a_manifest_signed_by_another_party_than_its_exporter_fails(
    served: Served, bundle: Path
) -> None:
    northwind = served.data.world[NORTHWIND]
    manifest = load(bundle / MANIFEST)
    sign_manifest(bundle, manifest, NORTHWIND, northwind.key)
    assert problems(bundle) == [
        f"{MANIFEST_SIG}: signed by {NORTHWIND}, but {MANIFEST} names '{REGULATOR}' as the exporter"
    ]


def test_a_manifest_whose_exporter_key_events_were_removed_fails(bundle: Path) -> None:
    name = next(
        name
        for name, event in event_files(bundle, "key")
        if event["event"]["envelope"]["payload"].get("party") == REGULATOR
    )
    (bundle / name).unlink()
    manifest = load(bundle / MANIFEST)
    del manifest["files"][name]
    resign(bundle, manifest)
    found = problems(bundle)
    assert found
    # The removal is caught at the manifest, and at every event that key signed.
    assert all(f"of {REGULATOR}" in p for p in found), found
    assert all(MANIFEST in p or "is not evidenced in the bundle" in p for p in found), found
    assert any(f"{MANIFEST} cannot be trusted" in p for p in found), found


def test_a_bundle_without_a_manifest_signature_fails(bundle: Path) -> None:
    (bundle / MANIFEST_SIG).unlink()
    found = problems(bundle)
    assert len(found) == 1, found
    assert found[0].startswith(f"{MANIFEST_SIG} is missing: nothing shows that the exporter")
    assert MANIFEST in found[0] and "ask the exporter" in found[0]
    code, output, last = last_line(bundle)
    assert code == 1 and last.startswith("FAILED:"), output
    assert f"problem: {MANIFEST_SIG} is missing" in output


def test_a_malformed_manifest_signature_fails(bundle: Path) -> None:
    (bundle / MANIFEST_SIG).write_text(json.dumps({"party": REGULATOR}), "utf-8")
    [found] = problems(bundle)
    assert found.startswith(f"{MANIFEST_SIG}: expected {{party, key_id, signature (base64)}}")


def test_export_refuses_to_sign_with_a_key_the_log_does_not_hold(
    served: Served, tmp_path: Path
) -> None:
    out = tmp_path / "unsigned"
    with client_of(served, REGULATOR) as client, pytest.raises(EvidenceRefused) as refused:
        export_evidence(client, B1, out, key=SigningKey.generate())
    assert refused.value.field == "key"
    assert f"is not a party key of {REGULATOR} in the log" in str(refused.value)
    assert not (out / MANIFEST).exists()


def test_the_report_says_which_checks_cover_which_file(exported: Path) -> None:
    html = (exported / REPORT).read_text("utf-8")
    section = html[html.index("<h2>What verify-bundle checks, file by file</h2>") :]
    covered = re.findall(r'<tr class="check"><td>([^<]+)</td><td>([^<]+)</td>', section)
    files = [name for name, _ in covered]
    assert files == [
        MANIFEST,
        MANIFEST_SIG,
        CHECKPOINT,
        NOTARY_VKEY,
        "events/NNNNNN.json",
        TRACE,
        DATA,
        CPV_FILE,
        REPORT,
    ]
    what = dict(covered)
    assert f"signature in {MANIFEST_SIG} by the exporter ({REGULATOR})" in what[MANIFEST]
    for name in (CHECKPOINT, NOTARY_VKEY, "events/NNNNNN.json", TRACE, DATA, CPV_FILE, REPORT):
        assert f"SHA-256 listed in the signed {MANIFEST}" in what[name]
    assert "inclusion proof" in what["events/NNNNNN.json"]
    assert "envelope signature" in what["events/NNNNNN.json"]
    assert "checkpoint signature by the notary key" in what[CHECKPOINT]
    assert "openings open the signed commitments" in what[DATA]


# -- the report ----------------------------------------------------------------------------


def test_the_report_shows_the_timeline_limits_corrections_and_a_chart_per_cpp(
    exported: Path,
) -> None:
    html = (exported / REPORT).read_text("utf-8")
    trace = load(exported / TRACE)
    assert trace["events"], "the trace holds no events"
    assert html.count('<tr class="event">') == len(trace["events"])
    for entry in trace["events"]:
        signed_by = (
            f"{entry['printedName']} ({entry['person']})" if entry["person"] else "party key"
        )
        shown = (entry["type"], entry["signer"], signed_by, entry["meaning"])
        assert "".join(f"<td>{cell}</td>" for cell in shown) in html
    assert "<td>32 - 55</td>" in html and "<td>35 - 50</td>" in html
    cpps = {p["name"]: p for p in trace["parameters"] if p["kind"] == "CPP"}
    chart = re.compile(r'<svg[^>]*aria-label="control chart: ([^"]+)".*?</svg>', re.S)
    charts = {found.group(1): found.group(0) for found in chart.finditer(html)}
    assert set(charts) == set(cpps) == {"culture temperature", "dissolved oxygen"}
    assert html.count("<svg") == len(cpps)
    for name, parameter in cpps.items():
        for version in parameter["limitsHistory"]:
            for kind in ("alert", "action"):
                limits = version[kind]
                assert f"{kind} low {limits['low']} (v{version['version']})" in charts[name]
                assert f"{kind} high {limits['high']} (v{version['version']})" in charts[name]
    assert "<polyline" in charts["culture temperature"]  # BR1.TEMP's points
    assert "no data for this parameter" in charts["dissolved oxygen"]
    superseded = re.findall(r'<tr class="superseded"><td>(R-\d+)</td><td>(\d+)</td>', html)
    assert superseded == [("R-002", "1")]
    assert "SUPERSEDED: corrected by contoso-cmo: transcription error in the titer" in html


@pytest.mark.parametrize(
    ("parameter", "tag"),
    [
        ("culture temperature", "BR1.TEMP"),
        ("pH", "BR1.PH"),
        ("dissolved oxygen", "BR1.DO"),
        ("titer at harvest", None),
    ],
)
def test_a_cpp_s_chart_plots_the_tag_that_names_it(parameter: str, tag: str | None) -> None:
    assert tag_for(parameter, ["BR1.DO", "BR1.PH", "BR1.TEMP"]) == tag


def test_the_report_needs_no_script_and_no_external_asset(exported: Path) -> None:
    html = (exported / REPORT).read_text("utf-8").lower()
    assert "<script" not in html
    assert not re.search(r"(src|href)\s*=", html)
    assert "@import" not in html and "url(" not in html


# -- what the exporter may not read --------------------------------------------------------


def test_a_sponsor_s_bundle_verifies_every_envelope_and_names_the_openings_withheld(
    served: Served, tmp_path: Path
) -> None:
    with client_of(served, NORTHWIND) as client:
        out = export_evidence(client, B1, tmp_path / "sponsor")
    assert [w for w in load(out / MANIFEST)["withheld"] if "type" in w] == []
    report = verify_bundle(out, vkey=notary_vkey(served))
    assert report.problems == []
    # R-002 v1 and v2 carry media_lot_supplier, E-001 other_client_ref: the CMO's.
    assert (report.openings_verified, report.openings_withheld) == (0, 3)
    assert report.partial
    assert "withheld 3 openings (no confidential grant)" in report.summary()
    result = CliRunner().invoke(app, ["verify-bundle", str(out), "--vkey", notary_vkey(served)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("PARTIAL: verified")
    assert "OK:" not in result.output


def test_a_bundle_with_a_tampered_opening_fails(bundle: Path) -> None:
    data = load(bundle / DATA)
    row = next(r for r in data["discrete"] if r["id"] == "R-002")
    [item] = row["confidential"]
    assert item["value"] is not None and item["commitment"] is not None
    item["value"] = item["value"] + " (edited)"
    save(bundle, DATA, data)
    found = problems(bundle)
    assert found == [
        f"{DATA}: discrete record R-002 v1: confidential media_lot_supplier: the opening does "
        "not open the signed commitment"
    ]
    result = CliRunner().invoke(app, ["verify-bundle", str(bundle)])
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[-1].startswith("FAILED:")


def test_the_regulator_s_bundle_verifies_the_openings_its_grant_opens(exported: Path) -> None:
    report = verify_bundle(exported)
    assert report.problems == []
    assert (report.openings_verified, report.openings_withheld) == (3, 0)
    assert "3 openings of confidential elements" in report.summary()


def test_the_bundle_verifier_imports_no_database_server_or_projection_package() -> None:
    code = (
        "import sys\n"
        "import clients.bundle\n"
        "heavy = ('sqlalchemy', 'eventsourcing', 'starlette', 'strawberry', 'api', 'projections')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
