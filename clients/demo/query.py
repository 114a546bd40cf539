"""Run one of the demo's example queries as a party: ``python -m clients.demo.query``.

A browser's GraphiQL cannot sign requests, so it reads only the ``ledger`` field; this
runs a query file signed with a party's keystore from the demo's directory::

    python -m clients.demo.query docs/queries/trace_batch.graphql \\
        --as agency-inspectorate --var batch=NWB101-24-007

Variables are ``NAME=VALUE`` (a JSON value, else a string). The keystores' passphrase is
``CMO_LEDGER_PASSPHRASE``, else the one the demo generated in its directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from clients.client import LedgerClient
from clients.demo import DATA_DIR_VARIABLE, DEFAULT_DIR, demo_directory
from clients.errors import ClientError
from ledger.errors import ConfigurationError
from ledger.keystore import PASSPHRASE_FILE, load_keystore

__all__ = ["main", "run_query", "variables_of"]

app = typer.Typer(add_completion=False)


def variables_of(pairs: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs as GraphQL variables (JSON values, else strings)."""
    found: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise ConfigurationError(f"expected NAME=VALUE, got {pair!r}", field="--var")
        try:
            found[name] = json.loads(text)
        except json.JSONDecodeError:
            found[name] = text
    return found


def _passphrase(directory: Path) -> str:
    passphrase = os.environ.get("CMO_LEDGER_PASSPHRASE")
    generated = directory / PASSPHRASE_FILE
    if not passphrase and generated.exists():
        passphrase = generated.read_text("utf-8").strip()
    if not passphrase:
        raise ConfigurationError(
            "set CMO_LEDGER_PASSPHRASE to the passphrase the demo ran with",
            field="CMO_LEDGER_PASSPHRASE",
        )
    return passphrase


def run_query(
    query: str, party: str, variables: dict[str, Any], *, directory: Path, url: str
) -> dict[str, Any]:
    """Run ``query`` signed as ``party`` (keystore ``directory/keys/<party>.key``)."""
    keystore = directory / "keys" / f"{party}.key"
    if not keystore.exists():
        raise ConfigurationError(f"no keystore {keystore}: is --dir the demo's?", field="--as")
    _, key = load_keystore(keystore, _passphrase(directory))
    with LedgerClient(url, party, key) as client:
        return client.graphql(query, variables)


@app.command()
def query(
    file: Annotated[Path, typer.Argument(help="A .graphql file, e.g. docs/queries/*.graphql")],
    party: Annotated[str, typer.Option("--as", help="The party to sign as")],
    var: Annotated[list[str] | None, typer.Option(help="A variable, NAME=VALUE")] = None,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="The demo's directory",
            show_default=f"{DATA_DIR_VARIABLE}, else {DEFAULT_DIR}",
        ),
    ] = None,
    url: Annotated[str, typer.Option(help="The demo server")] = "http://127.0.0.1:8000",
) -> None:
    """Run a GraphQL query file as a party of the demo and print the answer as JSON."""
    folder, _ = demo_directory(directory)
    data = run_query(
        file.read_text("utf-8"), party, variables_of(var or []), directory=folder, url=url
    )
    typer.echo(json.dumps(data, indent=2))


def main() -> None:
    """Entry point: one line and exit 1 for a refusal."""
    try:
        app()
    except (ClientError, ConfigurationError) as error:
        typer.echo(f"error [{error.code}] {error}", err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
