"""Export a batch's evidence bundle from the GraphQL API, as any party may ask it.

``build_bundle(client, batch, key_id=...)`` needs only an object with a
``graphql(query, variables)`` method that answers the ``data`` of a request made as the
exporter and raises on refusal (an exception with a ``code`` attribute such as
``FORBIDDEN``): ``clients.client.LedgerClient`` over signed HTTP, or the console's
session running the served schema. It reads ``traceBatch``, the batch's data tables,
every event of the batch and the key events of its signers, each with its leaf bytes and
an inclusion proof to one signed checkpoint, and answers every file of the bundle
(:mod:`ledger.evidence.layout`) with its manifest, unsigned: the exporter signs
:attr:`Unsigned.message` with its party key wherever that key is (a keystore, a browser)
and :meth:`Unsigned.signed` adds ``manifest.sig``. The bundle holds the exporter's own
key events, so that a verifier learns that key from the log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ledger.clock import SYSTEM, Clock
from ledger.domain.key_history import ALL_KEY_EVENTS
from ledger.domain.limits import tag_for
from ledger.domain.subjects import person_subject
from ledger.errors import LedgerError
from ledger.evidence.layout import (
    CHECKPOINT,
    CPV_FILE,
    DATA,
    FORMAT,
    MANIFEST,
    MANIFEST_SIG,
    NOTARY_VKEY,
    REPORT,
    TRACE,
    event_file,
    json_bytes,
    manifest_digests,
    manifest_message,
    signature_document,
)
from ledger.evidence.report import render_report
from ledger.keys import decode_public_key, key_id
from ledger.timeutil import format_utc

__all__ = [
    "CPV",
    "TYPED_POINTS",
    "EvidenceRefused",
    "GraphQLClient",
    "Progress",
    "Unsigned",
    "build_bundle",
    "check_signing_key",
    "cpv_answer",
]

#: ``progress(done, total)`` after each event is fetched.
Progress = Callable[[int, int], None]


class GraphQLClient(Protocol):
    """What the exporter needs of a client: one GraphQL request as the exporter."""

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> Any: ...


class EvidenceRefused(LedgerError):
    """The bundle cannot be exported as asked; the message says what to do."""

    code = "EVIDENCE_REFUSED"


TRACE_QUERY = """
query($b: String!) {
  me { id }
  ledger { origin notaryKey }
  traceBatch(id: $b) {
    position answeredAt
    checkpoint { note treeSize rootHash signedAt cosignatures { witness time line } }
    batch {
      id subject agreementId product site startedAt endedAt registeredAt registeredBy
      submissions {
        id dataClass correction sourceSystem schemaVersion format originalSha256
        supersedes reason signer key recordedAt
      }
    }
    agreement { id title sponsor cmo status termsVersion effectiveFrom }
    termsInForce { version effectiveFrom terms inForce }
    parameterLimits {
      parameterId name kind
      versions {
        version effectiveFrom revision unit target status rationale inForce
        alert { low high } action { low high }
      }
    }
    grants {
      id grantor grantee dataClasses parameters batches windowFrom windowUntil validFrom
      validUntil grantedAt purpose includeConfidential status revokedAt revokedBy revokeReason
    }
    events {
      position leafIndex subject version type signer person printedName key meaning reason
      signedAt
      recordedAt
    }
  }
}
"""
_RECORD = (
    "id version status submission supersededBy recordedAt "
    "confidential { element value commitment salt purged }"
)
DISCRETE_QUERY = f"""
query($b: String!) {{ batch(id: $b) {{ discrete(includeSuperseded: true) {{
  {_RECORD} parameter value unit sampledAt method masked }} }} }}
"""
EVENTS_QUERY = f"""
query($b: String!) {{ batch(id: $b) {{ events(includeSuperseded: true) {{
  {_RECORD} kind startedAt endedAt severity description acknowledgedAt acknowledgedBy masked
}} }} }}
"""
PARAMETERS_QUERY = """
query($a: ID!) {
  parameters(agreementId: $a) {
    id name kind unit state
    limitsHistory {
      version effectiveFrom revision unit target status inForce
      alert { low high } action { low high }
    }
  }
}
"""
TAGS_QUERY = "query($b: String!) { batch(id: $b) { tags { tag first last points } } }"
_REPORTING = "reportDue reportedBy reportedAt reporting"
EXCURSIONS_QUERY = f"""
query($b: String!) {{ batch(id: $b) {{
  excursions {{
    record {{ id parameter value unit sampledAt limitsVersion }} evaluation {_REPORTING}
  }}
  seriesExcursions {{ tag limitsVersion evaluation first last count worst {_REPORTING} }}
}} }}
"""
ADMITTED_QUERY = """
query($after: String) {
  auditTrail(filter: {type: "PartyAdmitted"}, first: 200, after: $after) {
    edges { node { leafIndex subject } } pageInfo { hasNextPage endCursor }
  }
}
"""
SUBJECT_QUERY = """
query($s: ID!, $after: String) {
  auditTrail(filter: {subject: $s}, first: 200, after: $after) {
    edges { node { leafIndex subject version type } } pageInfo { hasNextPage endCursor }
  }
}
"""
_CPV_INDEX = "value interval { lower upper confidence }"
CPV = f"""
query(
  $a: ID!, $p: String!, $b: String!, $f: DateTime, $t: DateTime, $k: Int, $s: CpvStatistic
) {{
  cpv(
    agreementId: $a, parameter: $p, baseline: $b, validFrom: $f, validTo: $t, knownAt: $k,
    statistic: $s
  ) {{
    agreementId parameter parameterId unit baseline baselineId baselineVersion baselineBatches
    validFrom validTo knownAt chart statistic tag subgroupSize sigma
    location {{ centre lower upper }} dispersion {{ centre lower upper }}
    pointsJson
    violations {{ rule name batches indexes }}
    capability {{
      limitsVersion lsl usl batches n mean sigmaWithin sigmaOverall withinMethod
      cp {{ {_CPV_INDEX} }} cpk {{ {_CPV_INDEX} }} pp {{ {_CPV_INDEX} }} ppk {{ {_CPV_INDEX} }}
      normality {{ statistic adjustedStatistic pValue method }} warnings
    }}
    warnings inputsDigest checkpoint {{ treeSize rootHash }}
  }}
}}
"""
TYPED_POINTS = """points {
      index batch validAt value dispersion limitsVersion
      records { recordId value limitsVersion }
      summary {
        tag dataClass first last count mean min max timeOutsideLimitsMs limitsVersion chunks
      }
    }"""
"""The selection ``pointsJson`` answers as one value: ``CPV.replace("pointsJson",
TYPED_POINTS)`` asks the same analysis with typed points."""


def cpv_answer(answer: Mapping[str, Any]) -> dict[str, Any]:
    """A ``cpv`` answer to :data:`CPV`, its ``pointsJson`` named ``points`` where it stands:
    the members and values of the typed points, served as one JSON value (at a thousand
    batches, completing every point and result as a GraphQL object costs most of the
    answer)."""
    return {("points" if key == "pointsJson" else key): value for key, value in answer.items()}


EVENT_QUERY = """
query($i: Int!, $n: Int!) {
  event(leafIndex: $i) {
    position leafIndex envelope signature recordedAt leafBytes softwareVersion schemaVersion
    inclusionProof(treeSize: $n) { leafIndex treeSize hashes }
  }
}
"""
PARTY_QUERY = "query($i: Int!) { event(leafIndex: $i) { envelope } }"
BASELINES_QUERY = """
query($a: ID!, $after: String) {
  auditTrail(filter: {agreement: $a, type: "BaselineDefined"}, first: 200, after: $after) {
    edges { node { leafIndex subject } } pageInfo { hasNextPage endCursor }
  }
}
"""


def _refusal_code(error: Exception) -> str | None:
    code = getattr(error, "code", None)
    return code if isinstance(code, str) else None


def _optional(client: GraphQLClient, query: str, variables: Mapping[str, Any]) -> Any | None:
    """The answer, or ``None`` when the caller may not read it."""
    try:
        return client.graphql(query, dict(variables))
    except Exception as error:
        if _refusal_code(error) == "FORBIDDEN":
            return None
        raise


class _Export:
    def __init__(
        self, client: GraphQLClient, batch: str, progress: Progress | None, wait: float
    ) -> None:
        self.client = client
        self.checkpoint_wait = wait
        self.batch = batch
        self.progress = progress
        self.withheld: list[dict[str, Any]] = []

    def trace(self) -> dict[str, Any]:
        """The trace, once a signed checkpoint covers every event of it."""
        deadline = time.monotonic() + self.checkpoint_wait
        while True:
            trace = self._trace()
            uncovered = _uncovered(trace)
            if uncovered == []:
                return trace
            if time.monotonic() >= deadline:
                what = (
                    "no checkpoint is signed yet"
                    if uncovered is None
                    else f"events at positions {uncovered} are not yet covered by a signed "
                    "checkpoint"
                )
                raise EvidenceRefused(
                    f"{what}: retry after the next checkpoint", field="checkpoint"
                )
            time.sleep(1.0)

    def _trace(self) -> dict[str, Any]:
        answer = self.client.graphql(TRACE_QUERY, {"b": self.batch})
        trace = answer.get("traceBatch")
        if trace is None:
            raise EvidenceRefused(f"batch {self.batch} is not visible to you", field="batch")
        agreement = {"a": trace["agreement"]["id"]}
        parameters = _optional(self.client, PARAMETERS_QUERY, agreement)
        return {
            "me": answer["me"]["id"],
            "ledger": answer["ledger"],
            **trace,
            "parameters": None if parameters is None else parameters["parameters"],
        }

    def data(self) -> dict[str, Any]:
        tables: dict[str, Any] = {}
        for name, query, member in (
            ("discrete", DISCRETE_QUERY, "discrete"),
            ("events", EVENTS_QUERY, "events"),
            ("tags", TAGS_QUERY, "tags"),
        ):
            answer = _optional(self.client, query, {"b": self.batch})
            tables[name] = None if answer is None else answer["batch"][member]
            if answer is None:
                self.withheld.append({"data": name, "reason": "FORBIDDEN"})
        excursions = _optional(self.client, EXCURSIONS_QUERY, {"b": self.batch})
        tables["excursions"] = None if excursions is None else excursions["batch"]
        return tables

    def cpv(self, trace: Mapping[str, Any], data: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The ``cpv`` analysis, as of the trace's position, of each parameter the batch has
        current results for (or a continuous tag measuring it: the batch means), against
        each baseline of the agreement for that parameter."""
        measured = {
            row["parameter"]
            for row in data.get("discrete") or []
            if row.get("status") == "current" and row.get("value") is not None
        }
        tags = [str(row["tag"]) for row in data.get("tags") or []]
        agreement = trace["agreement"]["id"]
        analyses = []
        for parameter, name in self._baselines(agreement):
            statistic = None
            if parameter not in measured:
                if tag_for(parameter, tags) is None:
                    continue
                statistic = "MEAN"
            position = trace["position"]
            asked = {"a": agreement, "p": parameter, "b": name, "k": position, "s": statistic}
            try:
                analyses.append(cpv_answer(self.client.graphql(CPV, asked)["cpv"]))
            except Exception as error:
                code = _refusal_code(error)
                if code is None:
                    raise
                self.withheld.append({"cpv": f"{parameter} / {name}", "reason": code})
        return analyses

    def _baselines(self, agreement: str) -> list[tuple[str, str]]:
        """``(parameter, name)`` of each baseline of the agreement the exporter may read."""
        found = []
        try:
            entries = self._pages(BASELINES_QUERY, {"a": agreement})
        except Exception as error:
            code = _refusal_code(error)
            if code is None:
                raise
            self.withheld.append({"cpv": "the agreement's baselines", "reason": code})
            return []
        for entry in entries:
            event = _optional(self.client, PARTY_QUERY, {"i": entry["leafIndex"]})
            if event is not None:
                payload = event["event"]["envelope"]["payload"]
                found.append((str(payload["parameter"]), str(payload["name"])))
        return sorted(set(found))

    def key_entries(
        self, signers: Iterable[str], persons: Iterable[tuple[str, str]] = ()
    ) -> list[dict[str, Any]]:
        """The audit entries of the key events of ``signers`` (besides the notary) and
        of ``persons`` (``(party, person)``) who signed for them."""
        wanted = set(signers) - {"notary"}
        parties = self._parties(self._pages(ADMITTED_QUERY, {}))
        subjects = [subject for subject, party in parties.items() if party in wanted]
        subjects += [str(person_subject(party, person)) for party, person in sorted(set(persons))]
        entries: list[dict[str, Any]] = []
        for subject in subjects:
            found = self._pages(SUBJECT_QUERY, {"s": subject})
            entries += [e for e in found if e["type"] in ALL_KEY_EVENTS]
        return entries

    def _parties(self, admitted: list[dict[str, Any]]) -> dict[str, str]:
        """Party id by subject, from the PartyAdmitted events (readable by everyone)."""
        parties = {}
        for entry in admitted:
            event = _optional(self.client, PARTY_QUERY, {"i": entry["leafIndex"]})
            if event is not None:
                parties[entry["subject"]] = str(event["event"]["envelope"]["payload"]["party"])
        return parties

    def _pages(self, query: str, variables: dict[str, Any]) -> list[dict[str, Any]]:
        nodes: list[dict[str, Any]] = []
        after = None
        while True:
            trail = self.client.graphql(query, {**variables, "after": after})["auditTrail"]
            nodes.extend(edge["node"] for edge in trail["edges"])
            if not trail["pageInfo"]["hasNextPage"]:
                return nodes
            after = trail["pageInfo"]["endCursor"]

    def events(self, entries: list[tuple[str, dict[str, Any]]], size: int) -> list[Any]:
        files = []
        for done, (role, entry) in enumerate(entries, 1):
            files.append(self._event(role, entry, size))
            if self.progress is not None:
                self.progress(done, len(entries))
        return [f for f in files if f is not None]

    def _event(self, role: str, entry: dict[str, Any], size: int) -> dict[str, Any] | None:
        leaf = entry["leafIndex"]
        answer = _optional(self.client, EVENT_QUERY, {"i": leaf, "n": size})
        if answer is None:
            self.withheld.append(
                {
                    "leaf_index": leaf,
                    "subject": entry["subject"],
                    "version": entry["version"],
                    "type": entry["type"],
                    "reason": "FORBIDDEN",
                }
            )
            return None
        event = answer["event"]
        proof = event["inclusionProof"]
        return {
            "leaf_index": leaf,
            "position": event["position"],
            "role": role,
            "event": _event_fields(event),
            "leaf_bytes": event["leafBytes"],
            "proof": {"tree_size": proof["treeSize"], "hashes": proof["hashes"]},
        }


def _event_fields(event: Mapping[str, Any]) -> dict[str, Any]:
    """An event file's ``event``: what its leaf holds (``written_by`` when recorded, R31)."""
    fields: dict[str, Any] = {
        "envelope": event["envelope"],
        "signature": event["signature"],
        "recorded_at": event["recordedAt"],
    }
    if event.get("softwareVersion") is not None and event.get("schemaVersion") is not None:
        fields["written_by"] = {
            "schema_version": event["schemaVersion"],
            "software_version": event["softwareVersion"],
        }
    return fields


def _uncovered(trace: Mapping[str, Any]) -> list[int] | None:
    """Positions of the trace's events no signed checkpoint covers (``None``: no checkpoint)."""
    checkpoint = trace.get("checkpoint")
    if checkpoint is None:
        return None
    size = int(checkpoint["treeSize"])
    return [e["position"] for e in trace["events"] if not _covered(e, size)]


def _covered(entry: Mapping[str, Any], size: int) -> bool:
    return entry["leafIndex"] is not None and entry["leafIndex"] < size


@dataclass(frozen=True)
class Unsigned:
    """A bundle's files, ``manifest.json`` among them, before the exporter signs it."""

    exporter: str
    manifest: dict[str, Any]
    files: dict[str, bytes]

    @property
    def message(self) -> bytes:
        """What the exporter signs (:func:`ledger.evidence.layout.manifest_message`)."""
        return manifest_message(self.manifest)

    def signed(self, signer_key_id: str, signature: bytes) -> dict[str, bytes]:
        """Every file of the bundle, ``manifest.sig`` with ``signature`` included."""
        document = signature_document(self.exporter, signer_key_id, signature)
        return {**self.files, MANIFEST_SIG: json_bytes(document)}


def build_bundle(
    client: GraphQLClient,
    batch: str,
    *,
    key_id: str,
    progress: Progress | None = None,
    checkpoint_wait: float = 30.0,
    clock: Clock = SYSTEM,
) -> Unsigned:
    """Every file of ``batch``'s bundle as ``client``'s party may read it, unsigned.

    ``key_id`` is the key that will sign the manifest: refused (``EvidenceRefused``, field
    ``key``) unless the log up to the checkpoint shows it a party key of the exporter,
    not revoked, so that ``verify-bundle`` can trust it. Waits up to ``checkpoint_wait``
    seconds for a signed checkpoint covering the batch's latest events; ``clock`` dates
    the export.
    """
    export = _Export(client, batch, progress, checkpoint_wait)
    trace = export.trace()
    size = int(trace["checkpoint"]["treeSize"])
    data = export.data()
    analyses = export.cpv(trace, data)
    batch_entries = [("batch", e) for e in trace["events"]]
    signers = {e["signer"] for e in trace["events"]} | {trace["me"]}
    signers |= {c["witness"] for c in trace["checkpoint"]["cosignatures"]}
    persons = [(e["signer"], e["person"]) for e in trace["events"] if e.get("person")]
    key_entries = [("key", e) for e in export.key_entries(signers, persons) if _covered(e, size)]
    events = export.events(
        sorted(batch_entries + key_entries, key=lambda p: p[1]["leafIndex"]), size
    )
    check_signing_key(events, trace["me"], key_id, size)
    files = {event_file(event["leaf_index"]): json_bytes(event) for event in events}
    files[CHECKPOINT] = trace["checkpoint"]["note"].encode("utf-8")
    files[NOTARY_VKEY] = (trace["ledger"]["notaryKey"] + "\n").encode("utf-8")
    files[TRACE] = json_bytes(trace)
    files[DATA] = json_bytes(data)
    files[CPV_FILE] = json_bytes(analyses)
    report = render_report(trace, data, events, export.withheld, analyses)
    files[REPORT] = report.encode("utf-8")
    manifest = {
        "format": FORMAT,
        "origin": trace["ledger"]["origin"],
        "batch": trace["batch"]["id"],
        "tree_size": trace["checkpoint"]["treeSize"],
        "position": trace["position"],
        "exported_by": trace["me"],
        "exported_at": format_utc(clock.now()),
        "withheld": export.withheld,
        "files": manifest_digests(files),
    }
    files[MANIFEST] = json_bytes(manifest)
    return Unsigned(exporter=trace["me"], manifest=manifest, files=files)


def check_signing_key(events: Iterable[Mapping[str, Any]], party: str, kid: str, size: int) -> None:
    """Refuse when the verifier could not trust key ``kid`` with the manifest: it must be
    a party key of ``party`` admitted, and not revoked, in the exported key events."""
    envelopes = [event["event"]["envelope"] for event in events]
    subjects = {
        e["subject"]
        for e in envelopes
        if e["type"] == "PartyAdmitted" and e["payload"].get("party") == party
    }
    mine = [e for e in envelopes if e["subject"] in subjects]
    if any(e["type"] == "KeyRevoked" and e["payload"].get("key") == kid for e in mine):
        raise EvidenceRefused(
            f"key {kid} of {party} is revoked: sign the bundle with a current key of {party}",
            field="key",
        )
    if not any(_adds(e, kid) for e in mine):
        raise EvidenceRefused(
            f"key {kid} is not a party key of {party} in the log up to the checkpoint at tree "
            f"size {size}: sign with a key the log admitted for {party} (one added since: "
            "retry after the next checkpoint)",
            field="key",
        )


def _adds(envelope: Mapping[str, Any], kid: str) -> bool:
    """True when a ``PartyAdmitted`` or ``KeyAdded`` envelope adds party key ``kid``."""
    payload = envelope["payload"]
    if envelope["type"] not in ("PartyAdmitted", "KeyAdded"):
        return False
    if (payload.get("purpose") or "party") != "party":
        return False
    try:
        return key_id(decode_public_key(str(payload.get("public_key")))) == kid
    except LedgerError:
        return False
