"""Read-only commands: ``audit trail``, ``trace batch`` and ``asof``."""

from __future__ import annotations

from itertools import islice
from typing import Annotated, Any

import typer

from clients.cli.common import (
    DEFAULT_URL,
    JsonOption,
    KeyOption,
    UrlOption,
    commands,
    connect,
    progress,
    show,
)
from clients.cli.completion import complete_agreement, complete_batch
from ledger.timeutil import canonical_time

__all__ = ["register"]

audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
trace_app = typer.Typer(help="Trace a batch end to end.", no_args_is_help=True)

# A person's signature shows their printed name, the meaning and the time (R5).
_TRAIL_COLUMNS = [
    "position",
    "type",
    "subject",
    "signer",
    "printedName",
    "meaning",
    "reason",
    "recordedAt",
]


@audit_app.command("trail")
@commands
def audit_trail(
    key: KeyOption,
    subject: Annotated[str | None, typer.Option(help="Only this subject")] = None,
    agreement: Annotated[
        str | None,
        typer.Option(help="Only under this agreement", autocompletion=complete_agreement),
    ] = None,
    batch: Annotated[
        str | None, typer.Option(help="Only this batch", autocompletion=complete_batch)
    ] = None,
    signer: Annotated[str | None, typer.Option(help="Only events this party signed")] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="Only this event type")] = None,
    since: Annotated[
        str | None, typer.Option("--from", help="Recorded at or after (RFC 3339)")
    ] = None,
    until: Annotated[str | None, typer.Option("--to", help="Recorded before (RFC 3339)")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many entries")] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """The signed events you may see, in log order."""
    filters: dict[str, Any] = {
        "subject": subject,
        "agreement": agreement,
        "batch": batch,
        "signer": signer,
    }
    filters |= {"type": event_type, "from_": _time(since, "--from"), "to": _time(until, "--to")}
    entries: list[dict[str, Any]] = []
    with connect(url, key) as client, progress("reading the audit trail", limit) as step:
        for entry in islice(client.audit_trail(**filters), limit):
            entries.append(entry)
            step(1)
    show(entries, as_json=as_json, title="audit trail", columns=_TRAIL_COLUMNS)


@trace_app.command("batch")
@commands
def trace_batch(
    key: KeyOption,
    batch: Annotated[
        str, typer.Argument(help="The batch, e.g. NWB101-24-001", autocompletion=complete_batch)
    ],
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Everything about one batch: terms and limits in force, grants, events, corrections."""
    with connect(url, key) as client:
        trace = client.trace_batch(batch)
    withheld = _say_withheld(trace.get("withheld") or [])
    if as_json:
        show(trace, as_json=True)
        return
    show(trace["batch"], as_json=False, title=f"batch {batch} (at position {trace['position']})")
    columns = {"events": [c for c in _TRAIL_COLUMNS if c != "subject"]}
    for part in ("events", "corrections", "deviations"):
        if part not in withheld:
            show(trace[part] or [], as_json=False, title=part, columns=columns.get(part))


def _say_withheld(withheld: list[dict[str, Any]]) -> set[str]:
    """Say on stderr, one line each, which parts of an answer the server withheld and why;
    the names of those parts."""
    for part in withheld:
        reason = f"{part['field']}: {part['message']}" if part.get("field") else part["message"]
        typer.echo(f"withheld: {part['part']} ({part['code']}: {reason})", err=True)
    return {str(part["part"]).split(".")[0] for part in withheld}


def _time(value: str | None, option: str) -> str | None:
    """A time given on the command line, as the ledger stores it (refused naming ``option``)."""
    return None if value is None else canonical_time(value, field=option)


@commands
def asof(
    key: KeyOption,
    when: Annotated[str, typer.Argument(help="A log position, or an RFC 3339 time")],
    agreement: Annotated[
        str | None,
        typer.Option(help="Also this agreement's state", autocompletion=complete_agreement),
    ] = None,
    batch: Annotated[
        str | None, typer.Option(help="Also this batch's state", autocompletion=complete_batch)
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Parties and agreements as they stood at a past log position or time."""
    position = int(when) if when.isdigit() else None
    time = None if position is not None else _time(when, "WHEN")
    with connect(url, key) as client:
        found = client.as_of(
            position=position,
            time=time,
            agreement=agreement,
            batch=batch,
        )
    withheld = _say_withheld(found.get("withheld") or [])
    if as_json:
        show(found, as_json=True)
        return
    typer.echo(f"as of position {found.get('position')} ({found.get('time')})")
    proof = found.get("proof")
    typer.echo(
        "not yet covered by a signed checkpoint: retry after the next one"
        if proof is None
        else f"verified: leaf {proof['leafIndex']} (position {proof['position']}) is in the "
        f"signed checkpoint of size {proof['checkpoint']['treeSize']}"
    )
    show(found.get("agreements", []), as_json=False, title="agreements")
    for name in ("agreement", "parameters", "batch"):
        if name not in withheld and found.get(name) is not None:
            show(found[name], as_json=False, title=name)


def register(app: typer.Typer) -> None:
    """Add ``audit``, ``trace`` and ``asof`` to ``app``."""
    app.add_typer(audit_app, name="audit")
    app.add_typer(trace_app, name="trace")
    app.command("asof")(asof)
