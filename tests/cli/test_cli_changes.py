"""``cmo-ledger changes`` and ``cmo-ledger capas`` against a real server: ``--json`` checked
against its schema in ``docs/schema/cli/``, ``--csv`` read back as the rows of ``--json``,
``--open`` keeping the open ones, and a stranger refused naming ``--agreement``."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ledger.domain.subjects import capa_subject, change_subject
from tests.support.batches import event_records, register_batch, submit_data
from tests.support.cli import CMO, SPONSOR, Cli, agreement_in_force
from tests.support.cli_schemas import as_cells, conforms, read_csv
from tests.support.server import Server
from tests.support.world import World

pytestmark = pytest.mark.xdist_group("cli_changes")

STRANGER = "helios-tx"


def _agreement_with_change_and_capas(
    world: World, cli: Cli, server: Server, tmp_path: Path
) -> tuple[str, str]:
    agreement = uuid.UUID(agreement_in_force(cli, tmp_path))
    change = change_subject(agreement, "CC-2026-101")
    world[CMO].submit(
        world.ledger,
        "ChangeProposed",
        change,
        {
            "agreement": str(agreement),
            "change": "CC-2026-101",
            "title": "Second media supplier",
            "description": "Qualify a second supplier of the basal medium.",
            "ec_impact": True,
            "reporting_category": "cbe-30",
            "affected_parameters": [],
        },
        meaning="authored",
    )
    batch = f"NWB101-CLI-{uuid.uuid4().hex[:6].upper()}"
    register_batch(world, agreement, batch)
    submit_data(world, batch, "event", event_records())
    for capa, records in (("CAPA-2026-101", ["E-001"]), ("CAPA-2026-102", ["E-003"])):
        world[SPONSOR].submit(
            world.ledger,
            "CapaOpened",
            capa_subject(agreement, capa),
            {
                "agreement": str(agreement),
                "capa": capa,
                "batch": batch,
                "records": records,
                "description": "Redundant chiller.",
                "owner": CMO,
            },
            meaning="authored",
        )
    world[CMO].submit(
        world.ledger,
        "CapaClosed",
        capa_subject(agreement, "CAPA-2026-101"),
        {"effectiveness_check": "no excursion in five batches"},
        meaning="closed",
        reason="effective",
    )
    server.services.projector.catch_up_safely(world.ledger.head())
    return str(agreement), batch


def test_changes_and_capas_are_listed_as_json_csv_and_tables(
    cli: Cli, world: World, server: Server, tmp_path: Path
) -> None:
    agreement, batch = _agreement_with_change_and_capas(world, cli, server, tmp_path)
    changes = conforms(cli.json(SPONSOR, "changes", "--agreement", agreement), "changes")
    assert [(c["changeId"], c["ecImpact"], c["status"]) for c in changes] == [
        ("CC-2026-101", True, "proposed")
    ]
    assert "CC-2026-101" in cli.run(CMO, "changes", "--agreement", agreement, "--open")
    capas = conforms(cli.json(CMO, "capas", "--batch", batch), "capas")
    assert [(c["capaId"], c["status"]) for c in capas] == [
        ("CAPA-2026-101", "closed"),
        ("CAPA-2026-102", "open"),
    ]
    open_only = cli.json(CMO, "capas", "--agreement", agreement, "--open")
    assert [c["capaId"] for c in open_only] == ["CAPA-2026-102"]
    for command, option, value, rows in (
        ("changes", "--agreement", agreement, changes),
        ("capas", "--batch", batch, capas),
    ):
        result = cli.invoke(SPONSOR, command, option, value, "--csv")
        assert result.exit_code == 0, (result.stdout, result.stderr)
        header, parsed = read_csv(result.stdout)
        assert header and parsed == as_cells(rows, header)


def test_a_stranger_is_refused_naming_the_option(
    cli: Cli, world: World, server: Server, tmp_path: Path
) -> None:
    agreement, batch = _agreement_with_change_and_capas(world, cli, server, tmp_path)
    head = world.ledger.head()
    line = cli.fails(STRANGER, "changes", "--agreement", agreement)
    assert line.startswith("error [FORBIDDEN] --agreement:"), line
    line = cli.fails(STRANGER, "capas", "--batch", batch)
    assert line.startswith("error [FORBIDDEN] --batch:"), line
    assert world.ledger.head() == head
