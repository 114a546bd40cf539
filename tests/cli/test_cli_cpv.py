"""CPV from the command line (R26): ``baseline define|revise`` sign baselines through the real
server, ``cpv --json`` answers the analysis, the same at a position whatever came later."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest

from ledger.domain.subjects import baseline_subject, batch_subject, parameter_subject
from ledger.timeutil import format_utc, now_utc
from tests.support.batches import WORLD_PARAMETERS, data_payload
from tests.support.cli import CMO, SPONSOR, Cli
from tests.support.cli_schemas import conforms
from tests.support.server import Server
from tests.support.world import World, agreement_terms

pytestmark = pytest.mark.xdist_group("cli_cpv")

PARAMETER = "pH"
BATCHES = 25


def _in_force(server: Server, world: World) -> str:
    agreement = uuid.uuid4()
    terms = {"terms": agreement_terms()}
    server.submit(world[SPONSOR], "AgreementProposed", agreement, terms, meaning="authored")
    server.submit(world[CMO], "AgreementSigned", agreement, {}, meaning="signed")
    kind, unit, target, alert, action, status = WORLD_PARAMETERS[PARAMETER]
    definition = {
        "agreement": str(agreement),
        "name": PARAMETER,
        "kind": kind,
        "unit": unit,
        "target": target,
        "alert": {"low": alert[0], "high": alert[1]},
        "action": {"low": action[0], "high": action[1]},
        "rationale": "pH: limits from process characterisation (PC-2023-014)",
        "status": status,
    }
    subject = parameter_subject(agreement, PARAMETER)
    server.submit(world[SPONSOR], "ParameterDefined", subject, definition, meaning="authored")
    return str(agreement)


def _batch(server: Server, world: World, agreement: str, name: str, value: str) -> None:
    registration = {
        "agreement": agreement,
        "batch": name,
        "product": "NWB-101",
        "site": "contoso-site-a",
        "started_at": format_utc(now_utc()),
    }
    subject = batch_subject(name)
    server.submit(world[CMO], "BatchRegistered", subject, registration, meaning="authored")
    record = {
        "id": "PH-001",
        "parameter": PARAMETER,
        "value": value,
        "unit": "[pH]",
        "sampled_at": format_utc(now_utc()),
        "method": "potentiometry",
    }
    payload = data_payload("discrete", [record])
    server.submit(world[CMO], "DataSubmitted", subject, payload, meaning="submitted")


@pytest.fixture(scope="module")
def series(server: Server, world: World) -> tuple[str, list[str]]:
    agreement = _in_force(server, world)
    rng = random.Random(2026)
    names = []
    for number in range(1, BATCHES + 1):
        name = f"CLI-CPV-{number:03d}"
        _batch(server, world, agreement, name, f"{rng.gauss(7.05, 0.02):.3f}")
        names.append(name)
    return agreement, names


def _cpv(cli: Cli, agreement: str, *options: str) -> dict[str, Any]:
    found: dict[str, Any] = cli.json(SPONSOR, "cpv", agreement, PARAMETER, "--baseline", "PPQ",
                                     *options)  # fmt: skip
    return found


def test_baseline_define_and_cpv_json_through_the_real_server(
    cli: Cli, series: tuple[str, list[str]]
) -> None:
    agreement, names = series
    stored = cli.json(CMO, "baseline", "define", agreement, PARAMETER, "PPQ",
                      "--batch", ",".join(names[:20]), "--reason", "PPQ campaign")  # fmt: skip
    assert stored["type"] == "BaselineDefined"
    assert stored["subject"] == str(baseline_subject(agreement, PARAMETER, "PPQ"))
    # Sign a checkpoint over the definition, so the answer names it from the first asking.
    cli.server.services.notary.checkpoint_now()
    analysis = conforms(_cpv(cli, agreement), "cpv")
    assert analysis["checkpoint"] is not None
    assert analysis["chart"] == "I-MR"
    points = analysis["points"]
    assert points, "cpv charted nothing"
    assert [p["batch"] for p in points] == names
    assert analysis["baselineBatches"] == names[:20]
    assert len(analysis["inputsDigest"]) == 64
    position = analysis["knownAt"]
    cli.json(SPONSOR, "baseline", "revise", agreement, PARAMETER, "PPQ",
             "--batch", ",".join(names[5:25]), "--reason", "pre-scale-up runs")  # fmt: skip
    assert _cpv(cli, agreement, "--known-at", str(position)) == analysis
    assert _cpv(cli, agreement)["baselineVersion"] == 2


def test_cpv_csv_prints_a_row_per_batch(cli: Cli, series: tuple[str, list[str]]) -> None:
    agreement, names = series
    cli.json(SPONSOR, "baseline", "define", agreement, PARAMETER, "CSV",
             "--batch", ",".join(names[:20]))  # fmt: skip
    text = cli.run(SPONSOR, "cpv", agreement, PARAMETER, "--baseline", "CSV", "--csv")
    lines = text.strip().splitlines()
    assert lines[0] == "index,batch,validAt,value,dispersion,limitsVersion,rules"
    assert [line.split(",")[1] for line in lines[1:]] == names


def test_a_baseline_naming_an_unregistered_batch_is_refused(
    cli: Cli, series: tuple[str, list[str]]
) -> None:
    agreement, names = series
    line = cli.fails(CMO, "baseline", "define", agreement, PARAMETER, "OTHER",
                     "--batch", f"{names[0]},NWB101-NEVER-1")  # fmt: skip
    assert "NOT_FOUND" in line and "payload.batches[1]" in line
