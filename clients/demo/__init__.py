"""``cmo-ledger demo``: a fresh embedded ledger, a real server and a story told through it.

The demo creates the ledger and every party's keystore in its own directory, serves the
API on loopback, plays :mod:`clients.demo.story` through the HTTP API (each party signs
with its own key), prints what to open, verifies the whole ledger and keeps serving until
Ctrl-C (unless ``--no-serve``). The steps are in :mod:`clients.demo.run`, imported only
when the command runs so that the other commands start quickly.

The demo's directory is ``--dir``, else ``CMO_LEDGER_DATA_DIR``, else
``./.cmo-ledger-demo`` (:func:`demo_directory`); its ledger is ``CMO_LEDGER_DATABASE_URL``
when set, else ``ledger.db`` in that directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from ledger.config import PREFIX

__all__ = ["DATA_DIR_VARIABLE", "DEFAULT_DIR", "demo", "demo_directory", "register"]

DEFAULT_DIR = Path(".cmo-ledger-demo")
DATA_DIR_VARIABLE = PREFIX + "DATA_DIR"


def demo_directory(
    directory: Path | None, environ: Mapping[str, str] | None = None
) -> tuple[Path, str]:
    """The demo's directory and what chose it: ``--dir``, the data directory setting, or
    the default (never the ledger's own default data directory, ``./.cmo-ledger``)."""
    env = os.environ if environ is None else environ
    if directory is not None:
        return directory, "--dir"
    if env.get(DATA_DIR_VARIABLE):
        return Path(env[DATA_DIR_VARIABLE]), DATA_DIR_VARIABLE
    return DEFAULT_DIR, "the default"


def demo(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Directory for the demo's keystores, story ids, evidence bundle and "
            f"(unless {PREFIX}DATABASE_URL is set) its ledger.db",
            show_default=f"{DATA_DIR_VARIABLE}, else {DEFAULT_DIR}",
        ),
    ] = None,
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
