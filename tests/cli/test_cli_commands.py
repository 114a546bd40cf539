"""The party-facing ``cmo-ledger`` commands against a real server, as scripts use them."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from clients.cli import app
from clients.client import LedgerClient
from ledger.domain.subjects import parameter_subject
from ledger.keys import encode_public_key, key_id
from ledger.timeutil import format_utc, now_utc
from tests.support.cli import (
    CMO,
    ENV,
    REGULATOR,
    SPONSOR,
    Cli,
    a_batch,
    agreement_in_force,
    discrete_file,
)
from tests.support.server import Server
from tests.support.world import World, agreement_terms

pytestmark = pytest.mark.xdist_group("client_cli")


def test_an_agreement_is_proposed_signed_and_shown(cli: Cli, tmp_path: Path) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    shown = cli.json(CMO, "agreement", "show", agreement)
    assert (shown["id"], shown["status"], shown["termsVersion"]) == (agreement, "effective", 1)
    assert "effective" in cli.run(SPONSOR, "agreement", "show", agreement)


def test_an_amendment_takes_effect_when_the_other_party_signs_it(cli: Cli, tmp_path: Path) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    amended = tmp_path / "amended.json"
    amended.write_text(json.dumps({**agreement_terms(), "review_cadence_months": 12}))
    cli.json(SPONSOR, "agreement", "amend", agreement, str(amended), "--reason", "yearly reviews")
    assert cli.json(CMO, "agreement", "show", agreement)["amendmentPending"] is True
    cli.json(CMO, "agreement", "sign", agreement, "--amendment")
    shown = cli.json(CMO, "agreement", "show", agreement)
    assert (shown["termsVersion"], shown["terms"]["review_cadence_months"]) == (2, 12)
    assert [a["status"] for a in shown["amendments"]] == ["signed"]


def test_a_party_adds_a_key_and_revokes_it(cli: Cli) -> None:
    key = SigningKey.generate()
    added = cli.json(CMO, "key", "add", "--public-key", encode_public_key(key))
    revoked = cli.json(CMO, "key", "revoke", key_id(key.verify_key), "--reason", "laptop retired")
    assert (added["type"], revoked["type"]) == ("KeyAdded", "KeyRevoked")
    assert revoked["version"] == added["version"] + 1


def test_data_is_delivered_corrected_and_traced(cli: Cli, tmp_path: Path) -> None:
    batch = a_batch(cli, agreement_in_force(cli, tmp_path))
    first = discrete_file(tmp_path / "results.csv", "4.62")
    stored = cli.json(CMO, "data", "submit", str(first), "--batch", batch, "--kind", "discrete",
                      "--source-system", "contoso-lims")  # fmt: skip
    assert [s["type"] for s in stored] == ["DataSubmitted"]
    fixed = discrete_file(tmp_path / "fixed.csv", "4.71")
    corrected = cli.json(CMO, "data", "correct", str(fixed), "--batch", batch, "--kind",
                         "discrete", "--supersedes", "R-001,R-002", "--reason",
                         "titer re-integrated after a baseline error")  # fmt: skip
    assert corrected["type"] == "DataCorrected"
    trace = cli.json(SPONSOR, "trace", "batch", batch)
    assert [e["type"] for e in trace["events"]] == [
        "BatchRegistered",
        "DataSubmitted",
        "DataCorrected",
    ]
    assert trace["corrections"][0]["reason"] == "titer re-integrated after a baseline error"


def test_events_and_continuous_data_are_delivered_and_deviations_acknowledged(
    cli: Cli, tmp_path: Path
) -> None:
    batch = a_batch(cli, agreement_in_force(cli, tmp_path))
    start = now_utc() - timedelta(days=3)
    events = tmp_path / "events.csv"
    events.write_text(
        "id,kind,started_at,ended_at,severity,description\n"
        f"E-001,deviation,{format_utc(start)},{format_utc(start + timedelta(minutes=42))},major,"
        "BR1.TEMP above 37.5 Cel after a chiller trip\n",
        encoding="utf-8",
    )
    series = tmp_path / "temperature.csv"
    rows = [f"BR1.TEMP,{format_utc(start + timedelta(minutes=m))},37.0{m},192" for m in range(5)]
    series.write_text("tag,timestamp,value,quality\n" + "\n".join(rows) + "\n", encoding="utf-8")
    for kind, path, system in [("event", events, "contoso-mes"), ("continuous", series, "pi")]:
        stored = cli.json(CMO, "data", "submit", str(path), "--batch", batch, "--kind", kind,
                          "--source-system", system)  # fmt: skip
        assert [s["type"] for s in stored] == ["DataSubmitted"]
    acknowledged = cli.json(SPONSOR, "data", "ack", "--batch", batch, "--record", "E-001")
    assert acknowledged["type"] == "DataAcknowledged"
    deviations = cli.json(SPONSOR, "trace", "batch", batch)["deviations"]
    assert [(d["id"], d["acknowledgedBy"]) for d in deviations] == [("E-001", SPONSOR)]


def test_a_file_that_breaks_the_agreement_s_format_is_refused_before_signing(
    cli: Cli, tmp_path: Path, world: World
) -> None:
    batch = a_batch(cli, agreement_in_force(cli, tmp_path))
    bad = tmp_path / "bad.csv"
    bad.write_text("parameter,value\ntiter,4.6\n", encoding="utf-8")
    head = world.ledger.head()
    line = cli.fails(CMO, "data", "submit", str(bad), "--batch", batch, "--kind", "discrete",
                     "--source-system", "contoso-lims")  # fmt: skip
    assert line.startswith("error [VALIDATION_FAILED]") and "bad.csv:1:" in line
    assert world.ledger.head() == head


def test_a_parameter_is_defined_revised_and_its_history_listed(cli: Cli, tmp_path: Path) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    defined = cli.json(SPONSOR, "param", "define", agreement, "dissolved oxygen", "--kind",
                       "CPP", "--unit", "%", "--alert", "32,55", "--action", "30,60",
                       "--rationale", "process characterisation PC-2023-014")  # fmt: skip
    parameter = defined["subject"]
    assert parameter == str(parameter_subject(agreement, "dissolved oxygen"))
    changes = json.dumps({"alert": {"low": "35", "high": "50"}})
    revision = cli.json(CMO, "param", "propose", parameter, "--changes", changes, "--reason",
                        "tighter DO control since run 7")["revision"]  # fmt: skip
    cli.json(SPONSOR, "param", "approve", parameter, revision)
    history = cli.json(CMO, "param", "history", agreement, "--name", "dissolved oxygen")
    versions = history[0]["limitsHistory"]
    assert [(v["version"], v["alert"]) for v in versions] == [
        (1, {"low": "32", "high": "55"}),
        (2, {"low": "35", "high": "50"}),
    ]
    assert history[0]["revisions"][0]["outcome"] == "approved"


def test_a_grant_opens_data_and_a_revocation_closes_it(cli: Cli, tmp_path: Path) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    until = format_utc(now_utc() + timedelta(days=14))
    grant = cli.json(SPONSOR, "grant", agreement, "--grantee", REGULATOR, "--purpose",
                     "inspection", "--class", "discrete,event", "--valid-until", until)  # fmt: skip
    revoked = cli.json(SPONSOR, "revoke", grant["subject"], "--reason", "inspection closed")
    assert (grant["type"], revoked["type"]) == ("AccessGranted", "AccessRevoked")
    assert revoked["subject"] == grant["subject"]


def test_an_enhancement_is_claimed_resolved_by_both_and_disclosed(cli: Cli, tmp_path: Path) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    dossier = tmp_path / "dossier.pdf"
    dossier.write_bytes(b"%PDF- feed schedule that lifts titer by 12 %")
    claimed = cli.json(CMO, "claim", "--agreement", agreement, "--title", "Feed schedule B",
                       "--summary", "A feed schedule", "--dossier", str(dossier),
                       "--ownership", "cmo")  # fmt: skip
    enhancement = claimed["enhancement"]
    assert Path(claimed["salt_file"]).exists()
    cli.json(SPONSOR, "claim", "ack", enhancement)
    cosig = tmp_path / "resolution.json"
    cli.run(SPONSOR, "claim", "countersign", enhancement, "--owner", "cmo", "--out", str(cosig))
    resolved = cli.json(CMO, "claim", "resolve", "--countersignature", str(cosig))
    disclosed = cli.json(CMO, "claim", "disclose", enhancement, "--dossier", str(dossier))
    assert (resolved["type"], disclosed["type"]) == ("EnhancementResolved", "EnhancementDisclosed")


def countersigned_review(cli: Cli, by: str, agreement: str, out: Path) -> dict[str, Any]:
    period_end = now_utc() - timedelta(minutes=1)
    cli.run(by, "review", "countersign", "--agreement", agreement, "--period-end",
            format_utc(period_end), "--next-due", format_utc(period_end + timedelta(days=183)),
            "--outcome", "limits confirmed", "--out", str(out))  # fmt: skip
    return dict(json.loads(out.read_text()))


def test_a_review_is_countersigned_by_one_party_and_completed_by_the_other(
    cli: Cli, tmp_path: Path
) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    review = countersigned_review(cli, CMO, agreement, tmp_path / "review.json")
    completed = cli.json(
        SPONSOR, "review", "complete", "--countersignature", str(tmp_path / "review.json")
    )
    assert (completed["type"], completed["subject"]) == ("ReviewCompleted", review["subject"])
    assert review["countersignature"]["signer"] == CMO


def test_a_party_cannot_complete_a_review_it_countersigned_itself(
    cli: Cli, tmp_path: Path, world: World
) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    countersigned_review(cli, CMO, agreement, tmp_path / "review.json")
    head = world.ledger.head()
    line = cli.fails(CMO, "review", "complete", "--countersignature", str(tmp_path / "review.json"))
    assert line.startswith("error [FORBIDDEN] payload.countersignature.signer:"), line
    assert world.ledger.head() == head


def test_the_audit_trail_and_as_of_answer_as_json(cli: Cli, tmp_path: Path) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    trail = cli.json(SPONSOR, "audit", "trail", "--agreement", agreement)
    assert [e["type"] for e in trail] == ["AgreementProposed", "AgreementSigned"]
    proposed = trail[0]["position"]
    then = cli.json(SPONSOR, "asof", str(proposed), "--agreement", agreement)
    assert then["position"] == proposed
    assert then["agreement"]["status"] == "proposed"
    by_time = cli.json(SPONSOR, "asof", trail[1]["recordedAt"], "--agreement", agreement)
    assert by_time["position"] >= trail[1]["position"]
    assert by_time["agreement"]["status"] == "effective"


def test_the_notary_admits_a_party_that_then_adds_a_key(
    cli: Cli, tmp_path: Path, server: Server
) -> None:
    key = SigningKey.generate()
    party = f"lab-{uuid.uuid4().hex[:8]}"
    admitted = cli.json("notary", "party", "admit", "--party", party, "--legal-name",
                        "Contract Lab GmbH", "--role", "auditor", "--public-key",
                        encode_public_key(key))  # fmt: skip
    assert admitted["type"] == "PartyAdmitted"
    with LedgerClient(server.url, party, key) as client:
        added = client.add_key(encode_public_key(SigningKey.generate()))
    assert added.version == 2


def test_a_witness_cosigns_from_the_command_line(cli: Cli, tmp_path: Path, server: Server) -> None:
    server.services.notary.checkpoint_now()
    cosigned = cli.json(REGULATOR, "witness", "cosign", "--state", str(tmp_path / "w.json"))
    assert REGULATOR in cosigned["cosignatures"]


def test_a_refusal_is_one_line_with_the_server_s_code(cli: Cli, world: World) -> None:
    head = world.ledger.head()
    line = cli.fails(CMO, "agreement", "sign", str(uuid.uuid4()))
    assert line.startswith("error [NOT_FOUND] subject:"), line
    assert world.ledger.head() == head


def test_a_wrong_passphrase_is_one_line(cli: Cli) -> None:
    env = {**ENV, "CMO_LEDGER_PASSPHRASE": "not the passphrase"}
    line = cli.fails(CMO, "audit", "trail", env=env)
    assert line.startswith("error [VALIDATION_FAILED] passphrase: wrong passphrase")


def test_an_unreachable_server_is_one_line(cli: Cli) -> None:
    result = cli.runner.invoke(
        app, ["audit", "trail", "--url", "http://127.0.0.1:9", "--key", str(cli.keystores[CMO])],
        env=ENV,
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error [TRANSPORT_FAILURE]")
