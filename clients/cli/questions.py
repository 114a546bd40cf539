"""The questions people ask of the ledger: ``reviews``, ``deliveries``, ``claims``,
``grants`` and ``reads`` (who read my data, when: R11).

Each prints a table, ``--json`` (one schema each in ``docs/schema/cli/``) or ``--csv`` (the
table's columns, one row per item of the JSON list). A refusal names the option it is
about: an agreement the caller may not see is refused naming ``--agreement``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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
    show,
)
from clients.cli.completion import AgreementOption, BatchOption, complete_batch
from clients.client import LedgerClient, commit_dossier
from clients.errors import ClientError, ServerRefused
from ledger.domain.limits import tag_for
from ledger.timeutil import canonical_time

__all__ = [
    "CLAIM_COLUMNS",
    "CLAIM_SHOW_COLUMNS",
    "DATA_COLUMNS",
    "DATA_TABLE_COLUMNS",
    "DELIVERY_COLUMNS",
    "GRANT_COLUMNS",
    "READ_COLUMNS",
    "REVIEW_COLUMNS",
    "batch_values",
    "claim_row",
    "find_claim",
    "naming_options",
    "register",
]

REVIEW_COLUMNS = [
    "agreementId",
    "state",
    "overdue",
    "nextDue",
    "cadenceMonths",
    "lastCompletedAt",
    "lastPeriodEnd",
    "effectiveFrom",
]
DELIVERY_COLUMNS = [
    "agreementId",
    "batch",
    "dataClass",
    "item",
    "rule",
    "withinHours",
    "everyDays",
    "monthlyOnDay",
    "period",
    "periodStart",
    "dueAt",
    "firstArrivedAt",
    "state",
]
CLAIM_COLUMNS = [
    "id",
    "agreementId",
    "title",
    "claimant",
    "ownershipClaimed",
    "status",
    "owner",
    "priority",
    "claimedAt",
    "disclosedAt",
]
CLAIM_SHOW_COLUMNS = [
    *CLAIM_COLUMNS[:4],
    "summary",
    "commitment",
    "dossierVerified",
    *CLAIM_COLUMNS[4:],
    "parameterVersions",
    "evidence",
    "respondedBy",
    "respondedAt",
    "disputeReason",
    "resolvedBy",
    "countersignedBy",
    "resolvedAt",
]
GRANT_COLUMNS = [
    "id",
    "agreementId",
    "grantor",
    "grantee",
    "dataClasses",
    "batches",
    "parameters",
    "validFrom",
    "validUntil",
    "status",
    "active",
    "purpose",
]

READ_COLUMNS = [
    "id",
    "at",
    "reader",
    "key",
    "agreementId",
    "batch",
    "fields",
    "operation",
    "queryHash",
    "commitment",
]

_OPTIONS = {"agreementId": "--agreement", "batch": "--batch", "validAt": "--at"}
_READ_OPTIONS = {"agreement": "--agreement", "batch": "--batch"}


@contextmanager
def naming_options(options: Mapping[str, str] = _OPTIONS) -> Iterator[None]:
    """Refusals of the server about an argument it was sent name the command-line option
    that gave it (``agreementId`` -> ``--agreement``)."""
    try:
        yield
    except ServerRefused as error:
        renamed = options.get(error.field or "")
        if renamed is None:
            raise
        raise ServerRefused.of(error.code, renamed, error.message) from None


def _one_of(**flags: bool) -> None:
    given = [f"--{name}" for name, value in flags.items() if value]
    if len(given) > 1:
        raise ClientError(f"choose one of {' and '.join(given)}", field=given[-1])


@commands
def reviews(
    key: KeyOption,
    agreement: AgreementOption = None,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only reviews past their due date")
    ] = False,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Each agreement's review schedule: when the next review is due, and the last one."""
    one_format(as_json=as_json, as_csv=as_csv)
    with connect(url, key) as client, naming_options():
        found = client.reviews(agreement, overdue=True if overdue else None)
    title = "overdue reviews" if overdue else "reviews"
    show(found, as_json=as_json, as_csv=as_csv, title=title, columns=REVIEW_COLUMNS)


@commands
def deliveries(
    key: KeyOption,
    agreement: AgreementOption = None,
    batch: BatchOption = None,
    late: Annotated[
        bool, typer.Option("--late", help="Only deliveries that arrived after their deadline")
    ] = False,
    missing: Annotated[
        bool, typer.Option("--missing", help="Only deliveries past due with nothing delivered")
    ] = False,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """What the agreements require per batch and data class, or per period for a class
    delivered periodically (every N days, monthly on a day), against what arrived when."""
    _one_of(late=late, missing=missing)
    one_format(as_json=as_json, as_csv=as_csv)
    with connect(url, key) as client, naming_options():
        found = client.deliveries(agreement, batch=batch, late=True if late or missing else None)
    if late or missing:
        wanted = "late" if late else "missing"
        found = [d for d in found if d["state"] == wanted]
    title = "late deliveries" if late else "missing deliveries" if missing else "deliveries"
    show(found, as_json=as_json, as_csv=as_csv, title=title, columns=DELIVERY_COLUMNS)


def claim_row(claim: Mapping[str, Any]) -> dict[str, Any]:
    """A claim as ``claims`` lists it: everything but the dossier's content (see
    ``claim show``)."""
    return {name: value for name, value in claim.items() if name != "dossier"}


def find_claim(client: LedgerClient, enhancement: str) -> dict[str, Any]:
    """One claim with its disclosed dossier, and ``dossierVerified``: whether SHA-256(salt ||
    dossier) is the claim's commitment (``None`` until it is disclosed)."""
    found = [c for c in client.enhancements() if c["id"] == enhancement]
    if not found:
        raise ServerRefused(
            "NOT_FOUND",
            "ENHANCEMENT",
            f"no claim {enhancement} that {client.party} may see: `cmo-ledger claims` lists them",
        )
    claim = dict(found[0])
    dossier = claim.get("dossier")
    verified: bool | None = None
    if dossier is not None:
        try:
            content = base64.b64decode(dossier["dossier"], validate=True)
            salt = bytes.fromhex(dossier["salt"])
        except (binascii.Error, ValueError):
            verified = False
        else:
            verified = commit_dossier(content, salt)[0] == claim["commitment"]
    claim["dossierVerified"] = verified
    return claim


@commands
def claims(
    key: KeyOption,
    agreement: AgreementOption = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Enhancement claims: who claimed what, when (the priority), and the outcome."""
    one_format(as_json=as_json, as_csv=as_csv)
    with connect(url, key) as client, naming_options():
        found = [claim_row(c) for c in client.enhancements(agreement)]
    show(found, as_json=as_json, as_csv=as_csv, title="claims", columns=CLAIM_COLUMNS)


@commands
def grants(
    key: KeyOption,
    agreement: AgreementOption = None,
    batch: Annotated[
        str | None,
        typer.Option(
            "--batch",
            help="Only grants that open this batch (its agreement's, for every batch or it)",
            autocompletion=complete_batch,
        ),
    ] = None,
    party: Annotated[str | None, typer.Option("--party", help="Only grants to this party")] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="The grants in force at this time (RFC 3339), not now"),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Who may see which data; with --at TIME (and --batch B), who could see it on that
    date."""
    one_format(as_json=as_json, as_csv=as_csv)
    when = None if at is None else canonical_time(at, field="--at")
    with connect(url, key) as client, naming_options():
        under = agreement
        if batch is not None:
            under = _batch_agreement(client, batch, agreement)
        found = client.grants(under)
        if when is not None:
            grantees = [party] if party else sorted({str(g["grantee"]) for g in found})
            found = _grants_at(client, grantees, when)
    found = [
        g
        for g in found
        if (party is None or g["grantee"] == party)
        and (under is None or g["agreementId"] == under)
        and (batch is None or not g["batches"] or batch in g["batches"])
    ]
    title = f"grants in force at {when}" if when else "grants"
    show(found, as_json=as_json, as_csv=as_csv, title=title, columns=GRANT_COLUMNS)


def _batch_agreement(client: LedgerClient, batch: str, agreement: str | None) -> str:
    """The agreement ``batch`` is made under (refused naming ``--batch`` when the caller may
    not see it, or naming ``--agreement`` when it is another's)."""
    with naming_options(_BATCH_OPTIONS):
        found = str(client.batch(batch)["agreementId"])
    if agreement is not None and agreement != found:
        raise ClientError(
            f"batch {batch} is made under agreement {found}, not {agreement}",
            field="--agreement",
        )
    return found


def _grants_at(client: LedgerClient, grantees: list[str], when: str) -> list[dict[str, Any]]:
    """The grants each of ``grantees`` held in force at ``when``, each grant once."""
    found: dict[str, dict[str, Any]] = {}
    for grantee in grantees:
        for held in client.grants_at(grantee, when):
            found.setdefault(str(held["id"]), held)
    return list(found.values())


DATA_COLUMNS = [
    "kind",
    "id",
    "version",
    "name",
    "value",
    "unit",
    "at",
    "until",
    "severity",
    "status",
    "supersededBy",
    "submission",
    "signer",
    "key",
    "correction",
    "reason",
    "recordedAt",
    "acknowledgedBy",
]
DATA_TABLE_COLUMNS = [
    "kind",
    "id",
    "version",
    "name",
    "value",
    "unit",
    "at",
    "status",
    "supersededBy",
    "signer",
    "correction",
    "reason",
]
SUBMISSION_COLUMNS = [
    "id",
    "dataClass",
    "correction",
    "signer",
    "key",
    "reason",
    "supersedes",
    "sourceSystem",
    "recordedAt",
]
_BATCH_OPTIONS = {"id": "--batch", "batch": "--batch", "parameters": "--parameter"}


def batch_values(
    client: LedgerClient, batch: str, *, kind: str | None, parameter: str | None
) -> dict[str, Any]:
    """A batch's data values, every version (corrections included), each with who signed
    its delivery: ``{batch, agreementId, values, submissions, withheld}``.

    ``kind`` narrows to one data class; ``parameter`` to one parameter's results and the
    tag that measures it. Without ``kind``, a class the caller may not read is left out
    and listed in ``withheld``; with it, the refusal is the answer.
    """
    with naming_options(_BATCH_OPTIONS):
        head = client.batch_submissions(batch)
    forms = client.data_class_forms(str(head["agreementId"]))
    if kind is not None and kind not in forms:
        raise ClientError(
            f"the agreement defines no data class {kind!r}: its classes are "
            f"{', '.join(forms) or 'none'}",
            field="--kind",
        )
    if parameter is not None and kind is not None and forms[kind] == "event":
        raise ClientError(
            "event records have no parameter: leave out --parameter or choose another --kind",
            field="--parameter",
        )
    submissions = {str(s["id"]): s for s in head["submissions"]}
    kinds = [kind] if kind else [k for k in forms if not (parameter and forms[k] == "event")]
    values: list[dict[str, Any]] = []
    withheld: list[dict[str, Any]] = []
    for data_class in kinds:
        form = forms[data_class]
        wanted = [parameter] if parameter and form == "discrete" else None
        try:
            with naming_options(_BATCH_OPTIONS):
                found = client.batch_data(batch, data_class, form=form, parameters=wanted)
        except ServerRefused as error:
            if kind is not None or error.code != "FORBIDDEN":
                raise
            withheld.append({"dataClass": data_class, "code": error.code, "reason": str(error)})
            continue
        if form == "continuous":
            values.extend(_tag_rows(data_class, found, parameter, submissions.values()))
        else:
            values.extend(_record_row(data_class, form, r, submissions) for r in found)
    delivered = [
        {name: s.get(name) for name in SUBMISSION_COLUMNS}
        for s in head["submissions"]
        if kind is None or s["dataClass"] == kind
    ]
    return {
        "batch": head["id"],
        "agreementId": head["agreementId"],
        "values": values,
        "submissions": delivered,
        "withheld": withheld,
    }


def _record_row(
    data_class: str,
    form: str,
    record: Mapping[str, Any],
    submissions: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    delivery = submissions.get(str(record["submission"])) or {}
    discrete = form == "discrete"
    row: dict[str, Any] = {
        "kind": data_class,
        "id": record["id"],
        "version": record["version"],
        "name": record["parameter"] if discrete else record["kind"],
        "value": record["value"] if discrete else record["description"],
        "unit": record["unit"] if discrete else None,
        "at": record["sampledAt"] if discrete else record["startedAt"],
        "until": None if discrete else record["endedAt"],
        "severity": None if discrete else record["severity"],
        "status": record["status"],
        "supersededBy": record["supersededBy"],
        "submission": record["submission"],
        "signer": delivery.get("signer"),
        "key": delivery.get("key"),
        "correction": delivery.get("correction"),
        "reason": delivery.get("reason"),
        "recordedAt": record["recordedAt"],
        "acknowledgedBy": None if discrete else record["acknowledgedBy"],
    }
    masked = set(record.get("masked") or [])
    row["confidential"] = {
        str(c["element"]): None if c["element"] in masked else c["value"]
        for c in record.get("confidential") or []
    } | dict.fromkeys(masked)
    return row


def _tag_rows(
    data_class: str, tags: list[dict[str, Any]], parameter: str | None, submissions: Any
) -> list[dict[str, Any]]:
    if parameter is not None:
        names = [str(t["tag"]) for t in tags]
        measured = {parameter, tag_for(parameter, names)}
        tags = [t for t in tags if t["tag"] in measured]
    deliveries = [s for s in submissions if s["dataClass"] == data_class]
    signers = sorted({str(s["signer"]) for s in deliveries})
    keys = sorted({str(s["key"]) for s in deliveries})
    return [
        {
            "kind": data_class,
            "id": tag["tag"],
            "version": None,
            "name": tag["tag"],
            "value": str(tag["points"]),
            "unit": "points",
            "at": tag["first"],
            "until": tag["last"],
            "severity": None,
            "status": "current",
            "supersededBy": None,
            "submission": None,
            "signer": ", ".join(signers) or None,
            "key": ", ".join(keys) or None,
            "correction": any(s["correction"] for s in deliveries),
            "reason": None,
            "recordedAt": None,
            "acknowledgedBy": None,
            "confidential": {},
        }
        for tag in tags
    ]


@commands
def reads(
    key: KeyOption,
    agreement: AgreementOption = None,
    batch: BatchOption = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Who read your batches' GxP data, when, with which query (R11), and the notary's
    signed commitment to each read. For the data's owner (the batch's CMO) and the notary."""
    one_format(as_json=as_json, as_csv=as_csv)
    with connect(url, key) as client, naming_options(_READ_OPTIONS):
        found = list(client.data_reads(batch=batch, agreement_id=agreement))
    show(found, as_json=as_json, as_csv=as_csv, title="reads of your data", columns=READ_COLUMNS)


def register(app: typer.Typer) -> None:
    """Add ``reviews``, ``deliveries``, ``claims``, ``grants`` and ``reads`` to ``app``."""
    app.command("reviews")(reviews)
    app.command("deliveries")(deliveries)
    app.command("claims")(claims)
    app.command("grants")(grants)
    app.command("reads")(reads)
