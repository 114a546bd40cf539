"""Batches and their data: ``BatchRegistered``, ``BatchEnded``, ``DataSubmitted``,
``DataCorrected``, ``DataAcknowledged``, ``ElementsPurged``.

A batch is made by the CMO of one agreement in force. Its subject is derived from the
batch name (see :func:`batch_subject`), so a client addresses ``NWB101-24-001`` without a
lookup. Data arrives in the classes the terms in force define
(:mod:`ledger.domain.data_classes`), each in the format the agreement names, its content
shaped by the class's form:

* ``discrete``: results, one record per value, ``{"id", ...the format's columns...}``;
* ``event``: deviations, alarms, OOS/OOT, ``{"id", "kind", "started_at", "ended_at"?,
  "severity", "description"}``;
* ``continuous``: time series per tag, stored compactly as chunks of
  ``timestamp,value,quality`` CSV lines, gzip-compressed and base64-encoded, each
  carrying the SHA-256 of its uncompressed bytes (:func:`encode_chunk`,
  :func:`decode_chunk`).

The aggregate keeps metadata only: which submissions, record ids and chunks exist, which
were superseded by a correction, and when each class first arrived. Values and chunk
content stay in the event log, where projections read them; a correction never removes
them (R1, R12).

A confidential element of the agreement is signed as a commitment
(:mod:`ledger.domain.commitments`); its opening arrives beside the envelope and is stored
apart from the log. The CMO, whose elements they are, may purge openings
(``ElementsPurged``): the commitments and the log stay, the values are gone.

The sponsor's audit-trail reviews (``AuditTrailReviewed``) and the disposition
(``BatchDispositioned``) are events of the batch too; their rules are in
:mod:`ledger.domain.disposition` (R13, R14). So is the second-person verification of
manually entered critical values (``DataVerified``, :mod:`ledger.domain.verification`, R17).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.agreements import Agreement, agreement_in_force, require_agreement_party
from ledger.domain.catalogue import Command, EventSpec, SignedAggregate, register
from ledger.domain.commitments import COMMITMENT, committed
from ledger.domain.data_classes import spec_form
from ledger.domain.fields import Fields
from ledger.domain.formats import (
    ACKNOWLEDGEABLE_KINDS,
    BATCH_ID,
    CLOCK_TOLERANCE,
    EVENT_KINDS,
    MAX_DECOMPRESSED_BYTES,
    MAX_RECORDS,
    MAX_SERIES,
    RECORD_ID,
    SEVERITIES,
    ChunkBudget,
    check_unit,
    is_manual,
    read_chunk,
)
from ledger.domain.parameters import Parameter
from ledger.domain.subjects import batch_subject, parameter_subject
from ledger.errors import Forbidden, NotFound, ValidationFailed
from ledger.timeutil import format_utc, parse_utc

__all__ = [
    "Batch",
    "batch_agreement",
]


Record = dict[str, Any]
Chunk = dict[str, Any]


class Batch(SignedAggregate):
    """One manufacturing batch under an agreement, and the metadata of its data.

    ``records`` maps record id to ``{"class", "event_kind", "version", "submissions",
    "superseded_by", "acknowledged_version", "acknowledged_at", "parameter",
    "verified_version"}``: ``submissions`` lists the submission of each version (the last
    one is current), ``superseded_by`` is the correction that withdrew the record without
    replacing it. ``submissions`` maps each submission to ``{"class", "recorded_at",
    "correction", "manual", "person"}`` (``manual``: entered by hand, see
    :mod:`ledger.domain.verification`; ``person``: who signed it, or ``None``).
    ``chunks`` maps a chunk's SHA-256 to ``{"tag", "start", "end", "count", "submission",
    "superseded_by"}``.
    ``commitments`` maps each committed confidential element's commitment to
    ``{"record", "element", "purged"}``. ``audit_reviews`` lists each
    ``AuditTrailReviewed`` (``covers_version``: the batch's last event other than a review
    when it was signed); ``disposition`` is the last ``BatchDispositioned``, or ``None``.
    """

    TOPIC = "cmo.Batch.v1"

    class Created(Aggregate.Created):
        TOPIC = "cmo.Batch.Created.v1"

    @event("BatchRegistered", topic="cmo.BatchRegistered.v1")
    def __init__(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        payload = envelope["payload"]
        self.batch_id: str = payload["batch"]
        self.agreement: str = payload["agreement"]
        self.product: str = payload["product"]
        self.site: str = payload["site"]
        self.started_at: str = format_utc(parse_utc(payload["started_at"], field="started_at"))
        self.ended_at: str | None = None
        self.registered_at: str = recorded_at
        self.submissions: dict[str, dict[str, Any]] = {}
        self.records: dict[str, Record] = {}
        self.chunks: dict[str, Chunk] = {}
        self.first_arrival: dict[str, str] = {}
        self.commitments: dict[str, dict[str, Any]] = {}
        # R13 (ledger.domain.disposition): audit-trail reviews and the disposition.
        self.audit_reviews: list[dict[str, Any]] = []
        self.disposition: dict[str, Any] | None = None

    @property
    def last_change_version(self) -> int:
        """Version of the batch's last event other than an ``AuditTrailReviewed``: the
        event an audit-trail review must cover (:mod:`ledger.domain.disposition`)."""
        return int(self.__dict__.get("_last_change_version", 1))

    def _track(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        super()._track(envelope, signature, recorded_at)
        if envelope["type"] != "AuditTrailReviewed":
            self._last_change_version = int(envelope["version"])

    @event("BatchEnded", topic="cmo.BatchEnded.v1")
    def _ended(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        ended = envelope["payload"]["ended_at"]
        self.ended_at = format_utc(parse_utc(ended, field="ended_at"))

    @event("DataSubmitted", topic="cmo.DataSubmitted.v1")
    def _data_submitted(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        payload = envelope["payload"]
        submission, data_class = payload["submission"], payload["kind"]
        self.submissions[submission] = {
            "class": data_class,
            "recorded_at": recorded_at,
            "correction": False,
            "manual": is_manual(payload["source_system"]),
            "person": envelope.get("person"),
        }
        if data_class not in self.first_arrival:
            self.first_arrival[data_class] = recorded_at
        if "series" in payload:  # the continuous form
            self._add_chunks(payload["series"], submission)
        else:
            self._add_records(payload["records"], data_class, submission)

    @event("DataCorrected", topic="cmo.DataCorrected.v1")
    def _data_corrected(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        payload = envelope["payload"]
        submission = payload["submission"]
        manual = False
        if "supersedes_chunks" in payload:
            data_class = self.chunk_class(payload["supersedes_chunks"][0])
            for digest in payload["supersedes_chunks"]:
                self.chunks[digest]["superseded_by"] = submission
            self._add_chunks(payload["series"], submission)
        else:
            data_class = self.records[payload["supersedes"][0]]["class"]
            # A correction names no source: it is manual when what it replaces was.
            manual = any(self.is_manual(record_id) for record_id in payload["supersedes"])
            for record_id in payload["supersedes"]:
                self.records[record_id]["superseded_by"] = submission
            self._add_records(payload["records"], data_class, submission)
        self.submissions[submission] = {
            "class": data_class,
            "recorded_at": recorded_at,
            "correction": True,
            "manual": manual,
            "person": envelope.get("person"),
        }

    @event("DataAcknowledged", topic="cmo.DataAcknowledged.v1")
    def _data_acknowledged(
        self, envelope: dict[str, Any], signature: str, recorded_at: str
    ) -> None:
        self._track(envelope, signature, recorded_at)
        for record_id in envelope["payload"]["records"]:
            record = self.records[record_id]
            record["acknowledged_version"] = record["version"]
            record["acknowledged_at"] = recorded_at

    @event("ElementsPurged", topic="cmo.ElementsPurged.v1")
    def _elements_purged(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        for commitment in envelope["payload"]["commitments"]:
            self.commitments[commitment]["purged"] = True

    @event("AuditTrailReviewed", topic="cmo.AuditTrailReviewed.v1")
    def _audit_trail_reviewed(
        self, envelope: dict[str, Any], signature: str, recorded_at: str
    ) -> None:
        covers = self.last_change_version
        self._track(envelope, signature, recorded_at)
        payload = envelope["payload"]
        self.audit_reviews.append(
            {
                "by": envelope["signer"],
                "at": recorded_at,
                "version": int(envelope["version"]),
                "covers_version": covers,
                "checkpoint_size": payload["checkpoint_size"],
                "checkpoint_root": payload["checkpoint_root"],
                "outcome": payload["outcome"],
            }
        )

    @event("BatchDispositioned", topic="cmo.BatchDispositioned.v1")
    def _dispositioned(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        self.disposition = {
            "disposition": envelope["payload"]["disposition"],
            "by": envelope["signer"],
            "at": recorded_at,
            "reason": envelope.get("reason"),
            "review_version": self.audit_reviews[-1]["version"],
        }

    @event("DataVerified", topic="cmo.DataVerified.v1")
    def _data_verified(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        for record_id in envelope["payload"]["records"]:
            record = self.records[record_id]
            record["verified_version"] = record["version"]

    def is_manual(self, record_id: str) -> bool:
        """True when the record's current version was entered by hand."""
        return bool(self.submissions[self.records[record_id]["submissions"][-1]].get("manual"))

    def _add_records(self, records: list[dict[str, Any]], data_class: str, submission: str) -> None:
        for item in records:
            for member, value in item.items():
                commitment = committed(value)
                if commitment is not None:
                    self.commitments.setdefault(
                        commitment, {"record": item["id"], "element": member, "purged": False}
                    )
            # Kept for every record; only records of the event form are acknowledged.
            kind, name = item.get("kind"), item.get("parameter")
            event_kind = kind if isinstance(kind, str) else None
            parameter = name if isinstance(name, str) else None
            existing = self.records.get(item["id"])
            if existing is None:
                self.records[item["id"]] = {
                    "class": data_class,
                    "event_kind": event_kind,
                    "version": 1,
                    "submissions": [submission],
                    "superseded_by": None,
                    "acknowledged_version": None,
                    "acknowledged_at": None,
                    "parameter": parameter,
                    "verified_version": None,
                }
            else:
                # A replacement under the same id: a new version, current again.
                existing["event_kind"] = event_kind
                existing["parameter"] = parameter
                existing["version"] += 1
                existing["submissions"].append(submission)
                existing["superseded_by"] = None

    def _add_chunks(self, series: list[dict[str, Any]], submission: str) -> None:
        for entry in series:
            for chunk in entry["chunks"]:
                self.chunks[chunk["sha256"]] = {
                    "tag": entry["tag"],
                    "start": chunk["start"],
                    "end": chunk["end"],
                    "count": chunk["count"],
                    "submission": submission,
                    "superseded_by": None,
                }

    def chunk_class(self, digest: str) -> str:
        """The data class of a stored chunk: that of the submission that brought it."""
        return str(self.submissions[self.chunks[digest]["submission"]]["class"])

    def is_current(self, record_id: str) -> bool:
        """True when the record exists and was not withdrawn by a correction."""
        record = self.records.get(record_id)
        return record is not None and record["superseded_by"] is None

    def current_chunks(self, tag: str | None = None) -> dict[str, Chunk]:
        """Chunks not superseded by a correction (of one tag, when given), by SHA-256."""
        return {
            digest: chunk
            for digest, chunk in self.chunks.items()
            if chunk["superseded_by"] is None and (tag is None or chunk["tag"] == tag)
        }


# -- shared rule helpers -------------------------------------------------------------------


def _not_in_future(when: datetime, command: Command, field: str) -> None:
    if when > command.now + CLOCK_TOLERANCE:
        raise ValidationFailed(
            f"{format_utc(when)} is later than the ledger's clock ({command.recorded_at})",
            field=field,
        )


def batch_agreement(command: Command, batch: Batch) -> Agreement:
    """The agreement the batch was registered under."""
    agreement = command.state.find(UUID(batch.agreement), Agreement)
    if agreement is None:  # pragma: no cover - a batch is only registered under an agreement
        raise NotFound(f"no agreement {batch.agreement}", field="subject")
    return agreement


def _require_entrant(command: Command) -> None:
    """Values entered by hand are signed by the person who entered them, so a second
    person verifies them (:mod:`ledger.domain.verification`, R17)."""
    if command.person is None:
        raise Forbidden(
            f"{command.envelope.type} of values entered by hand is signed by the person who "
            "entered them: name the person (envelope member person) and sign with their key",
            field="person",
        )


def _submission_id(payload: Fields, batch: Batch) -> str:
    submission = payload.uuid("submission")
    if submission.version != 4:
        raise ValidationFailed("expected a random (version 4) UUID", field="payload.submission")
    if str(submission) in batch.submissions:
        raise ValidationFailed(
            f"submission {submission} is already recorded for batch {batch.batch_id}: "
            "choose a new uuid4",
            field="payload.submission",
        )
    return str(submission)


# -- records (discrete and event) ---------------------------------------------------------

_Column = Callable[[Fields, str, Command], None]


def _text_column(record: Fields, name: str, command: Command) -> None:
    record.text(name)


def _description_column(record: Fields, name: str, command: Command) -> None:
    record.text(name, max_len=2000)


def _decimal_column(record: Fields, name: str, command: Command) -> None:
    record.decimal(name)


def _unit_column(record: Fields, name: str, command: Command) -> None:
    check_unit(record.raw(name), field=record.field(name))


def _time_column(record: Fields, name: str, command: Command) -> None:
    _not_in_future(record.time(name), command, record.field(name))


def _optional_time_column(record: Fields, name: str, command: Command) -> None:
    if record.has(name):
        _time_column(record, name, command)


def _event_kind_column(record: Fields, name: str, command: Command) -> None:
    record.choice(name, EVENT_KINDS)


def _severity_column(record: Fields, name: str, command: Command) -> None:
    record.choice(name, SEVERITIES)


# Columns the formats of WORLD.md use; any other column a format names is checked as text.
_COLUMNS: dict[str, dict[str, _Column]] = {
    "discrete": {
        "parameter": _text_column,
        "value": _decimal_column,
        "unit": _unit_column,
        "sampled_at": _time_column,
        "method": _text_column,
    },
    "event": {
        "kind": _event_kind_column,
        "started_at": _time_column,
        "ended_at": _optional_time_column,
        "severity": _severity_column,
        "description": _description_column,
    },
}


def _class_terms(agreement: Agreement, data_class: str) -> Mapping[str, Any]:
    """The class's member of the terms in force, for new data; a class the terms no longer
    define (retired) keeps the member last agreed, for corrections of its data."""
    found = agreement.last_class_terms(data_class)
    if found is None:  # pragma: no cover - stored data is of a class some terms defined
        raise NotFound(f"the agreement never defined data class {data_class}", field="subject")
    return found


def _check_records(
    command: Command,
    batch: Batch,
    agreement: Agreement,
    data_class: str,
    records: list[Fields],
    replaced: frozenset[str] = frozenset(),
) -> None:
    """Check records against the class's format; ``replaced`` ids may be reused."""
    data_format = _class_terms(agreement, data_class)["format"]
    columns: list[str] = list(data_format["columns"])
    confidential: list[str] = list(agreement.terms.get("confidential_elements", []))
    allowed = {"id", *columns, *confidential}
    form = agreement.form_of(data_class)
    typed = _COLUMNS.get(str(form), {})
    registry = _Registry(command, agreement) if form == "discrete" else None
    seen: set[str] = set()
    for record in records:
        extra = sorted(set(record.data) - allowed)
        if extra:
            raise ValidationFailed(
                f"{extra[0]!r} is neither a column of format {data_format['name']} "
                f"({', '.join(columns)}) nor a confidential element of the agreement",
                field=record.field(extra[0]),
            )
        record_id = record.text("id", max_len=128)
        if not RECORD_ID.match(record_id):
            raise ValidationFailed(
                "a record id is 1-128 letters, digits and . _ : / -, starting with a letter "
                "or digit",
                field=record.field("id"),
            )
        if record_id in seen:
            raise ValidationFailed(f"record id {record_id} appears twice", field=record.field("id"))
        seen.add(record_id)
        if record_id in batch.records and record_id not in replaced:
            raise ValidationFailed(
                f"record {record_id} already exists in batch {batch.batch_id}: "
                "replace it with DataCorrected",
                field=record.field("id"),
            )
        for column in columns:
            typed.get(column, _text_column)(record, column, command)
        if registry is not None and record.has("parameter"):
            registry.check(record)
        for element in confidential:
            if element in record.data:
                _committed_element(command, batch, record, record_id, element)
        ended = record.optional_time("ended_at") if form == "event" else None
        if ended is not None and ended < record.time("started_at"):
            raise ValidationFailed("ended_at is before started_at", field=record.field("ended_at"))
    _refuse_leftover_openings(command, confidential)


def _committed_element(
    command: Command, batch: Batch, record: Fields, record_id: str, element: str
) -> None:
    """A confidential element is signed as its commitment, opened beside the envelope."""
    value = record.data[element]
    commitment = committed(value)
    if commitment is None:
        if isinstance(value, str):
            raise ValidationFailed(
                f"confidential element {element} is sent in clear: sign "
                f'{{"{COMMITMENT}": SHA-256(salt || RFC 8785 value)}} and send the salt and '
                "value as an opening beside the envelope",
                field=record.field(element),
            )
        raise ValidationFailed(
            f'a confidential element is signed as {{"{COMMITMENT}": "<64 lowercase hex>"}}',
            field=record.field(element),
        )
    if commitment in batch.commitments or commitment in command.openings.taken:
        raise ValidationFailed(
            f"commitment {commitment} is already used: commit with a fresh salt",
            field=record.field(element),
        )
    command.openings.take(record_id, element, commitment, record.field(element))


def _refuse_leftover_openings(command: Command, confidential: list[str]) -> None:
    openings = command.openings
    for index, opening in openings.leftover():
        where = f"{openings.prefix}[{index}]"
        if opening.element not in confidential:
            raise ValidationFailed(
                f"{opening.element} is not a confidential element of the agreement: "
                "send it in the record, not as an opening",
                field=f"{where}.element",
            )
        raise ValidationFailed(
            f"no record {opening.record} of the envelope commits element {opening.element}",
            field=f"{where}.record",
        )


class _Registry:
    """The agreement's parameter registry, as a discrete result must name it.

    A result names a parameter defined (and not retired) under the agreement, unless the
    terms say ``unregistered: flag``: then it is stored, and the views mark it unregistered.
    """

    def __init__(self, command: Command, agreement: Agreement) -> None:
        self.command = command
        self.agreement = agreement
        self.flag = agreement.terms.get("unregistered") == "flag"
        self.known: dict[str, bool] = {}

    def check(self, record: Fields) -> None:
        name = record.text("parameter")
        if name not in self.known:
            found = self.command.state.find(parameter_subject(self.agreement.id, name), Parameter)
            self.known[name] = found is not None and found.retired_at is None
        if not self.known[name] and not self.flag:
            raise ValidationFailed(
                f"{name!r} is no parameter of the agreement's registry: define it first, or "
                "agree terms with unregistered: flag to store such results flagged",
                field=record.field("parameter"),
            )


# -- continuous chunks --------------------------------------------------------------------


def _check_series(
    command: Command,
    batch: Batch,
    series: list[Fields],
    superseded: frozenset[str] = frozenset(),
) -> None:
    """Check every chunk; refuse duplicates and overlaps with data the batch already holds."""
    budget = ChunkBudget(MAX_DECOMPRESSED_BYTES)
    latest = format_utc(command.now + CLOCK_TOLERANCE)
    tags: set[str] = set()
    digests: set[str] = set()
    for entry in series:
        tag = entry.text("tag")
        if tag in tags:
            raise ValidationFailed(
                f"tag {tag} appears twice: put all its chunks in one entry",
                field=entry.field("tag"),
            )
        tags.add(tag)
        stored = [
            chunk for digest, chunk in batch.current_chunks(tag).items() if digest not in superseded
        ]
        chunks = entry.objects("chunks")
        if not chunks:
            raise ValidationFailed("a tag needs at least one chunk", field=entry.field("chunks"))
        previous_end = ""
        for chunk in chunks:
            start, end, _count, digest = read_chunk(chunk, budget)
            if digest in batch.chunks or digest in digests:
                raise ValidationFailed(
                    f"a chunk with SHA-256 {digest} is already recorded for batch {batch.batch_id}",
                    field=chunk.field("sha256"),
                )
            digests.add(digest)
            if end > latest:
                raise ValidationFailed(
                    f"{end} is later than the ledger's clock ({command.recorded_at})",
                    field=chunk.field("end"),
                )
            if start <= previous_end:
                raise ValidationFailed(
                    f"chunks of tag {tag} must follow each other in time: this one starts at "
                    f"{start}, the one before ends at {previous_end}",
                    field=chunk.field("start"),
                )
            previous_end = end
            for other in stored:
                if start <= other["end"] and other["start"] <= end:
                    raise ValidationFailed(
                        f"tag {tag} already has data from {other['start']} to {other['end']} "
                        "in this batch: replace it with DataCorrected",
                        field=chunk.field("start"),
                    )


# -- rules --------------------------------------------------------------------------------


def _registered_rule(command: Command) -> None:
    payload = command.payload
    agreement = agreement_in_force(command, payload.uuid("agreement"))
    command.require_signer(agreement.cmo)
    batch_id = payload.text("batch", max_len=64)
    if not BATCH_ID.match(batch_id):
        raise ValidationFailed(
            "a batch id is 2-64 letters, digits and . _ -, starting with a letter or digit, "
            "e.g. NWB101-24-001",
            field="payload.batch",
        )
    if command.envelope.subject != batch_subject(batch_id):
        raise ValidationFailed(
            f"the subject of batch {batch_id} must be {batch_subject(batch_id)}", field="subject"
        )
    for name, listed in (("product", "products"), ("site", "sites")):
        value = payload.text(name)
        if value not in agreement.terms[listed]:
            raise ValidationFailed(
                f"{value} is not among the agreement's {listed}: "
                f"{', '.join(agreement.terms[listed])}",
                field=payload.field(name),
            )
    _not_in_future(payload.time("started_at"), command, "payload.started_at")


def _ended_rule(command: Command) -> None:
    batch: Batch = command.subject
    command.require_signer(batch_agreement(command, batch).cmo)
    if batch.ended_at is not None:
        raise Forbidden(
            f"batch {batch.batch_id} already ended at {batch.ended_at}", field="subject"
        )
    payload = command.payload
    ended = payload.time("ended_at")
    if ended < parse_utc(batch.started_at, field="started_at"):
        raise ValidationFailed(
            f"ended_at is before the batch started ({batch.started_at})", field="payload.ended_at"
        )
    _not_in_future(ended, command, "payload.ended_at")


def _submitted_rule(command: Command) -> None:
    batch: Batch = command.subject
    agreement = agreement_in_force(command, UUID(batch.agreement), field="subject")
    command.require_signer(agreement.cmo)
    payload = command.payload
    data_class = payload.text("kind", max_len=63)
    form = spec_form(data_class, agreement.class_terms(data_class, field="payload.kind"))
    content = "series" if form == "continuous" else "records"
    payload.only(
        "submission",
        "kind",
        "source_system",
        "schema_version",
        "format",
        "original_sha256",
        content,
    )
    _submission_id(payload, batch)
    source = payload.text("source_system", max_len=100)
    if is_manual(source):
        _require_entrant(command)
    party = command.state.party(command.signer)
    key = {} if party is None else party.keys.get(command.envelope.key, {})
    if key.get("purpose") == "source-system" and key.get("source") != source:
        # R15: a source system's key vouches for that source only.
        raise ValidationFailed(
            f"key {command.envelope.key} is registered for source {key.get('source')!r}, "
            f"not {source!r}",
            field="payload.source_system",
        )
    payload.text("schema_version", max_len=50)
    expected = _class_terms(agreement, data_class)["format"]["name"]
    if payload.text("format", max_len=100) != expected:
        raise ValidationFailed(
            f"the agreement's format for {data_class} data is {expected!r}", field="payload.format"
        )
    if payload.has("original_sha256"):
        payload.sha256("original_sha256")
    if form == "continuous":
        series = payload.objects("series", max_items=MAX_SERIES)
        if not series:
            raise ValidationFailed("submit at least one series", field="payload.series")
        _check_series(command, batch, series)
    else:
        records = payload.objects("records", max_items=MAX_RECORDS)
        if not records:
            raise ValidationFailed("submit at least one record", field="payload.records")
        _check_records(command, batch, agreement, data_class, records)


def _corrected_rule(command: Command) -> None:
    batch: Batch = command.subject
    agreement = batch_agreement(command, batch)
    command.require_signer(agreement.cmo)
    payload = command.payload
    if payload.has("supersedes_chunks"):
        payload.only("submission", "supersedes_chunks", "series", "original_sha256")
    else:
        payload.only("submission", "supersedes", "records", "original_sha256")
    _submission_id(payload, batch)
    if payload.has("original_sha256"):
        payload.sha256("original_sha256")
    if payload.has("supersedes_chunks"):
        digests = _superseded_chunks(batch, payload)
        _check_series(command, batch, payload.objects("series", max_items=MAX_SERIES), digests)
        return
    data_class, replaced = _superseded_records(batch, payload)
    if any(batch.is_manual(record_id) for record_id in replaced):
        _require_entrant(command)
    records = payload.objects("records", max_items=MAX_RECORDS)
    _check_records(command, batch, agreement, data_class, records, replaced)


def _superseded_records(batch: Batch, payload: Fields) -> tuple[str, frozenset[str]]:
    ids = payload.texts("supersedes", max_items=MAX_RECORDS)
    if not ids:
        raise ValidationFailed(
            "name the records this correction supersedes", field="payload.supersedes"
        )
    classes: set[str] = set()
    for index, record_id in enumerate(ids):
        field = f"payload.supersedes[{index}]"
        record = batch.records.get(record_id)
        if record is None:
            raise NotFound(f"batch {batch.batch_id} has no record {record_id}", field=field)
        if record["superseded_by"] is not None:
            raise ValidationFailed(
                f"record {record_id} was already superseded by submission "
                f"{record['superseded_by']}",
                field=field,
            )
        if record_id in ids[:index]:
            raise ValidationFailed(f"record {record_id} is listed twice", field=field)
        classes.add(record["class"])
        if len(classes) > 1:
            raise ValidationFailed(
                "one correction supersedes records of one data class", field=field
            )
    return classes.pop(), frozenset(ids)


def _superseded_chunks(batch: Batch, payload: Fields) -> frozenset[str]:
    digests = payload.items("supersedes_chunks", max_items=MAX_RECORDS)
    if not digests:
        raise ValidationFailed(
            "name the chunks this correction supersedes", field="payload.supersedes_chunks"
        )
    classes: set[str] = set()
    for index, digest in enumerate(digests):
        field = f"payload.supersedes_chunks[{index}]"
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValidationFailed("expected a lowercase hex SHA-256", field=field)
        chunk = batch.chunks.get(digest)
        if chunk is None:
            raise NotFound(f"batch {batch.batch_id} has no chunk {digest}", field=field)
        if chunk["superseded_by"] is not None or digest in digests[:index]:
            raise ValidationFailed(
                f"chunk {digest} was already superseded by submission {chunk['superseded_by']}"
                if chunk["superseded_by"]
                else f"chunk {digest} is listed twice",
                field=field,
            )
        classes.add(batch.chunk_class(digest))
        if len(classes) > 1:
            raise ValidationFailed(
                "one correction supersedes chunks of one data class", field=field
            )
    return frozenset(digests)


def _acknowledged_rule(command: Command) -> None:
    batch: Batch = command.subject
    agreement = batch_agreement(command, batch)
    require_agreement_party(command, agreement)
    command.require_signer(agreement.sponsor)
    payload = command.payload
    ids = payload.texts("records", max_items=MAX_RECORDS)
    if not ids:
        raise ValidationFailed("name the records you acknowledge", field="payload.records")
    for index, record_id in enumerate(ids):
        field = f"payload.records[{index}]"
        record = batch.records.get(record_id)
        if record is None:
            raise NotFound(f"batch {batch.batch_id} has no record {record_id}", field=field)
        is_event = agreement.form_of(record["class"]) == "event"
        if not is_event or record["event_kind"] not in ACKNOWLEDGEABLE_KINDS:
            kind = (record["event_kind"] if is_event else None) or f"{record['class']} data"
            raise ValidationFailed(
                f"record {record_id} is {kind}; only event records of kind "
                f"{', '.join(ACKNOWLEDGEABLE_KINDS)} are acknowledged",
                field=field,
            )
        if record["superseded_by"] is not None:
            raise ValidationFailed(
                f"record {record_id} was withdrawn by submission {record['superseded_by']}",
                field=field,
            )
        if record["acknowledged_version"] == record["version"] or record_id in ids[:index]:
            raise ValidationFailed(
                f"record {record_id} (version {record['version']}) is already acknowledged",
                field=field,
            )


def _purged_rule(command: Command) -> None:
    batch: Batch = command.subject
    command.require_signer(batch_agreement(command, batch).cmo)
    commitments = command.payload.texts("commitments", max_items=MAX_RECORDS)
    if not commitments:
        raise ValidationFailed(
            "name the commitments whose openings to purge", field="payload.commitments"
        )
    for index, commitment in enumerate(commitments):
        field = f"payload.commitments[{index}]"
        found = batch.commitments.get(commitment)
        if found is None:
            raise NotFound(
                f"batch {batch.batch_id} has no committed element {commitment}", field=field
            )
        if found["purged"] or commitment in commitments[:index]:
            raise ValidationFailed(
                f"the opening of {commitment} (record {found['record']} element "
                f"{found['element']}) is already purged"
                if found["purged"]
                else f"commitment {commitment} is listed twice",
                field=field,
            )
    command.openings.purge(commitments)


register(
    EventSpec(
        "BatchRegistered",
        Batch,
        frozenset({"authored"}),
        _registered_rule,
        signers="the agreement's CMO (party key); the agreement must be in force",
        description="registers a batch of one of the agreement's products at one of its sites",
    ),
    EventSpec(
        "BatchEnded",
        Batch,
        frozenset({"completed"}),
        _ended_rule,
        apply="_ended",
        signers="the agreement's CMO (party key)",
        description="records when the batch ended (once); delivery deadlines count from it",
    ),
    EventSpec(
        "DataSubmitted",
        Batch,
        frozenset({"submitted"}),
        _submitted_rule,
        apply="_data_submitted",
        source_keys=True,
        signers="the agreement's CMO, with a party key or a registered source-system key "
        "(values entered by hand, source_system manual: a person of the CMO); the agreement "
        "must be in force",
        description="delivers discrete results, event records or continuous chunks in the "
        "agreement's format",
    ),
    EventSpec(
        "DataCorrected",
        Batch,
        frozenset({"corrected"}),
        _corrected_rule,
        apply="_data_corrected",
        reason_required=True,
        signers="the agreement's CMO (party key; for values entered by hand, a person)",
        description="supersedes records or chunks with replacements; the originals stay readable",
    ),
    EventSpec(
        "DataAcknowledged",
        Batch,
        frozenset({"acknowledged"}),
        _acknowledged_rule,
        apply="_data_acknowledged",
        signers="the agreement's sponsor (party key)",
        description="acknowledges deviation, OOS and OOT event records (R23)",
    ),
    EventSpec(
        "ElementsPurged",
        Batch,
        frozenset({"purged"}),
        _purged_rule,
        apply="_elements_purged",
        reason_required=True,
        signers="the agreement's CMO, whose confidential elements they are (party key)",
        description="deletes the openings of committed confidential elements; the commitments "
        "and the log stay",
    ),
)
