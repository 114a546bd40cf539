"""``report.html`` of an evidence bundle: one self-contained page for a person to read.

It shows the batch, the timeline of signed events (signer, meaning, time), the parameter
limits in force while the batch ran, the data with corrected values marked, a control
chart per CPP with its limits as inline SVG, and which checks of ``verify-bundle`` cover
which file of the bundle. No script, no external asset.

A CPP's chart plots the discrete results named after it and the continuous tag whose
last dotted part names it: the whole name (``BR1.PH``: pH), its initials
(``BR1.DO``: dissolved oxygen) or the start of one of its words (``BR1.TEMP``: culture
temperature).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from ledger.domain.limits import tag_for
from ledger.errors import LedgerError
from ledger.evidence.layout import (
    CHECKPOINT,
    CPV_FILE,
    DATA,
    EVENTS_DIR,
    MANIFEST,
    MANIFEST_SIG,
    NOTARY_VKEY,
    REPORT,
    TRACE,
    series_points,
)

__all__ = ["render_report"]

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.5em; text-align: left; }
th { background: #eee; }
tr.superseded td { text-decoration: line-through; color: #777; }
tr.superseded td:last-child { text-decoration: none; color: #b00; font-weight: bold; }
tr.unreported td { color: #b00; font-weight: bold; }
.note { color: #555; }
svg { border: 1px solid #ccc; margin-bottom: 1.5em; }
"""
_WIDTH, _HEIGHT, _MARGIN = 760, 260, 50
_EVENT_COLUMNS = (
    "kind",
    "startedAt",
    "endedAt",
    "severity",
    "description",
    "acknowledgedBy",
    "acknowledgedAt",
)
_MAX_POINTS = 400


def _cell(value: Any) -> str:
    return f"<td>{escape('' if value is None else str(value))}</td>"


def _table(headers: Sequence[str], rows: Sequence[tuple[str, Sequence[Any]]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        f'<tr class="{escape(css)}">' + "".join(_cell(v) for v in values) + "</tr>"
        for css, values in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _header(trace: Mapping[str, Any]) -> str:
    batch, agreement, checkpoint = trace["batch"], trace["agreement"], trace["checkpoint"]
    rows = [
        ("", ["batch", batch["id"]]),
        ("", ["product / site", f"{batch['product']} / {batch['site']}"]),
        ("", ["ran", f"{batch['startedAt']} to {batch.get('endedAt') or 'running'}"]),
        ("", ["agreement", f"{agreement['title']} ({agreement['id']})"]),
        ("", ["sponsor / CMO", f"{agreement['sponsor']} / {agreement['cmo']}"]),
        ("", ["log position", trace["position"]]),
        ("", ["checkpoint", f"tree size {checkpoint['treeSize']}, root {checkpoint['rootHash']}"]),
        ("", ["ledger", trace["ledger"]["origin"]]),
        ("", ["exported by", trace["me"]]),
    ]
    return f"<h1>Evidence for batch {escape(batch['id'])}</h1>" + _table(["", ""], rows)


def _timeline(trace: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> str:
    """Every signed event of the batch; those the exporter could not read are marked."""
    included = {event["leaf_index"] for event in events}
    rows = []
    for entry in trace["events"]:
        values = [
            entry["leafIndex"],
            entry["type"],
            entry["signer"],
            _signed_by(entry),
            entry["meaning"],
            entry["signedAt"],
            entry["recordedAt"],
            entry.get("reason"),
            "yes" if entry["leafIndex"] in included else "withheld from the exporter",
        ]
        rows.append(("event", values))
    headers = ["leaf", "event", "signer", "signed by", "meaning", "signed at", "recorded at"]
    return "<h2>Timeline of signed events</h2>" + _table([*headers, "reason", "in bundle"], rows)


def _signed_by(entry: Mapping[str, Any]) -> str:
    """The printed name of the person who signed (R5), or that a party key signed."""
    if not entry.get("person"):
        return "party key"
    return f"{entry.get('printedName') or ''} ({entry['person']})"


def _limits(trace: Mapping[str, Any]) -> str:
    rows = []
    for parameter in trace["parameterLimits"]:
        for v in parameter["versions"]:
            values = [
                parameter["name"],
                parameter["kind"],
                v["version"],
                v["effectiveFrom"],
                v["unit"],
                v.get("target"),
                _range(v["alert"]),
                _range(v["action"]),
                v["status"],
                "yes" if v["inForce"] else "no",
            ]
            rows.append(("limits", values))
    headers = ["parameter", "kind", "version", "effective from", "unit", "target"]
    headers += ["alert limits", "action limits", "status", "in force at export"]
    return "<h2>Parameter limits in force during the batch</h2>" + _table(headers, rows)


def _range(limits: Mapping[str, Any]) -> str:
    low, high = limits.get("low"), limits.get("high")
    return f"{'' if low is None else low} - {'' if high is None else high}".strip()


def _corrections(trace: Mapping[str, Any]) -> dict[str, str]:
    """The correction reason by superseded record id."""
    reasons = {}
    for submission in trace["batch"]["submissions"]:
        if submission["correction"]:
            for record in submission["supersedes"]:
                reasons[record] = f"corrected by {submission['signer']}: {submission['reason']}"
    return reasons


def _data(trace: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    reasons = _corrections(trace)
    parts = ["<h2>Data</h2>"]
    tables = (
        ("discrete", ["parameter", "value", "unit", "sampledAt", "method"]),
        ("events", _EVENT_COLUMNS),
    )
    for name, columns in tables:
        rows = data.get(name)
        if rows is None:
            parts.append(f"<p class='note'>{name}: withheld from the exporter</p>")
            continue
        parts.append(f"<h3>{escape(name)}</h3>" + _records(rows, columns, reasons))
    tags = data.get("tags") or []
    tag_rows = [("tag", [t["tag"], t["first"], t["last"], t["points"]]) for t in tags]
    parts.append("<h3>continuous</h3>" + _table(["tag", "first", "last", "points"], tag_rows))
    return "".join(parts)


def _records(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], reasons: Mapping[str, str]
) -> str:
    headers = ["id", "version", *columns, "status", "correction"]
    lines = []
    for row in rows:
        superseded = row["status"] != "current"
        mark = f"SUPERSEDED: {reasons.get(row['id'], 'by a later version')}" if superseded else ""
        values = [row["id"], row["version"], *(row.get(c) for c in columns), row["status"], mark]
        lines.append(("superseded" if superseded else "current", values))
    return _table(headers, lines)


# ------------------------------------------------------------------------ charts


def _time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _series(events: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """Each tag's points from the batch's signed chunks (superseded chunks left out)."""
    chunks: dict[str, list[Mapping[str, Any]]] = {}
    superseded: set[str] = set()
    for event in events:
        payload = event["event"]["envelope"].get("payload", {})
        if event["role"] != "batch":
            continue
        superseded.update(payload.get("supersedes_chunks", []) or [])
        for series in payload.get("series", []) or []:
            chunks.setdefault(series["tag"], []).extend(series.get("chunks", []))
    points: dict[str, list[tuple[float, float]]] = {}
    for tag, found in chunks.items():
        try:
            decoded = [
                p for c in found if c.get("sha256") not in superseded for p in series_points(c)
            ]
        except LedgerError:
            continue
        points[tag] = sorted((_time(stamp), float(value)) for stamp, value, _ in decoded)
    return points


def _downsample(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """At most ``_MAX_POINTS`` points keeping each bucket's minimum and maximum."""
    if len(points) <= _MAX_POINTS:
        return list(points)
    size = -(-len(points) // (_MAX_POINTS // 2))
    kept: list[tuple[float, float]] = []
    for start in range(0, len(points), size):
        bucket = points[start : start + size]
        low, high = min(bucket, key=lambda p: p[1]), max(bucket, key=lambda p: p[1])
        kept.extend(sorted({low, high}))
    return kept


@dataclass(frozen=True)
class _Frame:
    x0: float
    x1: float
    y0: float
    y1: float

    def x(self, t: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return _MARGIN + (t - self.x0) / span * (_WIDTH - 2 * _MARGIN)

    def y(self, v: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return _HEIGHT - _MARGIN - (v - self.y0) / span * (_HEIGHT - 2 * _MARGIN)


def _limit_values(versions: Sequence[Mapping[str, Any]]) -> list[float]:
    values = []
    for v in versions:
        for pair in (v["alert"], v["action"]):
            values += [float(x) for x in (pair.get("low"), pair.get("high")) if x is not None]
        if v.get("target") is not None:
            values.append(float(v["target"]))
    return values


def _frame(
    points: Sequence[tuple[float, float]],
    versions: Sequence[Mapping[str, Any]],
    span: tuple[float, float],
) -> _Frame:
    values = [p[1] for p in points] + _limit_values(versions)
    times = [p[0] for p in points] or list(span)
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (high - low) * 0.08 or 1.0
    return _Frame(min(times), max(times), low - pad, high + pad)


_LIMIT_STYLES = (("action", "#c00", ""), ("alert", "#e80", ' stroke-dasharray="6 3"'))


def _limit_segments(
    frame: _Frame, versions: Sequence[Mapping[str, Any]]
) -> list[tuple[Mapping[str, Any], float, float, bool]]:
    """``(version, begin, end, in force)`` spans to draw; before the first version took
    effect its limits are drawn faded, for reference, since none were in force then."""
    starts = [_time(v["effectiveFrom"]) for v in versions]
    spans = []
    if versions and starts[0] > frame.x0:
        spans.append((versions[0], frame.x0, min(starts[0], frame.x1), False))
    for index, version in enumerate(versions):
        begin = max(starts[index], frame.x0)
        end = min(starts[index + 1] if index + 1 < len(versions) else frame.x1, frame.x1)
        if end > begin:
            spans.append((version, begin, end, True))
    return spans


def _limit_lines(frame: _Frame, versions: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    for version, begin, end, in_force in _limit_segments(frame, versions):
        state = "" if in_force else f" (not yet in force: from {version['effectiveFrom']})"
        faded = "" if in_force else ' stroke-opacity="0.35"'
        for kind, colour, dash in _LIMIT_STYLES:
            for side in ("low", "high"):
                value = version[kind].get(side)
                if value is None:
                    continue
                y = frame.y(float(value))
                title = f"{kind} {side} {value} (v{version['version']}){state}"
                lines.append(
                    f'<line class="limit {kind}" x1="{frame.x(begin):.1f}" y1="{y:.1f}" '
                    f'x2="{frame.x(end):.1f}" y2="{y:.1f}" stroke="{colour}"{dash}{faded}>'
                    f"<title>{escape(title)}</title></line>"
                )
    return lines


def _legend(versions: Sequence[Mapping[str, Any]]) -> str:
    parts = ["red: action limits", "dashed orange: alert limits"]
    parts += [f"v{v['version']} from {v['effectiveFrom'][:16].replace('T', ' ')}" for v in versions]
    parts.append("faded: before the first limits took effect")
    text = escape("; ".join(parts))
    return f'<text x="{_MARGIN}" y="{_HEIGHT - 8}" font-size="10">{text}</text>'


def _chart(
    parameter: str,
    versions: Sequence[Mapping[str, Any]],
    points: Sequence[tuple[float, float]],
    marks: Sequence[tuple[float, float, bool]],
    span: tuple[float, float],
) -> str:
    frame = _frame(list(points) + [(t, v) for t, v, _ in marks], versions, span)
    name = escape(parameter)
    body = [f'<text x="{_MARGIN}" y="20" font-weight="bold">{name}</text>']
    body += _limit_lines(frame, versions)
    shown = _downsample(points)
    if shown:
        path = " ".join(f"{frame.x(t):.1f},{frame.y(v):.1f}" for t, v in shown)
        body.append(f'<polyline fill="none" stroke="#246" stroke-width="1" points="{path}"/>')
    for t, v, superseded in marks:
        fill = "none" if superseded else "#246"
        body.append(
            f'<circle cx="{frame.x(t):.1f}" cy="{frame.y(v):.1f}" r="3" stroke="#246" '
            f'fill="{fill}"/>'
        )
    if not shown and not marks:
        body.append(f'<text x="{_MARGIN}" y="{_HEIGHT / 2}">no data for this parameter</text>')
    body += _axes(frame)
    body.append(_legend(versions))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="control-chart" width="{_WIDTH}" '
        f'height="{_HEIGHT}" role="img" aria-label="control chart: {name}">'
        + "".join(body)
        + "</svg>"
    )


def _axes(frame: _Frame) -> list[str]:
    bottom, right = _HEIGHT - _MARGIN, _WIDTH - _MARGIN
    first = datetime.fromtimestamp(frame.x0, UTC).strftime("%Y-%m-%d %H:%M UTC")
    last = datetime.fromtimestamp(frame.x1, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f'<line x1="{_MARGIN}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#888"/>',
        f'<line x1="{_MARGIN}" y1="{_MARGIN}" x2="{_MARGIN}" y2="{bottom}" stroke="#888"/>',
        f'<text x="{_MARGIN}" y="{bottom + 16}" font-size="11">{first}</text>',
        f'<text x="{right}" y="{bottom + 16}" font-size="11" text-anchor="end">{last}</text>',
        f'<text x="4" y="{_MARGIN + 4}" font-size="11">{frame.y1:.4g}</text>',
        f'<text x="4" y="{bottom}" font-size="11">{frame.y0:.4g}</text>',
    ]


def _cpps(trace: Mapping[str, Any]) -> list[tuple[str, Sequence[Mapping[str, Any]]]]:
    """Each CPP of the agreement with every version of its limits, oldest first (from the
    limits in force during the batch when the agreement's parameters were not readable)."""
    parameters = trace.get("parameters")
    if parameters is None:
        return [(p["name"], p["versions"]) for p in trace["parameterLimits"] if p["kind"] == "CPP"]
    return [(p["name"], p["limitsHistory"]) for p in parameters if p["kind"] == "CPP"]


def _charts(
    trace: Mapping[str, Any], data: Mapping[str, Any], events: Sequence[Mapping[str, Any]]
) -> str:
    series = _series(events)
    batch = trace["batch"]
    span = (_time(batch["startedAt"]), _time(batch.get("endedAt") or trace["answeredAt"]))
    parts = ["<h2>Control charts (CPPs)</h2>"]
    for name, versions in _cpps(trace):
        tag = tag_for(name, sorted(series))
        marks = [
            (_time(r["sampledAt"]), float(r["value"]), r["status"] != "current")
            for r in data.get("discrete") or []
            if r.get("parameter") == name and r.get("value") is not None
        ]
        source = f"tag {tag}" if tag else "no continuous tag"
        parts.append(f"<p class='note'>{escape(name)}: {escape(source)}</p>")
        parts.append(_chart(name, versions, series.get(tag, []) if tag else [], marks, span))
    return "".join(parts)


def _excursions(data: Mapping[str, Any]) -> str:
    found = data.get("excursions")
    if found is None:
        return "<h2>Excursions</h2><p class='note'>withheld from the exporter</p>"
    headers = ["what", "when", "value", "limits version", "evaluation", "due", "reported by"]
    headers.append("reporting")
    rows = []
    for item in found.get("excursions") or []:
        record = item["record"]
        what = f"{record['parameter']} ({record['id']})"
        value = f"{record['value']} {record['unit']}"
        rows.append((item, [what, record["sampledAt"], value, record["limitsVersion"]]))
    for item in found.get("seriesExcursions") or []:
        when = f"{item['first']} to {item['last']} ({item['count']} points)"
        rows.append((item, [item["tag"], when, f"worst {item['worst']}", item["limitsVersion"]]))
    lines = [
        (
            "unreported" if item["reporting"] == "unreported" else "current",
            [*cells, item["evaluation"], item["reportDue"], item["reportedBy"], item["reporting"]],
        )
        for item, cells in rows
    ]
    return "<h2>Excursions</h2>" + _table(headers, lines)


def _cpv(analyses: Sequence[Mapping[str, Any]], batch: str) -> str:
    if not analyses:
        return ""
    parts = ["<h2>Continued process verification</h2>"]
    for analysis in analyses:
        title = f"{analysis['parameter']}: baseline {analysis['baseline']} "
        title += f"v{analysis['baselineVersion']}, {analysis['chart']} chart"
        checkpoint = analysis.get("checkpoint") or {}
        parts.append(f"<h3>{escape(title)}</h3>")
        parts.append(
            f"<p class='note'>as of log position {analysis['knownAt']}, checkpoint of "
            f"{escape(str(checkpoint.get('treeSize')))} leaves; inputs digest "
            f"<code>{escape(analysis['inputsDigest'])}</code></p>"
        )
        parts.append(_cpv_chart(analysis, batch))
        rows = [
            ("", [v["rule"], v["name"], ", ".join(v["batches"])]) for v in analysis["violations"]
        ]
        parts.append(
            _table(["rule", "name", "batches"], rows) if rows else "<p>no rule violated</p>"
        )
        parts.append(_capability(analysis.get("capability") or []))
        parts += [f"<p class='note'>{escape(w)}</p>" for w in analysis.get("warnings") or []]
    return "".join(parts)


def _index_text(index: Mapping[str, Any] | None) -> str:
    if index is None:
        return ""
    interval = index.get("interval") or {}
    if interval.get("lower") is None:
        return f"{index['value']:.3f}"
    return f"{index['value']:.3f} ({interval['lower']:.3f} to {interval['upper']:.3f})"


def _capability(studies: Sequence[Mapping[str, Any]]) -> str:
    headers = ["limits", "batches", "n", "Cp", "Cpk", "Pp", "Ppk", "normality p"]
    rows = [
        (
            "",
            [
                f"v{study['limitsVersion']}",
                study["batches"],
                study["n"],
                *(_index_text(study.get(name)) for name in ("cp", "cpk", "pp", "ppk")),
                f"{(study.get('normality') or {}).get('pValue', '')}",
            ],
        )
        for study in studies
    ]
    return _table(headers, rows) if rows else "<p class='note'>no capability study</p>"


def _cpv_chart(analysis: Mapping[str, Any], batch: str) -> str:
    points = analysis["points"]
    location = analysis["location"]
    lines = [
        location[name] for name in ("lower", "centre", "upper") if location.get(name) is not None
    ]
    values = [p["value"] for p in points] + lines
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (high - low) * 0.08 or 1.0
    frame = _Frame(0.0, float(max(len(points) - 1, 1)), low - pad, high + pad)
    flagged = {i for v in analysis["violations"] for i in v["indexes"]}
    body = [f'<text x="{_MARGIN}" y="20" font-weight="bold">{escape(analysis["parameter"])}</text>']
    for name, dash in (
        ("lower", ' stroke-dasharray="6 3"'),
        ("centre", ""),
        ("upper", ' stroke-dasharray="6 3"'),
    ):
        value = location.get(name)
        if value is not None:
            y = frame.y(value)
            body.append(
                f'<line class="cpv-{name}" x1="{_MARGIN}" y1="{y:.1f}" x2="{_WIDTH - _MARGIN}" '
                f'y2="{y:.1f}" stroke="#c00"{dash}><title>{name} {value:.6g}</title></line>'
            )
    path = " ".join(f"{frame.x(p['index']):.1f},{frame.y(p['value']):.1f}" for p in points)
    body.append(f'<polyline fill="none" stroke="#246" stroke-width="1" points="{path}"/>')
    for p in points:
        own, bad = p["batch"] == batch, p["index"] in flagged
        colour = "#c00" if bad else "#246"
        body.append(
            f'<circle class="{"own" if own else "point"}" cx="{frame.x(p["index"]):.1f}" '
            f'cy="{frame.y(p["value"]):.1f}" r="{5 if own else 3}" stroke="{colour}" '
            f'fill="{colour if bad or own else "none"}"><title>{escape(p["batch"])}: '
            f"{p['value']:.6g}</title></circle>"
        )
    legend = f"dashed: control limits; red points: rule violations; large point: {batch}"
    body.append(f'<text x="{_MARGIN}" y="{_HEIGHT - 8}" font-size="10">{escape(legend)}</text>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cpv-chart" width="{_WIDTH}" '
        f'height="{_HEIGHT}" role="img" aria-label="CPV chart: {escape(analysis["parameter"])}">'
        + "".join(body)
        + "</svg>"
    )


def _withheld(withheld: Sequence[Mapping[str, Any]]) -> str:
    if not withheld:
        return ""
    items = "".join(f"<li>{escape(str(dict(w)))}</li>" for w in withheld)
    return f"<h2>Withheld from the exporter</h2><ul>{items}</ul>"


_DIGEST = f"SHA-256 listed in the signed {MANIFEST}"


def _coverage(trace: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What ``verify-bundle`` checks about each file, in the words of ``docs/evidence.md``."""
    exporter = trace["me"]
    return [
        (
            MANIFEST,
            f"signature in {MANIFEST_SIG} by the exporter ({exporter}) with a party key "
            "whose PartyAdmitted or KeyAdded event is in the bundle, proved under the "
            "checkpoint and not revoked; lists every other file with its SHA-256",
        ),
        (
            MANIFEST_SIG,
            f"Ed25519 signature over the RFC 8785 bytes of {MANIFEST}, checked with the "
            "exporter's key as recorded in the log",
        ),
        (
            CHECKPOINT,
            f"{_DIGEST}; checkpoint signature by the notary key ({NOTARY_VKEY}, or --vkey); "
            f"tree size equal to the manifest's; each cosignature with a key of its cosigner "
            "evidenced in the bundle",
        ),
        (
            NOTARY_VKEY,
            f"{_DIGEST}; equal to the key given with --vkey (without --vkey it is only "
            "taken on trust: pass the key you obtained from the ledger's operator)",
        ),
        (
            f"{EVENTS_DIR}/NNNNNN.json",
            f"{_DIGEST}; leaf bytes decode to the event shown; inclusion proof to the "
            "checkpoint's root; envelope signature with the signer's key from the bundle's "
            "key events, not revoked before; compromised keys reported; version/prev chains",
        ),
        (
            TRACE,
            f"{_DIGEST}; lists exactly the batch's events of the bundle, each entry matching "
            "its signed event (agreement, terms, limits and grants: the digest only)",
        ),
        (
            DATA,
            f"{_DIGEST}; each row matches the signed payloads; openings open the signed "
            "commitments; tag counts and times match the signed chunks (excursions: the "
            "digest only)",
        ),
        (
            CPV_FILE,
            f"{_DIGEST}; each analysis's inputsDigest recomputed from its inputs; the batch's "
            "own inputs equal its current signed results (other batches' inputs: the "
            "digest only; limits, run rules and indices: not recomputed)",
        ),
        (
            REPORT,
            f"{_DIGEST} only: this page is drawn from the files above and not compared with "
            "them; rely on it once verify-bundle answers OK or PARTIAL",
        ),
    ]


def _checks(trace: Mapping[str, Any]) -> str:
    rows = [("check", [name, what]) for name, what in _coverage(trace)]
    return "<h2>What verify-bundle checks, file by file</h2>" + _table(
        ["file", "checked by verify-bundle"], rows
    )


def render_report(
    trace: Mapping[str, Any],
    data: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    withheld: Sequence[Mapping[str, Any]],
    analyses: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The HTML page of a bundle from its trace, data tables, event files and CPV
    analyses."""
    title = f"Evidence for batch {trace['batch']['id']}"
    sections = [
        _header(trace),
        _timeline(trace, events),
        _limits(trace),
        _data(trace, data),
        _excursions(data),
        _charts(trace, data, events),
        _cpv(analyses, trace["batch"]["id"]),
        _withheld(withheld),
        _checks(trace),
        "<p class='note'>Check this bundle offline with "
        "<code>cmo-ledger verify-bundle DIR --vkey NOTARY_KEY</code>.</p>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        + "".join(sections)
        + "</body></html>\n"
    )
