"""What every party-facing command shares: ``--url``, ``--key``, ``--json``, the keystore,
output as a table or JSON, and one-line errors with exit status 1.

The keystore's passphrase comes from ``CMO_LEDGER_PASSPHRASE``, else a hidden prompt when
stdin is a terminal. The party id is the keystore's.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from clients.client import LedgerClient, Submitted
from clients.errors import ClientError
from ledger.config import Settings
from ledger.errors import ConfigurationError, LedgerError
from ledger.keystore import load_keystore

__all__ = [
    "DEFAULT_URL",
    "JsonOption",
    "KeyOption",
    "UrlOption",
    "commands",
    "connect",
    "fail",
    "progress",
    "read_json",
    "show",
    "show_submitted",
]

DEFAULT_URL = "http://127.0.0.1:8000"
out = Console()
err = Console(stderr=True)

UrlOption = Annotated[str, typer.Option("--url", help="The ledger server's URL")]
KeyOption = Annotated[
    Path, typer.Option("--key", help="Your party keystore (from `cmo-ledger keygen`)")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]

P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str) -> typer.Exit:
    """Print ``message`` as one line on stderr; the ``typer.Exit(1)`` to raise."""
    typer.echo(" ".join(message.split()), err=True)
    return typer.Exit(1)


def commands(function: Callable[P, R]) -> Callable[P, R]:
    """Turn every refusal raised by a command into one line on stderr and exit status 1."""

    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except (ClientError, LedgerError) as error:
            raise fail(f"error [{error.code}] {error}") from None
        except OSError as error:
            raise fail(f"error: {error.strerror or error}: {error.filename or ''}") from None

    return run


def _passphrase() -> str:
    passphrase = Settings.from_env().passphrase
    if passphrase:
        return passphrase
    if not sys.stdin.isatty():
        raise ConfigurationError(
            "no passphrase for the keystore: set CMO_LEDGER_PASSPHRASE or run in a terminal",
            field="CMO_LEDGER_PASSPHRASE",
        )
    value: str = typer.prompt("Keystore passphrase", hide_input=True)
    return value


def connect(url: str, key: Path, *, notary_key: str | None = None) -> LedgerClient:
    """A client signing as the party of keystore ``key``."""
    keystore, signing_key = load_keystore(key, _passphrase())
    return LedgerClient(url, keystore.party, signing_key, notary_key=notary_key)


def read_json(path: Path, what: str) -> Any:
    """The JSON document in ``path``, or a refusal naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ClientError(
            f"{path} is not JSON ({exc.msg} at line {exc.lineno}): fix the {what} file",
            field=str(path),
        ) from exc


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def show(
    rows: Sequence[Any] | Any,
    *,
    as_json: bool,
    title: str | None = None,
    columns: Sequence[str] | None = None,
) -> None:
    """Print ``rows`` (mappings or dataclasses; or one of them) as a table or as JSON."""
    plain = _plain(rows)
    if as_json:
        typer.echo(json.dumps(plain, indent=2, sort_keys=False))
        return
    if not isinstance(plain, list):
        _show_one(plain, title, columns)
        return
    records = plain
    if not records:
        out.print(f"{title or 'nothing'}: none")
        return
    names = list(columns or records[0].keys())
    table = Table(title=title)
    for name in names:
        table.add_column(name)
    for record in records:
        table.add_row(*(_cell(record.get(name)) for name in names))
    out.print(table)


def _show_one(record: Mapping[str, Any], title: str | None, columns: Sequence[str] | None) -> None:
    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name in columns or list(record):
        table.add_row(name, _cell(record.get(name)))
    out.print(table)


def show_submitted(stored: Submitted | Sequence[Submitted], *, as_json: bool) -> None:
    """Print where the ledger stored an event (or, as a list, several)."""
    names = ["type", "subject", "version", "position", "leaf_index", "event_hash"]
    rows = stored if isinstance(stored, Submitted) else list(stored)
    show(rows, as_json=as_json, title="stored", columns=names)


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr when it is a terminal; call the result with each step done."""
    if not sys.stderr.isatty():
        yield lambda _done: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        description, BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda done: bar.update(task, advance=done)


def split_values(values: Iterable[str]) -> list[str]:
    """Options given repeatedly or comma-separated, as one list."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]
