"""The demo's story, told through the HTTP API by each party with its own key.

Two sponsors (Northwind, Helios) share one CMO (Contoso). The notary admits the parties;
each sponsor agrees terms with Contoso; Contoso runs Northwind's batches (discrete
results, one-minute temperature, pH and dissolved oxygen, a few deviations) and two
Helios batches. Half-way, a review tightens the dissolved-oxygen limits, which started as
a hypothesis. Then a titer is corrected, the deviations are acknowledged late, Helios's
review is overdue, Northwind opens its process history to Fabrikam for a tech transfer,
an enhancement is claimed, disputed, resolved and disclosed, and the regulator gets a
two-week grant to inspect one batch.

:class:`Story` keeps what the user (and the tests) need to find it all again.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from nacl.signing import SigningKey

from clients.client import Draft, LedgerClient, Submitted
from clients.demo.world import (
    CONFIDENTIAL_ELEMENTS,
    CONTOSO,
    FABRIKAM,
    HELIOS,
    NORTHWIND,
    PARAMETERS,
    PARTIES,
    REGULATOR,
    TAGS,
    BatchPlan,
    agreement_terms,
    continuous_series,
    data_format,
    deviation_records,
    discrete_records,
    parameter_payload,
    plan_batches,
)
from ledger.clock import SYSTEM
from ledger.domain.commitments import Opening, commit_records, commitment_of
from ledger.domain.parties import NOTARY
from ledger.domain.reviews import add_months
from ledger.domain.subjects import batch_subject, parameter_subject, party_subject
from ledger.keys import encode_public_key
from ledger.timeutil import format_utc

__all__ = ["Story", "StoryTeller"]

DO = "dissolved oxygen"
ACK = "acknowledged"
HELIOS_BATCHES = 2
INSPECTION_DAYS = 14
_TIMEOUT = 120.0
DOSSIER = (
    b"Feed strategy B (confidential dossier CTS-ENH-0042)\n"
    b"Second glucose bolus of 4 g/L on day 5; DO set point 45 %; harvest on day 14.\n"
    b"Result over 6 runs: titer 5.1 g/L (+12 %), HMW unchanged.\n"
)


@dataclass
class Story:
    """What the story recorded, by name."""

    agreements: dict[str, str] = field(default_factory=dict)
    batches: list[str] = field(default_factory=list)
    helios_batches: list[str] = field(default_factory=list)
    deviation_batches: list[str] = field(default_factory=list)
    corrected_batch: str = ""
    inspected_batch: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    grants: dict[str, str] = field(default_factory=dict)
    enhancement: str = ""
    dossier_sha256: str = ""
    positions: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


Progress = Callable[[str, int], None]

MIGRATED_TERMS = timedelta(days=30)
"""How long before the story the agreements were in force on paper."""
MIGRATION = "migrated from the paper quality agreement and its approved limits"


class StoryTeller:
    """Plays the story against a running server; ``progress(step, batches_done)``."""

    def __init__(
        self,
        url: str,
        notary_key: SigningKey,
        keys: dict[str, SigningKey],
        *,
        batches: int,
        run_minutes: int,
        progress: Progress | None = None,
    ) -> None:
        self.url = url
        self.keys = keys
        self.clients = {
            party: LedgerClient(url, party, key, timeout=_TIMEOUT) for party, key in keys.items()
        }
        self.notary = LedgerClient(url, NOTARY, notary_key, timeout=_TIMEOUT)
        self.story = Story()
        self.now = SYSTEM.now()
        self.count, self.minutes = batches, run_minutes
        self._progress = progress or (lambda step, done: None)
        self._submissions: dict[str, str] = {}
        self._last = 0

    def close(self) -> None:
        for client in [self.notary, *self.clients.values()]:
            client.close()

    def __getitem__(self, party: str) -> LedgerClient:
        return self.clients[party]

    def _note(self, submitted: Submitted | list[Submitted]) -> int:
        """Remember the last position written; return it."""
        last = submitted[-1] if isinstance(submitted, list) else submitted
        self._last = max(self._last, last.position)
        return last.position

    def tell(self) -> Story:
        """Record the whole story; returns what it recorded."""
        self._step("admitting the parties", self.admit_parties)
        self._step("agreeing the terms", self.agree)
        self._step("defining the parameters", self.define_parameters)
        self._step("running two Helios batches", self.helios_batches)
        plans = self._northwind_plans()
        half = max(1, len(plans) // 2)
        self.run_batches(plans[:half])
        self._step("six-month review: DO limits tightened", self.review_and_tighten)
        self.run_batches(plans[half:])
        self._step("correcting a titer", self.correct_titer)
        self._step("acknowledging the deviations", self.acknowledge_deviations)
        self._step("recording Helios's last review", self.helios_overdue_review)
        self._step("tech transfer: Northwind opens NWB-101 to Fabrikam", self.tech_transfer)
        self._step("enhancement: claim, dispute, resolve, disclose", self.enhancement)
        self._step("inspection: the regulator's two-week grant", self.inspection)
        return self.story

    def _step(self, name: str, action: Callable[[], None]) -> None:
        action()
        self._progress(name, len(self.story.batches))

    # -- parties and agreements ------------------------------------------------------
    # The story's agreements and limits were in force on paper before the ledger: they are
    # recorded as migrated, effective from a month before, so every batch's trace names them.

    def admit_parties(self) -> None:
        drafts = [
            Draft(
                "PartyAdmitted",
                str(party_subject(party)),
                {
                    "party": party,
                    "legal_name": legal_name,
                    "role": role,
                    "public_key": encode_public_key(self.keys[party]),
                },
                "approved",
            )
            for party, (legal_name, role) in PARTIES.items()
        ]
        self._note(self.notary.submit_many(drafts))

    def agree(self) -> None:
        for sponsor in (NORTHWIND, HELIOS):
            agreement = uuid.uuid4()
            payload = {"terms": agreement_terms(sponsor)}
            self._note(
                self[sponsor].submit("AgreementProposed", agreement, payload, meaning="authored")
            )
            signed = {"effective_from": format_utc(self.now - MIGRATED_TERMS)}
            self._note(
                self[CONTOSO].submit(
                    "AgreementSigned", agreement, signed, meaning="signed", reason=MIGRATION
                )
            )
            self.story.agreements[sponsor] = str(agreement)

    def define_parameters(self) -> None:
        a1 = self.story.agreements[NORTHWIND]
        drafts = []
        for name in PARAMETERS:
            subject = parameter_subject(uuid.UUID(a1), name)
            self.story.parameters[name] = str(subject)
            payload = {**parameter_payload(a1, name), "effective_from": self._limits_since()}
            drafts.append(
                Draft("ParameterDefined", str(subject), payload, "authored", reason=MIGRATION)
            )
        self.story.positions["parameters_defined"] = self._note(self[NORTHWIND].submit_many(drafts))
        a2 = self.story.agreements[HELIOS]
        self._note(
            self[HELIOS].submit(
                "ParameterDefined",
                parameter_subject(uuid.UUID(a2), "pH"),
                {**parameter_payload(a2, "pH"), "effective_from": self._limits_since()},
                meaning="authored",
                reason=MIGRATION,
            )
        )

    def _limits_since(self) -> str:
        """Limits agreed on paper a day after the terms, before any batch of the story."""
        return format_utc(self.now - MIGRATED_TERMS + timedelta(days=1))

    # -- batches --------------------------------------------------------------------

    def _northwind_plans(self) -> list[BatchPlan]:
        deviations = frozenset(i for i in (1, 6, 13) if i < self.count)
        return plan_batches(NORTHWIND, self.count, self.minutes, self.now, deviations=deviations)

    def helios_batches(self) -> None:
        plans = plan_batches(
            HELIOS,
            HELIOS_BATCHES,
            self.minutes,
            self.now - timedelta(hours=1),
            deviations=frozenset(),
        )
        for plan in plans:
            supplier = f"Helios-qualified media, lot HX-{plan.index + 9:03d}"
            self._run(plan, HELIOS, supplier, previous_client_batch=None)
            self.story.helios_batches.append(plan.name)

    def run_batches(self, plans: list[BatchPlan]) -> None:
        for plan in plans:
            supplier = f"Lonza media lot {4471 + plan.index}"
            previous = self.story.helios_batches[-1] if self.story.helios_batches else None
            self._run(plan, NORTHWIND, supplier, previous_client_batch=previous)
            self.story.batches.append(plan.name)
            if plan.deviation:
                self.story.deviation_batches.append(plan.name)
            self._progress(f"batch {plan.name}", len(self.story.batches))

    def _run(
        self, plan: BatchPlan, sponsor: str, supplier: str, *, previous_client_batch: str | None
    ) -> None:
        """Register, deliver and end one batch, in one all-or-nothing request."""
        subject = str(batch_subject(plan.name))
        registered = {
            "agreement": self.story.agreements[sponsor],
            "batch": plan.name,
            "product": plan.product,
            "site": "contoso-site-a",
            "started_at": format_utc(plan.start),
        }
        drafts = [Draft("BatchRegistered", subject, registered, "authored")]
        series = continuous_series(plan, list(TAGS))
        drafts.append(self._data(plan, "continuous", series=series))
        drafts.append(self._data(plan, "discrete", records=discrete_records(plan, supplier)))
        if plan.deviation:
            events = deviation_records(plan, previous_client_batch or "none")
            drafts.append(self._data(plan, "event", records=events))
        drafts.append(Draft("BatchEnded", subject, {"ended_at": format_utc(plan.end)}, "completed"))
        self._note(self[CONTOSO].submit_many(drafts))

    def _data(self, plan: BatchPlan, kind: str, **content: Any) -> Draft:
        submission = str(uuid.uuid4())
        self._submissions[f"{plan.name}/{kind}"] = submission
        source = "contoso-pi-historian" if kind == "continuous" else "contoso-lims"
        payload = {
            "submission": submission,
            "kind": kind,
            "source_system": source,
            "schema_version": "1.0",
            "format": data_format(kind),
            **content,
        }
        openings: list[Opening] = []
        if "records" in payload:
            payload["records"], openings = commit_records(payload["records"], CONFIDENTIAL_ELEMENTS)
        subject = str(batch_subject(plan.name))
        return Draft("DataSubmitted", subject, payload, "submitted", openings=tuple(openings))

    # -- review and limits -----------------------------------------------------------

    def review_and_tighten(self) -> None:
        do = uuid.UUID(self.story.parameters[DO])
        self.story.positions["before_review"] = self._head()
        revision = str(uuid.uuid4())
        changes = {"alert": {"low": "35", "high": "50"}, "status": "confirmed"}
        self._note(
            self[CONTOSO].submit(
                "ParameterRevisionProposed",
                do,
                {"revision": revision, "changes": changes},
                meaning="authored",
                reason="six-month review: DO alert limits tightened to 35-50 %, now confirmed",
            )
        )
        self.story.positions["limits_tightened"] = self._note(
            self[NORTHWIND].submit(
                "ParameterRevisionApproved", do, {"revision": revision}, meaning="approved"
            )
        )
        period_end = self.now - timedelta(minutes=5)
        others = [pid for name, pid in self.story.parameters.items() if name != DO]
        body = {
            "agreement": self.story.agreements[NORTHWIND],
            "period_end": format_utc(period_end),
            "outcome": "DO alert limits tightened to 35-50 % and confirmed; other CPPs confirmed.",
            "parameters_confirmed": others,
            "parameters_revised": [str(do)],
            "next_due": format_utc(add_months(period_end, 6)),
        }
        self._review(NORTHWIND, CONTOSO, body)

    def _review(self, by: str, countersigner: str, body: dict[str, Any]) -> int:
        review = uuid.uuid4()
        cosig = self[countersigner].countersign("ReviewCompleted", review, body)
        payload = {**body, "countersignature": cosig}
        return self._note(self[by].submit("ReviewCompleted", review, payload, meaning="completed"))

    def helios_overdue_review(self) -> None:
        period_end = self.now - timedelta(days=200)
        body = {
            "agreement": self.story.agreements[HELIOS],
            "period_end": format_utc(period_end),
            "outcome": "pH limits confirmed; next review agreed for six months on.",
            "next_due": format_utc(self.now - timedelta(days=18)),
        }
        self._review(HELIOS, CONTOSO, body)

    # -- corrections and acknowledgements ----------------------------------------------

    def correct_titer(self) -> None:
        batch = self.story.batches[min(2, len(self.story.batches) - 1)]
        self.story.corrected_batch = batch
        found = self[CONTOSO].graphql(
            'query($b: String!) { batch(id: $b) { discrete(parameters: ["titer at harvest"]) '
            "{ id value unit sampledAt method other confidential { element value } } } }",
            {"b": batch},
        )
        record = found["batch"]["discrete"][0]
        corrected = {
            "id": record["id"],
            "parameter": "titer at harvest",
            "value": f"{float(record['value']) - 0.04:.2f}",
            "unit": record["unit"],
            "sampled_at": record["sampledAt"],
            "method": record["method"],
            **{item["element"]: item["value"] for item in record["confidential"]},
        }
        payload = {
            "submission": str(uuid.uuid4()),
            "supersedes": [record["id"]],
            "records": [corrected],
        }
        self._note(
            self[CONTOSO].correct_data(
                batch,
                payload,
                reason="transcription error: the LIMS value was keyed with two digits swapped",
            )
        )

    def acknowledge_deviations(self) -> None:
        drafts = [
            Draft("DataAcknowledged", str(batch_subject(name)), {"records": [f"{name}-DEV01"]}, ACK)
            for name in self.story.deviation_batches
        ]
        if drafts:
            self._note(self[NORTHWIND].submit_many(drafts))

    # -- grants and the enhancement ----------------------------------------------------

    def tech_transfer(self) -> None:
        grant = uuid.uuid4()
        payload = {
            "agreement": self.story.agreements[NORTHWIND],
            "grantee": FABRIKAM,
            "data_classes": ["discrete", "continuous", "event"],
            "purpose": "tech transfer of NWB-101 to Fabrikam: the full process history",
        }
        self._note(self[NORTHWIND].submit("AccessGranted", grant, payload, meaning="granted"))
        self.story.grants["tech_transfer"] = str(grant)

    def enhancement(self) -> None:
        subject = uuid.uuid4()
        salt = hashlib.sha256(subject.bytes).digest()[:16]
        evidence_batch = self.story.batches[-1]
        claim = {
            "agreement": self.story.agreements[NORTHWIND],
            "title": "Feed strategy B",
            "summary": "A second glucose bolus on day 5 raises titer by about 12 %.",
            "commitment": commitment_of(salt, DOSSIER),
            "parameter_versions": [{"parameter": self.story.parameters[DO], "version": 1}],
            "evidence": [
                {
                    "batch": evidence_batch,
                    "submission": self._submissions[f"{evidence_batch}/discrete"],
                }
            ],
            "ownership_claimed": "cmo",
        }
        self._note(self[CONTOSO].submit("EnhancementClaimed", subject, claim, meaning="authored"))
        self._note(
            self[NORTHWIND].submit(
                "EnhancementDisputed",
                subject,
                {},
                meaning="disputed",
                reason="the day-5 bolus came from Northwind process development (memo PD-118)",
            )
        )
        body = {"owner": "joint"}
        cosig = self[NORTHWIND].countersign("EnhancementResolved", subject, body)
        self._note(
            self[CONTOSO].submit(
                "EnhancementResolved",
                subject,
                {**body, "countersignature": cosig},
                meaning="resolved",
            )
        )
        disclosed = {"dossier": base64.b64encode(DOSSIER).decode(), "salt": salt.hex()}
        self._note(
            self[CONTOSO].submit("EnhancementDisclosed", subject, disclosed, meaning="disclosed")
        )
        self.story.enhancement = str(subject)
        self.story.dossier_sha256 = hashlib.sha256(DOSSIER).hexdigest()

    def inspection(self) -> None:
        """Northwind opens the inspected batch's data, Contoso its confidential elements."""
        inspected = self.story.batches[min(6, len(self.story.batches) - 1)]
        self.story.inspected_batch = inspected
        scope = {
            "agreement": self.story.agreements[NORTHWIND],
            "grantee": REGULATOR,
            "data_classes": ["discrete", "continuous", "event"],
            "batches": [inspected],
            "valid_until": format_utc(self.now + timedelta(days=INSPECTION_DAYS)),
            "purpose": f"inspection of {inspected}: batch record and process data",
        }
        for grantor, name, extra in (
            (NORTHWIND, "inspection", {}),
            (CONTOSO, "inspection_confidential", {"include_confidential": True}),
        ):
            grant = uuid.uuid4()
            payload = {**scope, **extra}
            self._note(self[grantor].submit("AccessGranted", grant, payload, meaning="granted"))
            self.story.grants[name] = str(grant)
        self.story.positions["told"] = self._head()

    def _head(self) -> int:
        """The last log position the story has written."""
        return self._last
