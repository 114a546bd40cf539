"""``cmo-ledger backup --out FILE`` and ``cmo-ledger restore FILE``.

``backup`` takes an online, consistent snapshot of the ledger named by
``CMO_LEDGER_DATABASE_URL`` while it keeps serving; ``restore`` writes one into the
empty database that variable names and refuses a database that holds anything.
See :mod:`ledger.log.backup` for the format. Exit codes: 0 on success, 1 when refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger.config import Settings
from ledger.log.backup import BackupSummary, backup, restore

__all__ = ["backup_command", "register", "restore_command"]


def backup_command(
    out_file: Annotated[Path, typer.Option("--out", help="Backup file to write (gzip)")],
) -> None:
    """Write a consistent snapshot of the whole ledger database to a file, online."""
    summary = backup(Settings.from_env(), out_file)
    typer.echo(f"backup of {summary.origin} at log position {summary.head}: {out_file}")
    typer.echo(_rows(summary))


def restore_command(
    file: Annotated[Path, typer.Argument(help="A file written by `cmo-ledger backup`")],
) -> None:
    """Restore a backup into the empty database CMO_LEDGER_DATABASE_URL names."""
    settings = Settings.from_env()
    summary = restore(settings, file)
    typer.echo(
        f"restored {summary.origin} up to log position {summary.head} "
        f"(taken at {summary.taken_at}) into {settings.database_url}"
    )
    typer.echo(_rows(summary))
    typer.echo("check it with `cmo-ledger verify`")


def _rows(summary: BackupSummary) -> str:
    tables = len(summary.tables)
    return f"{sum(summary.tables.values())} rows in {tables} tables"


def register(app: typer.Typer) -> None:
    """Add ``backup`` and ``restore`` to ``app``."""
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)
