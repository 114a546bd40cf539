"""The command line as scripts use it: a sponsor-CMO world served by a real server (one
per test module and backend), a keystore per party, and a runner that signs as any of them.

The fixtures (``world``, ``server``, ``keystores``, ``cli``) live in
``tests/cli/conftest.py``; a module that defines its own ``world`` or ``server`` uses its
own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from clients.cli import app
from ledger.timeutil import format_utc, now_utc
from tests.support.server import Server
from tests.support.world import agreement_terms

SPONSOR, CMO, REGULATOR = "northwind-bio", "contoso-cmo", "agency-inspectorate"
PASSPHRASE = "correct horse battery staple"
ENV = {"CMO_LEDGER_PASSPHRASE": PASSPHRASE, "CMO_LEDGER_KDF_PROFILE": "min"}


class Cli:
    def __init__(self, server: Server, keystores: dict[str, Path]) -> None:
        self.server = server
        self.keystores = keystores
        self.runner = CliRunner()

    def invoke(self, party: str, *args: str, env: dict[str, str] | None = None) -> Any:
        options = ["--url", self.server.url, "--key", str(self.keystores[party])]
        return self.runner.invoke(app, [*args, *options], env=env or ENV)

    def json(self, party: str, *args: str) -> Any:
        """Run a command with ``--json``; its parsed output (the command must succeed)."""
        result = self.invoke(party, *args, "--json")
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return json.loads(result.stdout)

    def run(self, party: str, *args: str) -> str:
        result = self.invoke(party, *args)
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return str(result.stdout)

    def fails(self, party: str, *args: str, env: dict[str, str] | None = None) -> str:
        """Run a command that must fail: exit 1 and one line on stderr; that line."""
        result = self.invoke(party, *args, env=env)
        assert result.exit_code == 1, (result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        return str(lines[0])


def agreement_in_force(cli: Cli, tmp_path: Path, terms_document: Any = None) -> str:
    """An agreement proposed by the sponsor and signed by the CMO (default terms unless
    ``terms_document`` is given)."""
    terms = tmp_path / "terms.json"
    chosen = agreement_terms() if terms_document is None else terms_document
    terms.write_text(json.dumps(chosen), encoding="utf-8")
    agreement = str(cli.json(SPONSOR, "agreement", "propose", str(terms))["subject"])
    cli.json(CMO, "agreement", "sign", agreement)
    return agreement


def a_batch(cli: Cli, agreement: str) -> str:
    batch = f"NWB101-CLI-{uuid.uuid4().hex[:6].upper()}"
    started = format_utc(now_utc() - timedelta(days=14))
    cli.json(CMO, "batch", "register", batch, "--agreement", agreement, "--product", "NWB-101",
             "--site", "contoso-site-a", "--started-at", started)  # fmt: skip
    return batch


def discrete_file(path: Path, titer: str) -> Path:
    sampled = format_utc(now_utc() - timedelta(days=2))
    path.write_text(
        "id,parameter,value,unit,sampled_at,method\n"
        f"R-001,titer at harvest,{titer},g/L,{sampled},Protein A HPLC\n"
        f"R-002,endotoxin,0.05,EU/mL,{sampled},LAL kinetic chromogenic\n",
        encoding="utf-8",
    )
    return path


def every_command() -> Iterator[tuple[str, Any]]:
    """Every command of ``cmo-ledger`` and every group with options of its own, as
    ``("agreement amend", command)``; a command's ``params`` are its arguments and options."""

    def walk(command: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
        subcommands = getattr(command, "commands", None)
        if subcommands is None or command.params:
            yield " ".join(path), command
        for name, sub in (subcommands or {}).items():
            yield from walk(sub, [*path, name])

    return walk(typer.main.get_command(app), [])
