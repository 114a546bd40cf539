"""The writes that end things, on the command line against a real server: ``agreement
terminate``, ``agreement amend --reject`` and ``param retire``; each ``--json`` checked
against its schema in ``docs/schema/cli/``, each refusal one line that stores nothing."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from clients.cli.common import SUBMITTED_COLUMNS
from ledger.domain.subjects import parameter_subject
from ledger.timeutil import format_utc, now_utc
from tests.support.cli import CMO, SPONSOR, Cli, agreement_in_force
from tests.support.cli_schemas import conforms, read_csv
from tests.support.world import World, agreement_terms

pytestmark = pytest.mark.xdist_group("cli_writes")


def amended_terms(tmp_path: Path) -> Path:
    path = tmp_path / "amended.json"
    path.write_text(json.dumps({**agreement_terms(), "review_cadence_months": 12}))
    return path


def define_do(cli: Cli, agreement: str) -> str:
    defined = cli.json(SPONSOR, "param", "define", agreement, "dissolved oxygen", "--kind",
                       "CPP", "--unit", "%", "--alert", "32,55", "--action", "30,60",
                       "--rationale", "process characterisation PC-2023-014")  # fmt: skip
    return str(defined["subject"])


# -- agreement terminate -------------------------------------------------------------------


def test_an_agreement_is_terminated_with_a_reason_and_nothing_more_is_recorded_under_it(
    cli: Cli, tmp_path: Path, world: World
) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    stored = conforms(
        cli.json(SPONSOR, "agreement", "terminate", agreement, "--reason", "product withdrawn"),
        "agreement-terminate",
    )
    assert (stored["type"], stored["subject"], stored["version"]) == (
        "AgreementTerminated",
        agreement,
        3,
    )
    assert cli.json(CMO, "agreement", "show", agreement)["status"] == "terminated"
    [review] = cli.json(CMO, "reviews", "--agreement", agreement)
    assert review["state"] == "terminated"
    head = world.ledger.head()
    started = format_utc(now_utc() - timedelta(days=1))
    line = cli.fails(CMO, "batch", "register", "NWB101-AFTER-END", "--agreement", agreement,
                     "--product", "NWB-101", "--site", "contoso-site-a",
                     "--started-at", started)  # fmt: skip
    assert line.startswith("error ["), line
    assert world.ledger.head() == head


def test_a_proposal_is_withdrawn_by_terminating_it(cli: Cli, tmp_path: Path) -> None:
    terms = tmp_path / "terms.json"
    terms.write_text(json.dumps(agreement_terms()), encoding="utf-8")
    agreement = cli.json(SPONSOR, "agreement", "propose", str(terms))["subject"]
    cli.json(SPONSOR, "agreement", "terminate", agreement, "--reason", "sent in error")
    assert cli.json(SPONSOR, "agreement", "show", agreement)["status"] == "terminated"


def test_terminating_an_unknown_agreement_is_one_line_naming_it(cli: Cli, world: World) -> None:
    head = world.ledger.head()
    line = cli.fails(SPONSOR, "agreement", "terminate", str(uuid.uuid4()), "--reason", "gone")
    assert line.startswith("error [NOT_FOUND] AGREEMENT:"), line
    assert world.ledger.head() == head


def test_a_terminated_agreement_cannot_be_terminated_again(
    cli: Cli, tmp_path: Path, world: World
) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    cli.json(CMO, "agreement", "terminate", agreement, "--reason", "site closed")
    head = world.ledger.head()
    line = cli.fails(SPONSOR, "agreement", "terminate", agreement, "--reason", "again")
    assert line.startswith("error ["), line
    assert world.ledger.head() == head


# -- agreement amend --reject --------------------------------------------------------------


def test_the_other_party_rejects_a_pending_amendment_and_the_terms_stay(
    cli: Cli, tmp_path: Path
) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    cli.json(CMO, "agreement", "amend", agreement, str(amended_terms(tmp_path)), "--reason",
             "yearly reviews")  # fmt: skip
    assert cli.json(SPONSOR, "agreement", "show", agreement)["amendmentPending"] is True
    stored = cli.json(SPONSOR, "agreement", "amend", agreement, "--reject", "--reason",
                      "six-monthly reviews stay")  # fmt: skip
    conforms(stored, "agreement-amend")
    assert (stored["type"], stored["subject"]) == ("AgreementAmendmentRejected", agreement)
    shown = cli.json(SPONSOR, "agreement", "show", agreement)
    assert (shown["amendmentPending"], shown["termsVersion"]) == (False, 1)
    assert [(a["status"], a["proposedBy"]) for a in shown["amendments"]] == [("rejected", CMO)]


def test_its_proposer_withdraws_an_amendment_with_reject(cli: Cli, tmp_path: Path) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    proposed = cli.json(SPONSOR, "agreement", "amend", agreement, str(amended_terms(tmp_path)),
                        "--reason", "yearly reviews")  # fmt: skip
    conforms(proposed, "agreement-amend")
    assert proposed["type"] == "AgreementAmended"
    cli.json(SPONSOR, "agreement", "amend", agreement, "--reject", "--reason", "sent too early")
    statuses = [a["status"] for a in cli.json(CMO, "agreement", "show", agreement)["amendments"]]
    assert statuses == ["withdrawn"]


def test_a_terms_file_with_reject_is_refused_naming_reject(
    cli: Cli, tmp_path: Path, world: World
) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    cli.json(CMO, "agreement", "amend", agreement, str(amended_terms(tmp_path)), "--reason",
             "yearly reviews")  # fmt: skip
    head = world.ledger.head()
    line = cli.fails(SPONSOR, "agreement", "amend", agreement, str(amended_terms(tmp_path)),
                     "--reject", "--reason", "no")  # fmt: skip
    assert line.startswith("error [CLIENT_ERROR] --reject:"), line
    assert world.ledger.head() == head
    assert cli.json(SPONSOR, "agreement", "show", agreement)["amendmentPending"] is True


def test_amend_without_terms_or_reject_is_refused_naming_file(
    cli: Cli, tmp_path: Path, world: World
) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    head = world.ledger.head()
    line = cli.fails(SPONSOR, "agreement", "amend", agreement, "--reason", "nothing")
    assert line.startswith("error [CLIENT_ERROR] FILE:") and "--reject" in line, line
    assert world.ledger.head() == head


def test_rejecting_when_no_amendment_is_pending_is_one_line(
    cli: Cli, tmp_path: Path, world: World
) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    head = world.ledger.head()
    line = cli.fails(SPONSOR, "agreement", "amend", agreement, "--reject", "--reason", "no")
    assert line.startswith("error ["), line
    assert world.ledger.head() == head


# -- param retire --------------------------------------------------------------------------


def test_a_parameter_is_retired_and_its_pending_revision_withdrawn(
    cli: Cli, tmp_path: Path
) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    parameter = define_do(cli, agreement)
    changes = json.dumps({"alert": {"low": "35", "high": "50"}})
    cli.json(CMO, "param", "propose", parameter, "--changes", changes, "--reason", "tighter")
    stored = cli.json(SPONSOR, "param", "retire", agreement, "dissolved oxygen", "--reason",
                      "replaced by online DO control")  # fmt: skip
    conforms(stored, "param-retire")
    assert (stored["type"], stored["subject"]) == ("ParameterRetired", parameter)
    assert stored["subject"] == str(parameter_subject(agreement, "dissolved oxygen"))
    [history] = cli.json(CMO, "param", "history", agreement, "--name", "dissolved oxygen")
    assert history["state"] == "retired"
    assert [r["outcome"] for r in history["revisions"]] == ["withdrawn"]


def test_retiring_an_unknown_parameter_is_one_line_and_stores_nothing(
    cli: Cli, tmp_path: Path, world: World
) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    head = world.ledger.head()
    line = cli.fails(SPONSOR, "param", "retire", agreement, "no such parameter", "--reason", "x")
    assert line.startswith("error [NOT_FOUND]"), line
    assert world.ledger.head() == head


def test_retiring_under_a_malformed_agreement_id_is_refused_naming_it(
    cli: Cli, world: World
) -> None:
    head = world.ledger.head()
    line = cli.fails(SPONSOR, "param", "retire", "not-an-id", "pH", "--reason", "x")
    assert line.startswith("error [CLIENT_ERROR] AGREEMENT:"), line
    assert world.ledger.head() == head


def test_a_retired_parameter_cannot_be_retired_again(
    cli: Cli, tmp_path: Path, world: World
) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    define_do(cli, agreement)
    cli.json(SPONSOR, "param", "retire", agreement, "dissolved oxygen", "--reason", "obsolete")
    head = world.ledger.head()
    line = cli.fails(CMO, "param", "retire", agreement, "dissolved oxygen", "--reason", "again")
    assert line.startswith("error ["), line
    assert world.ledger.head() == head


# -- table and CSV -------------------------------------------------------------------------


def stored_csv(cli: Cli, party: str, *args: str) -> dict[str, str]:
    """The one row a write prints with ``--csv``, in the columns of its ``--json``."""
    result = cli.invoke(party, *args, "--csv")
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    header, rows = read_csv(result.stdout)
    assert header == SUBMITTED_COLUMNS
    assert len(rows) == 1, result.stdout
    return rows[0]


def test_terminate_prints_what_it_stored_as_csv_and_as_a_table(cli: Cli, tmp_path: Path) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    row = stored_csv(cli, SPONSOR, "agreement", "terminate", agreement, "--reason", "withdrawn")
    assert (row["type"], row["subject"], row["version"]) == ("AgreementTerminated", agreement, "3")
    other = agreement_in_force(cli, tmp_path)
    table = cli.run(SPONSOR, "agreement", "terminate", other, "--reason", "withdrawn")
    assert "AgreementTerminated" in table and other in table


def test_amend_and_reject_print_what_they_stored_as_csv_and_as_a_table(
    cli: Cli, tmp_path: Path
) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    terms = str(amended_terms(tmp_path))
    proposed = stored_csv(cli, CMO, "agreement", "amend", agreement, terms,
                          "--reason", "yearly reviews")  # fmt: skip
    assert (proposed["type"], proposed["subject"]) == ("AgreementAmended", agreement)
    rejected = stored_csv(cli, SPONSOR, "agreement", "amend", agreement, "--reject",
                          "--reason", "six-monthly reviews stay")  # fmt: skip
    assert rejected["type"] == "AgreementAmendmentRejected"
    cli.json(CMO, "agreement", "amend", agreement, terms, "--reason", "yearly reviews")
    table = cli.run(SPONSOR, "agreement", "amend", agreement, "--reject", "--reason", "still no")
    assert "AgreementAmendmentRejected" in table and agreement in table


def test_param_retire_prints_what_it_stored_as_csv_and_as_a_table(cli: Cli, tmp_path: Path) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    parameter = define_do(cli, agreement)
    row = stored_csv(cli, SPONSOR, "param", "retire", agreement, "dissolved oxygen",
                     "--reason", "replaced by online DO control")  # fmt: skip
    assert (row["type"], row["subject"]) == ("ParameterRetired", parameter)
    cli.json(SPONSOR, "param", "define", agreement, "pH", "--kind", "CPP", "--unit", "[pH]",
             "--alert", "6.9,7.3", "--action", "6.8,7.4", "--rationale", "PC-2023-014")  # fmt: skip
    table = cli.run(SPONSOR, "param", "retire", agreement, "pH", "--reason", "obsolete")
    assert "ParameterRetired" in table


@pytest.mark.parametrize(
    "command",
    [
        ["agreement", "terminate", "{agreement}", "--reason", "x"],
        ["agreement", "amend", "{agreement}", "--reject", "--reason", "x"],
        ["param", "retire", "{agreement}", "dissolved oxygen", "--reason", "x"],
    ],
)
def test_json_and_csv_together_are_refused_before_anything_is_stored(
    cli: Cli, tmp_path: Path, world: World, command: list[str]
) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    define_do(cli, agreement)
    cli.json(CMO, "agreement", "amend", agreement, str(amended_terms(tmp_path)), "--reason", "y")
    head = world.ledger.head()
    args = [part.replace("{agreement}", agreement) for part in command]
    line = cli.fails(SPONSOR, *args, "--json", "--csv")
    assert line.startswith("error [CLIENT_ERROR] --csv:"), line
    assert world.ledger.head() == head
