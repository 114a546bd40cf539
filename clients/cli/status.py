"""``cmo-ledger status``: one screen of what needs the caller's party's attention.

The sections are what ``docs/demo.md`` points a party to: its agreements and their status;
the approvals waiting for it (an agreement or an amendment the other party proposed, a
parameter revision the other party proposed); overdue reviews; late and missing deliveries;
and deviation, OOS and OOT records nobody has acknowledged yet. ``--json`` gives one object
with a member per section (``docs/schema/cli/status.json``); ``--csv`` one row per item of
every section, with the section's name first.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import typer

from clients.cli.common import (
    DEFAULT_URL,
    CsvOption,
    JsonOption,
    KeyOption,
    UrlOption,
    commands,
    connect,
    console,
    one_format,
    show,
)
from clients.cli.questions import DELIVERY_COLUMNS, REVIEW_COLUMNS
from clients.client import LedgerClient
from clients.errors import ServerRefused

__all__ = ["SECTIONS", "gather", "register"]

SECTIONS = (
    "agreements",
    "approvals",
    "overdue_reviews",
    "late_deliveries",
    "missing_deliveries",
    "open_deviations",
)
_TITLES = {
    "agreements": "agreements",
    "approvals": "waiting for your approval",
    "overdue_reviews": "overdue reviews",
    "late_deliveries": "late deliveries",
    "missing_deliveries": "missing deliveries (past due, nothing delivered)",
    "open_deviations": "open deviations (not acknowledged)",
}
AGREEMENT_COLUMNS = [
    "id",
    "title",
    "role",
    "sponsor",
    "cmo",
    "status",
    "termsVersion",
    "effectiveFrom",
    "amendmentPending",
]
APPROVAL_COLUMNS = [
    "what",
    "agreementId",
    "subject",
    "item",
    "name",
    "proposedBy",
    "proposedAt",
    "reason",
    "answer",
]
DEVIATION_COLUMNS = [
    "agreementId",
    "batch",
    "id",
    "kind",
    "severity",
    "startedAt",
    "description",
]
_COLUMNS = {
    "agreements": AGREEMENT_COLUMNS,
    "approvals": APPROVAL_COLUMNS,
    "overdue_reviews": REVIEW_COLUMNS,
    "late_deliveries": DELIVERY_COLUMNS,
    "missing_deliveries": DELIVERY_COLUMNS,
    "open_deviations": DEVIATION_COLUMNS,
}
CSV_COLUMNS = ["section", "agreementId", "item", "state", "party", "at", "detail"]

_ACKNOWLEDGEABLE = '["deviation", "oos", "oot"]'
_RECORD = "id kind startedAt severity description status acknowledgedAt"
AGREEMENT_DEVIATIONS = f"""
query($a: ID!) {{
  agreement(id: $a) {{ batches {{ id events(kinds: {_ACKNOWLEDGEABLE}) {{ {_RECORD} }} }} }}
}}
"""
AGREEMENT_BATCHES = "query($a: ID!) { agreement(id: $a) { batches { id } } }"
BATCH_DEVIATIONS = f"""
query($b: String!) {{ batch(id: $b) {{ events(kinds: {_ACKNOWLEDGEABLE}) {{ {_RECORD} }} }} }}
"""


def gather(client: LedgerClient) -> dict[str, Any]:
    """Every section for the client's party: ``{"party", <section>: [...], ...}``."""
    me = client.party
    agreements = client.agreements()
    late = client.deliveries(late=True)
    return {
        "party": me,
        "agreements": [_agreement_row(a, me) for a in agreements],
        "approvals": _approvals(client, agreements, me),
        "overdue_reviews": [
            {k: v for k, v in r.items() if k != "history"} for r in client.reviews(overdue=True)
        ],
        "late_deliveries": [d for d in late if d["state"] == "late"],
        "missing_deliveries": [d for d in late if d["state"] == "missing"],
        "open_deviations": _open_deviations(client, agreements),
    }


def _role(agreement: Mapping[str, Any], me: str) -> str:
    return "sponsor" if agreement["sponsor"] == me else "cmo" if agreement["cmo"] == me else ""


def _agreement_row(agreement: Mapping[str, Any], me: str) -> dict[str, Any]:
    row = {name: agreement.get(name) for name in AGREEMENT_COLUMNS}
    row["role"] = _role(agreement, me) or "grantee"
    return row


def _approvals(
    client: LedgerClient, agreements: Sequence[Mapping[str, Any]], me: str
) -> list[dict[str, Any]]:
    """What the other party proposed and this party may sign, approve or reject."""
    waiting: list[dict[str, Any]] = []
    for agreement in agreements:
        if not _role(agreement, me):
            continue  # a grantee approves nothing
        agreement_id = str(agreement["id"])
        common = {"agreementId": agreement_id, "name": agreement["title"]}
        if agreement["status"] == "proposed" and agreement["proposedBy"] != me:
            waiting.append(
                {
                    "what": "agreement",
                    **common,
                    "subject": agreement_id,
                    "item": None,
                    "proposedBy": agreement["proposedBy"],
                    "proposedAt": agreement["proposedAt"],
                    "reason": None,
                    "answer": f"cmo-ledger agreement sign {agreement_id}",
                }
            )
        for amendment in agreement.get("amendments") or []:
            if amendment["status"] == "pending" and amendment["proposedBy"] != me:
                waiting.append(
                    {
                        "what": "amendment",
                        **common,
                        "subject": agreement_id,
                        "item": str(amendment["position"]),
                        "proposedBy": amendment["proposedBy"],
                        "proposedAt": amendment["proposedAt"],
                        "reason": amendment["reason"],
                        "answer": f"cmo-ledger agreement sign {agreement_id} --amendment",
                    }
                )
        if agreement["status"] == "effective":
            waiting.extend(_revisions(client, agreement_id, me))
    return waiting


def _revisions(client: LedgerClient, agreement_id: str, me: str) -> Iterator[dict[str, Any]]:
    for parameter in client.parameters(agreement_id):
        for revision in parameter["revisions"]:
            if revision["outcome"] != "pending" or revision["proposedBy"] == me:
                continue
            yield {
                "what": "parameter revision",
                "agreementId": agreement_id,
                "subject": parameter["id"],
                "item": revision["id"],
                "name": parameter["name"],
                "proposedBy": revision["proposedBy"],
                "proposedAt": revision["proposedAt"],
                "reason": revision["reason"],
                "answer": f"cmo-ledger param approve {parameter['id']} {revision['id']}",
            }


def _open_deviations(
    client: LedgerClient, agreements: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Current deviation, OOS and OOT records not acknowledged, of the batches whose event
    records the caller may read."""
    found: list[dict[str, Any]] = []
    for agreement in agreements:
        agreement_id = str(agreement["id"])
        for batch, records in _deviations_of(client, agreement_id):
            found.extend(
                {"agreementId": agreement_id, "batch": batch, **_deviation(record)}
                for record in records
                if record["acknowledgedAt"] is None and record["status"] == "current"
            )
    return found


def _deviations_of(
    client: LedgerClient, agreement_id: str
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    try:
        answer = client.graphql(AGREEMENT_DEVIATIONS, {"a": agreement_id})["agreement"]
    except ServerRefused as error:
        if error.code != "FORBIDDEN":
            raise
        answer = None  # some batch's event records are not the caller's: ask batch by batch
    else:
        for batch in (answer or {}).get("batches") or []:
            yield str(batch["id"]), list(batch["events"] or [])
        return
    batches = client.graphql(AGREEMENT_BATCHES, {"a": agreement_id})["agreement"] or {}
    for batch in batches.get("batches") or []:
        try:
            events = client.graphql(BATCH_DEVIATIONS, {"b": batch["id"]})["batch"]["events"]
        except ServerRefused as error:
            if error.code != "FORBIDDEN":
                raise
            continue
        yield str(batch["id"]), list(events or [])


def _deviation(record: Mapping[str, Any]) -> dict[str, Any]:
    return {name: record.get(name) for name in DEVIATION_COLUMNS if name in record}


def csv_rows(found: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every item of every section as one row of :data:`CSV_COLUMNS`."""
    rows: list[dict[str, Any]] = []
    for a in found["agreements"]:
        pending = "amendment pending" if a["amendmentPending"] else None
        rows.append(_item("agreements", a["id"], a["title"], a["status"], a["role"],
                          a["effectiveFrom"], pending))  # fmt: skip
    for p in found["approvals"]:
        what = f"{p['what']} {p['item'] or p['subject']} ({p['name']})"
        rows.append(_item("approvals", p["agreementId"], what, "pending", p["proposedBy"],
                          p["proposedAt"], p["answer"]))  # fmt: skip
    for r in found["overdue_reviews"]:
        rows.append(_item("overdue_reviews", r["agreementId"], "review", r["state"], None,
                          r["nextDue"], r["lastCompletedAt"]))  # fmt: skip
    for section in ("late_deliveries", "missing_deliveries"):
        for d in found[section]:
            period = f"period {d['period']}" if d.get("period") else None
            what = " ".join(p for p in (d["batch"], d["dataClass"], d["item"], period) if p)
            rows.append(_item(section, d["agreementId"], what, d["state"], None, d["dueAt"],
                              d["firstArrivedAt"]))  # fmt: skip
    for e in found["open_deviations"]:
        rows.append(_item("open_deviations", e["agreementId"], f"{e['batch']} {e['id']}",
                          e["severity"], None, e["startedAt"], e["description"]))  # fmt: skip
    return rows


def _item(
    section: str,
    agreement: Any,
    item: Any,
    state: Any,
    party: Any,
    at: Any,
    detail: Any,
) -> dict[str, Any]:
    values = (section, agreement, item, state, party, at, detail)
    return dict(zip(CSV_COLUMNS, values, strict=True))


@commands
def status(
    key: KeyOption,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """What needs your attention: agreements, approvals waiting for you, overdue reviews,
    late and missing deliveries, open deviations."""
    one_format(as_json=as_json, as_csv=as_csv)
    with connect(url, key) as client:
        found = gather(client)
    if as_json:
        show(found, as_json=True)
        return
    if as_csv:
        show(csv_rows(found), as_json=False, as_csv=True, columns=CSV_COLUMNS)
        return
    console().print(f"status of {found['party']}")
    for section in SECTIONS:
        show(found[section], as_json=False, title=_TITLES[section], columns=_COLUMNS[section])


def register(app: typer.Typer) -> None:
    """Add ``status`` to ``app``."""
    app.command("status")(status)
