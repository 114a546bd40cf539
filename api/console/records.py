"""The console's record pages: a batch's record, a parameter's history and the grants.

| route | what |
| --- | --- |
| ``GET /console/batches/{name}`` | the batch record: timeline, data, chart, grants, proof |
| ``GET /console/agreements/{id}/parameters/{name}`` | every limits version of a parameter |
| ``GET /console/grants?agreement=&party=&at=`` | the grants the caller may see, as of a time |
| ``GET /console/verify?leaf=`` | checks a leaf's inclusion and the checkpoint in the browser |

As every console page, each reads its data by running GraphQL operations through the
served schema as the session's party (:func:`api.console.queries.execute`): what a party
may see is decided by the API's own rules, never here. The only computing done here is
presentation (matching a tag to the parameter it measures, downsampling for drawing) and
re-checking, for the page's verification status, the inclusion proof the API answered.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from api.auth import Caller
from api.console.charts import MAX_POINTS, Chart, bucket_width, chart
from api.console.pages import _error_page, _message, _services, _session, _stranger, render
from api.console.queries import (
    BATCH_DISCRETE,
    BATCH_EVENTS,
    BATCH_EXCURSIONS,
    BATCH_RECORD,
    BATCH_SERIES,
    GRANTS,
    GRANTS_AT,
    LEAF_PROOF,
    PARAMETER_HISTORY,
    Answer,
    execute,
)
from api.console.security import csrf_token
from ledger.domain.limits import tag_for
from ledger.domain.subjects import parameter_subject
from ledger.log.merkle import leaf_hash, verify_inclusion
from ledger.log.notes import NoteError, parse_checkpoint, parse_vkey, verify_note
from ledger.timeutil import format_utc

__all__ = ["batch_record", "grants", "parameter_history", "verify_page"]

_MAX_NAME = 200
_DECISIONS = (
    "ParameterRevisionApproved",
    "ParameterRevisionRejected",
    "ParameterRevisionWithdrawn",
)


async def _visitor(request: Request) -> tuple[Caller, str] | Response:
    """The session's caller and CSRF token; a stranger's 403 page (no data) otherwise."""
    _services(request)
    session = await _session(request)
    if isinstance(session, Response):
        return session
    caller, token = session
    csrf = csrf_token(token)
    probe = await execute(request, caller, "{ agreements { id } grants(active: true) { id } }")
    if probe.data is not None and not probe.data["agreements"] and not probe.data["grants"]:
        return _stranger(caller, csrf)
    return caller, csrf


def _too_long(value: str, field: str, caller: Caller, csrf: str) -> Response | None:
    if len(value) <= _MAX_NAME:
        return None
    message = f"VALIDATION_FAILED ({field}): at most {_MAX_NAME} characters"
    return _message(400, "Refused", message, caller=caller, csrf=csrf)


async def _part(
    request: Request, caller: Caller, query: str, variables: dict[str, Any]
) -> tuple[Any, str | None]:
    """One part of a page: the data, or ``None`` and the API's refusal to show instead."""
    answer = await execute(request, caller, query, variables)
    if answer.errors:
        first = answer.errors[0]
        return None, f"{first.code}: {first.message}"
    return answer.data, None


# -------------------------------------------------------------------- batch record


def _corrections(
    corrections: Sequence[Mapping[str, Any]], records: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Each correction with, per record it replaced, the original and the new value."""
    shown = []
    for correction in corrections:
        changes = []
        for replaced in correction["supersedes"]:
            before = [
                r for r in records if r["id"] == replaced and r["supersededBy"] == correction["id"]
            ]
            after = [
                r for r in records if r["id"] == replaced and r["submission"] == correction["id"]
            ]
            changes.append(
                {
                    "record": replaced,
                    "before": before[0] if before else None,
                    "after": after[0] if after else None,
                }
            )
        shown.append({**correction, "changes": changes})
    return shown


def _value(record: Mapping[str, Any] | None) -> str:
    if record is None:
        return ""
    if "value" in record:
        return f"{record['value'] or ''} {record.get('unit') or ''}".strip()
    return str(record.get("description") or record.get("kind") or "")


async def _charts(
    request: Request, caller: Caller, batch: str, trace: Mapping[str, Any]
) -> tuple[list[Chart], list[str]]:
    """A chart per continuous tag the caller may read; the refusals of the others."""
    charts: list[Chart] = []
    refused: list[str] = []
    parameters = trace["parameterLimits"]
    for tag in trace["batch"]["tags"]:
        name = tag["tag"]
        every = bucket_width(tag["first"], tag["last"], int(tag["points"]))
        variables = {"id": batch, "tag": name, "every": every, "dataClass": tag["dataClass"]}
        data, refusal = await _part(request, caller, BATCH_SERIES, variables)
        series = None if data is None else data["batch"]["continuous"]
        if series is None:
            refused.append(f"{name}: {refusal or 'no points'}")
            continue
        measured = next((p for p in parameters if tag_for(p["name"], [name]) == name), None)
        drawn = chart(name, series, measured)
        if drawn is not None:
            charts.append(drawn)
    return charts, refused


def _decoded(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _proof_status(answer: Answer, leaf: int, notary_key: str) -> dict[str, Any]:
    """What the API answers of the last event's inclusion in the latest checkpoint, and
    whether it checks (leaf hash, path to the root, the notary's signature)."""
    data = answer.data or {}
    checkpoint = data.get("checkpoint")
    proof = data.get("inclusionProof")
    event = data.get("event")
    status: dict[str, Any] = {"leaf": leaf, "checkpoint": checkpoint, "proof": proof}
    if checkpoint is None or proof is None:
        refusal = answer.errors[0].message if answer.errors else "no proof answered"
        return {**status, "state": "unproven", "detail": refusal}
    try:
        name, _, key = parse_vkey(notary_key)
        body = verify_note(checkpoint["note"], [(name, key)])
        signed = parse_checkpoint(body)
        root = signed.root_hash
        hashes = [_decoded(h) for h in proof["hashes"]]
    except (NoteError, ValueError, binascii.Error) as error:
        return {**status, "state": "failed", "detail": f"checkpoint: {error}"}
    if event is None:
        detail = (
            "the event's envelope is not yours to read, so its leaf hash was not "
            f"recomputed; the proof has {len(hashes)} hashes to the notary-signed root"
        )
        return {**status, "state": "unchecked", "detail": detail}
    included = verify_inclusion(
        leaf_hash(_decoded(event["leafBytes"])), leaf, signed.size, hashes, root
    )
    if not included:
        return {**status, "state": "failed", "detail": "the inclusion proof does not verify"}
    return {**status, "state": "verified", "detail": ""}


async def batch_record(request: Request) -> Response:
    """``GET /console/batches/{name}``: the batch's record."""
    found = await _visitor(request)
    if isinstance(found, Response):
        return found
    caller, csrf = found
    name = request.path_params["name"]
    if (refused := _too_long(name, "batch", caller, csrf)) is not None:
        return refused
    answer = await execute(request, caller, BATCH_RECORD, {"id": name})
    if answer.errors or answer.data is None or answer.data.get("traceBatch") is None:
        return _error_page(answer, caller, csrf)
    trace = answer.data["traceBatch"]
    notary_key = answer.data["ledger"]["notaryKey"]
    discrete, discrete_refused = await _part(request, caller, BATCH_DISCRETE, {"id": name})
    events, events_refused = await _part(request, caller, BATCH_EVENTS, {"id": name})
    excursions, _ = await _part(request, caller, BATCH_EXCURSIONS, {"id": name})
    results = (discrete or {}).get("batch", {}).get("discrete") or []
    records = (events or {}).get("batch", {}).get("events") or []
    reasons = {c["id"]: c["reason"] for c in trace["corrections"]}
    charts, charts_refused = await _charts(request, caller, name, trace)
    entries = trace["events"]
    proof: dict[str, Any] | None = None
    leaves = [e["leafIndex"] for e in entries if e["leafIndex"] is not None]
    if leaves:
        leaf = leaves[-1]
        proof = _proof_status(
            await execute(request, caller, LEAF_PROOF, {"leaf": leaf}), leaf, notary_key
        )
    agreement = trace["agreement"]
    return render(
        "batch.html",
        title=f"Batch {trace['batch']['id']}",
        me=caller,
        csrf=csrf,
        trace=trace,
        batch=trace["batch"],
        agreement=agreement,
        entries=entries,
        results=results,
        results_refused=None if discrete is not None else discrete_refused,
        records=records,
        records_refused=None if events is not None else events_refused,
        reasons=reasons,
        corrections=_corrections(trace["corrections"], [*results, *records]),
        value=_value,
        charts=charts,
        charts_refused=charts_refused,
        max_points=MAX_POINTS,
        series_excursions=(excursions or {}).get("batch", {}).get("seriesExcursions") or [],
        parameters=trace["parameterLimits"],
        parameter_link=lambda p: (
            f"/console/agreements/{quote(agreement['id'], safe='')}/parameters/{quote(p, safe='')}"
        ),
        grants=trace["grants"],
        proof=proof,
        notary_key=notary_key,
    )


# --------------------------------------------------------------- parameter history


def _match(
    entries: Sequence[Mapping[str, Any]], types: Sequence[str], at: str | None
) -> Mapping[str, Any] | None:
    """The signed event of one of ``types`` recorded (or signed) at ``at``."""
    if at is None:
        return None
    for entry in entries:
        if entry["type"] in types and at in (entry["recordedAt"], entry["signedAt"]):
            return entry
    return None


def _versions(parameter: Mapping[str, Any], entries: list[Mapping[str, Any]]) -> list[Any]:
    """Each limits version with the signed events that made it: who proposed it and who
    approved it (the definition for version 1)."""
    revisions = {r["id"]: r for r in parameter["revisions"]}
    proposals = [e for e in entries if e["type"] == "ParameterRevisionProposed"]
    proposal_of = dict(zip([r["id"] for r in parameter["revisions"]], proposals, strict=False))
    defined = next((e for e in entries if e["type"] == "ParameterDefined"), None)
    rows = []
    for version in parameter["limitsHistory"]:
        revision = revisions.get(version["revision"]) if version["revision"] else None
        if revision is None:
            rows.append({**version, "proposed": defined, "approved": None, "change": None})
            continue
        approved = _match(entries, ("ParameterRevisionApproved",), revision["decidedAt"])
        rows.append(
            {
                **version,
                "proposed": proposal_of.get(revision["id"]),
                "approved": approved,
                "change": revision,
            }
        )
    return rows


async def parameter_history(request: Request) -> Response:
    """``GET /console/agreements/{id}/parameters/{name}``: every limits version."""
    found = await _visitor(request)
    if isinstance(found, Response):
        return found
    caller, csrf = found
    agreement_id, name = request.path_params["id"], request.path_params["name"]
    for value, field in ((agreement_id, "agreement"), (name, "parameter")):
        if (refused := _too_long(value, field, caller, csrf)) is not None:
            return refused
    try:
        subject = str(parameter_subject(agreement_id, name))
    except ValueError:
        message = f"VALIDATION_FAILED (agreement): {agreement_id!r} is no agreement id"
        return _message(400, "Refused", message, caller=caller, csrf=csrf)
    answer = await execute(
        request, caller, PARAMETER_HISTORY, {"id": agreement_id, "subject": subject}
    )
    if answer.errors or answer.data is None:
        return _error_page(answer, caller, csrf)
    parameter = next((p for p in answer.data["parameters"] or [] if p["name"] == name), None)
    if parameter is None:
        message = f"NOT_FOUND (parameter): the agreement has no parameter named {name!r}"
        return _message(404, "Not found", message, caller=caller, csrf=csrf)
    entries = [edge["node"] for edge in answer.data["auditTrail"]["edges"]]
    decisions = {
        r["id"]: _match(entries, _DECISIONS, r["decidedAt"]) for r in parameter["revisions"]
    }
    return render(
        "parameter.html",
        title=f"Parameter {parameter['name']}",
        me=caller,
        csrf=csrf,
        agreement=answer.data["agreement"],
        parameter=parameter,
        versions=_versions(parameter, entries),
        decisions=decisions,
        entries=entries,
    )


# ------------------------------------------------------------------------- grants

_GRANT_FILTERS = ("agreement", "party", "at")


def _as_of(text: str) -> str:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is no date: write 2026-03-01 or 2026-03-01T09:00Z") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # a browser's date field: read as UTC
    return format_utc(value)


async def grants(request: Request) -> Response:
    """``GET /console/grants``: the grants the caller may see (of one agreement, to or
    from one party), or those in force at a time (``at``, by ``grantsAt``)."""
    found = await _visitor(request)
    if isinstance(found, Response):
        return found
    caller, csrf = found
    chosen = {n: request.query_params.get(n, "").strip() for n in _GRANT_FILTERS}
    for field, value in chosen.items():
        if (refused := _too_long(value, field, caller, csrf)) is not None:
            return refused
    at = None
    if chosen["at"]:
        try:
            at = _as_of(chosen["at"])
        except ValueError as error:
            return _message(
                400, "Filter refused", f"VALIDATION_FAILED (at): {error}", caller=caller, csrf=csrf
            )
    answer = await execute(request, caller, GRANTS, {"agreement": chosen["agreement"] or None})
    if answer.errors or answer.data is None:
        return _error_page(answer, caller, csrf)
    listed: list[dict[str, Any]] = answer.data["grants"] or []
    party = chosen["party"]
    if at is not None:
        # grantsAt answers one party's grants at a time: the party asked for, else each
        # grantee of the grants the caller may see.
        parties = [party] if party else sorted({g["grantee"] for g in listed})
        found_at: dict[str, dict[str, Any]] = {}
        for grantee in parties:
            held = await execute(request, caller, GRANTS_AT, {"party": grantee, "at": at})
            if held.errors or held.data is None:
                return _error_page(held, caller, csrf)
            for grant in held.data["grantsAt"] or []:
                found_at[grant["id"]] = grant
        listed = list(found_at.values())
        if chosen["agreement"]:
            listed = [g for g in listed if g["agreementId"] == chosen["agreement"]]
    if party:
        listed = [g for g in listed if party in (g["grantee"], g["grantor"])]
    titles = {a["id"]: a["title"] for a in answer.data["agreements"]}
    return render(
        "grants.html",
        title="Grants",
        me=caller,
        csrf=csrf,
        filters=chosen,
        at=at,
        grants=sorted(listed, key=lambda g: (g["grantedAt"], g["id"])),
        titles=titles,
    )


# --------------------------------------------------------------------- verification


async def verify_page(request: Request) -> Response:
    """``GET /console/verify?leaf=N``: the browser checks one leaf (``verify.js``)."""
    found = await _visitor(request)
    if isinstance(found, Response):
        return found
    caller, csrf = found
    leaf = request.query_params.get("leaf", "").strip()
    if leaf and not (leaf.isdigit() and len(leaf) <= 15):
        message = f"VALIDATION_FAILED (leaf): a leaf index is a number, not {leaf!r}"
        return _message(400, "Refused", message, caller=caller, csrf=csrf)
    back = request.query_params.get("batch", "")
    return render(
        "verify.html",
        title="Verify in the browser",
        me=caller,
        csrf=csrf,
        leaf=leaf,
        batch_link=("/console/batches/" + quote(back, safe="")) if back else None,
        query=urlencode({"leaf": leaf}) if leaf else "",
    )
