"""A seeded random scenario over every event type, for projection tests and benchmarks.

``Scenario(world, seed).run(events)`` appends about ``events`` signed events through the
real command path: agreements proposed, signed, amended and terminated; grants and
revocations; batches with discrete results, deviations, continuous chunks, corrections
and acknowledgements; parameters and their revisions; enhancement claims through to
disclosure; reviews; change proposals and CAPAs; keys added and revoked. Envelopes are
chained client-side and stored in all-or-nothing batches of random sizes, so pages of many
kinds of events are common.

The scenario keeps a model of what it did, so every envelope it makes is one the ledger
accepts; a refusal is a bug (of the scenario or of the ledger) and is raised.
"""

from __future__ import annotations

import base64
import hashlib
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from nacl.signing import SigningKey

from ledger.domain.commitments import Opening, commit_records, commitment_of
from ledger.domain.formats import MANUAL_SOURCE, encode_chunk
from ledger.domain.grants import TIME_BOXED_ROLES
from ledger.domain.payloads import POLICY_STATEMENT
from ledger.domain.reviews import add_months
from ledger.domain.subjects import (
    baseline_subject,
    batch_subject,
    capa_subject,
    change_subject,
    parameter_subject,
    party_subject,
    person_subject,
)
from ledger.keys import encode_public_key, key_id
from ledger.log.countersign import countersign
from ledger.log.envelope import event_hash, sign_envelope
from ledger.timeutil import format_utc, now_utc
from tests.support.batches import continuous_points, discrete_records, event_records
from tests.support.world import CONFIDENTIAL_ELEMENTS, ORIGIN, World, agreement_terms

__all__ = ["DATA_HEAVY", "SECRET_PREFIX", "Scenario"]

SPONSORS = ("northwind-bio", "helios-tx")
#: The person of each sponsor who reviews audit trails and dispositions batches (R7, R13).
PERSON = "qa.head"
CMOS = ("contoso-cmo", "fabrikam-cmo")
TAGS = ("BR1.TEMP", "BR1.PH", "BR1.DO")
#: Confidential element values all start with this, so a test can look for leaks.
SECRET_PREFIX = "SECRET-"
#: Weights for a production-like log, where batch data dominates (benchmarks use it).
DATA_HEAVY = {"discrete": 40, "events": 10, "continuous": 40, "acknowledge": 6, "end_batch": 4}
# name, kind, unit, target, alert, action, status (WORLD.md)
PARAMETERS: tuple[tuple[str, str, str, str | None, tuple[Any, Any], tuple[Any, Any], str], ...] = (
    ("culture temperature", "CPP", "Cel", "37.0", ("36.8", "37.2"), ("36.5", "37.5"), "confirmed"),
    ("pH", "CPP", "[pH]", "7.05", ("6.95", "7.15"), ("6.90", "7.20"), "confirmed"),
    ("dissolved oxygen", "CPP", "%", "40", ("32", "55"), ("30", "60"), "hypothesis"),
    ("titer at harvest", "KPI", "g/L", "4.5", ("3.8", None), ("3.0", None), "confirmed"),
    ("endotoxin", "CQA", "[EU]/mL", None, (None, "0.25"), (None, "0.5"), "confirmed"),
)


@dataclass
class Record:
    data: dict[str, Any]
    data_class: str
    version: int = 1
    superseded: bool = False
    acknowledged: int = 0


@dataclass
class Chunk:
    digest: str
    offset: int
    count: int
    superseded: bool = False


@dataclass
class Batch:
    name: str
    started: datetime
    ended: bool = False
    records: dict[str, Record] = field(default_factory=dict)
    chunks: dict[str, list[Chunk]] = field(default_factory=dict)
    submissions: list[str] = field(default_factory=list)
    next_minute: dict[str, int] = field(default_factory=dict)
    serial: int = 0
    commitments: list[str] = field(default_factory=list)
    released: bool = False


@dataclass
class Parameter:
    subject: uuid.UUID
    status: str
    versions: int = 1
    pending: tuple[str, str, str] | None = None
    retired: bool = False
    since: datetime | None = None
    """The latest version's effective time when it was set in the past (history migrated)."""


@dataclass
class Claim:
    subject: uuid.UUID
    claimant: str
    status: str = "claimed"
    salt: bytes = b""
    dossier: bytes = b""
    disclosed: bool = False


@dataclass
class Agreement:
    subject: uuid.UUID
    sponsor: str
    cmo: str
    proposed_by: str
    terms: dict[str, Any]
    status: str = "proposed"
    pending: tuple[str, dict[str, Any]] | None = None
    since: datetime | None = None
    """When the terms took effect, if signed as in force since a past time (a migration)."""
    batches: list[Batch] = field(default_factory=list)
    parameters: dict[str, Parameter] = field(default_factory=dict)
    grants: list[tuple[uuid.UUID, str, bool]] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)

    def other(self, party: str) -> str:
        return self.cmo if party == self.sponsor else self.sponsor


class Scenario:
    """Random, valid activity on a world's ledger; ``seed`` fixes the choices."""

    def __init__(self, world: World, seed: int, weights: dict[str, int] | None = None) -> None:
        self.world = world
        self.weights = dict(weights or {})
        self.rng = random.Random(seed)
        self.chain: dict[uuid.UUID, tuple[int, str]] = {}
        self.pending: list[tuple[dict[str, Any], str, list[dict[str, Any]] | None]] = []
        self.flush_at = 1
        self.appended = 0
        self.agreements: list[Agreement] = []
        self.extra_keys: dict[str, list[SigningKey]] = {}
        self.source_keys: dict[str, SigningKey] = {}
        self.batch_serial = 0
        self.parties = dict.fromkeys(world.actors, True)
        self.persons: dict[str, list[SigningKey]] = {}
        self.toured = False

    # -- driving ------------------------------------------------------------------------

    def run(self, events: int) -> int:
        """Append about ``events`` events (never fewer); return how many were appended.

        The first run starts with :meth:`tour`, so every event type occurs at least once.
        """
        target = self.appended + events
        if not self.toured:
            self.tour()
        steps = self._steps()
        names = list(steps)
        weights = [self.weights.get(n, steps[n][1]) for n in names]
        while self.appended + len(self.pending) < target:
            name = self.rng.choices(names, weights=weights)[0]
            steps[name][0]()
        self.flush()
        return self.appended

    def _steps(self) -> dict[str, tuple[Any, int]]:
        return {
            "propose": (self.propose, 2),
            "sign": (self.sign, 4),
            "amend": (self.amend, 2),
            "decide_amendment": (self.decide_amendment, 2),
            "terminate": (self.terminate, 1),
            "grant": (self.grant, 4),
            "revoke_grant": (self.revoke_grant, 2),
            "register": (self.register, 5),
            "end_batch": (self.end_batch, 3),
            "discrete": (self.discrete, 8),
            "events": (self.events, 4),
            "continuous": (self.continuous, 8),
            "correct_records": (self.correct_records, 3),
            "correct_chunk": (self.correct_chunk, 2),
            "acknowledge": (self.acknowledge, 3),
            "purge": (self.purge, 1),
            "define": (self.define, 4),
            "propose_revision": (self.propose_revision, 3),
            "decide_revision": (self.decide_revision, 3),
            "retire": (self.retire, 1),
            "claim": (self.claim, 2),
            "respond": (self.respond, 2),
            "resolve": (self.resolve, 2),
            "disclose": (self.disclose, 1),
            "review": (self.review, 2),
            "add_key": (self.add_key, 2),
            "revoke_key": (self.revoke_key, 1),
            "admit": (self.admit, 1),
        }

    def tour(self) -> None:
        """Every event type at least once, in an order the ledger accepts."""
        self.toured = True
        for _ in range(3):
            self.propose()
            self.sign()
        self.admit()
        self.define()
        self.define()
        self.propose_revision()
        self.decide_revision(approve=True)
        self.propose_revision()
        self.decide_revision(approve=False)
        self.grant()
        self.revoke_grant()
        self.register()
        self.discrete(confidential=True)
        self.events()
        self.continuous()
        self.correct_records()
        self.correct_chunk()
        self.acknowledge()
        self.purge()
        self.end_batch()
        self.disposition()
        for acknowledge in (True, False):
            self.claim()
            self.respond(acknowledge=acknowledge)
        self.resolve()
        self.disclose()
        self.review()
        for _ in range(3):
            self.add_key()
        self.revoke_key()
        self.alert()
        self.baseline()
        for sign in (True, False):
            self.amend()
            self.decide_amendment(sign=sign)
        self.retire(force=True)
        self.terminate(force=True)
        self.change_control()
        self.capa()
        self.person_keys()
        self.reads_recorded()
        self.verification()
        self.flush()

    def emit(
        self,
        signer: str,
        type_: str,
        subject: uuid.UUID,
        payload: dict[str, Any],
        meaning: str,
        reason: str | None = None,
        key: SigningKey | None = None,
        person: str | None = None,
    ) -> list[Opening]:
        """Sign the subject's next envelope and queue it; flush at the batch size.

        Confidential elements of records are committed; answers their openings."""
        openings: list[Opening] = []
        if type_ in ("DataSubmitted", "DataCorrected") and "records" in payload:
            records, openings = commit_records(
                payload["records"], CONFIDENTIAL_ELEMENTS, salt=lambda: self.rng.randbytes(32)
            )
            payload = {**payload, "records": records}
        version, prev = self.chain.get(subject) or self.world.ledger.next_version(subject)
        signing_key = key or self._key(signer)
        envelope: dict[str, Any] = {
            "ledger": ORIGIN,
            "type": type_,
            "subject": str(subject),
            "version": version,
            "prev": prev,
            "payload": payload,
            "signer": signer,
            "key": key_id(signing_key.verify_key),
            "signed_at": format_utc(now_utc()),
            "meaning": meaning,
        }
        if reason is not None:
            envelope["reason"] = reason
        if person is not None:
            envelope["person"] = person
        signature = sign_envelope(envelope, signing_key)
        self.chain[subject] = (version + 1, event_hash(envelope, signature))
        self.pending.append((envelope, signature, [o.as_json() for o in openings] or None))
        if len(self.pending) >= self.flush_at:
            self.flush()
        return openings

    def flush(self) -> None:
        """Store the queued envelopes, all or none."""
        if self.pending:
            items = [(envelope, signature) for envelope, signature, _ in self.pending]
            self.world.ledger.append_many(items, [openings for *_, openings in self.pending])
            self.appended += len(self.pending)
            self.pending = []
        self.flush_at = self.rng.choice((1, 1, 2, 3, 5, 8, 13))

    def _key(self, party: str) -> SigningKey:
        return self.world.notary.key if party == "notary" else self.world[party].key

    def _uuid4(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def _pick(self, items: list[Any]) -> Any:
        return self.rng.choice(items) if items else None

    def _effective(self) -> list[Agreement]:
        return [a for a in self.agreements if a.status == "effective"]

    # -- agreements ---------------------------------------------------------------------

    def propose(self) -> None:
        sponsor, cmo = self.rng.choice(SPONSORS), self.rng.choice(CMOS)
        terms = agreement_terms(sponsor, cmo)
        terms["ip_rule"] = self.rng.choice(("negotiated", "negotiated", "joint"))
        if self.rng.random() < 0.3:
            terms["data_classes"]["continuous"]["owner"] = cmo
        if self.rng.random() < 0.5:
            terms["data_classes"]["event"]["delivery"]["after"] = "detection"
        proposer = self.rng.choice((sponsor, cmo))
        agreement = Agreement(self._uuid4(), sponsor, cmo, proposer, terms)
        self.emit(proposer, "AgreementProposed", agreement.subject, {"terms": terms}, "authored")
        self.agreements.append(agreement)

    def sign(self) -> None:
        agreement = self._pick([a for a in self.agreements if a.status == "proposed"])
        if agreement is not None:
            signer = agreement.other(agreement.proposed_by)
            if self.rng.random() < 0.4:
                since = now_utc() - timedelta(days=self.rng.randint(1, 60))
                payload = {"effective_from": format_utc(since)}
                reason = "quality agreement in force on paper before it was recorded here"
                self.emit(signer, "AgreementSigned", agreement.subject, payload, "signed", reason)
                agreement.since = since
            else:
                self.emit(signer, "AgreementSigned", agreement.subject, {}, "signed")
            agreement.status = "effective"

    def amend(self) -> None:
        agreement = self._pick([a for a in self._effective() if a.pending is None])
        if agreement is None:
            return
        terms = {**agreement.terms, "title": f"{agreement.terms['title']} (rev)"}
        terms["review_cadence_months"] = self.rng.choice((3, 6, 12))
        terms["deviation_deadline_hours"] = self.rng.choice((12, 24, 48))
        by = self.rng.choice((agreement.sponsor, agreement.cmo))
        reason = "annual update of the quality agreement"
        self.emit(by, "AgreementAmended", agreement.subject, {"terms": terms}, "authored", reason)
        agreement.pending = (by, terms)

    def decide_amendment(self, sign: bool | None = None) -> None:
        agreement = self._pick([a for a in self._effective() if a.pending is not None])
        if agreement is None or agreement.pending is None:
            return
        proposer, terms = agreement.pending
        agreement.pending = None
        if sign if sign is not None else self.rng.random() < 0.7:
            signer = agreement.other(proposer)
            self.emit(signer, "AgreementAmendmentSigned", agreement.subject, {}, "signed")
            agreement.terms = terms
        else:
            signer = self.rng.choice((proposer, agreement.other(proposer)))
            reason = "withdrawn" if signer == proposer else "the cadence is too long"
            self.emit(
                signer, "AgreementAmendmentRejected", agreement.subject, {}, "rejected", reason
            )

    def terminate(self, force: bool = False) -> None:
        live = [a for a in self.agreements if a.status != "terminated"]
        if len(live) < (2 if force else 4):
            return
        agreement = self.rng.choice(live)
        by = self.rng.choice((agreement.sponsor, agreement.cmo))
        reason = "the product moved to another site"
        self.emit(by, "AgreementTerminated", agreement.subject, {}, "revoked", reason)
        agreement.status = "terminated"

    # -- access ---------------------------------------------------------------------------

    def grant(self) -> None:
        agreement = self._pick(self._effective())
        if agreement is None:
            return
        confidential = self.rng.random() < 0.25
        grantor = (
            agreement.cmo if confidential else self.rng.choice((agreement.sponsor, agreement.cmo))
        )
        classes = sorted(
            c
            for c, spec in agreement.terms["data_classes"].items()
            if confidential or spec["owner"] == grantor
        )
        grantees = [p for p in self.parties if p != grantor]
        if not classes or not grantees:
            return
        grantee = self.rng.choice(grantees)
        payload: dict[str, Any] = {
            "agreement": str(agreement.subject),
            "grantee": grantee,
            "data_classes": classes,
            "purpose": f"{grantee} reviews the process history",
        }
        if confidential:
            payload["include_confidential"] = True
        role = self.world.ledger.party(grantee)
        days = self.rng.choice((7, 14, 60))
        if (role is not None and role.role in TIME_BOXED_ROLES) or self.rng.random() < 0.3:
            payload["valid_until"] = format_utc(now_utc() + timedelta(days=days))
        if agreement.batches and self.rng.random() < 0.3:
            payload["batches"] = [self.rng.choice(agreement.batches).name]
        if self.rng.random() < 0.2:
            payload["window"] = {"from": format_utc(now_utc() - timedelta(days=30))}
        subject = self._uuid4()
        self.emit(grantor, "AccessGranted", subject, payload, "granted")
        agreement.grants.append((subject, grantor, False))

    def revoke_grant(self) -> None:
        agreement = self._pick([a for a in self.agreements if any(not g[2] for g in a.grants)])
        if agreement is None:
            return
        index = self.rng.choice([i for i, g in enumerate(agreement.grants) if not g[2]])
        subject, grantor, _ = agreement.grants[index]
        self.emit(grantor, "AccessRevoked", subject, {}, "revoked", "the review is finished")
        agreement.grants[index] = (subject, grantor, True)

    # -- batches and data -------------------------------------------------------------

    def register(self) -> None:
        agreement = self._pick(self._effective())
        if agreement is not None:
            self._register_in(agreement)

    def _register_in(self, agreement: Agreement) -> None:
        self.batch_serial += 1
        product = agreement.terms["products"][0]
        name = f"{product.replace('-', '')}-24-{self.batch_serial:04d}"
        started = now_utc() - timedelta(days=14)
        payload = {
            "agreement": str(agreement.subject),
            "batch": name,
            "product": product,
            "site": agreement.terms["sites"][0],
            "started_at": format_utc(started),
        }
        self.emit(agreement.cmo, "BatchRegistered", batch_subject(name), payload, "authored")
        agreement.batches.append(Batch(name, started))

    def _batch(self, open_only: bool = True) -> tuple[Agreement, Batch] | None:
        choices = [
            (a, b) for a in self._effective() for b in a.batches if not (open_only and b.ended)
        ]
        return self._pick(choices)

    def end_batch(self) -> None:
        found = self._batch()
        if found is None:
            return
        agreement, batch = found
        hours = self.rng.choice((1, 30, 100))
        payload = {"ended_at": format_utc(now_utc() - timedelta(hours=hours))}
        self.emit(agreement.cmo, "BatchEnded", batch_subject(batch.name), payload, "completed")
        batch.ended = True

    def _submit(self, agreement: Agreement, batch: Batch, kind: str, content: Any) -> str:
        submission = str(self._uuid4())
        payload = {
            "submission": submission,
            "kind": kind,
            "source_system": "contoso-lims" if kind != "continuous" else "contoso-pi-historian",
            "schema_version": "1.0",
            "format": agreement.terms["data_classes"][kind]["format"]["name"],
            "series" if kind == "continuous" else "records": content,
        }
        key = None
        if kind == "continuous" and agreement.cmo in self.source_keys and self.rng.random() < 0.5:
            key = self.source_keys[agreement.cmo]
        subject = batch_subject(batch.name)
        opened = self.emit(agreement.cmo, "DataSubmitted", subject, payload, "submitted", key=key)
        batch.commitments.extend(o.commitment for o in opened)
        batch.submissions.append(submission)
        return submission

    def purge(self) -> None:
        """The CMO purges the openings of some of a batch's confidential elements."""
        found = [(a, b) for a in self.agreements for b in a.batches if b.commitments]
        if not found:
            return
        agreement, batch = self.rng.choice(found)
        chosen = self.rng.sample(batch.commitments, min(len(batch.commitments), 2))
        for commitment in chosen:
            batch.commitments.remove(commitment)
        payload = {"commitments": chosen}
        subject = batch_subject(batch.name)
        self.emit(agreement.cmo, "ElementsPurged", subject, payload, "purged", "retention ended")

    def discrete(self, confidential: bool | None = None) -> None:
        found = self._batch(open_only=False)
        if found is None:
            return
        agreement, batch = found
        batch.serial += 1
        extra = {}
        if confidential if confidential is not None else self.rng.random() < 0.5:
            extra["media_lot_supplier"] = f"{SECRET_PREFIX}supplier-{self.rng.randrange(1000)}"
        records = discrete_records(f"R{batch.serial}", **extra)
        for index, record in enumerate(records):
            record["value"] = f"{self.rng.uniform(0, 20):.2f}" if index else record["value"]
        self._submit(agreement, batch, "discrete", records)
        for record in records:
            batch.records[record["id"]] = Record(record, "discrete")

    def events(self) -> None:
        found = self._batch(open_only=False)
        if found is None:
            return
        agreement, batch = found
        batch.serial += 1
        start = now_utc() - timedelta(hours=self.rng.choice((26, 30, 80)))
        records = event_records(f"E{batch.serial}", started_at=start)
        if self.rng.random() < 0.3:
            records[0]["other_client_ref"] = f"{SECRET_PREFIX}client-{self.rng.randrange(1000)}"
        self._submit(agreement, batch, "event", records)
        for record in records:
            batch.records[record["id"]] = Record(record, "event")

    def continuous(self) -> None:
        found = self._batch(open_only=False)
        if found is None:
            return
        agreement, batch = found
        series = []
        for tag in self.rng.sample(TAGS, self.rng.randint(1, 2)):
            offset = batch.next_minute.get(tag, 0)
            minutes = 25 * self.rng.randint(1, 2)
            chunks = []
            for start in range(offset, offset + minutes, 25):
                count = min(25, offset + minutes - start)
                chunk = self._chunk(batch, tag, start, count, seed=start)
                chunks.append(chunk)
                batch.chunks.setdefault(tag, []).append(Chunk(chunk["sha256"], start, count))
            batch.next_minute[tag] = offset + minutes
            series.append({"tag": tag, "chunks": chunks})
        self._submit(agreement, batch, "continuous", series)

    def _chunk(
        self, batch: Batch, tag: str, offset: int, count: int, seed: int, quality: int = 0
    ) -> dict[str, Any]:
        start = batch.started + timedelta(minutes=offset)
        points = continuous_points(tag, start, count, seed=seed)
        if quality:
            # A recalibrated series is re-graded: its chunk never repeats an earlier one.
            points = [(stamp, value, quality) for stamp, value, _ in points]
        return encode_chunk(points)

    def correct_records(self) -> None:
        found = self._pick(
            [
                (a, b)
                for a in self._effective()
                for b in a.batches
                if any(not r.superseded for r in b.records.values())
            ]
        )
        if found is None:
            return
        agreement, batch = found
        data_class = self.rng.choice(
            sorted({r.data_class for r in batch.records.values() if not r.superseded})
        )
        ids = [
            i for i, r in batch.records.items() if r.data_class == data_class and not r.superseded
        ]
        chosen = self.rng.sample(ids, min(len(ids), self.rng.randint(1, 2)))
        replaced = chosen[: self.rng.randint(0, len(chosen))]
        records = [self._replacement(batch.records[i]) for i in replaced]
        if not records:
            batch.serial += 1
            template = self._replacement(batch.records[chosen[0]])
            template["id"] = f"C{batch.serial}-001"
            records = [template]
        payload = {"submission": str(self._uuid4()), "supersedes": chosen, "records": records}
        reason = "transcription error in the LIMS export"
        subject = batch_subject(batch.name)
        opened = self.emit(agreement.cmo, "DataCorrected", subject, payload, "corrected", reason)
        batch.commitments.extend(o.commitment for o in opened)
        batch.submissions.append(payload["submission"])
        for rid in chosen:
            batch.records[rid].superseded = True
        for record in records:
            old = batch.records.get(record["id"])
            version = old.version + 1 if old is not None else 1
            batch.records[record["id"]] = Record(record, data_class, version)

    def _replacement(self, record: Record) -> dict[str, Any]:
        data = dict(record.data)
        if record.data_class == "discrete":
            data["value"] = f"{self.rng.uniform(0, 20):.2f}"
        else:
            data["description"] = f"{data['description']} (corrected)"
        return data

    def correct_chunk(self) -> None:
        found = self._pick(
            [
                (a, b, tag, c)
                for a in self._effective()
                for b in a.batches
                for tag, chunks in b.chunks.items()
                for c in chunks
                if not c.superseded
            ]
        )
        if found is None:
            return
        agreement, batch, tag, old = found
        self.batch_serial += 1
        seed = self.rng.randrange(10**6) + 10**6
        chunk = self._chunk(batch, tag, old.offset, old.count, seed, 100 + self.batch_serial % 50)
        payload = {
            "submission": str(self._uuid4()),
            "supersedes_chunks": [old.digest],
            "series": [{"tag": tag, "chunks": [chunk]}],
        }
        reason = "sensor recalibration"
        subject = batch_subject(batch.name)
        self.emit(agreement.cmo, "DataCorrected", subject, payload, "corrected", reason)
        batch.submissions.append(payload["submission"])
        old.superseded = True
        batch.chunks[tag].append(Chunk(chunk["sha256"], old.offset, old.count))

    def acknowledge(self) -> None:
        found = self._pick(
            [
                (a, b, rid)
                for a in self._effective()
                for b in a.batches
                for rid, r in b.records.items()
                if r.data_class == "event"
                and r.data["kind"] in ("deviation", "oos", "oot")
                and not r.superseded
                and r.acknowledged != r.version
            ]
        )
        if found is None:
            return
        agreement, batch, rid = found
        subject = batch_subject(batch.name)
        self.emit(
            agreement.sponsor, "DataAcknowledged", subject, {"records": [rid]}, "acknowledged"
        )
        batch.records[rid].acknowledged = batch.records[rid].version

    def disposition(self) -> None:
        """An ended batch's deviations acknowledged, its audit trail reviewed as the latest
        checkpoint shows it, and the batch released (R13)."""
        found = self._pick(
            [(a, b) for a in self._effective() for b in a.batches if b.ended and not b.released]
        )
        if found is None:
            return
        agreement, batch = found
        qa = self._person(agreement.sponsor)
        subject = batch_subject(batch.name)
        for rid, record in batch.records.items():
            if (
                record.data_class == "event"
                and record.data["kind"] in ("deviation", "oos", "oot")
                and not record.superseded
                and record.acknowledged != record.version
            ):
                payload = {"records": [rid]}
                self.emit(agreement.sponsor, "DataAcknowledged", subject, payload, "acknowledged")
                record.acknowledged = record.version
        self.flush()  # the reviewed checkpoint holds every event of the batch
        size = self.world.ledger.head()
        reviewed = {
            "batch": batch.name,
            "checkpoint_size": size,
            "checkpoint_root": hashlib.sha256(f"root of {size}".encode()).hexdigest(),
            "outcome": "audit trail reviewed: no unexplained changes",
        }
        sponsor = agreement.sponsor
        self.emit(sponsor, "AuditTrailReviewed", subject, reviewed, "reviewed", None, qa, PERSON)
        released = {"batch": batch.name, "disposition": "released"}
        reason = "reviewed and within specification"
        self.emit(
            sponsor, "BatchDispositioned", subject, released, "dispositioned", reason, qa, PERSON
        )
        batch.released = True

    # -- parameters -----------------------------------------------------------------------

    def define(self) -> None:
        options = [
            (a, p) for a in self._effective() for p in PARAMETERS if p[0] not in a.parameters
        ]
        found = self._pick(options)
        if found is None:
            return
        agreement, (name, kind, unit, target, alert, action, status) = found
        subject = parameter_subject(agreement.subject, name)
        payload: dict[str, Any] = {
            "agreement": str(agreement.subject),
            "name": name,
            "kind": kind,
            "unit": unit,
            "alert": {"low": alert[0], "high": alert[1]},
            "action": {"low": action[0], "high": action[1]},
            "rationale": f"{name}: limits from the process characterisation report",
            "status": status,
        }
        if target is not None:
            payload["target"] = target
        by = self.rng.choice((agreement.sponsor, agreement.cmo))
        since = self._earlier(agreement.since)
        reason = None
        if since is not None:
            payload["effective_from"] = format_utc(since)
            reason = "limits of the paper batch records, in force before migration"
        self.emit(by, "ParameterDefined", subject, payload, "authored", reason)
        agreement.parameters[name] = Parameter(subject, status, since=since)

    def _earlier(self, after: datetime | None) -> datetime | None:
        """Half the time, a past instant after ``after`` (None: not a migration)."""
        latest = now_utc() - timedelta(seconds=2)
        if after is None or after >= latest or self.rng.random() < 0.5:
            return None
        return after + (latest - after) * self.rng.random()

    def _parameter(self, pending: bool) -> tuple[Agreement, Parameter] | None:
        return self._pick(
            [
                (a, p)
                for a in self._effective()
                for p in a.parameters.values()
                if not p.retired and (p.pending is not None) == pending
            ]
        )

    def propose_revision(self) -> None:
        found = self._parameter(pending=False)
        if found is None:
            return
        agreement, parameter = found
        self.batch_serial += 1
        changes: dict[str, Any] = {"rationale": f"revised after review {self.batch_serial}"}
        if self.rng.random() < 0.4:
            changes["status"] = "confirmed" if parameter.status == "hypothesis" else "hypothesis"
        revision = str(self._uuid4())
        by = self.rng.choice((agreement.sponsor, agreement.cmo))
        payload = {"revision": revision, "changes": changes}
        reason = "six-month review of the CPPs"
        self.emit(by, "ParameterRevisionProposed", parameter.subject, payload, "authored", reason)
        parameter.pending = (revision, by, changes.get("status", parameter.status))

    def decide_revision(self, approve: bool | None = None) -> None:
        found = self._parameter(pending=True)
        if found is None:
            return
        agreement, parameter = found
        assert parameter.pending is not None
        revision, proposer, status = parameter.pending
        signer = agreement.other(proposer)
        parameter.pending = None
        if approve if approve is not None else self.rng.random() < 0.75:
            subject = parameter.subject
            payload = {"revision": revision}
            since = self._earlier(parameter.since)
            reason = None
            if since is not None:
                payload["effective_from"] = format_utc(since)
                reason = "approved on paper before migration"
            self.emit(signer, "ParameterRevisionApproved", subject, payload, "approved", reason)
            parameter.versions += 1
            parameter.status = status
            parameter.since = since
        else:
            reason = "not supported by the data"
            payload = {"revision": revision}
            self.emit(
                signer, "ParameterRevisionRejected", parameter.subject, payload, "rejected", reason
            )

    def retire(self, force: bool = False) -> None:
        found = self._parameter(pending=self.rng.random() < 0.5)
        if not force and self.rng.random() < 0.5:
            return
        found = found or self._parameter(pending=False) or self._parameter(pending=True)
        if found is None:
            return
        agreement, parameter = found
        by = self.rng.choice((agreement.sponsor, agreement.cmo))
        self.emit(by, "ParameterRetired", parameter.subject, {}, "retired", "no longer critical")
        parameter.retired = True

    # -- enhancements ---------------------------------------------------------------------

    def claim(self) -> None:
        agreement = self._pick(self._effective())
        if agreement is None:
            return
        claimant = self.rng.choice((agreement.sponsor, agreement.cmo))
        salt = self.rng.randbytes(16)
        dossier = f"feed strategy {self.rng.randrange(10**6)}: titer +12 %".encode()
        versions = [
            {"parameter": str(p.subject), "version": p.versions}
            for p in list(agreement.parameters.values())[:2]
        ]
        evidence = [
            {"batch": b.name, "submission": b.submissions[0]}
            for b in agreement.batches[:2]
            if b.submissions
        ]
        payload = {
            "agreement": str(agreement.subject),
            "title": "Fed-batch feed strategy B",
            "summary": "A second glucose bolus on day 5 raises titer by about 12 %.",
            "commitment": commitment_of(salt, dossier),
            "parameter_versions": versions,
            "evidence": evidence,
            "ownership_claimed": "joint" if agreement.terms["ip_rule"] == "joint" else "cmo",
        }
        subject = self._uuid4()
        self.emit(claimant, "EnhancementClaimed", subject, payload, "authored")
        agreement.claims.append(Claim(subject, claimant, salt=salt, dossier=dossier))

    def _claim(self, *statuses: str) -> tuple[Agreement, Claim] | None:
        return self._pick(
            [(a, c) for a in self._effective() for c in a.claims if c.status in statuses]
        )

    def respond(self, acknowledge: bool | None = None) -> None:
        found = self._claim("claimed")
        if found is None:
            return
        agreement, claim = found
        other = agreement.other(claim.claimant)
        if acknowledge if acknowledge is not None else self.rng.random() < 0.5:
            self.emit(other, "EnhancementAcknowledged", claim.subject, {}, "acknowledged")
            claim.status = "acknowledged"
        else:
            reason = "the feed change was proposed by the sponsor in 2023"
            self.emit(other, "EnhancementDisputed", claim.subject, {}, "disputed", reason)
            claim.status = "disputed"

    def resolve(self) -> None:
        found = self._claim("acknowledged", "disputed")
        if found is None:
            return
        agreement, claim = found
        by = self.rng.choice((agreement.sponsor, agreement.cmo))
        owner = (
            "joint"
            if agreement.terms["ip_rule"] == "joint"
            else self.rng.choice(("sponsor", "cmo", "joint"))
        )
        body = {"owner": owner}
        other = agreement.other(by)
        cosig = countersign(
            ORIGIN, "EnhancementResolved", str(claim.subject), body, other, self.world[other].key
        )
        payload = {**body, "countersignature": cosig}
        self.emit(by, "EnhancementResolved", claim.subject, payload, "resolved")
        claim.status = "resolved"

    def disclose(self) -> None:
        found = self._pick([(a, c) for a in self.agreements for c in a.claims if not c.disclosed])
        if found is None:
            return
        _, claim = found
        payload = {"dossier": base64.b64encode(claim.dossier).decode(), "salt": claim.salt.hex()}
        self.emit(claim.claimant, "EnhancementDisclosed", claim.subject, payload, "disclosed")
        claim.disclosed = True

    # -- reviews, keys, parties -----------------------------------------------------------

    def review(self) -> None:
        agreement = self._pick(self._effective())
        if agreement is None:
            return
        by = self.rng.choice((agreement.sponsor, agreement.cmo))
        other = agreement.other(by)
        period_end = now_utc() - timedelta(days=self.rng.choice((1, 30, 250)))
        cadence = int(agreement.terms.get("review_cadence_months") or 6)
        names = [str(p.subject) for p in agreement.parameters.values()]
        subject = self._uuid4()
        body: dict[str, Any] = {
            "agreement": str(agreement.subject),
            "period_end": format_utc(period_end),
            "outcome": "DO alert limits tightened to 35-50 %; other CPPs confirmed.",
            "parameters_confirmed": names[:2],
            "parameters_revised": names[2:3],
            "next_due": format_utc(add_months(period_end, cadence)),
        }
        body["countersignature"] = countersign(
            ORIGIN, "ReviewCompleted", str(subject), dict(body), other, self.world[other].key
        )
        self.emit(by, "ReviewCompleted", subject, body, "completed")

    def add_key(self) -> None:
        party = self.rng.choice(sorted(self.parties))
        key = SigningKey(hashlib.sha256(self.rng.randbytes(32)).digest())
        payload: dict[str, Any] = {"public_key": encode_public_key(key), "purpose": "party"}
        if party in CMOS and party not in self.source_keys:
            payload.update(purpose="source-system", source="contoso-pi-historian")
            self.source_keys[party] = key
        else:
            self.extra_keys.setdefault(party, []).append(key)
        self.emit(party, "KeyAdded", party_subject(party), payload, "authored")

    def revoke_key(self) -> None:
        party = self._pick(sorted(p for p, keys in self.extra_keys.items() if keys))
        if party is None:
            return
        key = self.extra_keys[party].pop(self.rng.randrange(len(self.extra_keys[party])))
        payload: dict[str, Any] = {"key": key_id(key.verify_key)}
        if self.rng.random() < 0.5:
            payload["compromised_since"] = format_utc(now_utc() - timedelta(hours=1))
        signer = self.rng.choice((party, "notary"))
        self.emit(signer, "KeyRevoked", party_subject(party), payload, "revoked", "laptop lost")

    def baseline(self) -> None:
        """A CPV baseline defined, revised and its signal acknowledged (R26)."""
        found = self._pick(
            [(a, p) for a in self._effective() for p in a.parameters if not a.parameters[p].retired]
        )
        if found is None:
            return
        agreement, parameter = found
        while len(agreement.batches) < 3:
            self._register_in(agreement)
        names = [batch.name for batch in agreement.batches]
        subject = baseline_subject(agreement.subject, parameter, f"PPQ-{self.batch_serial}")
        defined = {
            "agreement": str(agreement.subject),
            "parameter": parameter,
            "name": f"PPQ-{self.batch_serial}",
            "batches": names[:2],
        }
        self.emit(agreement.sponsor, "BaselineDefined", subject, defined, "authored")
        revised = {"batches": names[:3]}
        reason = "the third PPQ batch completes the baseline"
        self.emit(agreement.cmo, "BaselineRevised", subject, revised, "authored", reason)
        digest = self.rng.randbytes(32).hex()
        acknowledged = {"baseline": str(subject), "inputs_digest": digest, "comment": "seen"}
        self.emit(agreement.cmo, "CpvSignalAcknowledged", subject, acknowledged, "acknowledged")

    def alert(self) -> None:
        """The notary's SecurityAlert for a party locked after failed sign-ins (R9)."""
        party = self._pick(sorted(self.parties))
        payload = {
            "identity": party,
            "failures": 10,
            "window_seconds": 300,
            "locked_until": format_utc(now_utc() + timedelta(minutes=15)),
            "kinds": ["request-signature"],
        }
        reason = f"10 failed sign-in attempts by {party} within 300 s"
        self.emit("notary", "SecurityAlert", self._uuid4(), payload, "alerted", reason)

    def admit(self) -> None:
        if len(self.parties) >= 9:
            return
        self.flush()  # the world admits parties with its own appends
        party = f"inspector-{len(self.parties)}"
        self.world.admit(party, f"Inspector {len(self.parties)}", "auditor")
        self.parties[party] = True
        self.appended += 1

    # -- change control (R22) and CAPA ----------------------------------------------------

    def change_control(self) -> None:
        """A change with EC impact approved, a revision citing it approved after it, the
        change implemented; a change without EC impact rejected (R22)."""
        agreement = next(iter(self._effective()), None)
        if agreement is None:
            return
        names = [n for n, p in agreement.parameters.items() if not p.retired and not p.pending]
        self.batch_serial += 1
        change = f"CC-{self.batch_serial:04d}"
        subject = change_subject(agreement.subject, change)
        proposed = {
            "agreement": str(agreement.subject),
            "change": change,
            "title": "Replace the BR1 sparger",
            "description": "A sintered sparger; the dissolved-oxygen limits follow.",
            "ec_impact": True,
            "reporting_category": "prior-approval",
            "affected_parameters": names[:1],
        }
        self.emit(agreement.cmo, "ChangeProposed", subject, proposed, "authored")
        qa = self._person(agreement.sponsor)
        self.emit(agreement.sponsor, "ChangeApproved", subject, {}, "approved", None, qa, PERSON)
        if names:
            parameter = agreement.parameters[names[0]]
            revision = str(self._uuid4())
            revised = {"revision": revision, "changes": {"rationale": change}, "change": change}
            reason = f"change control {change}"
            subject_of = parameter.subject
            self.emit(
                agreement.cmo, "ParameterRevisionProposed", subject_of, revised, "authored", reason
            )
            approved = {"revision": revision}
            self.emit(
                agreement.sponsor, "ParameterRevisionApproved", subject_of, approved, "approved"
            )
            parameter.versions += 1
            parameter.since = None
        self.emit(agreement.cmo, "ChangeImplemented", subject, {}, "implemented")
        self.batch_serial += 1
        rejected = {
            **proposed,
            "change": f"CC-{self.batch_serial:04d}",
            "title": "Second media supplier",
            "ec_impact": False,
            "reporting_category": "annual-report",
            "affected_parameters": [],
        }
        subject = change_subject(agreement.subject, rejected["change"])
        self.emit(agreement.sponsor, "ChangeProposed", subject, rejected, "authored")
        reason = "the supplier is not qualified"
        qa = self._person(agreement.cmo)
        self.emit(agreement.cmo, "ChangeRejected", subject, {}, "rejected", reason, qa, PERSON)

    def capa(self) -> None:
        """A CAPA against a batch's deviation, OOS or OOT records, opened and closed."""
        found = next(
            (
                (a, b, rid)
                for a in self._effective()
                for b in a.batches
                for rid, r in b.records.items()
                if r.data_class == "event"
                and r.data["kind"] in ("deviation", "oos", "oot")
                and not r.superseded
            ),
            None,
        )
        if found is None:
            agreement = next(iter(self._effective()), None)
            if agreement is None:
                return
            self._register_in(agreement)
            batch = agreement.batches[-1]
            batch.serial += 1
            records = event_records(f"E{batch.serial}")
            self._submit(agreement, batch, "event", records)
            for record in records:
                batch.records[record["id"]] = Record(record, "event")
            found = (agreement, batch, records[0]["id"])
        agreement, batch, record_id = found
        self.batch_serial += 1
        capa = f"CAPA-{self.batch_serial:04d}"
        subject = capa_subject(agreement.subject, capa)
        opened = {
            "agreement": str(agreement.subject),
            "capa": capa,
            "batch": batch.name,
            "records": [record_id],
            "description": "Root cause: chiller trip; add a redundant chiller.",
            "owner": agreement.cmo,
        }
        self.emit(agreement.sponsor, "CapaOpened", subject, opened, "authored")
        closed = {"effectiveness_check": "no excursion in the next five batches"}
        self.emit(agreement.cmo, "CapaClosed", subject, closed, "closed", "action effective")

    # -- persons (R7, R8) -------------------------------------------------------------------

    def _person_key(self, party: str, generation: int) -> SigningKey:
        # Derived, not drawn: persons add no draws to the seeded sequence.
        return SigningKey(hashlib.sha256(f"{party}/{PERSON}/{generation}".encode()).digest())

    def _person(self, party: str) -> SigningKey:
        """The current key of ``party``'s :data:`PERSON`, its head of QA (see
        :meth:`_admit_person`) on first use."""
        if party not in self.persons:
            meanings = ["reviewed", "dispositioned", "approved", "rejected"]
            job = ("Head of Quality Assurance", f"Head of QA of {party}")
            key = self._admit_person(party, PERSON, self._person_key(party, 0), job, meanings)
            self.persons[party] = [key]
        return self.persons[party][-1]

    def _admit_person(
        self,
        party: str,
        person: str,
        key: SigningKey,
        job: tuple[str, str],
        meanings: list[str],
    ) -> SigningKey:
        """``person`` of ``party`` (``job``: function, printed name) admitted with ``key``
        and ``meanings``, identity verified by the notary, the signature policy accepted."""
        subject = person_subject(party, person)
        admitted = {
            "party": party,
            "person": person,
            "printed_name": job[1],
            "job_function": job[0],
            "meanings": meanings,
            "public_key": encode_public_key(key),
        }
        self.emit(party, "PersonAdmitted", subject, admitted, "approved")
        verified = {"person": person, "document": "passport", "key": key_id(key.verify_key)}
        self.emit("notary", "IdentityVerified", subject, verified, "verified")
        accepted = {"person": person, "statement": POLICY_STATEMENT}
        self.emit(
            party, "SignaturePolicyAccepted", subject, accepted, "accepted", None, key, person
        )
        return key

    def person_keys(self) -> None:
        """A sponsor's person adds a new key, then revokes the one it replaces (R8)."""
        party = min(self.persons, default=SPONSORS[0])
        old = self._person(party)
        new = self._person_key(party, len(self.persons[party]))
        subject = person_subject(party, PERSON)
        added = {"public_key": encode_public_key(new)}
        self.emit(party, "PersonKeyAdded", subject, added, "authored", None, old, PERSON)
        revoked = {"key": key_id(old.verify_key)}
        reason = "replaced by a new key"
        self.emit(party, "PersonKeyRevoked", subject, revoked, "revoked", reason, new, PERSON)
        self.persons[party].append(new)

    def reads_recorded(self) -> None:
        """The notary's ReadsRecorded: a Merkle root over a batch of logged reads (R11)."""
        first = self.rng.randint(1, 1000)
        count = self.rng.randint(1, 20)
        payload = {
            "first": first,
            "last": first + count - 1,
            "count": count,
            "root": self.rng.randbytes(32).hex(),
        }
        reason = f"{count} reads of GxP data"
        self.emit("notary", "ReadsRecorded", self._uuid4(), payload, "recorded", reason)

    # -- second-person verification (R17) ---------------------------------------------------

    def _cmo_person(self, party: str, person: str) -> SigningKey:
        """A QC analyst of a CMO who enters and checks data by hand (see
        :meth:`_admit_person`; keys derived, not drawn)."""
        key = SigningKey(hashlib.sha256(f"{party}/{person}/0".encode()).digest())
        if person_subject(party, person) in self.chain:  # admitted before
            return key
        job = ("QC analyst", f"{person} of {party}")
        return self._admit_person(party, person, key, job, ["submitted", "verified"])

    def verification(self) -> None:
        """A person of the CMO types a result of a confirmed parameter in by hand (source
        system ``manual``) and a second person verifies it (R17)."""
        found = next(
            (
                (a, name)
                for a in self._effective()
                for name, p in a.parameters.items()
                if p.status == "confirmed" and not p.retired
            ),
            None,
        )
        if found is None:
            return
        agreement, name = found
        unit, target = next((p[2], p[3]) for p in PARAMETERS if p[0] == name)
        self._register_in(agreement)
        batch = agreement.batches[-1]
        batch.serial += 1
        record = {
            "id": f"M{batch.serial}-001",
            "parameter": name,
            "value": target or "0.1",
            "unit": unit,
            "sampled_at": format_utc(now_utc() - timedelta(hours=2)),
            "method": "read off the instrument display and typed in",
        }
        digest = hashlib.sha256(f"{batch.name}/manual".encode()).digest()
        submission = str(uuid.UUID(bytes=digest[:16], version=4))
        payload = {
            "submission": submission,
            "kind": "discrete",
            "source_system": MANUAL_SOURCE,
            "schema_version": "1.0",
            "format": agreement.terms["data_classes"]["discrete"]["format"]["name"],
            "records": [record],
        }
        cmo, subject = agreement.cmo, batch_subject(batch.name)
        entrant, checker = self._cmo_person(cmo, "qc.entry"), self._cmo_person(cmo, "qc.check")
        self.emit(cmo, "DataSubmitted", subject, payload, "submitted", None, entrant, "qc.entry")
        # Left out of the batch's model: a correction of it is signed by a person, and the
        # random steps correct with the party key.
        batch.submissions.append(submission)
        verified = {"batch": batch.name, "submission": submission, "records": [record["id"]]}
        self.emit(cmo, "DataVerified", subject, verified, "verified", None, checker, "qc.check")
