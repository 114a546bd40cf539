"""What every party-facing command shares: ``--url``, ``--key``, ``--json``, ``--csv``, the
keystore, output as a table, JSON or CSV, and one-line errors with exit status 1.

``--url`` and ``--key`` default to the settings ``CMO_LEDGER_URL`` and ``CMO_LEDGER_KEY``.
The keystore's passphrase comes from ``CMO_LEDGER_PASSPHRASE``, else a hidden prompt when
stdin is a terminal. The party id is the keystore's.

Values are printed as they are: never read as console markup (a unit ``[pH]`` stays). A
table printed to a file or a pipe keeps its full width.
"""

from __future__ import annotations

import csv
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
from ledger.config import DEFAULT_SERVER_URL, Settings
from ledger.errors import ConfigurationError, LedgerError
from ledger.keystore import load_keystore

__all__ = [
    "DEFAULT_URL",
    "SUBMITTED_COLUMNS",
    "CsvOption",
    "JsonOption",
    "KeyOption",
    "UrlOption",
    "commands",
    "connect",
    "console",
    "fail",
    "one_format",
    "progress",
    "read_json",
    "show",
    "show_submitted",
]

DEFAULT_URL = DEFAULT_SERVER_URL
_FULL_WIDTH = 100_000  # columns of a table that goes to a file or a pipe: never cut

UrlOption = Annotated[
    str, typer.Option("--url", help="The ledger server's URL", envvar="CMO_LEDGER_URL")
]
KeyOption = Annotated[
    Path,
    typer.Option(
        "--key", help="Your party keystore (from `cmo-ledger keygen`)", envvar="CMO_LEDGER_KEY"
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]
CsvOption = Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table")]


def console(*, stderr: bool = False) -> Console:
    """A console that prints values as they are (no markup) and, when it does not write to
    a terminal, at full width."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else _FULL_WIDTH
    return Console(file=stream, markup=False, highlight=False, emoji=False, width=width)


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


def connect(
    url: str,
    key: Path,
    *,
    notary_key: str | None = None,
    person: str | None = None,
    person_keystore: Path | None = None,
) -> LedgerClient:
    """A client signing as the party of keystore ``key`` (its envelopes, with ``person``,
    signed by that person with the key of ``person_keystore``); an https server's
    certificate is verified against ``CMO_LEDGER_CA_FILE`` when set, else the system's CAs."""
    passphrase = _passphrase()
    keystore, signing_key = load_keystore(key, passphrase)
    person_key = None if person_keystore is None else load_keystore(person_keystore, passphrase)[1]
    ca_file = Settings.from_env().ca_file
    return LedgerClient(
        url,
        keystore.party,
        signing_key,
        notary_key=notary_key,
        ca_file=ca_file,
        person=person,
        person_key=person_key,
    )


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


def one_format(*, as_json: bool, as_csv: bool) -> None:
    """Refuse ``--json`` with ``--csv`` (before a command asks the server anything)."""
    if as_json and as_csv:
        raise ClientError("choose one of --json and --csv", field="--csv")


def show(
    rows: Sequence[Any] | Any,
    *,
    as_json: bool,
    as_csv: bool = False,
    title: str | None = None,
    columns: Sequence[str] | None = None,
) -> None:
    """Print ``rows`` (mappings or dataclasses; or one of them) as a table, JSON or CSV."""
    one_format(as_json=as_json, as_csv=as_csv)
    plain = _plain(rows)
    if as_json:
        typer.echo(json.dumps(plain, indent=2, sort_keys=False))
        return
    records = plain if isinstance(plain, list) else [plain]
    names = list(columns or (records[0].keys() if records else []))
    if as_csv:
        _show_csv(records, names)
    elif not isinstance(plain, list):
        _show_one(plain, title, names)
    elif not records:
        console().print(f"{title or 'nothing'}: none")
    else:
        _show_table(records, names, title)


def _show_csv(records: Sequence[Mapping[str, Any]], names: Sequence[str]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(names)
    for record in records:
        writer.writerow([_cell(record.get(name)) for name in names])


def _show_table(
    records: Sequence[Mapping[str, Any]], names: Sequence[str], title: str | None
) -> None:
    table = Table(title=title)
    for name in names:
        table.add_column(name)
    for record in records:
        table.add_row(*(_cell(record.get(name)) for name in names))
    console().print(table)


def _show_one(record: Mapping[str, Any], title: str | None, names: Sequence[str]) -> None:
    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name in names:
        table.add_row(name, _cell(record.get(name)))
    console().print(table)


SUBMITTED_COLUMNS = ["type", "subject", "version", "position", "leaf_index", "event_hash"]


def show_submitted(
    stored: Submitted | Sequence[Submitted], *, as_json: bool, as_csv: bool = False
) -> None:
    """Print where the ledger stored an event (or, as a list, several)."""
    rows = stored if isinstance(stored, Submitted) else list(stored)
    show(rows, as_json=as_json, as_csv=as_csv, title="stored", columns=SUBMITTED_COLUMNS)


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr when it is a terminal; call the result with each step done."""
    if not sys.stderr.isatty():
        yield lambda _done: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        description,
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console(stderr=True),
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda done: bar.update(task, advance=done)


def split_values(values: Iterable[str]) -> list[str]:
    """Options given repeatedly or comma-separated, as one list."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]
