"""``cmo-ledger projections``: rebuild the read models and see where they stand."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clients.cli.common import console
from ledger.application import Ledger
from ledger.config import Settings
from projections.rebuild import rebuild, status
from projections.runner import view_classes

__all__ = ["projections_app"]

projections_app = typer.Typer(
    name="projections",
    help="Rebuild the read models from the log, or show how far behind they are.",
    no_args_is_help=True,
)


def _views(view: list[str] | None) -> list[str]:
    try:
        return [cls.name for cls in view_classes(view)]
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--view") from None


@projections_app.command("rebuild")
def rebuild_command(
    view: Annotated[
        list[str] | None,
        typer.Option("--view", help="A view to rebuild (repeat for several); default: all"),
    ] = None,
) -> None:
    """Drop the views and replay the whole log into them."""
    names = _views(view)
    ledger = Ledger.open(Settings.from_env())
    screen = console()
    try:
        with Progress(
            TextColumn("rebuilding {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=screen,
            transient=not screen.is_terminal,
        ) as progress:
            task = progress.add_task(", ".join(names), total=None)

            def report(position: int, head: int) -> None:
                progress.update(task, completed=position, total=head)

            reached = rebuild(ledger, names, progress=report)
    finally:
        ledger.close()
    console().print(f"rebuilt {', '.join(names)} up to position {reached}")


@projections_app.command("status")
def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts")] = False,
) -> None:
    """Each view's position against the log's head."""
    ledger = Ledger.open(Settings.from_env())
    try:
        rows = status(ledger)
    finally:
        ledger.close()
    if as_json:
        typer.echo(json.dumps([asdict(row) for row in rows]))
        return
    table = Table("view", "position", "head", "behind (events)")
    for row in rows:
        style = None if row.lag == 0 else "yellow"
        table.add_row(row.view, str(row.position), str(row.head), str(row.lag), style=style)
    console().print(table)
