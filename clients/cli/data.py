"""Batches, their data and the parameters watched over them: ``batch register|end``,
``data submit|correct|ack`` and ``param define|propose|approve|reject|history``.

``data submit`` checks the whole file against the agreement's format for its class
(:mod:`clients.importers`) before signing anything, then delivers it in as many
``DataSubmitted`` events as the ledger's limits need, with a progress bar on a terminal.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from clients.cli.common import (
    DEFAULT_URL,
    CsvOption,
    JsonOption,
    KeyOption,
    UrlOption,
    commands,
    connect,
    one_format,
    progress,
    read_json,
    show,
    show_submitted,
    split_values,
)
from clients.cli.completion import complete_agreement, complete_batch, complete_parameter
from clients.cli.questions import (
    DATA_COLUMNS,
    DATA_TABLE_COLUMNS,
    SUBMISSION_COLUMNS,
    batch_values,
)
from clients.client import LedgerClient, Submitted
from clients.errors import ClientError
from clients.importers import (
    ContinuousImport,
    ImportedRecords,
    build_submissions,
    read_discrete,
    read_events,
    stream_continuous,
)
from ledger.clock import SYSTEM
from ledger.domain.data_classes import class_names, form_of
from ledger.domain.subjects import parameter_subject
from ledger.timeutil import canonical_time, format_utc

__all__ = ["register"]

batch_app = typer.Typer(help="Register and end batches (the CMO).", no_args_is_help=True)
data_app = typer.Typer(help="Deliver, correct and acknowledge batch data.", no_args_is_help=True)
param_app = typer.Typer(help="Parameters and their limits.", no_args_is_help=True)

BatchOption = Annotated[
    str,
    typer.Option("--batch", help="The batch, e.g. NWB101-24-001", autocompletion=complete_batch),
]
KindOption = Annotated[
    str,
    typer.Option(
        "--kind", help="The data class: discrete, continuous, event or one the agreement defines"
    ),
]
FileArgument = Annotated[Path, typer.Argument(help="A CSV or JSON Lines file")]
AgreementArgument = Annotated[
    str, typer.Argument(help="The agreement's id", autocompletion=complete_agreement)
]


@batch_app.command("register")
@commands
def batch_register(
    key: KeyOption,
    batch: Annotated[str, typer.Argument(help="The batch name, e.g. NWB101-24-001")],
    agreement: Annotated[
        str,
        typer.Option(help="The agreement it is made under", autocompletion=complete_agreement),
    ],
    product: Annotated[str, typer.Option(help="One of the agreement's products")],
    site: Annotated[str, typer.Option(help="One of the agreement's sites")],
    started_at: Annotated[str | None, typer.Option(help="RFC 3339 start (default: now)")] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Register a batch under an agreement in force."""
    when = format_utc(SYSTEM.now()) if started_at is None else _time(started_at, "--started-at")
    with connect(url, key) as client:
        stored = client.register_batch(
            agreement, batch, product=product, site=site, started_at=when
        )
        show_submitted(stored, as_json=as_json)


@batch_app.command("end")
@commands
def batch_end(
    key: KeyOption,
    batch: Annotated[str, typer.Argument(help="The batch name", autocompletion=complete_batch)],
    ended_at: Annotated[str | None, typer.Option(help="RFC 3339 end (default: now)")] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Record when a batch ended; delivery deadlines count from it."""
    given = None if ended_at is None else _time(ended_at, "--ended-at")
    with connect(url, key) as client:
        stored = client.end_batch(batch, ended_at=given or format_utc(client.clock.now()))
        show_submitted(stored, as_json=as_json)


def _time(value: str, option: str) -> str:
    """A time given on the command line, as the ledger stores it (refused naming ``option``)."""
    return canonical_time(value, field=option)


def _form(kind: str, terms: Mapping[str, Any]) -> str:
    """The form of data class ``kind`` under ``terms``, or a refusal naming the classes."""
    form = form_of(terms, kind)
    if form is None:
        classes = ", ".join(class_names(terms)) or "none"
        raise ClientError(
            f"the agreement defines no data class {kind!r}: its classes are {classes}",
            field="--kind",
        )
    return form


def _import(path: Path, kind: str, terms: Mapping[str, Any]) -> ImportedRecords | ContinuousImport:
    form = _form(kind, terms)
    if form == "discrete":
        return read_discrete(path, terms, data_class=kind)
    if form == "event":
        return read_events(path, terms, data_class=kind)
    source = stream_continuous(path, terms, data_class=kind)
    source.validate()
    return source


@data_app.command("submit")
@commands
def data_submit(
    key: KeyOption,
    file: FileArgument,
    batch: BatchOption,
    kind: KindOption,
    source_system: Annotated[
        str, typer.Option(help="The system the data comes from, e.g. contoso-lims")
    ],
    schema_version: Annotated[str, typer.Option(help="The file's schema version")] = "1.0",
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Check a file against the agreement's format, then deliver it for a batch."""
    with connect(url, key) as client:
        terms = client.batch(batch)["agreement"]["terms"]
        source = _import(file, kind, terms)
        payloads = build_submissions(
            source, source_system=source_system, schema_version=schema_version
        )
        stored: list[Submitted] = []
        with progress(f"delivering {file.name}", None) as step:
            for payload in payloads:
                stored.append(client.submit_data(batch, payload))
                step(1)
    show_submitted(stored, as_json=as_json)


@data_app.command("correct")
@commands
def data_correct(
    key: KeyOption,
    file: FileArgument,
    batch: BatchOption,
    kind: KindOption,
    supersedes: Annotated[
        list[str], typer.Option(help="Record ids (or, continuous, chunk SHA-256s) replaced")
    ],
    reason: Annotated[str, typer.Option(help="Why the data is corrected")],
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Supersede records (or continuous chunks) of a batch with the file's replacements."""
    with connect(url, key) as client:
        payload = _correction(client, file, batch, kind, split_values(supersedes))
        show_submitted(client.correct_data(batch, payload, reason=reason), as_json=as_json)


def _correction(
    client: LedgerClient, file: Path, batch: str, kind: str, supersedes: list[str]
) -> dict[str, Any]:
    source = _import(file, kind, client.batch(batch)["agreement"]["terms"])
    payloads = list(build_submissions(source, source_system="correction"))
    if len(payloads) != 1:
        raise ClientError(
            f"{file} makes {len(payloads)} deliveries; a correction carries one: split it",
            field=str(file),
        )
    built = payloads[0]
    payload: dict[str, Any] = {
        "submission": str(uuid.uuid4()),
        "original_sha256": built["original_sha256"],
    }
    if "series" in built:
        payload.update(supersedes_chunks=supersedes, series=built["series"])
    else:
        payload.update(supersedes=supersedes, records=built["records"])
    return payload


@data_app.command("ack")
@commands
def data_ack(
    key: KeyOption,
    batch: BatchOption,
    record: Annotated[list[str], typer.Option(help="Event record ids (repeat)")],
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Acknowledge deviation, OOS and OOT records of a batch (the sponsor)."""
    with connect(url, key) as client:
        show_submitted(client.acknowledge_data(batch, split_values(record)), as_json=as_json)


def _limits(text: str, option: str) -> dict[str, str | None]:
    low, sep, high = text.partition(",")
    if not sep:
        raise ClientError("expected LOW,HIGH (leave a side empty when open)", field=option)
    return {"low": low.strip() or None, "high": high.strip() or None}


@param_app.command("define")
@commands
def param_define(
    key: KeyOption,
    agreement: AgreementArgument,
    name: Annotated[str, typer.Argument(help="The parameter's name, e.g. pH")],
    kind: Annotated[str, typer.Option(help="CPP, CQA, KPI or IPC")],
    unit: Annotated[str, typer.Option(help="UCUM unit, e.g. Cel")],
    alert: Annotated[str, typer.Option(help="Alert limits LOW,HIGH (a side may be empty)")],
    action: Annotated[str, typer.Option(help="Action limits LOW,HIGH")],
    rationale: Annotated[str, typer.Option(help="Where the limits come from")],
    status: Annotated[str, typer.Option(help="hypothesis or confirmed")] = "hypothesis",
    target: Annotated[str | None, typer.Option(help="Target value")] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Define a parameter with its limits; its id is the subject printed."""
    with connect(url, key) as client:
        stored = client.define_parameter(
            agreement,
            name,
            kind=kind,
            unit=unit,
            alert=_limits(alert, "--alert"),
            action=_limits(action, "--action"),
            rationale=rationale,
            status=status,
            target=target,
        )
        show_submitted(stored, as_json=as_json)


ParameterArgument = Annotated[str, typer.Argument(help="The parameter's id")]
RevisionArgument = Annotated[str, typer.Argument(help="The revision's id")]


def _changes(text: str) -> dict[str, Any]:
    path = Path(text)
    changes = read_json(path, "changes") if path.is_file() else _json_text(text)
    if not isinstance(changes, dict):
        raise ClientError("expected the changes as a JSON object", field="--changes")
    return changes


def _json_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClientError(
            f"neither a file nor JSON ({exc.msg}): give a JSON object or a file holding one",
            field="--changes",
        ) from exc


@param_app.command("propose")
@commands
def param_propose(
    key: KeyOption,
    parameter: ParameterArgument,
    changes: Annotated[
        str, typer.Option(help='JSON, e.g. {"alert": {"low": "35", ...}}, or a file')
    ],
    reason: Annotated[str, typer.Option(help="Why the parameter should change")],
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Propose a revision of a parameter; the other party approves or rejects it."""
    revision = str(uuid.uuid4())
    with connect(url, key) as client:
        stored = client.propose_revision(
            parameter, _changes(changes), reason=reason, revision=revision
        )
    row = {"revision": revision, "parameter": stored.subject, "position": stored.position}
    show(row, as_json=as_json, title="revision proposed")


@param_app.command("approve")
@commands
def param_approve(
    key: KeyOption,
    parameter: ParameterArgument,
    revision: RevisionArgument,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Approve the other party's pending revision: in force from now."""
    with connect(url, key) as client:
        show_submitted(client.approve_revision(parameter, revision), as_json=as_json)


@param_app.command("reject")
@commands
def param_reject(
    key: KeyOption,
    parameter: ParameterArgument,
    revision: RevisionArgument,
    reason: Annotated[str, typer.Option(help="Why the revision is rejected")],
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Reject the other party's pending revision."""
    with connect(url, key) as client:
        show_submitted(client.reject_revision(parameter, revision, reason=reason), as_json=as_json)


@param_app.command("history")
@commands
def param_history(
    key: KeyOption,
    agreement: AgreementArgument,
    name: Annotated[
        str | None, typer.Option(help="Only this parameter", autocompletion=complete_parameter)
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Every version of each parameter's limits, and its revisions."""
    with connect(url, key) as client:
        found = client.parameters(agreement)
    if name is not None:
        wanted = str(parameter_subject(agreement, name))
        found = [p for p in found if p["id"] == wanted]
    if as_json:
        show(found, as_json=True)
        return
    rows = [{"parameter": p["name"], **version} for p in found for version in p["limitsHistory"]]
    show(rows, as_json=False, title="limits history")
    revisions = [{"parameter": p["name"], **r} for p in found for r in p["revisions"]]
    columns = ["parameter", "id", "proposedBy", "outcome", "decidedBy", "reason", "changes"]
    show(revisions, as_json=False, title="revisions", columns=columns)


def register(app: typer.Typer) -> None:
    """Add ``batch``, ``data`` and ``param`` to ``app``."""
    app.add_typer(batch_app, name="batch")
    app.add_typer(data_app, name="data")
    app.add_typer(param_app, name="param")


@data_app.command("show")
@commands
def data_show(
    key: KeyOption,
    batch: BatchOption,
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind", help="Only this data class (discrete, continuous, event or its own)"
        ),
    ] = None,
    parameter: Annotated[
        str | None,
        typer.Option(
            "--parameter",
            help="Only this parameter's results (and the tag measuring it)",
            autocompletion=complete_parameter,
        ),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """A batch's data values, every version with its correction, and who signed each."""
    one_format(as_json=as_json, as_csv=as_csv)
    with connect(url, key) as client:
        found = batch_values(client, batch, kind=kind, parameter=parameter)
    for part in found["withheld"]:
        typer.echo(
            f"withheld: {part['dataClass']} data ({part['code']}: {part['reason']})", err=True
        )
    if as_json:
        show(found, as_json=True)
        return
    if as_csv:
        show(found["values"], as_json=False, as_csv=True, columns=DATA_COLUMNS)
        return
    show(found["values"], as_json=False, title=f"data of {batch}", columns=DATA_TABLE_COLUMNS)
    title = "deliveries and corrections"
    show(found["submissions"], as_json=False, title=title, columns=SUBMISSION_COLUMNS)


@param_app.command("retire")
@commands
def param_retire(
    key: KeyOption,
    agreement: AgreementArgument,
    name: Annotated[
        str, typer.Argument(help="The parameter's name", autocompletion=complete_parameter)
    ],
    reason: Annotated[str, typer.Option(help="Why the parameter is no longer watched")],
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Retire a parameter: its pending revision is withdrawn, no limits apply from now."""
    one_format(as_json=as_json, as_csv=as_csv)
    try:
        parameter = parameter_subject(agreement, name)
    except ValueError:
        raise ClientError(
            f"{agreement!r} is not an agreement id (a UUID)", field="AGREEMENT"
        ) from None
    with connect(url, key) as client:
        stored = client.retire_parameter(parameter, reason=reason)
        show_submitted(stored, as_json=as_json, as_csv=as_csv)
