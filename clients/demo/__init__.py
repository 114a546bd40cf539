"""``cmo-ledger demo``: a fresh embedded ledger, a real server and a story told through it.

The demo creates the ledger and every party's keystore in its own directory, serves the
API on loopback, plays :mod:`clients.demo.story` through the HTTP API (each party signs
with its own key), prints what to open, verifies the whole ledger and keeps serving until
Ctrl-C (unless ``--no-serve``). The steps are in :mod:`clients.demo.run`, imported only
when the command runs so that the other commands start quickly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["demo", "register"]


def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Directory for the demo's ledger and keystores")
    ] = Path(".cmo-ledger-demo"),
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Replace the ledger of an earlier demo in --dir")
    ] = False,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Keep serving when the story is told")
    ] = True,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port)")] = 8000,
    batches: Annotated[
        int, typer.Option(min=1, max=99, help="Northwind batches to run (WORLD.md: 20)")
    ] = 20,
    run_hours: Annotated[
        float, typer.Option(min=0.5, max=48, help="Length of each run, in hours")
    ] = 12.0,
) -> None:
    """Tell the sponsor-CMO story through a real server, verify it and keep serving."""
    from clients.demo.run import run

    ok = run(
        directory,
        fresh=fresh,
        serve=serve,
        port=port,
        batches=batches,
        run_minutes=int(run_hours * 60),
    )
    if not ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the ``cmo-ledger`` app."""
    app.command("demo")(demo)
