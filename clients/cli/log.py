"""The log's commands: ``verify``, ``proof``, ``verify-proof`` and ``checkpoint``.

``register(app)`` adds them to the ``cmo-ledger`` Typer app; ``python -m clients.cli.log``
runs them on their own. ``verify-proof`` needs no database: it reads a tlog-proof, the
leaf bytes and the notary's verifier key from files.

Exit codes: 0 when everything holds, 1 when verification fails (the log is not intact) or
a command is refused, 2 when the log is intact but some events are signed under a
compromised key (their ``signed_at`` or ``recorded_at`` at or after the key's
``compromised_since``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from clients.cli.common import commands, console
from ledger.domain.key_history import COMPROMISED
from ledger.errors import LedgerError

if TYPE_CHECKING:
    from ledger.application import Ledger
    from ledger.config import Settings
    from ledger.log.verify import Report

__all__ = ["checkpoint", "log_commands", "main", "proof", "register", "verify", "verify_proof"]


DatabaseOption = Annotated[
    str | None,
    typer.Option("--database", help="Database URL (default: CMO_LEDGER_DATABASE_URL)"),
]


def _settings(database: str | None) -> Settings:
    from ledger.config import Settings

    if database is None:
        return Settings.from_env()
    return Settings.from_env({**os.environ, "CMO_LEDGER_DATABASE_URL": database})


@contextmanager
def _open(database: str | None) -> Iterator[Ledger]:
    from ledger.application import Ledger

    ledger = Ledger.open(_settings(database))
    try:
        yield ledger
    finally:
        ledger.close()


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(1)


# ------------------------------------------------------------------------- verify


def verify(
    database: DatabaseOption = None,
    workers: Annotated[
        int | None, typer.Option(help="Processes checking signatures (default: all CPUs)")
    ] = None,
    max_problems: Annotated[int, typer.Option(help="Print at most this many problems")] = 200,
) -> None:
    """Re-check every event, key, chain link, leaf, tree node and checkpoint of the ledger.

    Exit 0 when everything holds, 1 when the log is not intact, 2 when it is intact but some
    events are signed under a compromised key (signed_at or recorded_at at or after the
    key's compromised_since).
    """
    from ledger.log.verify import verify_ledger

    with _open(database) as ledger, _progress() as progress:
        report = verify_ledger(ledger, workers=workers, progress=progress)
    _print_report(report, max_problems)
    raise typer.Exit(report.exit_status)


@contextmanager
def _progress() -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr when it is a terminal; otherwise nothing."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "verifying",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("events", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _print_report(report: Report, limit: int) -> None:
    for problem in report.problems[:limit]:
        typer.echo(str(problem))
    hidden = len(report.problems) - limit
    if hidden > 0:
        typer.echo(f"... and {hidden} more")
    what = f"{_count(report.events, 'event')}, {_count(report.checkpoints, 'checkpoint')}"
    if not report.ok:
        typer.echo(f"FAILED: {_count(len(report.errors), 'problem')} in {what}")
    elif report.compromised:
        caught = _count(len(report.compromised), "event")
        typer.echo(f"COMPROMISED: {what} intact; {caught} {COMPROMISED}")
    else:
        typer.echo(f"OK: {what} verified")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


# -------------------------------------------------------------------------- proof


def proof(
    leaf: Annotated[int, typer.Option("--leaf", help="Leaf index (0 is the first event)")],
    size: Annotated[
        int | None,
        typer.Option("--size", help="Tree size of a signed checkpoint (default: latest)"),
    ] = None,
    leaf_bytes_out: Annotated[
        Path | None, typer.Option("--leaf-bytes-out", help="Write the leaf's bytes to this file")
    ] = None,
    database: DatabaseOption = None,
) -> None:
    """Print a c2sp.org/tlog-proof of one leaf against a signed checkpoint."""
    from ledger.log.checkpoints import Checkpoints
    from ledger.log.notes import format_proof
    from ledger.log.tree import MerkleTree

    with _open(database) as ledger:
        tree = MerkleTree(ledger)
        checkpoints = Checkpoints(ledger, tree)
        signed = checkpoints.latest() if size is None else checkpoints.get(size)
        if signed is None:
            which = (
                "no checkpoint is signed yet" if size is None else f"no checkpoint of size {size}"
            )
            raise _fail(f"error: {which}: run `cmo-ledger checkpoint --sign`")
        if not 0 <= leaf < signed.size:
            raise _fail(f"error: leaf {leaf} is not in the checkpoint of size {signed.size}")
        text = format_proof(leaf, tree.inclusion_proof(leaf, signed.size), signed.text)
        if leaf_bytes_out is not None:
            leaf_bytes_out.write_bytes(_leaf_bytes(ledger, tree, leaf))
    typer.echo(text, nl=False)


def _leaf_bytes(ledger: Ledger, tree: Any, leaf: int) -> bytes:
    """The stored event of ``leaf``, as the bytes its leaf hash covers."""
    from ledger.log.merkle import leaf_hash

    position, stored_hash = tree.leaf(leaf)
    found = ledger.read(after=position - 1, limit=1)
    if not found or found[0].position != position:
        raise _fail(f"error: the event at position {position} (leaf {leaf}) is missing")
    data: bytes = found[0].event.leaf_bytes()
    if leaf_hash(data) != stored_hash:
        raise _fail(f"error: the event at position {position} no longer matches leaf {leaf}")
    return data


def verify_proof(
    proof_file: Annotated[Path, typer.Argument(help="A c2sp.org/tlog-proof text")],
    leaf_bytes: Annotated[Path, typer.Option("--leaf-bytes", help="The leaf's bytes")],
    vkey: Annotated[str, typer.Option("--vkey", help="The notary's verifier key, or a file")],
) -> None:
    """Check a tlog-proof offline: the checkpoint's signature and the leaf's inclusion."""
    from clients.offline import VerificationError, verify_proof_text

    try:
        key_text = Path(vkey).read_text("utf-8") if Path(vkey).is_file() else vkey
        result = verify_proof_text(
            proof_file.read_text("utf-8"), leaf_bytes.read_bytes(), key_text.strip()
        )
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"FAILED: cannot read the input: {exc}") from None
    except VerificationError as exc:
        raise _fail(f"FAILED: {exc}") from None
    checkpoint = result.checkpoint
    typer.echo(f"OK: leaf {result.index} is in {checkpoint.origin} at size {checkpoint.size}")


# --------------------------------------------------------------------- checkpoint


def checkpoint(
    sign: Annotated[
        bool, typer.Option("--sign", help="Sign a checkpoint of the current log now")
    ] = False,
    vkey: Annotated[
        bool, typer.Option("--vkey", help="Print the notary's C2SP verifier key instead")
    ] = False,
    database: DatabaseOption = None,
) -> None:
    """Print the latest signed checkpoint (with its cosignatures)."""
    from ledger.log.checkpoints import Checkpoints, Notary

    settings = _settings(database)
    with _open(database) as ledger:
        if vkey:
            typer.echo(Checkpoints(ledger).vkey())
            return
        if sign:
            signed = Notary(ledger, _notary_key(settings)).checkpoint_now()
        else:
            found = Checkpoints(ledger).latest()
            if found is None:
                raise _fail(
                    "error: no checkpoint is signed yet: run `cmo-ledger checkpoint --sign`"
                )
            signed = found
    typer.echo(signed.text, nl=False)


def _notary_key(settings: Settings) -> Any:
    from ledger.keystore import load_keystore

    if not settings.passphrase:
        raise LedgerError(
            "set CMO_LEDGER_PASSPHRASE to unlock the notary keystore", field="CMO_LEDGER_PASSPHRASE"
        )
    _, signing_key = load_keystore(settings.notary_keystore, settings.passphrase)
    return signing_key


# ------------------------------------------------------------------------ wiring

#: ``(name, function)`` of each command, for ``register``.
log_commands: list[tuple[str, Callable[..., None]]] = [
    ("verify", verify),
    ("proof", proof),
    ("verify-proof", verify_proof),
    ("checkpoint", checkpoint),
]


def register(app: typer.Typer) -> None:
    """Add the log's commands to ``app``; a refusal (a malformed setting, a missing
    keystore) is one line on stderr and exit status 1."""
    for name, function in log_commands:
        app.command(name)(commands(function))


def main() -> None:
    """Run the log's commands alone: ``python -m clients.cli.log COMMAND``."""
    app = typer.Typer(name="cmo-ledger", no_args_is_help=True, add_completion=False)
    register(app)
    try:
        app()
    except LedgerError as error:
        typer.echo(f"error [{error.code}] {error}", err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
