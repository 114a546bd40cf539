"""An agreement's own data classes through the command line: delivered, shown and refused
by their names, read in the form the agreement gives them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import CMO, SPONSOR, Cli, a_batch, agreement_in_force, discrete_file
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
