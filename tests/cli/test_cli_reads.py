"""``cmo-ledger reads`` (R11): the CMO that owns a batch's data lists who read it, when and
with which query, and the notary's commitment once signed; the sponsor may not ask."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import CMO, SPONSOR, Cli, a_batch, agreement_in_force, discrete_file
from tests.support.cli_schemas import as_cells, conforms, read_csv
from tests.support.server import Server

pytestmark = pytest.mark.xdist_group("cli_reads")


def test_r11_the_owner_lists_who_read_its_batch(cli: Cli, server: Server, tmp_path: Path) -> None:
    batch = a_batch(cli, agreement_in_force(cli, tmp_path))
    results = discrete_file(tmp_path / "results.csv", "4.62")
    cli.json(CMO, "data", "submit", str(results), "--batch", batch, "--kind", "discrete",
             "--source-system", "contoso-lims")  # fmt: skip
    cli.json(SPONSOR, "data", "show", "--batch", batch)  # the sponsor reads Contoso's data

    reads = conforms(cli.json(CMO, "reads", "--batch", batch), "reads")
    assert reads, "the sponsor's read is listed"
    assert {r["reader"] for r in reads} == {SPONSOR}
    assert {r["batch"] for r in reads} == {batch}
    assert "Batch.discrete" in {field for r in reads for field in r["fields"]}

    server.services.read_log.commit_pending(wait=False)
    committed = conforms(cli.json(CMO, "reads", "--batch", batch), "reads")
    assert [r["id"] for r in committed] == [r["id"] for r in reads]
    assert all(r["commitment"] is not None for r in committed)

    result = cli.invoke(CMO, "reads", "--batch", batch, "--csv")
    assert result.exit_code == 0, result.stderr
    header, rows = read_csv(result.stdout)
    assert rows == as_cells(committed, header)
    assert batch in cli.run(CMO, "reads", "--batch", batch)

    refused = cli.fails(SPONSOR, "reads", "--batch", batch)
    assert refused.startswith("error [FORBIDDEN]") and "--batch" in refused, refused
