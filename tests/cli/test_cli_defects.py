"""The command line's defects users found, each shown fixed: settings instead of options,
partial answers, values that look like markup, one parser for times, full-width tables
and the articles of messages."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from clients.cli import app
from ledger.domain.subjects import batch_subject
from ledger.keys import encode_public_key, key_id
from ledger.timeutil import canonical_time, format_utc, now_utc
from ledger.wording import article
from tests.support.cli import (
    CMO,
    ENV,
    REGULATOR,
    SPONSOR,
    Cli,
    a_batch,
    agreement_in_force,
    discrete_file,
    every_command,
)
from tests.support.world import World

pytestmark = pytest.mark.xdist_group("cli_defects")

AUDITOR = "qa-auditor-llc"
SETTINGS = {"--url": "CMO_LEDGER_URL", "--key": "CMO_LEDGER_KEY"}


def _settings_only(cli: Cli, party: str, **more: str) -> dict[str, str]:
    """The environment of a command given its server and keystore by settings alone."""
    return {
        **ENV,
        "CMO_LEDGER_URL": cli.server.url,
        "CMO_LEDGER_KEY": str(cli.keystores[party]),
        **more,
    }


def _one_error_line(result: Any) -> str:
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return str(lines[0])


def _stored_payload(world: World, position: int) -> dict[str, Any]:
    found = world.ledger.read(after=position - 1, limit=1)
    assert found, f"nothing stored at position {position}"
    return dict(found[0].event.envelope["payload"])


def _a_batch_named(cli: Cli, agreement: str, batch: str, started_at: str) -> dict[str, Any]:
    where = ["--agreement", agreement, "--product", "NWB-101", "--site", "contoso-site-a"]
    return dict(cli.json(CMO, "batch", "register", batch, *where, "--started-at", started_at))


# ----------------------------------------------------------------------- settings


def test_the_server_url_setting_is_honoured_by_every_party_command(
    cli: Cli, tmp_path: Path
) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    batch = a_batch(cli, agreement)
    commands = [
        ["audit", "trail", "--batch", batch],
        ["trace", "batch", batch],
        ["agreement", "show", agreement],
        ["param", "history", agreement],
        ["asof", "1"],
    ]
    for command in commands:
        result = cli.runner.invoke(app, [*command, "--json"], env=_settings_only(cli, SPONSOR))
        assert result.exit_code == 0, (command, result.stdout, result.stderr, result.exception)
        assert json.loads(result.stdout) is not None
    trail = json.loads(
        cli.runner.invoke(
            app, ["audit", "trail", "--batch", batch, "--json"], env=_settings_only(cli, SPONSOR)
        ).stdout
    )
    assert [entry["type"] for entry in trail] == ["BatchRegistered"]
    written = cli.runner.invoke(
        app,
        ["batch", "end", batch, "--json"],
        env=_settings_only(cli, CMO),
    )
    assert written.exit_code == 0, (written.stdout, written.stderr, written.exception)
    assert json.loads(written.stdout)["type"] == "BatchEnded"


def test_verify_runs_beside_the_server_and_keystore_settings(cli: Cli, world: World) -> None:
    env = _settings_only(cli, SPONSOR, CMO_LEDGER_DATABASE_URL=world.ledger.settings.database_url)
    result = cli.runner.invoke(app, ["verify", "--workers", "1"], env=env)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert result.stdout.strip().splitlines()[-1].startswith("OK:")


@pytest.mark.parametrize("command", [["audit", "trail"], ["verify"]])
def test_a_malformed_server_url_setting_fails_in_one_line_naming_it(
    cli: Cli, command: list[str]
) -> None:
    env = _settings_only(cli, SPONSOR, CMO_LEDGER_URL="ftp://x")
    line = _one_error_line(cli.runner.invoke(app, command, env=env))
    assert line.startswith("error [CONFIGURATION_ERROR] CMO_LEDGER_URL:"), line


# ---------------------------------------------------------------- partial answers


def _a_batch_with_discrete_and_event_data(cli: Cli, tmp_path: Path) -> tuple[str, str]:
    agreement = agreement_in_force(cli, tmp_path)
    batch = a_batch(cli, agreement)
    results = discrete_file(tmp_path / "results.csv", "4.62")
    start = now_utc() - timedelta(days=3)
    events = tmp_path / "events.csv"
    events.write_text(
        "id,kind,started_at,ended_at,severity,description\n"
        f"E-001,deviation,{format_utc(start)},{format_utc(start + timedelta(minutes=42))},minor,"
        "BR1.TEMP above 37.5 Cel after a chiller trip\n",
        encoding="utf-8",
    )
    for kind, path, system in [("discrete", results, "contoso-lims"), ("event", events, "mes")]:
        cli.json(CMO, "data", "submit", str(path), "--batch", batch, "--kind", kind,
                 "--source-system", system)  # fmt: skip
    until = format_utc(now_utc() + timedelta(days=30))
    cli.json(SPONSOR, "grant", agreement, "--grantee", AUDITOR, "--purpose", "supplier audit",
             "--class", "discrete", "--valid-until", until)  # fmt: skip
    return agreement, batch


def test_a_trace_shows_what_the_caller_may_see_and_says_what_was_withheld(
    cli: Cli, tmp_path: Path
) -> None:
    _, batch = _a_batch_with_discrete_and_event_data(cli, tmp_path)
    trace = cli.json(AUDITOR, "trace", "batch", batch)
    assert trace["batch"]["id"] == batch
    assert [e["type"] for e in trace["events"]][:2] == ["BatchRegistered", "DataSubmitted"]
    assert trace["grants"], trace
    assert trace["deviations"] is None
    withheld = trace["withheld"]
    assert withheld, trace
    assert [(w["part"], w["code"]) for w in withheld] == [("deviations", "FORBIDDEN")]
    assert withheld[0]["message"]

    table = cli.invoke(AUDITOR, "trace", "batch", batch)
    assert table.exit_code == 0, (table.stdout, table.stderr, table.exception)
    assert "BatchRegistered" in table.stdout
    assert "deviations" not in table.stdout
    lines = table.stderr.strip().splitlines()
    assert lines, table.stderr
    assert all(line.startswith("withheld: deviations (FORBIDDEN: ") for line in lines), lines


def test_asof_shows_the_parties_and_says_which_parts_it_withheld(cli: Cli, tmp_path: Path) -> None:
    agreement, batch = _a_batch_with_discrete_and_event_data(cli, tmp_path)
    position = str(cli.json(SPONSOR, "trace", "batch", batch)["position"])  # the views have it
    found = cli.json(REGULATOR, "asof", position, "--agreement", agreement, "--batch", batch)
    assert {party["id"] for party in found["parties"]} >= {SPONSOR, CMO, REGULATOR}
    assert found["batch"] is None
    withheld = found["withheld"]
    assert withheld, found
    assert {w["part"] for w in withheld} >= {"batch"}
    assert {w["code"] for w in withheld} == {"FORBIDDEN"}

    table = cli.invoke(REGULATOR, "asof", position, "--agreement", agreement, "--batch", batch)
    assert table.exit_code == 0, (table.stdout, table.stderr, table.exception)
    assert f"as of position {position}" in table.stdout
    assert "withheld: batch (FORBIDDEN: " in table.stderr


def test_a_party_that_may_see_everything_is_told_nothing_was_withheld(
    cli: Cli, tmp_path: Path
) -> None:
    _, batch = _a_batch_with_discrete_and_event_data(cli, tmp_path)
    trace = cli.json(SPONSOR, "trace", "batch", batch)
    assert trace["withheld"] == []
    assert [d["id"] for d in trace["deviations"]] == ["E-001"]
    assert "withheld" not in cli.invoke(SPONSOR, "trace", "batch", batch).stderr
    found = cli.json(SPONSOR, "asof", str(trace["position"]), "--batch", batch)
    assert (found["withheld"], found["batch"]["id"]) == ([], batch)


def test_a_batch_the_caller_may_not_see_at_all_is_still_refused_in_one_line(
    cli: Cli, tmp_path: Path
) -> None:
    batch = a_batch(cli, agreement_in_force(cli, tmp_path))
    line = cli.fails(AUDITOR, "trace", "batch", batch)
    assert line.startswith("error ["), line


# ------------------------------------------------------------------------- markup


def test_a_unit_in_brackets_is_printed_as_it_is(cli: Cli, tmp_path: Path) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    defined = cli.json(SPONSOR, "param", "define", agreement, "pH", "--kind", "CPP", "--unit",
                       "[pH]", "--alert", "6.9,7.3", "--action", "6.8,7.4", "--rationale",
                       "process characterisation PC-2023-014")  # fmt: skip
    shown = cli.run(SPONSOR, "asof", str(defined["position"]), "--agreement", agreement)
    assert "[pH]" in shown
    history = cli.json(SPONSOR, "param", "history", agreement, "--name", "pH")
    assert [p["unit"] for p in history] == ["[pH]"]


def test_no_command_module_builds_a_console_of_its_own() -> None:
    cli_package = Path(__file__).resolve().parents[2] / "clients" / "cli"
    modules = sorted(cli_package.glob("*.py"))
    assert modules
    own = [m.name for m in modules if m.name != "common.py" and "Console(" in m.read_text()]
    assert own == []


# -------------------------------------------------------------------------- times

SAME_INSTANT = [
    "2026-01-05T02:13:48Z",
    "2026-01-05T02:13:48.000Z",
    "2026-01-05T02:13:48+00:00",
    "2026-01-05T04:13:48+02:00",
]


def test_one_instant_written_four_ways_is_stored_the_same(cli: Cli, tmp_path: Path) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    stored = []
    for number, written in enumerate(SAME_INSTANT):
        batch = f"NWB101-TIME-{uuid.uuid4().hex[:6].upper()}-{number}"
        registered = _a_batch_named(cli, agreement, batch, written)
        assert registered["subject"] == str(batch_subject(batch))
        stored.append(cli.json(SPONSOR, "trace", "batch", batch)["batch"]["startedAt"])
    assert stored == ["2026-01-05T02:13:48.000Z"] * len(SAME_INSTANT)
    assert {canonical_time(text, field="t") for text in SAME_INSTANT} == set(stored[:1])


def test_a_key_is_revoked_with_a_compromise_time_written_without_milliseconds(
    cli: Cli, world: World
) -> None:
    key = SigningKey.generate()
    cli.json(CMO, "key", "add", "--public-key", encode_public_key(key))
    since = now_utc() - timedelta(hours=1)
    written = since.strftime("%Y-%m-%dT%H:%M:%SZ")  # no fraction, as people write it
    revoked = cli.json(CMO, "key", "revoke", key_id(key.verify_key), "--reason",
                       "laptop lost", "--compromised-since", written)  # fmt: skip
    assert revoked["type"] == "KeyRevoked"
    payload = _stored_payload(world, revoked["position"])
    assert payload["compromised_since"] == written[:-1] + ".000Z"


@pytest.mark.parametrize(
    ("command", "option", "value"),
    [
        (["batch", "register", "NWB101-BAD-TIME", "--agreement", "{agreement}", "--product",
          "NWB-101", "--site", "contoso-site-a"], "--started-at", "2026-01-05T02:13:48"),
        (["batch", "register", "NWB101-BAD-TIME", "--agreement", "{agreement}", "--product",
          "NWB-101", "--site", "contoso-site-a"], "--started-at", "last tuesday"),
        (["batch", "register", "NWB101-BAD-TIME", "--agreement", "{agreement}", "--product",
          "NWB-101", "--site", "contoso-site-a"], "--started-at", "2026-02-30T00:00:00Z"),
        (["key", "revoke", "0" * 32, "--reason", "lost"], "--compromised-since", "yesterday"),
        (["grant", "{agreement}", "--grantee", AUDITOR, "--purpose", "audit", "--class",
          "discrete"], "--valid-until", "2026-12-05 02:13"),
        (["audit", "trail"], "--from", "2026-01-05"),
    ],
)  # fmt: skip
def test_a_time_without_offset_or_not_a_date_is_refused_naming_the_option(
    cli: Cli, tmp_path: Path, world: World, command: list[str], option: str, value: str
) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    head = world.ledger.head()
    args = [part.replace("{agreement}", agreement) for part in command]
    line = cli.fails(CMO if args[0] != "grant" else SPONSOR, *args, option, value)
    assert line.startswith(f"error [VALIDATION_FAILED] {option}: "), line
    assert world.ledger.head() == head


# --------------------------------------------------------------------- full width


def test_a_table_written_to_a_pipe_keeps_long_values_whole(cli: Cli, tmp_path: Path) -> None:
    batch = a_batch(cli, agreement_in_force(cli, tmp_path))
    subject = str(batch_subject(batch))
    assert len(subject) == 36
    shown = cli.run(SPONSOR, "audit", "trail", "--batch", batch)
    rows = [line for line in shown.splitlines() if "BatchRegistered" in line]
    assert rows, shown
    assert all(subject in row for row in rows), shown


# ----------------------------------------------------------------------- messages


@pytest.mark.parametrize(
    ("noun", "expected"),
    [("auditor", "an auditor"), ("sponsor", "a sponsor"), ("regulator", "a regulator"),
     ("inspector", "an inspector"), ("Agreement", "an Agreement"), ("event", "an event"),
     ("id", "an id"), ("UUID", "a UUID"), ("OOS record", "an OOS record")],
)  # fmt: skip
def test_a_noun_gets_the_article_it_is_spoken_with(noun: str, expected: str) -> None:
    assert article(noun) == expected


def test_a_grant_to_an_auditor_without_an_end_says_an_auditor(cli: Cli, tmp_path: Path) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    line = cli.fails(SPONSOR, "grant", agreement, "--grantee", AUDITOR, "--purpose",
                     "supplier audit", "--class", "discrete")  # fmt: skip
    assert "grants to an auditor are time-boxed" in line, line


def test_every_party_command_takes_its_server_and_keystore_from_the_settings() -> None:
    found = {
        (path, option): param.envvar
        for path, command in every_command()
        for param in command.params
        for option in ("--url", "--key")
        if option in getattr(param, "opts", [])
    }
    assert found, "no command takes --url or --key"
    assert {path for path, _ in found} >= {"export-evidence", "whoami", "claim", "trace batch"}
    wrong = {
        f"{path} {option}: {envvar}"
        for (path, option), envvar in found.items()
        if envvar != SETTINGS[option]
    }
    assert wrong == set()
