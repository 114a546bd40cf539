"""The questions people ask, on the command line against a real server: ``reviews``,
``deliveries``, ``claims``, ``claim show``, ``grants``, ``data show`` and ``status``; each
``--json`` checked against its schema in ``docs/schema/cli/``, each ``--csv`` read back as
the rows of its ``--json``; and shell completion from the server."""

from __future__ import annotations

import ast
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
import pytest
import typer

from clients.cli import app
from clients.cli.completion import complete_agreement, complete_batch, complete_parameter
from ledger.timeutil import format_utc, now_utc
from tests.support.cli import (
    CMO,
    ENV,
    PASSPHRASE,
    REGULATOR,
    SPONSOR,
    Cli,
    a_batch,
    agreement_in_force,
    discrete_file,
    every_command,
)
from tests.support.cli_schemas import SCHEMAS, as_cells, conforms, read_csv
from tests.support.server import Server
from tests.support.world import World, agreement_terms

pytestmark = pytest.mark.xdist_group("cli_questions")

AUDITOR = "qa-auditor-llc"

ROOT = Path(__file__).resolve().parents[2]


def ago(**delta: float) -> str:
    return format_utc(now_utc() - timedelta(**delta))


def later(**delta: float) -> str:
    return format_utc(now_utc() + timedelta(**delta))


def same_rows_as_json(cli: Cli, party: str, *args: str, rows: list[dict[str, Any]]) -> None:
    """The command's ``--csv`` parses, and its rows are ``rows`` (its ``--json``) cell for
    cell in the CSV's columns."""
    result = cli.invoke(party, *args, "--csv")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    header, parsed = read_csv(result.stdout)
    assert header and len(set(header)) == len(header)
    assert parsed == as_cells(rows, header)


def overdue_review(cli: Cli, agreement: str, tmp_path: Path) -> None:
    """A review of the period ending 30 days ago whose next review was due yesterday."""
    out = tmp_path / f"review-{agreement}.json"
    cli.run(CMO, "review", "countersign", "--agreement", agreement, "--period-end",
            ago(days=30), "--next-due", ago(days=1), "--outcome", "limits confirmed",
            "--out", str(out))  # fmt: skip
    cli.json(SPONSOR, "review", "complete", "--countersignature", str(out))


def deviation_file(path: Path, record: str, started: str) -> Path:
    path.write_text(
        "id,kind,started_at,ended_at,severity,description\n"
        f"{record},deviation,{started},{started},major,BR1.TEMP above 37.5 Cel\n",
        encoding="utf-8",
    )
    return path


def submit(cli: Cli, path: Path, batch: str, kind: str) -> None:
    cli.json(CMO, "data", "submit", str(path), "--batch", batch, "--kind", kind,
             "--source-system", "contoso-lims")  # fmt: skip


# -- reviews -------------------------------------------------------------------------------


def test_an_overdue_review_shows_under_overdue_and_a_fresh_one_does_not(
    cli: Cli, tmp_path: Path
) -> None:
    fresh = agreement_in_force(cli, tmp_path)
    late = agreement_in_force(cli, tmp_path)
    overdue_review(cli, late, tmp_path)
    overdue = conforms(cli.json(SPONSOR, "reviews", "--overdue"), "reviews")
    assert overdue, "the overdue review is listed"
    ids = [r["agreementId"] for r in overdue]
    assert late in ids and fresh not in ids
    assert all(r["overdue"] and r["state"] == "overdue" for r in overdue)
    everything = conforms(cli.json(SPONSOR, "reviews"), "reviews")
    assert {fresh, late} <= {r["agreementId"] for r in everything}
    [one] = cli.json(CMO, "reviews", "--agreement", late)
    assert (one["state"], [h["outcome"] for h in one["history"]]) == (
        "overdue",
        ["limits confirmed"],
    )
    [due] = cli.json(CMO, "reviews", "--agreement", fresh)
    assert (due["state"], due["overdue"], due["history"]) == ("due", False, [])


def test_reviews_print_a_table_and_csv_with_the_rows_of_json(cli: Cli, tmp_path: Path) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    assert agreement in cli.run(SPONSOR, "reviews", "--agreement", agreement)
    rows = cli.json(SPONSOR, "reviews", "--agreement", agreement)
    assert rows
    same_rows_as_json(cli, SPONSOR, "reviews", "--agreement", agreement, rows=rows)


# -- deliveries ----------------------------------------------------------------------------


def test_a_late_delivery_shows_under_late_and_a_missing_one_under_missing(
    cli: Cli, tmp_path: Path
) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    reported_late = a_batch(cli, agreement)
    # Detected three days ago, due within 24 hours, delivered now: late.
    submit(cli, deviation_file(tmp_path / "dev.csv", "E-001", ago(days=3)), reported_late, "event")
    silent = a_batch(cli, agreement)
    # Ended five days ago: discrete was due in 72 hours, continuous in 24; nothing came.
    cli.json(CMO, "batch", "end", silent, "--ended-at", ago(days=5))

    late = conforms(cli.json(SPONSOR, "deliveries", "--agreement", agreement, "--late"),
                    "deliveries")  # fmt: skip
    assert [(d["batch"], d["dataClass"], d["item"], d["state"]) for d in late] == [
        (reported_late, "event", "E-001", "late")
    ]
    missing = conforms(cli.json(SPONSOR, "deliveries", "--agreement", agreement, "--missing"),
                       "deliveries")  # fmt: skip
    assert sorted((d["batch"], d["dataClass"], d["state"]) for d in missing) == [
        (silent, "continuous", "missing"),
        (silent, "discrete", "missing"),
    ]
    every = conforms(cli.json(CMO, "deliveries", "--batch", reported_late), "deliveries")
    assert every, "the batch's obligations are listed"
    assert {d["batch"] for d in every} == {reported_late}
    assert {d["state"] for d in every} == {"late", "awaiting"}


def test_deliveries_print_a_table_and_csv_with_the_rows_of_json(cli: Cli, tmp_path: Path) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    batch = a_batch(cli, agreement)
    submit(cli, discrete_file(tmp_path / "results.csv", "4.62"), batch, "discrete")
    assert batch in cli.run(CMO, "deliveries", "--batch", batch)
    rows = cli.json(CMO, "deliveries", "--batch", batch)
    assert rows
    same_rows_as_json(cli, CMO, "deliveries", "--batch", batch, rows=rows)


def test_late_and_missing_together_are_refused_naming_both(cli: Cli, world: World) -> None:
    head = world.ledger.head()
    line = cli.fails(SPONSOR, "deliveries", "--late", "--missing")
    assert line.startswith("error [CLIENT_ERROR] --missing:") and "--late" in line, line
    assert world.ledger.head() == head


# -- claims --------------------------------------------------------------------------------


def test_a_claim_is_listed_and_shown_with_its_dossier_checked_once_disclosed(
    cli: Cli, tmp_path: Path
) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    dossier = tmp_path / "dossier.pdf"
    dossier.write_bytes(b"%PDF- feed schedule B lifts titer by 12 %")
    claimed = cli.json(CMO, "claim", "--agreement", agreement, "--title", "Feed schedule B",
                       "--summary", "A feed schedule", "--dossier", str(dossier),
                       "--ownership", "cmo")  # fmt: skip
    enhancement = claimed["enhancement"]
    claims = conforms(cli.json(SPONSOR, "claims", "--agreement", agreement), "claims")
    assert [(c["id"], c["title"], c["status"], c["claimant"]) for c in claims] == [
        (enhancement, "Feed schedule B", "claimed", CMO)
    ]
    same_rows_as_json(cli, SPONSOR, "claims", "--agreement", agreement, rows=claims)
    before = conforms(cli.json(SPONSOR, "claim", "show", enhancement), "claim-show")
    assert (before["dossier"], before["dossierVerified"]) == (None, None)
    cli.json(CMO, "claim", "disclose", enhancement, "--dossier", str(dossier))
    after = conforms(cli.json(SPONSOR, "claim", "show", enhancement), "claim-show")
    assert after["dossierVerified"] is True
    assert after["commitment"] == claimed["commitment"]
    assert "Feed schedule B" in cli.run(SPONSOR, "claim", "show", enhancement)
    same_rows_as_json(cli, SPONSOR, "claim", "show", enhancement, rows=[after])


def test_an_unknown_claim_is_one_line(cli: Cli) -> None:
    line = cli.fails(SPONSOR, "claim", "show", str(uuid.uuid4()))
    assert line.startswith("error [NOT_FOUND] ENHANCEMENT:"), line


# -- grants --------------------------------------------------------------------------------


def test_grants_at_a_time_say_who_could_see_the_data_then(cli: Cli, tmp_path: Path) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    granted = cli.json(SPONSOR, "grant", agreement, "--grantee", REGULATOR, "--purpose",
                       "inspection", "--class", "discrete", "--valid-until",
                       later(days=14))  # fmt: skip
    grant = granted["subject"]
    at = ("grants", "--agreement", agreement, "--party", REGULATOR, "--at")
    before = conforms(cli.json(SPONSOR, *at, ago(days=1)), "grants")
    assert before == []
    after = conforms(cli.json(SPONSOR, *at, later(hours=1)), "grants")
    assert [(g["id"], g["grantee"], g["active"]) for g in after] == [(grant, REGULATOR, True)]
    expired = cli.json(SPONSOR, *at, later(days=15))
    assert expired == []
    listed = conforms(cli.json(SPONSOR, "grants", "--agreement", agreement), "grants")
    assert [g["id"] for g in listed] == [grant]
    assert cli.json(SPONSOR, "grants", "--agreement", agreement, "--party", CMO) == []
    same_rows_as_json(cli, SPONSOR, "grants", "--agreement", agreement, rows=listed)
    assert grant in cli.run(REGULATOR, "grants")


def test_grants_at_a_time_for_a_batch_say_every_party_that_could_see_it_then(
    cli: Cli, tmp_path: Path
) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    batch, other = a_batch(cli, agreement), a_batch(cli, agreement)
    whole = cli.json(SPONSOR, "grant", agreement, "--grantee", REGULATOR, "--purpose",
                     "inspection", "--class", "discrete", "--valid-until",
                     later(days=14))["subject"]  # fmt: skip
    only_other = cli.json(SPONSOR, "grant", agreement, "--grantee", AUDITOR, "--purpose",
                          "supplier audit", "--class", "discrete", "--batch", other,
                          "--valid-until", later(days=14))["subject"]  # fmt: skip
    at = ("grants", "--batch", batch, "--at")
    assert conforms(cli.json(SPONSOR, *at, ago(days=1)), "grants") == []
    then = conforms(cli.json(SPONSOR, *at, later(hours=1)), "grants")
    assert [(g["id"], g["grantee"]) for g in then] == [(whole, REGULATOR)]
    both = cli.json(SPONSOR, "grants", "--batch", other, "--at", later(hours=1))
    assert sorted(g["id"] for g in both) == sorted([whole, only_other])
    now = conforms(cli.json(SPONSOR, "grants", "--batch", batch), "grants")
    assert [g["id"] for g in now] == [whole]
    same_rows_as_json(cli, SPONSOR, *at, later(hours=1), rows=then)


def test_a_batch_of_another_agreement_is_refused_naming_agreement(cli: Cli, tmp_path: Path) -> None:
    batch = a_batch(cli, agreement_in_force(cli, tmp_path))
    other = agreement_in_force(cli, tmp_path)
    line = cli.fails(SPONSOR, "grants", "--agreement", other, "--batch", batch)
    assert line.startswith("error [CLIENT_ERROR] --agreement:"), line


def test_a_batch_the_caller_may_not_see_is_refused_naming_batch(cli: Cli) -> None:
    line = cli.fails(SPONSOR, "grants", "--batch", "NWB101-NO-SUCH")
    assert line.startswith("error [FORBIDDEN] --batch:"), line


def test_a_malformed_time_is_refused_naming_at(cli: Cli) -> None:
    line = cli.fails(SPONSOR, "grants", "--party", REGULATOR, "--at", "last tuesday")
    assert "--at" in line, line


@pytest.mark.parametrize("command", ["reviews", "deliveries", "claims", "grants"])
def test_an_agreement_the_caller_may_not_see_is_refused_naming_agreement(
    cli: Cli, world: World, command: str
) -> None:
    head = world.ledger.head()
    line = cli.fails(SPONSOR, command, "--agreement", str(uuid.uuid4()))
    assert line.startswith("error [FORBIDDEN] --agreement:"), line
    assert world.ledger.head() == head


def test_json_and_csv_together_are_refused(cli: Cli) -> None:
    line = cli.fails(SPONSOR, "reviews", "--json", "--csv")
    assert "--csv" in line and "--json" in line, line


# -- data show -----------------------------------------------------------------------------


def test_data_show_gives_every_version_its_correction_and_who_signed(
    cli: Cli, tmp_path: Path
) -> None:
    batch = a_batch(cli, agreement_in_force(cli, tmp_path))
    submit(cli, discrete_file(tmp_path / "results.csv", "4.62"), batch, "discrete")
    fixed = discrete_file(tmp_path / "fixed.csv", "4.71")
    cli.json(CMO, "data", "correct", str(fixed), "--batch", batch, "--kind", "discrete",
             "--supersedes", "R-001,R-002", "--reason", "titer re-integrated")  # fmt: skip
    submit(cli, deviation_file(tmp_path / "dev.csv", "E-001", ago(hours=2)), batch, "event")

    shown = conforms(cli.json(SPONSOR, "data", "show", "--batch", batch), "data-show")
    assert (shown["batch"], shown["withheld"]) == (batch, [])
    values = shown["values"]
    assert values, "the batch's values are listed"
    titers = [
        (v["version"], v["value"], v["status"], v["signer"], v["correction"], v["reason"])
        for v in values
        if v["id"] == "R-001"
    ]
    assert sorted(titers) == [
        (1, "4.62", "superseded", CMO, False, None),
        (2, "4.71", "current", CMO, True, "titer re-integrated"),
    ]
    assert {v["kind"] for v in values} == {"discrete", "event"}
    corrections = [s for s in shown["submissions"] if s["correction"]]
    assert [(s["signer"], s["reason"]) for s in corrections] == [(CMO, "titer re-integrated")]

    only = cli.json(SPONSOR, "data", "show", "--batch", batch, "--parameter", "endotoxin")
    assert only["values"], "the parameter's results are listed"
    assert sorted((v["name"], v["version"]) for v in only["values"]) == [
        ("endotoxin", 1),
        ("endotoxin", 2),
    ]
    events = cli.json(SPONSOR, "data", "show", "--batch", batch, "--kind", "event")["values"]
    assert [(v["id"], v["name"]) for v in events] == [("E-001", "deviation")]
    same_rows_as_json(cli, SPONSOR, "data", "show", "--batch", batch, rows=values)
    assert "titer re-integrated" in cli.run(SPONSOR, "data", "show", "--batch", batch)


def test_data_show_names_the_signer_of_continuous_data(cli: Cli, tmp_path: Path) -> None:
    batch = a_batch(cli, agreement_in_force(cli, tmp_path))
    start = now_utc() - timedelta(hours=3)
    series = tmp_path / "temperature.csv"
    rows = [f"BR1.TEMP,{format_utc(start + timedelta(minutes=m))},37.0{m},192" for m in range(5)]
    series.write_text("tag,timestamp,value,quality\n" + "\n".join(rows) + "\n", encoding="utf-8")
    submit(cli, series, batch, "continuous")
    shown = conforms(
        cli.json(SPONSOR, "data", "show", "--batch", batch, "--kind", "continuous"), "data-show"
    )
    assert [(v["id"], v["value"], v["signer"]) for v in shown["values"]] == [("BR1.TEMP", "5", CMO)]


def test_a_party_without_a_grant_is_refused_data_show(
    cli: Cli, tmp_path: Path, world: World
) -> None:
    batch = a_batch(cli, agreement_in_force(cli, tmp_path))
    head = world.ledger.head()
    line = cli.fails(REGULATOR, "data", "show", "--batch", batch)
    assert line.startswith("error [FORBIDDEN] --batch:"), line
    assert world.ledger.head() == head


def test_a_grantee_sees_the_data_its_grant_opens_and_is_told_what_is_withheld(
    cli: Cli, tmp_path: Path
) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    batch = a_batch(cli, agreement)
    submit(cli, discrete_file(tmp_path / "results.csv", "4.62"), batch, "discrete")
    cli.json(SPONSOR, "grant", agreement, "--grantee", REGULATOR, "--purpose", "inspection",
             "--class", "discrete", "--valid-until", later(days=14))  # fmt: skip
    result = cli.invoke(REGULATOR, "data", "show", "--batch", batch, "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    shown = conforms(json.loads(result.stdout), "data-show")
    assert shown["values"], "the granted results are listed"
    assert {v["kind"] for v in shown["values"]} == {"discrete"}
    assert [w["dataClass"] for w in shown["withheld"]] == ["event"]
    assert "withheld: event" in result.stderr
    line = cli.fails(REGULATOR, "data", "show", "--batch", batch, "--kind", "event")
    assert line.startswith("error [FORBIDDEN]"), line


def test_data_show_refuses_a_parameter_of_event_records(cli: Cli, tmp_path: Path) -> None:
    batch = a_batch(cli, agreement_in_force(cli, tmp_path))
    line = cli.fails(SPONSOR, "data", "show", "--batch", batch, "--kind", "event",
                     "--parameter", "titer at harvest")  # fmt: skip
    assert line.startswith("error [CLIENT_ERROR] --parameter:"), line


# -- status --------------------------------------------------------------------------------


def test_status_shows_what_waits_for_each_party(cli: Cli, tmp_path: Path) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    defined = cli.json(SPONSOR, "param", "define", agreement, "dissolved oxygen", "--kind",
                       "CPP", "--unit", "%", "--alert", "32,55", "--action", "30,60",
                       "--rationale", "process characterisation")  # fmt: skip
    changes = json.dumps({"alert": {"low": "35", "high": "50"}})
    revision = cli.json(CMO, "param", "propose", defined["subject"], "--changes", changes,
                        "--reason", "tighter DO control")["revision"]  # fmt: skip
    amended = tmp_path / "amended.json"
    amended.write_text(json.dumps({**agreement_terms(), "review_cadence_months": 12}))
    cli.json(CMO, "agreement", "amend", agreement, str(amended), "--reason", "yearly reviews")
    overdue_review(cli, agreement, tmp_path)
    batch = a_batch(cli, agreement)
    submit(cli, deviation_file(tmp_path / "dev.csv", "E-007", ago(days=2)), batch, "event")
    silent = a_batch(cli, agreement)
    cli.json(CMO, "batch", "end", silent, "--ended-at", ago(days=5))

    sponsor = conforms(cli.json(SPONSOR, "status"), "status")
    assert sponsor["party"] == SPONSOR
    assert (agreement, "effective", "sponsor") in {
        (a["id"], a["status"], a["role"]) for a in sponsor["agreements"]
    }
    mine = [a for a in sponsor["approvals"] if a["agreementId"] == agreement]
    assert sorted((a["what"], a["proposedBy"]) for a in mine) == [
        ("amendment", CMO),
        ("parameter revision", CMO),
    ]
    assert revision in {a["item"] for a in mine}
    assert agreement in {r["agreementId"] for r in sponsor["overdue_reviews"]}
    assert (batch, "E-007") in {(d["batch"], d["item"]) for d in sponsor["late_deliveries"]}
    assert {(silent, "discrete"), (silent, "continuous")} <= {
        (d["batch"], d["dataClass"]) for d in sponsor["missing_deliveries"]
    }
    assert (batch, "E-007") in {(d["batch"], d["id"]) for d in sponsor["open_deviations"]}

    cmo = conforms(cli.json(CMO, "status"), "status")
    assert [a for a in cmo["approvals"] if a["agreementId"] == agreement] == []

    cli.json(SPONSOR, "data", "ack", "--batch", batch, "--record", "E-007")
    acknowledged = cli.json(SPONSOR, "status")["open_deviations"]
    assert (batch, "E-007") not in {(d["batch"], d["id"]) for d in acknowledged}


def test_status_prints_every_section_and_csv_one_row_per_item(cli: Cli, tmp_path: Path) -> None:
    agreement_in_force(cli, tmp_path)
    table = cli.run(SPONSOR, "status")
    for title in ("agreements", "waiting for your approval", "overdue reviews",
                  "late deliveries", "missing deliveries", "open deviations"):  # fmt: skip
        assert title in table
    found = cli.json(SPONSOR, "status")
    result = cli.invoke(SPONSOR, "status", "--csv")
    assert result.exit_code == 0, result.stderr
    header, rows = read_csv(result.stdout)
    assert header == ["section", "agreementId", "item", "state", "party", "at", "detail"]
    sections = [key for key in found if key != "party"]
    counts = {section: len(found[section]) for section in sections}
    assert counts["agreements"] > 0
    assert {s: sum(1 for r in rows if r["section"] == s) for s in sections} == counts


def test_a_grantee_s_status_lists_no_approvals(cli: Cli) -> None:
    regulator = conforms(cli.json(REGULATOR, "status"), "status")
    assert regulator["approvals"] == []
    assert all(a["role"] == "grantee" for a in regulator["agreements"])


# -- completion ----------------------------------------------------------------------------


@pytest.fixture
def completion_env(
    monkeypatch: pytest.MonkeyPatch, server: Server, keystores: dict[str, Path]
) -> None:
    monkeypatch.setenv("CMO_LEDGER_URL", server.url)
    monkeypatch.setenv("CMO_LEDGER_KEY", str(keystores[SPONSOR]))
    monkeypatch.setenv("CMO_LEDGER_PASSPHRASE", PASSPHRASE)


def test_install_completion_is_offered(cli: Cli) -> None:
    result = cli.runner.invoke(app, ["--help"], env=ENV)
    assert result.exit_code == 0
    assert "--install-completion" in result.stdout
    assert "--show-completion" in result.stdout


def test_agreement_ids_batch_names_and_parameter_names_complete_from_the_server(
    cli: Cli, tmp_path: Path, completion_env: None
) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    batch = a_batch(cli, agreement)
    cli.json(SPONSOR, "param", "define", agreement, "culture pH", "--kind", "CPP", "--unit",
             "[pH]", "--alert", "6.9,7.3", "--action", "6.8,7.4",
             "--rationale", "PC-2023-014")  # fmt: skip
    assert agreement in complete_agreement("")
    assert complete_agreement(agreement[:13]) == [agreement]
    assert batch in complete_batch("NWB101-CLI-")
    assert complete_batch(batch) == [batch]
    assert all(name.startswith("NWB101-CLI-") for name in complete_batch("NWB101-CLI-"))
    context = typer.Context(click.Command("retire"))
    context.params = {"agreement": agreement}
    assert complete_parameter(context, "") == ["culture pH"]
    assert complete_parameter(context, "x") == []
    context.params = {"batch": batch}
    assert complete_parameter(context, "cul") == ["culture pH"]
    assert "culture pH" in complete_parameter(None, "culture")


def test_the_shell_is_offered_the_server_s_values(
    cli: Cli, tmp_path: Path, completion_env: None
) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    env = {
        **ENV,
        "_CMO_LEDGER_COMPLETE": "complete_bash",
        "COMP_WORDS": f"cmo-ledger agreement terminate {agreement[:13]}",
        "COMP_CWORD": "3",
    }
    result = cli.runner.invoke(app, [], prog_name="cmo-ledger", env=env)
    assert agreement in result.stdout.split(), (result.stdout, result.stderr)


def test_the_shell_is_offered_commands_and_batch_and_parameter_names_from_the_server(
    cli: Cli, tmp_path: Path, completion_env: None
) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    batch = a_batch(cli, agreement)
    cli.json(SPONSOR, "param", "define", agreement, "osmolality", "--kind", "CPP", "--unit",
             "mosm/kg", "--alert", "280,400", "--action", "260,420",
             "--rationale", "PC-2023-014")  # fmt: skip
    lines = {
        "deliveries": "cmo-ledger deliv",
        "terminate": "cmo-ledger agreement term",
        batch: f"cmo-ledger trace batch {batch[:-2]}",
        "osmolality": f"cmo-ledger param retire {agreement} osmo",
    }
    for expected, line in lines.items():
        words = line.split()
        env = {**ENV, "_CMO_LEDGER_COMPLETE": "complete_bash", "COMP_WORDS": line,
               "COMP_CWORD": str(len(words) - 1)}  # fmt: skip
        result = cli.runner.invoke(app, [], prog_name="cmo-ledger", env=env)
        assert expected in result.stdout.split(), (line, result.stdout, result.stderr)


@pytest.mark.parametrize(
    "env",
    [
        {"CMO_LEDGER_KEY": ""},
        {"CMO_LEDGER_PASSPHRASE": ""},
        {"CMO_LEDGER_PASSPHRASE": "not the passphrase"},
        {"CMO_LEDGER_URL": "http://127.0.0.1:9"},
        {"CMO_LEDGER_URL": "not a url"},
    ],
    ids=["no-key", "no-passphrase", "wrong-passphrase", "unreachable", "bad-url"],
)
def test_completion_offers_nothing_and_says_nothing_on_any_error(
    completion_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert complete_agreement("") == []
    assert complete_batch("") == []
    assert complete_parameter(None, "") == []
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")


# -- schemas -------------------------------------------------------------------------------


def schemas_used(path: Path) -> set[str]:
    """The schema names of every ``conforms(document, "name")`` call in a test module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.args[1].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "conforms"
        and len(node.args) == 2
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
    }


def test_every_cli_schema_is_used_by_a_test() -> None:
    used = set().union(*(schemas_used(path) for path in (ROOT / "tests").rglob("test_*.py")))
    committed = {path.stem for path in SCHEMAS.glob("*.json")}
    assert committed, "docs/schema/cli holds the schemas"
    assert committed <= used, f"stale schemas, no test uses them: {sorted(committed - used)}"
    assert used <= committed, f"tests use schemas not committed: {sorted(used - committed)}"


NEW_NAMES = {("batch register", "batch")}
"""Arguments that name something new: nothing on the server to complete them from."""
PARAMETER_NAMES = {
    ("data show", "parameter"),
    ("grant", "parameter"),
    ("param retire", "name"),
    ("param history", "name"),
    ("cpv", "parameter"),
    ("baseline define", "parameter"),
    ("baseline revise", "parameter"),
}


def completed_by(path: str, name: str) -> Any:
    """The completion function of parameter ``name`` of command ``path``."""
    [command] = [c for p, c in every_command() if p == path]
    [param] = [p for p in command.params if p.name == name]
    return param._custom_shell_complete


def test_every_agreement_and_batch_argument_completes_from_the_server() -> None:
    named = [
        (path, param.name)
        for path, command in every_command()
        for param in command.params
        if param.name in ("agreement", "batch") and (path, param.name) not in NEW_NAMES
    ]
    assert len(named) > 10, named
    assert ("trace batch", "batch") in named and ("audit trail", "agreement") in named
    missing = [(path, name) for path, name in named if completed_by(path, name) is None]
    assert missing == []


@pytest.mark.parametrize(("path", "name"), sorted(PARAMETER_NAMES))
def test_a_parameter_name_completes_from_the_server(path: str, name: str) -> None:
    assert completed_by(path, name) is not None
