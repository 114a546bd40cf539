"""Evidence bundles on the command line: ``export-evidence`` and ``verify-bundle``.

``export-evidence`` signs the bundle's manifest with the party key of ``--key``;
``verify-bundle`` checks that signature against the key the log admitted for that party.
``register(app)`` adds both to the ``cmo-ledger`` Typer app. ``verify-bundle`` needs no
server and no database. Exit codes: 0 when the bundle verifies (or was written), 1 with
each problem listed when it does not, 2 when it is intact but some events are signed under
a compromised key (their ``signed_at`` or ``recorded_at`` at or after the key's
``compromised_since``), each listed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from clients.bundle import BundleReport, verify_bundle
from clients.cli.common import DEFAULT_URL, KeyOption, commands, connect, console
from clients.cli.completion import complete_batch
from clients.evidence import Progress, export_evidence
from ledger.domain.key_history import COMPROMISED

__all__ = ["export_evidence_command", "register", "verify_bundle_command"]


@contextmanager
def _progress_bar() -> Iterator[Progress | None]:
    """A progress bar on stderr when it is a terminal; otherwise nothing."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "exporting events",
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


@commands
def export_evidence_command(
    batch: Annotated[
        str,
        typer.Option(
            "--batch", help="The batch name, e.g. NWB101-24-001", autocompletion=complete_batch
        ),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="A new or empty directory")],
    key: KeyOption,
    url: Annotated[
        str, typer.Option("--url", help="The ledger server's URL", envvar="CMO_LEDGER_URL")
    ] = DEFAULT_URL,
) -> None:
    """Export a batch's evidence bundle (events, proofs, checkpoint, report.html), its
    manifest signed with the party key of --key."""
    with connect(url, key) as client, _progress_bar() as progress:
        written = export_evidence(client, batch, out_dir, progress=progress)
    typer.echo(f"bundle of {batch} written to {written}")
    typer.echo(f"check it offline: cmo-ledger verify-bundle {written} --vkey NOTARY_KEY")


def verify_bundle_command(
    bundle: Annotated[Path, typer.Argument(help="The bundle directory")],
    vkey: Annotated[
        str | None,
        typer.Option("--vkey", help="The notary's verifier key you trust, or a file holding it"),
    ] = None,
) -> None:
    """Check an evidence bundle offline: the exporter's signature over the manifest, files,
    signatures, proofs, checkpoint, chains, data.

    Exit 0 when it verifies, 1 when it is not intact, 2 when it is intact but some events
    are signed under a compromised key (signed_at or recorded_at at or after the key's
    compromised_since).
    """
    if not bundle.is_dir():
        typer.echo(f"FAILED: {bundle} is not a directory", err=True)
        raise typer.Exit(1)
    trusted = None
    if vkey is not None:
        trusted = Path(vkey).read_text("utf-8") if Path(vkey).is_file() else vkey
    report = verify_bundle(bundle, vkey=trusted)
    _print(report)
    raise typer.Exit(report.exit_status)


def _print(report: BundleReport) -> None:
    for note in report.notes:
        typer.echo(f"note: {note}")
    for problem in report.problems:
        typer.echo(f"problem: {problem}")
    for line in report.compromised:
        typer.echo(f"compromised: {line}")
    where = ""
    if report.checkpoint is not None:
        where = f" against the checkpoint of {report.checkpoint.origin} at size "
        where += str(report.checkpoint.size)
    if not report.ok:
        typer.echo(f"FAILED: {len(report.problems)} problem(s) in {report.events} events{where}")
    elif report.compromised:
        count = len(report.compromised)
        typer.echo(f"COMPROMISED: {report.events} events intact{where}; {count} {COMPROMISED}")
    elif report.partial:
        typer.echo(f"PARTIAL: {report.summary()}{where}")
    else:
        typer.echo(f"OK: {report.summary()}{where}")


def register(app: typer.Typer) -> None:
    """Add ``export-evidence`` and ``verify-bundle`` to ``app``."""
    app.command("export-evidence")(export_evidence_command)
    app.command("verify-bundle")(verify_bundle_command)
