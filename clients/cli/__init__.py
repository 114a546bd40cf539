"""The ``cmo-ledger`` command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from nacl.signing import SigningKey

import clients.demo as demo_commands
from clients.cli import backup as backup_commands
from clients.cli import changes as change_commands
from clients.cli import cpv as cpv_commands
from clients.cli import evidence as evidence_commands
from clients.cli import log as log_commands
from clients.cli import login as login_commands
from clients.cli import party as party_commands
from clients.cli import questions as question_commands
from clients.cli import status as status_commands
from clients.cli.common import console
from clients.cli.persons import person_app
from clients.cli.projections import projections_app
from clients.client import LedgerClient
from clients.errors import ClientError
from ledger.application import Ledger
from ledger.config import Settings, existing_file, tls_pair
from ledger.errors import ConfigurationError, LedgerError
from ledger.keystore import (
    create_keystore,
    generated_passphrase_file,
    kdf_limits_from_env,
    load_keystore,
)
from ledger.log.meta import read_identity

__all__ = ["app", "main"]

app = typer.Typer(
    name="cmo-ledger",
    help="A verifiable audit ledger for sponsor-CMO quality agreements.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion; ids and names complete from the server
)

DEFAULT_ORIGIN = "localhost/cmo-ledger"


def _settings() -> Settings:
    return Settings.from_env()


def _passphrase(settings: Settings, *, confirm: bool) -> str:
    if settings.passphrase:
        return settings.passphrase
    if not sys.stdin.isatty():
        raise ConfigurationError(
            "no passphrase: set CMO_LEDGER_PASSPHRASE or run in a terminal",
            field="CMO_LEDGER_PASSPHRASE",
        )
    value: str = typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm)
    return value


def _init_ledger(settings: Settings, origin: str, passphrase: str) -> str:
    """Create the notary keystore and the ledger; return the notary public key."""
    keystore_path = settings.notary_keystore
    if keystore_path.exists():
        raise LedgerError(
            f"{keystore_path} already exists; refusing to overwrite the notary key",
            field="CMO_LEDGER_DATA_DIR",
        )
    _refuse_existing_ledger(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    opslimit, memlimit = kdf_limits_from_env(_kdf_env(settings))
    keystore = create_keystore(
        keystore_path, "notary", passphrase, opslimit=opslimit, memlimit=memlimit
    )
    Ledger.initialise(settings, origin, keystore.public_key).close()
    return keystore.public_key


def _kdf_env(settings: Settings) -> dict[str, str]:
    return {"CMO_LEDGER_KDF_PROFILE": settings.kdf_profile}


def _refuse_existing_ledger(settings: Settings) -> None:
    path = settings.sqlite_path()
    if path is not None and not path.exists():
        return
    ledger = Ledger(settings)
    try:
        if read_identity(ledger.engine) is not None:
            raise LedgerError(
                "a ledger already exists in this database; refusing to overwrite it",
                field="CMO_LEDGER_DATABASE_URL",
            )
    finally:
        ledger.close()


@app.command()
def init(
    origin: Annotated[str, typer.Option(help="The ledger's origin, e.g. ledger.example.com/cmo")],
) -> None:
    """Create a new ledger and its notary key; print the notary's public key."""
    settings = _settings()
    public_key = _init_ledger(settings, origin, _passphrase(settings, confirm=True))
    console().print(f"ledger {origin} created at {settings.database_url}")
    console().print(f"notary keystore: {settings.notary_keystore}")
    console().print(f"notary public key: {public_key}")


@app.command()
def keygen(
    party: Annotated[str, typer.Option(help="The party id, e.g. contoso-cmo")],
    out_file: Annotated[Path, typer.Option("--out", help="Keystore file to write")],
) -> None:
    """Create a party key pair in an encrypted keystore; print the public key."""
    settings = _settings()
    opslimit, memlimit = kdf_limits_from_env(_kdf_env(settings))
    passphrase = _passphrase(settings, confirm=True)
    keystore = create_keystore(
        out_file,
        party,
        passphrase,
        signing_key=SigningKey.generate(),
        opslimit=opslimit,
        memlimit=memlimit,
    )
    console().print(f"keystore: {out_file}")
    console().print(f"key id: {keystore.key_id}")
    console().print(f"public key (for `party admit`): {keystore.public_key}")


@app.command()
def whoami(
    key: Annotated[Path, typer.Option("--key", help="A party keystore", envvar="CMO_LEDGER_KEY")],
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="CMO_LEDGER_URL",
            help="Also ask this ledger server for your keys in force and when each expires",
        ),
    ] = None,
) -> None:
    """Unlock a keystore and show whose key it holds; with a server, the party's keys in
    force, when each expires, and which to rotate soon."""
    settings = _settings()
    keystore, signing_key = load_keystore(key, _passphrase(settings, confirm=False))
    console().print(f"party: {keystore.party}")
    console().print(f"key id: {keystore.key_id}")
    console().print(f"public key: {keystore.public_key}")
    if url is not None:
        client = LedgerClient(url, keystore.party, signing_key, ca_file=settings.ca_file)
        with client:
            party_commands.show_keys_in_force(client)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    init_if_missing: Annotated[
        bool, typer.Option(help="Create an embedded ledger on first run")
    ] = False,
    origin: Annotated[str, typer.Option(help="Origin for a ledger created now")] = DEFAULT_ORIGIN,
    tls_cert: Annotated[
        Path | None,
        typer.Option(help="Serve HTTPS with this certificate (PEM; else CMO_LEDGER_TLS_CERT)"),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(help="The certificate's private key (PEM; else CMO_LEDGER_TLS_KEY)"),
    ] = None,
) -> None:
    """Serve the ledger over HTTP, or HTTPS with --tls-cert and --tls-key (GraphQL,
    checkpoints, health, metrics)."""
    import uvicorn

    settings = _settings()
    cert, key = _tls_files(settings, tls_cert, tls_key)
    if init_if_missing and not (settings.notary_keystore).exists():
        _first_run(settings, origin)
    tls: dict[str, Any] = {}
    if cert is not None and key is not None:
        # The workers read their settings again: they learn TLS is on (and send HSTS).
        os.environ["CMO_LEDGER_TLS_CERT"], os.environ["CMO_LEDGER_TLS_KEY"] = str(cert), str(key)
        tls = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    from api.app import KEEP_ALIVE_SECONDS

    uvicorn.run(
        "api.app:serve_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        **tls,
    )


def _tls_files(
    settings: Settings, cert: Path | None, key: Path | None
) -> tuple[Path | None, Path | None]:
    """The options, else the settings: both or neither, each an existing file."""
    if cert is None and key is None:
        return settings.tls_cert, settings.tls_key
    return tls_pair(
        None if cert is None else existing_file(cert, "--tls-cert"),
        None if key is None else existing_file(key, "--tls-key"),
        cert_field="--tls-cert",
        key_field="--tls-key",
    )


def _first_run(settings: Settings, origin: str) -> None:
    if settings.passphrase:
        passphrase, source = settings.passphrase, "CMO_LEDGER_PASSPHRASE"
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        passphrase, path = generated_passphrase_file(settings.data_dir)
        source = f"a generated passphrase kept in {path} (mode 0600)"
        os.environ["CMO_LEDGER_PASSPHRASE"] = passphrase
    public_key = _init_ledger(settings, origin, passphrase)
    console().print(f"first run: created ledger {origin} at {settings.database_url}")
    console().print(f"notary keystore {settings.notary_keystore} is protected by {source}")
    console().print(f"notary public key: {public_key}")


log_commands.register(app)
login_commands.register(app)
party_commands.register(app)
question_commands.register(app)
change_commands.register(app)
status_commands.register(app)
demo_commands.register(app)
evidence_commands.register(app)
backup_commands.register(app)
cpv_commands.register(app)
app.add_typer(projections_app, name="projections")
app.add_typer(person_app, name="person")


def main() -> None:
    """Entry point: one-line errors and a non-zero exit for every refusal."""
    try:
        app()
    except (LedgerError, ClientError) as error:
        console(stderr=True).print(f"error [{error.code}] {error}")
        raise SystemExit(1) from None
    except (FileExistsError, FileNotFoundError) as error:
        console(stderr=True).print(f"error: {error}")
        raise SystemExit(1) from None
