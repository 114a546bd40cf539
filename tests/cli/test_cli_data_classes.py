"""An agreement's own data classes through the command line: delivered, shown and refused
by their names, read in the form the agreement gives them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.timeutil import format_utc, now_utc
from tests.support.cli import (
    CMO,
    REGULATOR,
    SPONSOR,
    Cli,
    a_batch,
    agreement_in_force,
    discrete_file,
)
from tests.support.cli_schemas import as_cells, conforms, read_csv
from tests.support.world import World, class_spec, terms_with_classes

pytestmark = pytest.mark.xdist_group("cli_data_classes")

WITHIN_A_WEEK = {"within_hours": 168, "after": "batch_end"}


def stability_agreement(cli: Cli, tmp_path: Path) -> str:
    """Terms with one class of the agreement's own, ``stability`` (discrete form), and events."""
    terms = terms_with_classes(
        {
            "stability": class_spec(SPONSOR, "discrete", WITHIN_A_WEEK, "stability-v1"),
            "event": class_spec(CMO, None, WITHIN_A_WEEK, "events-v1"),
        }
    )
    return agreement_in_force(cli, tmp_path, terms)


def test_data_of_an_agreement_s_own_class_is_delivered_and_shown_by_its_name(
    cli: Cli, tmp_path: Path
) -> None:
    batch = a_batch(cli, stability_agreement(cli, tmp_path))
    results = discrete_file(tmp_path / "stability.csv", "4.70")
    stored = cli.json(CMO, "data", "submit", str(results), "--batch", batch, "--kind",
                      "stability", "--source-system", "contoso-lims")  # fmt: skip
    assert stored and stored[0]["type"] == "DataSubmitted"
    shown = cli.json(SPONSOR, "data", "show", "--batch", batch, "--kind", "stability")
    assert shown["values"], shown
    assert {row["kind"] for row in shown["values"]} == {"stability"}
    assert {row["name"] for row in shown["values"]} == {"titer at harvest", "endotoxin"}
    assert [s["dataClass"] for s in shown["submissions"]] == ["stability"]


def test_a_class_the_agreement_does_not_define_is_refused_naming_its_classes(
    cli: Cli, tmp_path: Path, world: World
) -> None:
    batch = a_batch(cli, stability_agreement(cli, tmp_path))
    head = world.ledger.head()
    results = discrete_file(tmp_path / "results.csv", "4.70")
    line = cli.fails(CMO, "data", "submit", str(results), "--batch", batch, "--kind",
                     "discrete", "--source-system", "contoso-lims")  # fmt: skip
    assert line.startswith("error [CLIENT_ERROR] --kind:"), line
    assert "its classes are event, stability" in line, line
    assert world.ledger.head() == head
    shown = cli.fails(SPONSOR, "data", "show", "--batch", batch, "--kind", "discrete")
    assert shown.startswith("error [CLIENT_ERROR] --kind:"), shown


# -- periodic delivery rules ---------------------------------------------------------------


def ago(**delta: float) -> str:
    return format_utc(now_utc() - timedelta(**delta))


def later(**delta: float) -> str:
    return format_utc(now_utc() + timedelta(**delta))


def in_force_since(cli: Cli, tmp_path: Path, terms: dict[str, Any], since: str) -> str:
    """An agreement whose CMO signed it as in force since ``since`` (signed on paper first)."""
    path = tmp_path / "periodic-terms.json"
    path.write_text(json.dumps(terms), encoding="utf-8")
    agreement = str(cli.json(SPONSOR, "agreement", "propose", str(path))["subject"])
    cli.json(CMO, "agreement", "sign", agreement, "--effective-from", since, "--reason",
             "stability programme agreed on paper before it was recorded here")  # fmt: skip
    return agreement


def periodic(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for row in rows if row["batch"] is None]


def test_a_class_delivered_every_n_days_is_listed_late_and_missing_period_by_period(
    cli: Cli, tmp_path: Path
) -> None:
    every_three_days = {"stability": class_spec(SPONSOR, "discrete", {"every_days": 3}, "st-v1")}
    agreement = in_force_since(cli, tmp_path, terms_with_classes(every_three_days), ago(days=7))
    batch = a_batch(cli, agreement)
    stored = cli.json(CMO, "data", "submit", str(discrete_file(tmp_path / "s.csv", "4.70")),
                      "--batch", batch, "--kind", "stability",
                      "--source-system", "contoso-lims")  # fmt: skip
    assert stored, "the stability results were delivered"

    every = conforms(cli.json(SPONSOR, "deliveries", "--agreement", agreement), "deliveries")
    found = periodic(every)
    assert found, "the periodic obligation is listed"
    assert [(d["period"], d["state"]) for d in found] == [(1, "late"), (2, "missing"),
                                                         (3, "awaiting")]  # fmt: skip
    assert {(d["dataClass"], d["rule"], d["everyDays"], d["withinHours"]) for d in found} == {
        ("stability", "every_days", 3, None)
    }
    assert found[0]["firstArrivedAt"] is not None and found[1]["firstArrivedAt"] is None
    late = conforms(cli.json(SPONSOR, "deliveries", "--agreement", agreement, "--late"),
                    "deliveries")  # fmt: skip
    assert [(d["period"], d["state"]) for d in periodic(late)] == [(1, "late")]
    missing = conforms(cli.json(SPONSOR, "deliveries", "--agreement", agreement, "--missing"),
                       "deliveries")  # fmt: skip
    assert [(d["period"], d["state"]) for d in periodic(missing)] == [(2, "missing")]

    csv_run = cli.invoke(SPONSOR, "deliveries", "--agreement", agreement, "--csv")
    assert csv_run.exit_code == 0, csv_run.stderr
    header, rows = read_csv(csv_run.stdout)
    assert {"period", "periodStart", "everyDays", "monthlyOnDay"} <= set(header)
    assert rows == as_cells(every, header)
    assert "every_days" in cli.run(SPONSOR, "deliveries", "--agreement", agreement)

    status = conforms(cli.json(SPONSOR, "status"), "status")
    assert (agreement, "stability", 2) in {
        (d["agreementId"], d["dataClass"], d["period"]) for d in status["missing_deliveries"]
    }


def test_a_class_delivered_monthly_on_a_day_owes_one_delivery_a_month(
    cli: Cli, tmp_path: Path
) -> None:
    monthly = {"analytical_reports": class_spec(CMO, "discrete", {"monthly_on_day": 5}, "ar-v1")}
    agreement = in_force_since(cli, tmp_path, terms_with_classes(monthly), ago(days=70))
    found = periodic(conforms(cli.json(CMO, "deliveries", "--agreement", agreement), "deliveries"))
    assert len(found) >= 2, found  # seventy days hold at least two fifths of a month
    assert {(d["rule"], d["monthlyOnDay"], d["everyDays"]) for d in found} == {
        ("monthly_on_day", 5, None)
    }
    assert all(d["dueAt"][8:10] == "05" for d in found), found
    missing = periodic(
        conforms(cli.json(CMO, "deliveries", "--agreement", agreement, "--missing"), "deliveries")
    )
    assert missing, "the months past with nothing delivered are missing"
    assert {d["state"] for d in missing} == {"missing"}


def test_a_periodic_rule_that_never_fires_is_refused_with_its_code_and_field(
    cli: Cli, tmp_path: Path, world: World
) -> None:
    never = {"stability": class_spec(SPONSOR, "discrete", {"every_days": 0}, "st-v1")}
    path = tmp_path / "never.json"
    path.write_text(json.dumps(terms_with_classes(never)), encoding="utf-8")
    head = world.ledger.head()
    line = cli.fails(SPONSOR, "agreement", "propose", str(path))
    assert line.startswith(
        "error [VALIDATION_FAILED] payload.terms.data_classes.stability.delivery.every_days:"
    ), line
    assert world.ledger.head() == head


def test_effective_from_is_refused_when_signing_an_amendment(cli: Cli, tmp_path: Path) -> None:
    agreement = agreement_in_force(cli, tmp_path)
    line = cli.fails(CMO, "agreement", "sign", agreement, "--amendment",
                     "--effective-from", ago(days=3))  # fmt: skip
    assert line.startswith("error [CLIENT_ERROR] --effective-from:"), line


# -- amendments add and retire classes ------------------------------------------------------


def test_an_amendment_retires_one_class_and_adds_another_and_old_data_stays_readable(
    cli: Cli, tmp_path: Path, world: World
) -> None:
    agreement = stability_agreement(cli, tmp_path)
    batch = a_batch(cli, agreement)
    cli.json(CMO, "data", "submit", str(discrete_file(tmp_path / "s.csv", "4.70")), "--batch",
             batch, "--kind", "stability", "--source-system", "contoso-lims")  # fmt: skip
    cli.json(SPONSOR, "grant", agreement, "--grantee", REGULATOR, "--purpose", "inspection",
             "--class", "stability", "--valid-until", later(days=14))  # fmt: skip
    reports = class_spec(CMO, "discrete", {"monthly_on_day": 5}, "ar-v1")
    amended = terms_with_classes(
        {"analytical_reports": reports, "event": class_spec(CMO, None, WITHIN_A_WEEK, "ev-v1")}
    )
    path = tmp_path / "amended.json"
    path.write_text(json.dumps(amended), encoding="utf-8")
    proposed = cli.json(SPONSOR, "agreement", "amend", agreement, str(path), "--reason",
                        "stability moves to the sponsor's lab")  # fmt: skip
    conforms(proposed, "agreement-amend")
    cli.json(CMO, "agreement", "sign", agreement, "--amendment")

    for party in (SPONSOR, CMO, REGULATOR):
        shown = conforms(
            cli.json(party, "data", "show", "--batch", batch, "--kind", "stability"), "data-show"
        )
        assert shown["values"], f"{party} no longer reads the retired class's data"
        assert {v["kind"] for v in shown["values"]} == {"stability"}

    head = world.ledger.head()
    again = cli.fails(CMO, "data", "submit", str(discrete_file(tmp_path / "t.csv", "4.80")),
                      "--batch", batch, "--kind", "stability",
                      "--source-system", "contoso-lims")  # fmt: skip
    assert again.startswith("error [CLIENT_ERROR] --kind:"), again
    assert "its classes are analytical_reports, event" in again, again
    granted = cli.fails(SPONSOR, "grant", agreement, "--grantee", REGULATOR, "--purpose",
                        "inspection", "--class", "stability",
                        "--valid-until", later(days=14))  # fmt: skip
    assert granted.startswith("error [VALIDATION_FAILED] payload.data_classes[0]:"), granted
    assert world.ledger.head() == head

    report = discrete_file(tmp_path / "r.csv", "4.75")
    report.write_text(report.read_text().replace("R-00", "AR-00"), encoding="utf-8")
    cli.json(CMO, "data", "submit", str(report), "--batch", batch, "--kind",
             "analytical_reports", "--source-system", "contoso-lims")  # fmt: skip
    reports_shown = conforms(
        cli.json(CMO, "data", "show", "--batch", batch, "--kind", "analytical_reports"),
        "data-show",
    )
    assert {v["kind"] for v in reports_shown["values"]} == {"analytical_reports"}
    every = conforms(cli.json(CMO, "data", "show", "--batch", batch), "data-show")
    assert {v["kind"] for v in every["values"]} == {"stability", "analytical_reports"}
    sponsor = conforms(cli.json(SPONSOR, "data", "show", "--batch", batch), "data-show")
    assert {v["kind"] for v in sponsor["values"]} == {"stability"}
    assert sorted(w["dataClass"] for w in sponsor["withheld"]) == ["analytical_reports", "event"]
    grants = conforms(cli.json(SPONSOR, "grants", "--agreement", agreement), "grants")
    assert [g["dataClasses"] for g in grants] == [["stability"]]
