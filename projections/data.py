"""Batch data: batches, submissions, records (discrete and event) and continuous chunks.

``proj_batches``: one row per batch: agreement, product, site, start, end, registration.
``proj_submissions``: one row per ``DataSubmitted`` or ``DataCorrected``: class and its
form (:mod:`ledger.domain.data_classes`), source system, schema version, format, original
file hash, what a correction supersedes, reason. Records and chunks carry their class too,
and records their form, so data of a class the terms later retire is still read.
``proj_records``: one row per version of a record, keyed by batch, record id and record
version. A correction closes the original's current row and opens one marked
``superseded`` (the original values stay readable, R1); a replacement under the same id is
the next record version. Acknowledgements (R23) are marked on the record version.
Each discrete record version names its parameter's id, the limits version in force at its
sample time (as the ledger knew it when the record arrived) and its evaluation against
those limits (:mod:`ledger.domain.limits`); a later revision never changes them.
Each record version says whether it was entered by hand (``manual``) and whether it counts
(``verified``): a manual value of a critical parameter (:mod:`ledger.domain.verification`)
is unverified until ``DataVerified`` (``verified_at``, ``verified_by``: the person), and
the queries leave it out of excursions and CPV inputs until then. Criticality is the
registry's status now, so a status revision or a retirement re-marks the parameter's
unverified manual values (the view keeps their keys per parameter).
``proj_record_confidential``: the agreement's confidential elements, one row per record
version and element, kept out of ``proj_records`` so the query layer returns them only
to a reader whose grant includes them: the commitment the envelope signed (its opening
is read from ``ledger.log.openings``, never copied here, so a purge leaves no value
behind), or the value itself for records signed in clear before elements were committed.
``proj_chunks``: continuous data, one row per chunk (tag, first and last timestamp,
count, status) indexed by batch, tag and start time, with where the chunk lives in the
log: the position of the event that carries it (a ``DataSubmitted`` or a
``DataCorrected``) and its place in that event's ``series`` and entry's ``chunks``. No view
copies the content: a time range reads the chunks it overlaps from the log
(see :mod:`projections.series`). ``proj_chunk_excursions``: per chunk, limits version
and level (alert, action), the points outside the limits of the parameter the tag
measures (:func:`ledger.domain.limits.tag_for`): first and last time, count, worst value,
evaluated when the chunk arrived and never again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import methodcaller
from typing import Any

from sqlalchemy import Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text
from sqlalchemy.orm import Session

from ledger.domain.commitments import committed
from ledger.domain.data_classes import form_of
from ledger.domain.formats import is_manual, stored_points
from ledger.domain.limits import (
    BOUNDS,
    NO_LIMITS,
    UNREGISTERED,
    LimitsVersion,
    changed_limits,
    in_force_at,
    series_excursions,
    tag_for,
)
from ledger.domain.limits import bounds as limit_bounds
from ledger.domain.validity import effective_from
from ledger.domain.verification import critical_status
from projections.temporal import POSITION, Row, temporal_table
from projections.terms import FollowsTerms
from projections.times import utc
from projections.view import Fact, Page, dumps, handles, state_table

__all__ = [
    "BATCHES",
    "CHUNKS",
    "CHUNK_EXCURSIONS",
    "CONFIDENTIAL",
    "RECORDS",
    "SUBMISSIONS",
    "DataView",
    "batch_names",
]

metadata = MetaData()


def _batch() -> Column[Any]:
    return Column("batch", String(64), nullable=False)


BATCHES = temporal_table(
    "proj_batches",
    metadata,
    [_batch()],
    Column("subject", String(36), nullable=False),
    Column("agreement", String(36), nullable=False),
    Column("product", String(200), nullable=False),
    Column("site", String(200), nullable=False),
    Column("started_at", String(30), nullable=False),
    Column("ended_at", String(30)),
    Column("registered_at", String(30), nullable=False),
    Column("registered_by", String(64), nullable=False),
    Index("ix_proj_batches_agreement", "agreement", "valid_from"),
    # An agreement's latest batches are read newest first, a page at a time.
    Index("ix_proj_batches_started", "agreement", "started_at", "batch"),
)

SUBMISSIONS = temporal_table(
    "proj_submissions",
    metadata,
    [Column("submission", String(36), nullable=False)],
    _batch(),
    Column("agreement", String(36), nullable=False),
    Column("data_class", String(63), nullable=False),
    Column("form", String(16), nullable=False),
    Column("correction", Boolean, nullable=False),
    Column("source_system", String(100)),
    Column("schema_version", String(50)),
    Column("format", String(100)),
    Column("original_sha256", String(64)),
    Column("supersedes", Text, nullable=False),
    Column("reason", Text),
    Column("signer", String(64), nullable=False),
    Column("key", String(32), nullable=False),
    Column("recorded_at", String(30), nullable=False),
    Index("ix_proj_submissions_batch", "batch", "valid_from"),
)

_RECORD_KEY = ("batch", "record_id", "record_version")


def _record_key() -> list[Column[Any]]:
    return [
        _batch(),
        Column("record_id", String(128), nullable=False),
        Column("record_version", Integer, nullable=False),
    ]


RECORDS = temporal_table(
    "proj_records",
    metadata,
    _record_key(),
    Column("agreement", String(36), nullable=False),
    Column("data_class", String(63), nullable=False),
    Column("form", String(16), nullable=False),
    Column("submission", String(36), nullable=False),
    Column("parameter", String(200)),
    Column("parameter_id", String(36)),
    Column("limits_version", Integer),
    Column("evaluation", String(16)),
    Column("value", String(40)),
    Column("unit", String(64)),
    Column("sampled_at", String(30)),
    Column("method", Text),
    Column("event_kind", String(32)),
    Column("started_at", String(30)),
    Column("ended_at", String(30)),
    Column("severity", String(16)),
    Column("description", Text),
    Column("other", Text),
    Column("status", String(16), nullable=False),
    Column("superseded_by", String(36)),
    Column("acknowledged_at", String(30)),
    Column("acknowledged_by", String(64)),
    Column("manual", Boolean, nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("verified_at", String(30)),
    Column("verified_by", String(64)),
    Column("recorded_at", String(30), nullable=False),
    Index("ix_proj_records_parameter", "agreement", "parameter", "sampled_at"),
)

CONFIDENTIAL = temporal_table(
    "proj_record_confidential",
    metadata,
    [*_record_key(), Column("element", String(64), nullable=False)],
    Column("value", Text),
    Column("commitment", String(64)),
)

CHUNKS = temporal_table(
    "proj_chunks",
    metadata,
    [_batch(), Column("sha256", String(64), nullable=False)],
    Column("agreement", String(36), nullable=False),
    Column("data_class", String(63), nullable=False),
    Column("tag", String(200), nullable=False),
    Column("t_start", String(30), nullable=False),
    Column("t_end", String(30), nullable=False),
    Column("count", Integer, nullable=False),
    Column("submission", String(36), nullable=False),
    Column("status", String(16), nullable=False),
    Column("superseded_by", String(36)),
    # Where the content is: ``payload["series"][series_index]["chunks"][chunk_index]`` of
    # the event at ``position`` (a correction's later versions keep the original's place).
    Column("position", POSITION, nullable=False),
    Column("series_index", Integer, nullable=False),
    Column("chunk_index", Integer, nullable=False),
    Index("ix_proj_chunks_tag", "batch", "tag", "t_start"),
)

#: Tables of earlier versions of the view, dropped with it: chunk content was copied into
#: ``proj_chunk_content`` before it was read from the log.
_RETIRED = ("proj_chunk_content",)

CHUNK_EXCURSIONS = temporal_table(
    "proj_chunk_excursions",
    metadata,
    [
        _batch(),
        Column("sha256", String(64), nullable=False),
        Column("limits_version", Integer, nullable=False),
        Column("evaluation", String(8), nullable=False),
    ],
    Column("agreement", String(36), nullable=False),
    Column("tag", String(200), nullable=False),
    Column("parameter_id", String(36), nullable=False),
    Column("first", String(30), nullable=False),
    Column("last", String(30), nullable=False),
    Column("count", Integer, nullable=False),
    Column("worst", String(50), nullable=False),
    Column("excess", Float, nullable=False),
)

STATE = state_table("proj_data_state", metadata)

# Record members with a column of their own (``kind`` is stored as ``event_kind``).
_COLUMNS = {
    "parameter": "parameter",
    "value": "value",
    "unit": "unit",
    "sampled_at": "sampled_at",
    "method": "method",
    "kind": "event_kind",
    "started_at": "started_at",
    "ended_at": "ended_at",
    "severity": "severity",
    "description": "description",
}
_TIMES = frozenset({"sampled_at", "started_at", "ended_at"})
_EMPTY: Row = dict.fromkeys([*_COLUMNS.values(), "parameter_id", "limits_version", "evaluation"])


_DATA_EVENTS = frozenset({"DataSubmitted", "DataCorrected"})
_parameter = methodcaller("get", "parameter")

Kind = tuple[str, str]
"""A submission's data class and that class's form."""


def _limits_key(agreement: str, name: str) -> str:
    return f"limits:{agreement}/{name}"


def _manual_key(agreement: str, name: str) -> str:
    """Keys of the manual record versions naming a parameter (R17)."""
    return f"manual:{agreement}/{name}"


class DataView(FollowsTerms):
    """Batches, submissions, record versions, confidential values and chunks."""

    name = "data"
    version = 2  # chunks name their place in the log instead of copying their content
    tables = (BATCHES, SUBMISSIONS, RECORDS, CONFIDENTIAL, CHUNKS, CHUNK_EXCURSIONS)
    state = STATE

    def drop(self, session: Session) -> None:
        """Empty the view, and drop the tables its earlier versions wrote, so that a
        database upgraded by a replay keeps no copy of what the log holds."""
        super().drop(session)
        conn = session.connection()
        for name in _RETIRED:
            Table(name, MetaData()).drop(conn, checkfirst=True)

    def prepare(self, page: Page, facts: Sequence[Fact]) -> None:
        """Also read in bulk the current records of batches with corrections or
        acknowledgements in this page."""
        super().prepare(page, facts)
        later = ("DataCorrected", "DataAcknowledged")
        page.versions(RECORDS).prefetch(batch_names(page, facts, later))

    def state_keys(self, page: Page, facts: Sequence[Fact]) -> Iterable[str]:
        """The limits (and manual record versions) of the parameters the page's records
        name, and the parameter names of agreements with continuous data in the page."""
        registered = {f.subject: f.payload for f in facts if f.type == "BatchRegistered"}
        names: dict[str, set[Any]] = {}  # parameter names by agreement
        keys: set[str] = set()
        for fact in facts:
            if fact.type not in _DATA_EVENTS:
                continue
            known = page.state.fact(f"subject:{fact.subject}")
            if known is None and fact.subject not in registered:
                continue
            agreement = registered[fact.subject]["agreement"] if known is None else known[1]
            payload = fact.payload
            if "series" in payload:
                keys.add(f"parameters:{agreement}")
            elif records := payload.get("records"):
                names.setdefault(agreement, set()).update(map(_parameter, records))
        for agreement, named in names.items():
            for name in named:
                if isinstance(name, str):
                    keys.add(_limits_key(agreement, name))
                    keys.add(_manual_key(agreement, name))
        return keys

    @handles("ParameterDefined")
    def _parameter_defined(self, page: Page, fact: Fact) -> None:
        payload = fact.payload
        agreement, name = payload["agreement"], payload["name"]
        page.state.remember(f"parameter:{fact.subject}", [agreement, name])
        bounds = limit_bounds(payload)
        when = effective_from(payload, fact.recorded_at)
        version = {"version": 1, "effective_from": when, **bounds}
        critical = critical_status(payload["status"], retired=False)
        tracked: Row = {
            "parameter": fact.subject,
            "current": bounds,
            "versions": [version],
            "critical": critical,
        }
        page.state.set(_limits_key(agreement, name), tracked)
        self._remark(page, fact, agreement, name, critical)
        names = page.state.get(f"parameters:{agreement}") or []
        page.state.set(f"parameters:{agreement}", sorted({*names, name}))

    @handles("ParameterRevisionApproved", "ParameterRetired")
    def _parameter_changed(self, page: Page, fact: Fact) -> None:
        known = page.state.fact(f"parameter:{fact.subject}")
        key = None if known is None else _limits_key(known[0], known[1])
        tracked = None if key is None else page.state.get(key)
        if key is None or tracked is None:
            return
        versions: list[Row] = tracked["versions"]
        when = effective_from(fact.payload, fact.recorded_at)
        if versions and versions[-1].get("effective_to") is None:
            versions[-1]["effective_to"] = when
        critical = False  # a retired parameter is critical no more
        if fact.type == "ParameterRevisionApproved":
            changes = self._revision_changes(page, fact)
            current = {**tracked["current"], **_only_bounds(changed_limits(changes))}
            tracked["current"] = current
            number = len(versions) + 1
            versions.append({"version": number, "effective_from": when, **current})
            critical = bool(tracked.get("critical"))
            if "status" in changes:
                critical = critical_status(changes["status"], retired=False)
        if critical != tracked.get("critical"):
            tracked["critical"] = critical
            self._remark(page, fact, known[0], known[1], critical)
        page.state.set(key, tracked)

    def _remark(self, page: Page, fact: Fact, agreement: str, name: str, critical: bool) -> None:
        """Mark the parameter's manual record versions not yet verified as counting or not."""
        for batch, rid, version in page.state.get(_manual_key(agreement, name)) or []:
            key = (batch, rid, version)
            row = page.versions(RECORDS).get(key)
            if row is not None and row["verified_at"] is None and row["verified"] == critical:
                page.versions(RECORDS).update(key, fact.position, verified=not critical)

    @handles("ParameterRevisionProposed")
    def _revision_proposed(self, page: Page, fact: Fact) -> None:
        revision = fact.payload["revision"]
        page.state.set(f"revision:{fact.subject}/{revision}", fact.payload["changes"])

    def _revision_changes(self, page: Page, fact: Fact) -> dict[str, Any]:
        key = f"revision:{fact.subject}/{fact.payload['revision']}"
        changes: dict[str, Any] = page.state.get(key) or {}
        return changes

    def _evaluation(self, page: Page, agreement: str, record: dict[str, Any]) -> Row:
        name, value = record.get("parameter"), record.get("value")
        if not isinstance(name, str):
            return {}
        tracked = page.state.get(_limits_key(agreement, name))
        if tracked is None:
            return {"evaluation": UNREGISTERED}
        found = None
        sampled = record.get("sampled_at")
        if isinstance(sampled, str) and isinstance(value, str):
            versions = [LimitsVersion.of(v) for v in tracked["versions"]]
            found = in_force_at(versions, utc(sampled))
        return {
            "parameter_id": tracked["parameter"],
            "limits_version": None if found is None else found.version,
            "evaluation": NO_LIMITS if found is None else found.evaluate(str(value)),
        }

    @handles("BatchRegistered")
    def _registered(self, page: Page, fact: Fact) -> None:
        payload = fact.payload
        name = payload["batch"]
        page.state.remember(f"subject:{fact.subject}", [name, payload["agreement"]])
        page.versions(BATCHES).insert(
            (name,),
            fact.position,
            {
                "subject": fact.subject,
                "agreement": payload["agreement"],
                "product": payload["product"],
                "site": payload["site"],
                "started_at": utc(payload["started_at"]),
                "ended_at": None,
                "registered_at": fact.recorded_at,
                "registered_by": fact.signer,
            },
        )

    @handles("BatchEnded")
    def _ended(self, page: Page, fact: Fact) -> None:
        batch = self._batch(page, fact)
        if batch is not None:
            page.versions(BATCHES).update(
                (batch[0],), fact.position, ended_at=utc(fact.payload["ended_at"])
            )

    @handles("DataSubmitted")
    def _submitted(self, page: Page, fact: Fact) -> None:
        batch = self._batch(page, fact)
        if batch is None:
            return
        payload = fact.payload
        data_class = payload["kind"]
        if "series" in payload:  # the continuous form
            self._submission(page, fact, batch, (data_class, "continuous"), [])
            self._add_chunks(page, fact, batch, data_class, payload["series"])
            return
        agreement = self.agreement(page, batch[1])
        form = form_of((agreement or {}).get("terms"), data_class) or data_class
        self._submission(page, fact, batch, (data_class, form), [])
        manual = is_manual(payload["source_system"])
        self._add_records(page, fact, batch, (data_class, form), payload["records"], {}, manual)

    @handles("DataCorrected")
    def _corrected(self, page: Page, fact: Fact) -> None:
        batch = self._batch(page, fact)
        if batch is None:
            return
        payload = fact.payload
        submission = payload["submission"]
        if "supersedes_chunks" in payload:
            digests = list(payload["supersedes_chunks"])
            data_class = "continuous"
            for digest in digests:
                old = page.versions(CHUNKS).update(
                    (batch[0], digest),
                    fact.position,
                    status="superseded",
                    superseded_by=submission,
                )
                data_class = old["data_class"] if old is not None else data_class
            self._submission(page, fact, batch, (data_class, "continuous"), digests)
            self._add_chunks(page, fact, batch, data_class, payload["series"])
            return
        ids = list(payload["supersedes"])
        latest = {rid: self._latest(page, batch[0], rid) for rid in ids}
        kind = ("discrete", "discrete")
        manual = False  # a correction is manual when a record it replaces was
        for rid, version in latest.items():
            old = page.versions(RECORDS).update(
                (batch[0], rid, version),
                fact.position,
                status="superseded",
                superseded_by=submission,
            )
            kind = (old["data_class"], old["form"]) if old is not None else kind
            manual = manual or (old is not None and bool(old["manual"]))
        self._submission(page, fact, batch, kind, ids)
        self._add_records(page, fact, batch, kind, payload["records"], latest, manual)

    @handles("DataVerified")
    def _verified(self, page: Page, fact: Fact) -> None:
        batch = self._batch(page, fact)
        if batch is None:
            return
        for rid in fact.payload["records"]:
            page.versions(RECORDS).update(
                (batch[0], rid, self._latest(page, batch[0], rid)),
                fact.position,
                verified=True,
                verified_at=fact.recorded_at,
                verified_by=fact.envelope.get("person"),
            )

    @handles("DataAcknowledged")
    def _acknowledged(self, page: Page, fact: Fact) -> None:
        batch = self._batch(page, fact)
        if batch is None:
            return
        for rid in fact.payload["records"]:
            page.versions(RECORDS).update(
                (batch[0], rid, self._latest(page, batch[0], rid)),
                fact.position,
                acknowledged_at=fact.recorded_at,
                acknowledged_by=fact.signer,
            )

    def _batch(self, page: Page, fact: Fact) -> list[str] | None:
        """``[name, agreement]`` of the event's batch."""
        found: list[str] | None = page.state.fact(f"subject:{fact.subject}")
        return found

    def _latest(self, page: Page, batch: str, record_id: str) -> int:
        """The highest version of a record so far (0: none), this page's included."""
        versions = page.versions(RECORDS)
        version = 0
        while versions.get((batch, record_id, version + 1)) is not None:
            version += 1
        return version

    def _submission(
        self, page: Page, fact: Fact, batch: list[str], kind: Kind, supersedes: list[str]
    ) -> None:
        payload = fact.payload
        page.versions(SUBMISSIONS).insert(
            (payload["submission"],),
            fact.position,
            {
                "batch": batch[0],
                "agreement": batch[1],
                "data_class": kind[0],
                "form": kind[1],
                "correction": fact.type == "DataCorrected",
                "source_system": payload.get("source_system"),
                "schema_version": payload.get("schema_version"),
                "format": payload.get("format"),
                "original_sha256": payload.get("original_sha256"),
                "supersedes": dumps(supersedes),
                "reason": fact.reason,
                "signer": fact.signer,
                "key": fact.envelope["key"],
                "recorded_at": fact.recorded_at,
            },
        )

    def _add_records(
        self,
        page: Page,
        fact: Fact,
        batch: list[str],
        kind: Kind,
        records: list[dict[str, Any]],
        replaced: dict[str, int],
        manual: bool,
    ) -> None:
        agreement = self.agreement(page, batch[1])
        terms = (agreement or {}).get("terms") or {}
        confidential = frozenset(terms.get("confidential_elements") or ())
        versions = page.versions(RECORDS)
        common = {
            "agreement": batch[1],
            "data_class": kind[0],
            "form": kind[1],
            "submission": fact.payload["submission"],
            "status": "current",
            "superseded_by": None,
            "acknowledged_at": None,
            "acknowledged_by": None,
            "manual": manual,
            "verified": True,
            "verified_at": None,
            "verified_by": None,
            "recorded_at": fact.recorded_at,
        }
        for record in records:
            rid = record["id"]
            version = replaced.get(rid, 0) + 1
            row, secret = _split(record, common, confidential, known=agreement is not None)
            if kind[1] == "discrete":
                row.update(self._evaluation(page, batch[1], record))
                if manual and isinstance(record.get("parameter"), str):
                    row["verified"] = not self._manual_value(page, batch, rid, version, record)
            versions.insert((batch[0], rid, version), fact.position, row)
            for element, value in sorted(secret.items()):
                commitment = committed(value)
                shown = {"value": None, "commitment": commitment}
                if commitment is None:  # signed in clear, before elements were committed
                    shown["value"] = str(value)
                page.versions(CONFIDENTIAL).insert(
                    (batch[0], rid, version, element), fact.position, shown
                )

    def _manual_value(
        self, page: Page, batch: list[str], rid: str, version: int, record: dict[str, Any]
    ) -> bool:
        """Index a manual record version under its parameter; True when that parameter is
        critical now (the value then waits for its verification)."""
        key = _manual_key(batch[1], record["parameter"])
        page.state.set(key, [*(page.state.get(key) or []), [batch[0], rid, version]])
        tracked = page.state.get(_limits_key(batch[1], record["parameter"]))
        return tracked is not None and bool(tracked.get("critical"))

    def _add_chunks(
        self,
        page: Page,
        fact: Fact,
        batch: list[str],
        data_class: str,
        series: list[dict[str, Any]],
    ) -> None:
        submission = fact.payload["submission"]
        for series_index, entry in enumerate(series):
            for chunk_index, chunk in enumerate(entry["chunks"]):
                page.versions(CHUNKS).insert(
                    (batch[0], chunk["sha256"]),
                    fact.position,
                    {
                        "agreement": batch[1],
                        "data_class": data_class,
                        "tag": entry["tag"],
                        "t_start": chunk["start"],
                        "t_end": chunk["end"],
                        "count": chunk["count"],
                        "submission": submission,
                        "status": "current",
                        "superseded_by": None,
                        "position": fact.position,
                        "series_index": series_index,
                        "chunk_index": chunk_index,
                    },
                )
                self._chunk_excursions(page, fact, batch, entry["tag"], chunk)

    def _chunk_excursions(
        self, page: Page, fact: Fact, batch: list[str], tag: str, chunk: dict[str, Any]
    ) -> None:
        """The chunk's points outside the limits of the parameter its tag measures, in
        force at each point's time as the ledger knew them when the chunk arrived."""
        names = page.state.get(f"parameters:{batch[1]}") or []
        name = next((n for n in names if tag_for(n, [tag]) == tag), None)
        tracked = None if name is None else page.state.get(_limits_key(batch[1], name))
        if tracked is None:
            return
        versions = [LimitsVersion.of(v) for v in tracked["versions"]]
        stamps, values, _ = stored_points(chunk["content"])
        for run in series_excursions(stamps, values, versions):
            page.versions(CHUNK_EXCURSIONS).insert(
                (batch[0], chunk["sha256"], run.version, run.evaluation),
                fact.position,
                {
                    "agreement": batch[1],
                    "tag": tag,
                    "parameter_id": tracked["parameter"],
                    "first": run.first,
                    "last": run.last,
                    "count": run.count,
                    "worst": run.worst,
                    "excess": run.excess,
                },
            )


def _only_bounds(limits: Row) -> Row:
    return {name: value for name, value in limits.items() if name in BOUNDS}


def batch_names(page: Page, facts: Sequence[Fact], types: Sequence[str]) -> list[str]:
    """Names of the batches that events of ``types`` in ``facts`` concern (registrations
    in the same page included, before their handlers have run)."""
    registered = {f.subject: f.payload["batch"] for f in facts if f.type == "BatchRegistered"}
    names = []
    for fact in facts:
        if fact.type in types:
            known = page.state.fact(f"subject:{fact.subject}")
            name = known[0] if known is not None else registered.get(fact.subject)
            if name is not None:
                names.append(name)
    return names


def _split(
    record: dict[str, Any], common: Row, confidential: frozenset[str], *, known: bool
) -> tuple[Row, dict[str, Any]]:
    """The record's row (``common`` values plus its own) and its confidential values.

    A member that is a confidential element of the agreement, or any member beyond the
    known columns when the terms are unknown, goes to the confidential side.
    """
    row: Row = {**_EMPTY, **common}
    other: dict[str, Any] = {}
    secret: dict[str, Any] = {}
    for member, value in record.items():
        if member == "id":
            continue
        if member in confidential:
            secret[member] = value
        elif member in _COLUMNS:
            row[_COLUMNS[member]] = utc(value) if member in _TIMES and value else value
        elif known:
            other[member] = value
        else:
            secret[member] = value
    row["other"] = dumps(other) if other else None
    return row, secret
