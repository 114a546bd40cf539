"""``LedgerClient``: a party's signed connection to a ledger's GraphQL API.

Every request is signed with the party's key (RFC 9421, :class:`clients.http_signing.PartyAuth`)
for this ledger's origin: given, or read once unsigned with the notary's key
(``{ ledger { origin notaryKey treeSize } }``) before the first signed request.
:meth:`LedgerClient.submit` fills ``version`` and ``prev`` from ``nextVersion``, signs the
envelope and, when another writer moved the subject first, reads it again and signs again
(at most ``max_retries`` times). Checkpoints are verified against the notary's key, pinned
on first use, and each must be consistent with the largest seen before; inclusion proofs
are verified against a verified checkpoint (:mod:`clients.offline`). Errors are those of
:mod:`clients.errors`.

The methods named after events (``propose_agreement``, ``register_batch``, ...) are thin
over :meth:`~LedgerClient.submit` with the payloads of ``docs/events.md``.
"""

from __future__ import annotations

import base64
import secrets
import ssl
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx2
from nacl.signing import SigningKey

from clients.errors import (
    ClientError,
    NotCheckpointed,
    ProofFailed,
    ServerRefused,
    TransportFailure,
    VersionConflict,
)
from clients.http_signing import PartyAuth
from clients.offline import (
    Checkpoint,
    VerificationError,
    verify_as_of,
    verify_checkpoint,
    verify_consistency_between,
    verify_inclusion_against_checkpoint,
)
from clients.witness import Witness
from ledger.clock import SYSTEM, Clock
from ledger.domain import payloads
from ledger.domain.commitments import Opening, commit_records, commitment_of
from ledger.domain.payloads import build, decode_payload
from ledger.domain.subjects import (
    baseline_subject,
    batch_subject,
    parameter_subject,
    party_subject,
    person_subject,
)
from ledger.errors import LedgerError
from ledger.evidence.export import CPV, cpv_answer
from ledger.keys import decode_public_key, key_id
from ledger.log.countersign import countersign
from ledger.log.envelope import event_hash, sign_envelope
from ledger.log.notes import vkey as note_vkey
from ledger.timeutil import canonical_time, format_utc

__all__ = [
    "Draft",
    "InclusionProof",
    "LedgerClient",
    "Submitted",
    "VerifiedCheckpoint",
    "commit_dossier",
    "review_body",
]

SubjectId = str | uuid.UUID

_SUBMITTED = "position leafIndex recordedAt eventHash purged event { type subject version }"
SUBMIT = f"""
mutation($e: JSON!, $s: String!, $o: [OpeningInput!]) {{
  submitEvent(envelope: $e, signature: $s, openings: $o) {{ {_SUBMITTED} }}
}}
"""
BATCH_TERMS = "query($b: String!) { batch(id: $b) { agreement { terms } } }"
SUBMIT_MANY = f"""
mutation($events: [SignedEnvelopeInput!]!) {{ submitEvents(events: $events) {{ {_SUBMITTED} }} }}
"""
NEXT_VERSION = (
    "query($s: ID!, $p: String) { nextVersion(subject: $s, person: $p) { version prev } }"
)
LEDGER_INFO = "{ ledger { origin notaryKey treeSize } }"
_ENTRY = "position leafIndex subject version type signer key meaning reason signedAt recordedAt"
AUDIT_PAGE = f"""
query($f: AuditFilter, $n: Int!, $after: String) {{
  auditTrail(filter: $f, first: $n, after: $after) {{
    edges {{ node {{ {_ENTRY} agreementId batch person printedName }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""
_CHECKPOINT = "note treeSize rootHash signedAt cosignatures { witness time line }"
CHECKPOINT = f"query($n: Int) {{ checkpoint(treeSize: $n) {{ {_CHECKPOINT} }} }}"
_LOG_EVENT = (
    "position leafIndex type subject version signer key meaning reason signedAt recordedAt "
    "envelope signature eventHash leafBytes"
)
EVENT_AT = f"""
query($after: Int!) {{ log(after: $after, first: 1) {{ events {{ {_LOG_EVENT} }} }} }}
"""
PROOF = """
query($i: Int!, $n: Int) {
  event(leafIndex: $i) { leafIndex leafBytes inclusionProof(treeSize: $n) { treeSize hashes } }
}
"""
CONSISTENCY = """
query($m: Int!, $n: Int) { consistencyProof(fromSize: $m, toSize: $n) { hashes } }
"""
COSIGN = f"""
mutation($n: Int!, $line: String!) {{
  cosignCheckpoint(treeSize: $n, cosignature: $line) {{ {_CHECKPOINT} }}
}}
"""
TRACE = """
query($b: String!) {
  traceBatch(id: $b) {
    position answeredAt
    checkpoint { treeSize rootHash signedAt }
    batch { id subject agreementId product site startedAt endedAt registeredBy }
    agreement { id title sponsor cmo status termsVersion }
    termsInForce { version effectiveFrom }
    parameterLimits { name kind versions { version effectiveFrom unit alert { low high }
      action { low high } } }
    grants { id grantee dataClasses status validFrom validUntil }
    events { position leafIndex type signer person printedName key meaning reason signedAt
      recordedAt }
    corrections { id dataClass reason signer recordedAt supersedes }
    deviations { id kind severity description status acknowledgedBy acknowledgedAt }
  }
}
"""
_AGREEMENT = "id title sponsor cmo status termsVersion effectiveFrom amendmentPending"
AGREEMENT = f"""
query($id: ID!) {{
  agreement(id: $id) {{
    {_AGREEMENT} proposedBy proposedAt terms
    amendments {{ position proposedBy status reason }}
  }}
}}
"""
BATCH = """
query($b: String!) {
  batch(id: $b) {
    id subject agreementId product site startedAt endedAt registeredBy
    agreement { id terms }
    submissions { id dataClass correction sourceSystem format reason signer recordedAt }
  }
}
"""
PARAMETERS = """
query($a: ID!) {
  parameters(agreementId: $a) {
    id name kind unit state limitsVersion pendingRevision
    limitsHistory { version effectiveFrom revision target alert { low high }
      action { low high } status }
    revisions { id proposedBy proposedAt reason changes outcome decidedBy decidedAt }
  }
}
"""
_AS_OF_BODY = f"""
    position time
    proof {{
        position leafIndex leafHash checkpoint {{ note treeSize }}
        inclusion {{ leafIndex treeSize hashes }}
    }}
    parties {{ id role }}
    agreements {{ {_AGREEMENT} }}
"""


@dataclass(frozen=True)
class Draft:
    """One event to sign: :meth:`LedgerClient.submit_many` fills version and prev."""

    type: str
    subject: str
    payload: Mapping[str, Any]
    meaning: str
    reason: str | None = None
    openings: tuple[Opening, ...] = ()


@dataclass(frozen=True)
class Submitted:
    """Where the ledger stored an event (the ``Submitted`` answer)."""

    position: int
    leaf_index: int | None
    event_hash: str
    type: str
    subject: str
    version: int
    recorded_at: str = ""
    purged: tuple[str, ...] = ()

    @classmethod
    def of(cls, answer: Mapping[str, Any]) -> Submitted:
        event = answer["event"]
        return cls(
            purged=tuple(answer.get("purged") or ()),
            position=int(answer["position"]),
            leaf_index=answer.get("leafIndex"),
            event_hash=str(answer["eventHash"]),
            type=str(event["type"]),
            subject=str(event["subject"]),
            version=int(event["version"]),
            recorded_at=str(answer.get("recordedAt") or ""),
        )


@dataclass(frozen=True)
class VerifiedCheckpoint:
    """A checkpoint whose notary signature verified against the pinned key."""

    note: str
    checkpoint: Checkpoint
    signed_at: str
    cosignatures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tree_size(self) -> int:
        return self.checkpoint.size

    @property
    def root_hash(self) -> str:
        """Root hash, base64 (as the API gives it)."""
        return base64.b64encode(self.checkpoint.root_hash).decode("ascii")


@dataclass(frozen=True)
class InclusionProof:
    """Leaf ``leaf_index`` (``leaf_bytes``) is in the tree of ``checkpoint`` by ``hashes``."""

    leaf_index: int
    tree_size: int
    hashes: list[bytes]
    leaf_bytes: bytes
    checkpoint: VerifiedCheckpoint | None


def commit_dossier(dossier: bytes, salt: bytes | None = None) -> tuple[str, str]:
    """``(commitment, salt hex)`` for an enhancement claim's confidential dossier.

    Keep the salt with the dossier: disclosing the dossier later needs both.
    """
    chosen = salt if salt is not None else secrets.token_bytes(32)
    return commitment_of(chosen, dossier), chosen.hex()


def _trusting(ca_file: str | Path) -> ssl.SSLContext:
    """A TLS context that verifies servers against the CA certificates in ``ca_file``."""
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ClientError(
            f"cannot read the CA bundle {ca_file}: {exc}; give a PEM file of CA certificates",
            field="ca_file",
        ) from exc


class LedgerClient:
    """A party's client of one ledger; use it as a context manager or call :meth:`close`."""

    def __init__(
        self,
        url: str,
        party: str,
        key: SigningKey,
        *,
        notary_key: str | None = None,
        origin: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        transport: httpx2.BaseTransport | None = None,
        clock: Clock = SYSTEM,
        ca_file: str | Path | None = None,
        verify: ssl.SSLContext | bool = True,
        person: str | None = None,
        person_key: SigningKey | None = None,
    ) -> None:
        """``ca_file`` is a PEM bundle the server's certificate must chain to (a private CA);
        without it the system's CAs are trusted. ``verify`` is an ``ssl.SSLContext`` to use
        instead (``False`` turns verification off: for tests only).

        With ``person`` and ``person_key``, every envelope names that person of ``party``
        and is signed with the person's key (their electronic signature, R7); requests are
        still signed with ``key``, the party's, since the API authenticates parties."""
        if (person is None) != (person_key is None):
            raise ClientError("give a person and their key, or neither", field="person")
        self.url = url.rstrip("/")
        self.party = party
        self.person = person
        self._envelope_key = person_key or key
        self.key_id = key_id(key.verify_key)
        self.max_retries = max_retries
        self.clock = clock
        self._key = key
        self._notary_key = notary_key
        self._origin = origin
        self._vkey: str | None = None
        self._largest: Checkpoint | None = None
        self._confidential: dict[str, list[str]] = {}
        self._auth = PartyAuth(party, key, origin=origin, clock=clock)
        self._http = httpx2.Client(
            base_url=self.url,
            auth=self._auth,
            timeout=timeout,
            transport=transport,
            verify=verify if ca_file is None else _trusting(ca_file),
        )

    @property
    def signing_key(self) -> SigningKey:
        """The key this client signs its requests and envelopes with."""
        return self._key

    def __enter__(self) -> LedgerClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    # -- transport ---------------------------------------------------------------------

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run one operation; its ``data``, or :class:`ServerRefused` for its first error."""
        if self._auth.origin is None:
            self._load_identity()  # the origin every signature is bound to
        return self._post(query, variables, signed=True)

    def _post(
        self, query: str, variables: Mapping[str, Any] | None, *, signed: bool
    ) -> dict[str, Any]:
        return _data_of(self._answer(query, variables, signed=signed), self.url)

    def _answer(
        self, query: str, variables: Mapping[str, Any] | None, *, signed: bool
    ) -> httpx2.Response:
        body = {"query": query, "variables": dict(variables or {})}
        auth = httpx2.USE_CLIENT_DEFAULT if signed else httpx2.Auth()  # the base Auth adds nothing
        try:
            response = self._http.post("/graphql", json=body, auth=auth)
        except httpx2.TimeoutException as exc:
            raise TransportFailure(
                f"no answer from {self.url} in time: retry, or raise the timeout"
            ) from exc
        except httpx2.HTTPError as exc:
            raise TransportFailure(
                f"cannot reach {self.url}: {exc}; check the URL and that the server runs"
            ) from exc
        return response

    # -- ledger identity ---------------------------------------------------------------

    @property
    def origin(self) -> str:
        """The ledger's origin (the envelopes' ``ledger`` member and what every request is
        signed for), given or read once."""
        if self._origin is None:
            self._load_identity()
        assert self._origin is not None
        return self._origin

    @property
    def notary_vkey(self) -> str:
        """The pinned C2SP verifier key of the notary."""
        if self._vkey is None:
            self._load_identity()
        assert self._vkey is not None
        return self._vkey

    def _load_identity(self) -> None:
        # The ledger field answers unsigned: nothing can be signed before the origin is known.
        info = self._post(LEDGER_INFO, None, signed=False)["ledger"]
        origin = str(info["origin"])
        if self._origin not in (None, origin):
            raise ClientError(
                f"{self.url} serves the ledger {origin!r}, not {self._origin!r}: "
                "check the URL and the origin given",
                field="origin",
            )
        self._origin = self._auth.origin = origin
        pinned = self._notary_key
        if pinned is None:
            self._vkey = str(info["notaryKey"])
        elif pinned.startswith("ed25519:"):
            try:
                self._vkey = note_vkey(self._origin, decode_public_key(pinned, field="notary_key"))
            except LedgerError as exc:
                raise ClientError(
                    f"{exc.message}: pass the notary key as `cmo-ledger init` printed it",
                    field="notary_key",
                ) from exc
        else:
            self._vkey = pinned.strip()

    # -- signing and submitting --------------------------------------------------------

    def next_version(self, subject: SubjectId, person: str | None = None) -> tuple[int, str | None]:
        """The version and ``prev`` the subject's next envelope must carry; ``person`` names
        one of this party's persons whose subject it is (a party that creates no other
        subject may still learn its own persons' subjects)."""
        found = self.graphql(NEXT_VERSION, {"s": str(subject), "p": person})["nextVersion"]
        return int(found["version"]), found["prev"]

    def envelope(
        self,
        draft: Draft,
        version: int,
        prev: str | None,
    ) -> tuple[dict[str, Any], str]:
        """The signed envelope of ``draft`` as version ``version``: ``(envelope, signature)``."""
        envelope: dict[str, Any] = {
            "ledger": self.origin,
            "type": draft.type,
            "subject": str(draft.subject),
            "version": version,
            "prev": prev,
            "payload": dict(draft.payload),
            "signer": self.party,
            "key": key_id(self._envelope_key.verify_key),
            "signed_at": format_utc(self.clock.now()),
            "meaning": draft.meaning,
        }
        if draft.reason is not None:
            envelope["reason"] = draft.reason
        if self.person is not None:
            envelope["person"] = self.person
        try:
            # The ledger's own definition of the payload: a mistake is found before signing.
            decode_payload(draft.type, envelope["payload"])
            return envelope, sign_envelope(envelope, self._envelope_key)
        except LedgerError as exc:
            raise ClientError(
                f"{exc.message}: fix the event before signing", field=exc.field
            ) from exc

    def submit(
        self,
        type: str,
        subject: SubjectId,
        payload: Mapping[str, Any],
        *,
        meaning: str,
        reason: str | None = None,
        openings: Sequence[Opening] = (),
    ) -> Submitted:
        """Sign and store one event as the subject's next version (with the openings of
        its committed confidential elements)."""
        draft = Draft(type, str(subject), payload, meaning, reason, tuple(openings))
        return self.submit_many([draft])[0]

    def submit_many(self, drafts: Sequence[Draft]) -> list[Submitted]:
        """Sign and store ``drafts`` all or none; drafts of one subject are chained in order.

        On ``VERSION_CONFLICT`` the subjects are read again and, if another writer moved
        one of them, everything is signed again (at most ``max_retries`` times).
        """
        if not drafts:
            return []
        conflict: VersionConflict | None = None
        read: dict[str, tuple[int, str | None]] = {}
        for attempt in range(self.max_retries + 1):
            heads = self._heads(drafts)
            # Unchanged heads: no other writer to catch up with, so signing again cannot help.
            if conflict is not None and heads == read:
                raise conflict
            try:
                return self._send(self._sign_chain(drafts, heads))
            except VersionConflict as error:
                conflict, read = error, heads
                time.sleep(0.05 * attempt)
        assert conflict is not None
        raise conflict

    def _heads(self, drafts: Sequence[Draft]) -> dict[str, tuple[int, str | None]]:
        persons: dict[str, str | None] = {}
        for draft in drafts:
            persons[draft.subject] = persons.get(draft.subject) or self._own_person(draft)
        return {subject: self.next_version(subject, person) for subject, person in persons.items()}

    def _own_person(self, draft: Draft) -> str | None:
        """The person whose subject ``draft`` is written to, when it is one of ours."""
        person = draft.payload.get("person")
        if isinstance(person, str) and str(person_subject(self.party, person)) == draft.subject:
            return person
        return None

    def _sign_chain(
        self, drafts: Sequence[Draft], heads: Mapping[str, tuple[int, str | None]]
    ) -> list[tuple[dict[str, Any], str, list[dict[str, str]] | None]]:
        chain = dict(heads)
        signed = []
        for draft in drafts:
            subject = str(draft.subject)
            version, prev = chain[subject]
            envelope, signature = self.envelope(draft, version, prev)
            chain[subject] = (version + 1, event_hash(envelope, signature))
            openings = [o.as_json() for o in draft.openings] or None
            signed.append((envelope, signature, openings))
        return signed

    def _send(
        self, signed: list[tuple[dict[str, Any], str, list[dict[str, str]] | None]]
    ) -> list[Submitted]:
        if len(signed) == 1:
            envelope, signature, openings = signed[0]
            answer = self.graphql(SUBMIT, {"e": envelope, "s": signature, "o": openings})
            return [Submitted.of(answer["submitEvent"])]
        events = [{"envelope": e, "signature": s, "openings": o} for e, s, o in signed]
        answers = self.graphql(SUBMIT_MANY, {"events": events})["submitEvents"]
        return [Submitted.of(answer) for answer in answers]

    def countersign(self, type: str, subject: SubjectId, body: Mapping[str, Any]) -> dict[str, str]:
        """This party's countersignature of ``body`` for the other party's ``type`` event."""
        return countersign(
            self.origin, type, str(subject), body, self.party, self._key, clock=self.clock
        )

    # -- queries -----------------------------------------------------------------------

    def audit_trail(self, *, page_size: int = 100, **filters: Any) -> Iterator[dict[str, Any]]:
        """The audit trail's entries in log order, a page at a time as they are consumed.

        ``filters``: ``subject``, ``agreement``, ``batch``, ``signer``, ``type``, ``from_``
        (recorded at or after) and ``to`` (recorded before); times as RFC 3339 or datetimes.
        """
        wanted = {
            name.rstrip("_"): format_utc(v) if isinstance(v, datetime) else str(v)
            for name, v in filters.items()
            if v is not None
        }
        after: str | None = None
        while True:
            variables = {"f": wanted or None, "n": page_size, "after": after}
            page = self.graphql(AUDIT_PAGE, variables)["auditTrail"]
            if page is None:
                return
            for edge in page["edges"]:
                yield edge["node"]
            if not page["pageInfo"]["hasNextPage"]:
                return
            after = page["pageInfo"]["endCursor"]

    def data_reads(
        self,
        *,
        batch: str | None = None,
        agreement_id: SubjectId | None = None,
        page_size: int = 100,
    ) -> Iterator[dict[str, Any]]:
        """Who read the caller's GxP data, when (R11): the read-access log's rows, oldest
        first, each with the notary's ``ReadsRecorded`` commitment once committed. For the
        data's owner (the batch's CMO) and the notary."""
        after: str | None = None
        while True:
            variables = {
                "b": batch,
                "a": _optional_id(agreement_id),
                "n": page_size,
                "after": after,
            }
            page = self.graphql(DATA_READS, variables)["dataReads"]
            yield from page["reads"]
            if not page["hasNextPage"]:
                return
            after = page["endCursor"]

    def trace_batch(self, batch: str) -> dict[str, Any]:
        """One batch end to end: terms, limits, grants, events, corrections, deviations.

        A part the caller may not see (e.g. deviations, without a grant of the ``event``
        class) is ``None`` and listed in ``withheld`` (:meth:`graphql_parts`) with the
        server's code and reason; the rest is answered.
        """
        data, withheld = self.graphql_parts(TRACE, {"b": batch})
        found = data.get("traceBatch")
        if found is None:
            raise ServerRefused("NOT_FOUND", "batch", f"no batch {batch} that you may see")
        return {**found, "withheld": withheld}

    def graphql_parts(
        self, query: str, variables: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Run one operation that may be answered in part: its ``data`` and, for each part
        the server withheld (a field it answered ``null`` with an error), ``{"part",
        "code", "field", "message"}``; ``part`` is the field's path below the root field,
        e.g. ``deviations``. When the server answered nothing at all, its first error is
        raised as :class:`ServerRefused`."""
        if self._auth.origin is None:
            self._load_identity()
        response = self._answer(query, variables, signed=True)
        try:
            document = response.json()
        except ValueError:
            document = None
        data = document.get("data") if isinstance(document, dict) else None
        errors = document.get("errors") if isinstance(document, dict) else None
        answered = isinstance(data, dict) and any(data.values())
        if response.status_code >= 500 or not errors or not answered:
            return _data_of(response, self.url), []
        withheld = []
        for error in errors:
            extensions = error.get("extensions") or {}
            path = [str(step) for step in error.get("path") or []]
            withheld.append(
                {
                    "part": ".".join(path[1:]) or ".".join(path) or "answer",
                    "code": str(extensions.get("code", "UNKNOWN")),
                    "field": extensions.get("field"),
                    "message": str(error.get("message", "")),
                }
            )
        return dict(data or {}), withheld

    def as_of(
        self,
        *,
        position: int | None = None,
        time: str | datetime | None = None,
        agreement: SubjectId | None = None,
        batch: str | None = None,
    ) -> dict[str, Any]:
        """Parties and agreements (and one agreement's or batch's state) at a past position
        or time; give exactly one of ``position`` and ``time``.

        The answer's ``proof`` (its last event, included in a signed checkpoint) is checked
        against the pinned notary key and the checkpoints seen before; it is ``None`` until a
        checkpoint covers that event. A part the caller may not see (an agreement or batch
        it has no grant for) is ``None`` and listed in ``withheld`` (:meth:`graphql_parts`).
        """
        selection = _AS_OF_BODY
        variables: dict[str, Any] = {
            "p": position,
            "t": format_utc(time) if isinstance(time, datetime) else time,
        }
        declared = "$p: Int, $t: DateTime"
        if agreement is not None:
            declared += ", $a: ID!"
            variables["a"] = str(agreement)
            selection += " agreement(id: $a) { terms termsVersion status }"
            selection += " parameters(agreementId: $a) { name unit limitsVersion status"
            selection += " alert { low high } action { low high } }"
        if batch is not None:
            declared += ", $b: String!"
            variables["b"] = batch
            selection += " batch(id: $b) { id startedAt endedAt submissions { id dataClass"
            selection += " correction recordedAt } }"
        query = f"query({declared}) {{ asOf(position: $p, time: $t) {{ {selection} }} }}"
        data, withheld = self.graphql_parts(query, variables)
        found = dict(data["asOf"] or {})
        if found.get("proof") is not None:
            self._check_as_of(found["proof"])
        return {**found, "withheld": withheld}

    def _check_as_of(self, proof: Mapping[str, Any]) -> None:
        try:
            verified = verify_as_of(proof, self.notary_vkey, origin=self.origin)
        except VerificationError as exc:
            raise ProofFailed(
                f"the as-of answer's proof does not verify: {exc}", field="proof"
            ) from exc
        self._check_consistent(verified.checkpoint)

    def event(self, position: int) -> dict[str, Any]:
        """The stored event at log ``position`` (envelope, signature, leaf bytes)."""
        events = self.graphql(EVENT_AT, {"after": position - 1})["log"]["events"]
        if not events or events[0]["position"] != position:
            raise ServerRefused(
                "NOT_FOUND", "position", f"no event at position {position} that you may read"
            )
        return dict(events[0])

    def agreement(self, agreement_id: SubjectId) -> dict[str, Any]:
        """One agreement with its terms and amendments."""
        found = self.graphql(AGREEMENT, {"id": str(agreement_id)})["agreement"]
        if found is None:
            raise ServerRefused("NOT_FOUND", "id", f"no agreement {agreement_id}")
        return dict(found)

    def batch(self, batch: str) -> dict[str, Any]:
        """One batch with its agreement's terms in force and its submissions."""
        found = self.graphql(BATCH, {"b": batch})["batch"]
        if found is None:
            raise ServerRefused("NOT_FOUND", "batch", f"no batch {batch}: register it first")
        return dict(found)

    def parameters(self, agreement_id: SubjectId) -> list[dict[str, Any]]:
        """An agreement's parameters with their limits history and revisions."""
        return list(self.graphql(PARAMETERS, {"a": str(agreement_id)})["parameters"] or [])

    # -- checkpoints and proofs --------------------------------------------------------

    def checkpoint(self, tree_size: int | None = None) -> VerifiedCheckpoint:
        """The latest signed checkpoint (or the one of ``tree_size``), verified."""
        found = self.graphql(CHECKPOINT, {"n": tree_size})["checkpoint"]
        note = str(found["note"])
        try:
            checkpoint = verify_checkpoint(note, self.notary_vkey, origin=self.origin)
        except VerificationError as exc:
            raise ProofFailed(
                f"the checkpoint is not signed by the pinned notary key: {exc}", field="checkpoint"
            ) from exc
        if checkpoint.size != int(found["treeSize"]):
            raise ProofFailed(
                f"the signed checkpoint is of size {checkpoint.size}, the server said "
                f"{found['treeSize']}",
                field="checkpoint",
            )
        self._check_consistent(checkpoint)
        return VerifiedCheckpoint(
            note, checkpoint, str(found["signedAt"]), list(found["cosignatures"])
        )

    def _check_consistent(self, checkpoint: Checkpoint) -> None:
        """Refuse a checkpoint that is not on one tree with the largest seen so far."""
        seen = self._largest
        if seen is None or seen.size == 0 or checkpoint.size == 0:
            self._largest = checkpoint if seen is None or checkpoint.size > seen.size else seen
            return
        old, new = (seen, checkpoint) if seen.size <= checkpoint.size else (checkpoint, seen)
        proof = [] if old.size == new.size else self.consistency_proof(old.size, new.size)
        try:
            verify_consistency_between(old, new, proof)
        except VerificationError as exc:
            raise ProofFailed(
                f"the checkpoint of size {checkpoint.size} is not consistent with the checkpoint "
                f"of size {seen.size} seen before: the log was rewritten or forked; keep both "
                f"and report it: {exc}",
                field="checkpoint",
            ) from exc
        self._largest = new

    def inclusion_proof(
        self, leaf: int, *, tree_size: int | None = None, verify: bool = True
    ) -> InclusionProof:
        """The inclusion proof of ``leaf``, checked against a verified checkpoint by default."""
        found = self.graphql(PROOF, {"i": leaf, "n": tree_size})["event"]
        proof = found["inclusionProof"]
        if proof is None:
            raise NotCheckpointed(
                f"no signed checkpoint covers leaf {leaf} yet: retry in a few seconds",
                field="leaf",
            )
        result = InclusionProof(
            leaf_index=int(found["leafIndex"]),
            tree_size=int(proof["treeSize"]),
            hashes=[base64.b64decode(h) for h in proof["hashes"]],
            leaf_bytes=base64.b64decode(found["leafBytes"]),
            checkpoint=None,
        )
        if not verify:
            return result
        checkpoint = self.checkpoint(result.tree_size)
        try:
            verify_inclusion_against_checkpoint(
                result.leaf_bytes, result.leaf_index, result.hashes, checkpoint.checkpoint
            )
        except VerificationError as exc:
            raise ProofFailed(str(exc), field="leaf") from exc
        return InclusionProof(
            result.leaf_index, result.tree_size, result.hashes, result.leaf_bytes, checkpoint
        )

    def consistency_proof(self, from_size: int, to_size: int | None = None) -> list[bytes]:
        """RFC 9162 consistency proof hashes from ``from_size`` to ``to_size``."""
        found = self.graphql(CONSISTENCY, {"m": from_size, "n": to_size})["consistencyProof"]
        return [base64.b64decode(h) for h in found["hashes"]]

    def cosign_checkpoint(
        self, tree_size: int | None = None, *, state_file: Path | str
    ) -> VerifiedCheckpoint:
        """Witness the checkpoint of ``tree_size`` (default: latest) and add the cosignature.

        ``state_file`` keeps the last checkpoint this party cosigned: a new one must be
        proven consistent with it, else :class:`ProofFailed` and nothing is sent.
        """
        checkpoint = self.checkpoint(tree_size)
        witness = Witness(self.party, self._key, state_file, self.notary_vkey)
        last = witness.last
        proof: list[bytes] = []
        if last is not None and 0 < last.size < checkpoint.tree_size:
            proof = self.consistency_proof(last.size, checkpoint.tree_size)
        try:
            line = witness.cosign(checkpoint.note, proof)
        except VerificationError as exc:
            raise ProofFailed(str(exc), field="checkpoint") from exc
        answer = self.graphql(COSIGN, {"n": checkpoint.tree_size, "line": line})
        cosigned = answer["cosignCheckpoint"]
        return VerifiedCheckpoint(
            str(cosigned["note"]),
            checkpoint.checkpoint,
            str(cosigned["signedAt"]),
            list(cosigned["cosignatures"]),
        )

    # -- parties and keys --------------------------------------------------------------

    def admit_party(self, party: str, legal_name: str, role: str, public_key: str) -> Submitted:
        """(Notary) admit an organisation with its role and first key."""
        payload = {"party": party, "legal_name": legal_name, "role": role, "public_key": public_key}
        return self.submit("PartyAdmitted", party_subject(party), payload, meaning="approved")

    def add_key(
        self,
        public_key: str,
        *,
        purpose: str = "party",
        source: str | None = None,
        expires_at: str | None = None,
    ) -> Submitted:
        """Add a party key, or a source-system key vouching for ``source``; it expires at
        ``expires_at`` (RFC 3339 UTC), else two years after the ledger records it."""
        payload = _drop_none(
            {
                "public_key": public_key,
                "purpose": purpose,
                "source": source,
                "expires_at": expires_at,
            }
        )
        return self.submit("KeyAdded", party_subject(self.party), payload, meaning="authored")

    def revoke_key(
        self,
        key: str,
        *,
        reason: str,
        compromised_since: str | None = None,
        party: str | None = None,
    ) -> Submitted:
        """Revoke one of this party's keys (the notary may name another ``party``)."""
        payload = _drop_none({"key": key, "compromised_since": compromised_since})
        subject = party_subject(party or self.party)
        return self.submit("KeyRevoked", subject, payload, meaning="revoked", reason=reason)

    # -- agreements --------------------------------------------------------------------

    def propose_agreement(
        self, terms: Mapping[str, Any], *, agreement_id: SubjectId | None = None
    ) -> Submitted:
        """Propose terms; the agreement's id is ``Submitted.subject``."""
        subject = agreement_id or uuid.uuid4()
        payload = {"terms": dict(terms)}
        return self.submit("AgreementProposed", subject, payload, meaning="authored")

    def sign_agreement(
        self,
        agreement_id: SubjectId,
        *,
        effective_from: str | datetime | None = None,
        reason: str | None = None,
    ) -> Submitted:
        """Sign the terms the other party proposed: in force from now, or from an earlier
        ``effective_from`` (a migration from paper; a ``reason`` is then required)."""
        payload = build(
            payloads.TermsSigned, effective_from=_optional_time(effective_from, "effective_from")
        )
        return self.submit(
            "AgreementSigned", agreement_id, payload, meaning="signed", reason=reason
        )

    def amend_agreement(
        self, agreement_id: SubjectId, terms: Mapping[str, Any], *, reason: str
    ) -> Submitted:
        """Propose new terms (the full terms) for the agreement."""
        payload = {"terms": dict(terms)}
        return self.submit(
            "AgreementAmended", agreement_id, payload, meaning="authored", reason=reason
        )

    def sign_amendment(self, agreement_id: SubjectId) -> Submitted:
        """Sign the other party's pending amendment: its terms are in force from now."""
        return self.submit("AgreementAmendmentSigned", agreement_id, {}, meaning="signed")

    def reject_amendment(self, agreement_id: SubjectId, *, reason: str) -> Submitted:
        """Withdraw (proposer) or reject (counterparty) the pending amendment."""
        return self.submit(
            "AgreementAmendmentRejected", agreement_id, {}, meaning="rejected", reason=reason
        )

    def terminate_agreement(self, agreement_id: SubjectId, *, reason: str) -> Submitted:
        """End the agreement, or withdraw a proposal."""
        return self.submit(
            "AgreementTerminated", agreement_id, {}, meaning="revoked", reason=reason
        )

    # -- batches and data --------------------------------------------------------------

    def register_batch(
        self,
        agreement_id: SubjectId,
        batch: str,
        *,
        product: str,
        site: str,
        started_at: str | datetime,
    ) -> Submitted:
        """(CMO) register a batch of one of the agreement's products at one of its sites."""
        payload = build(
            payloads.BatchRegistered,
            agreement=str(agreement_id),
            batch=batch,
            product=product,
            site=site,
            started_at=_time(started_at, "started_at"),
        )
        return self.submit("BatchRegistered", batch_subject(batch), payload, meaning="authored")

    def end_batch(self, batch: str, *, ended_at: str | datetime) -> Submitted:
        """(CMO) record when the batch ended; delivery deadlines count from it."""
        payload = build(payloads.BatchEnded, ended_at=_time(ended_at, "ended_at"))
        return self.submit("BatchEnded", batch_subject(batch), payload, meaning="completed")

    def confidential_elements(self, batch: str) -> list[str]:
        """The confidential elements of the agreement ``batch`` is made under."""
        if batch not in self._confidential:
            found = self.graphql(BATCH_TERMS, {"b": batch})["batch"]
            terms = ((found or {}).get("agreement") or {}).get("terms") or {}
            self._confidential[batch] = [str(e) for e in terms.get("confidential_elements", [])]
        return self._confidential[batch]

    def commit_payload(
        self, batch: str, payload: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[Opening]]:
        """``payload`` with the confidential elements of its records in clear replaced by
        their commitments, and the openings to send beside it."""
        records = payload.get("records")
        if not records:
            return dict(payload), []
        committed, openings = commit_records(records, self.confidential_elements(batch))
        return {**payload, "records": committed}, openings

    def submit_data(self, batch: str, payload: Mapping[str, Any]) -> Submitted:
        """Deliver one ``DataSubmitted`` payload (from ``clients.importers.build_submissions``);
        confidential elements in clear are committed and opened beside the envelope."""
        committed, openings = self.commit_payload(batch, payload)
        subject = batch_subject(batch)
        return self.submit(
            "DataSubmitted", subject, committed, meaning="submitted", openings=openings
        )

    def correct_data(self, batch: str, payload: Mapping[str, Any], *, reason: str) -> Submitted:
        """Supersede records (``supersedes`` + ``records``) or chunks with replacements."""
        committed, openings = self.commit_payload(batch, payload)
        return self.submit(
            "DataCorrected",
            batch_subject(batch),
            committed,
            meaning="corrected",
            reason=reason,
            openings=openings,
        )

    def purge_elements(self, batch: str, commitments: Sequence[str], *, reason: str) -> Submitted:
        """(CMO) Delete the openings of committed confidential elements of ``batch``; the
        answer's ``purged`` is the receipt."""
        payload = {"commitments": list(commitments)}
        subject = batch_subject(batch)
        return self.submit("ElementsPurged", subject, payload, meaning="purged", reason=reason)

    def acknowledge_data(self, batch: str, records: Sequence[str]) -> Submitted:
        """(Sponsor) acknowledge deviation, OOS and OOT event records by id."""
        payload = {"records": list(records)}
        return self.submit(
            "DataAcknowledged", batch_subject(batch), payload, meaning="acknowledged"
        )

    # -- access ------------------------------------------------------------------------

    def grant_access(
        self,
        agreement_id: SubjectId,
        grantee: str,
        data_classes: Sequence[str],
        *,
        purpose: str,
        grant_id: SubjectId | None = None,
        **scope: Any,
    ) -> Submitted:
        """Open data of an agreement to ``grantee``; ``scope``: ``valid_until``,
        ``valid_from``, ``parameters``, ``batches``, ``window``, ``include_confidential``."""
        payload = {
            "agreement": str(agreement_id),
            "grantee": grantee,
            "data_classes": list(data_classes),
            "purpose": purpose,
            **{name: _scope_value(name, v) for name, v in scope.items()},
        }
        subject = grant_id or uuid.uuid4()
        return self.submit("AccessGranted", subject, _drop_none(payload), meaning="granted")

    def revoke_access(self, grant_id: SubjectId, *, reason: str) -> Submitted:
        """Close a grant from now on."""
        return self.submit("AccessRevoked", grant_id, {}, meaning="revoked", reason=reason)

    # -- parameters --------------------------------------------------------------------

    def define_parameter(
        self,
        agreement_id: SubjectId,
        name: str,
        *,
        kind: str,
        unit: str,
        alert: Mapping[str, str | None],
        action: Mapping[str, str | None],
        rationale: str,
        status: str,
        target: str | None = None,
        effective_from: str | datetime | None = None,
        reason: str | None = None,
    ) -> Submitted:
        """Define a CPP, CQA, KPI or IPC with its limits (limits version 1): in force from
        now, or from an earlier ``effective_from`` (a ``reason`` is then required)."""
        payload = _drop_none(
            {
                "agreement": str(agreement_id),
                "name": name,
                "kind": kind,
                "unit": unit,
                "target": target,
                "alert": dict(alert),
                "action": dict(action),
                "rationale": rationale,
                "status": status,
                "effective_from": _optional_time(effective_from, "effective_from"),
            }
        )
        subject = parameter_subject(agreement_id, name)
        return self.submit("ParameterDefined", subject, payload, meaning="authored", reason=reason)

    def propose_revision(
        self,
        parameter_id: SubjectId,
        changes: Mapping[str, Any],
        *,
        reason: str,
        revision: SubjectId | None = None,
    ) -> Submitted:
        """Propose new values for some of target, alert, action, status, unit, rationale."""
        payload = {"revision": str(revision or uuid.uuid4()), "changes": dict(changes)}
        return self.submit(
            "ParameterRevisionProposed", parameter_id, payload, meaning="authored", reason=reason
        )

    def approve_revision(
        self,
        parameter_id: SubjectId,
        revision: SubjectId,
        *,
        effective_from: str | datetime | None = None,
        reason: str | None = None,
    ) -> Submitted:
        """Approve the other party's pending revision: in force from now, or from an earlier
        ``effective_from`` (a late approval; a ``reason`` is then required)."""
        payload = build(
            payloads.ParameterRevisionApproved,
            revision=str(revision),
            effective_from=_optional_time(effective_from, "effective_from"),
        )
        return self.submit(
            "ParameterRevisionApproved", parameter_id, payload, meaning="approved", reason=reason
        )

    def reject_revision(
        self, parameter_id: SubjectId, revision: SubjectId, *, reason: str
    ) -> Submitted:
        """Reject the other party's pending revision."""
        payload = {"revision": str(revision)}
        return self.submit(
            "ParameterRevisionRejected", parameter_id, payload, meaning="rejected", reason=reason
        )

    # -- enhancements ------------------------------------------------------------------

    def claim_enhancement(
        self,
        agreement_id: SubjectId,
        *,
        title: str,
        summary: str,
        commitment: str,
        ownership_claimed: str,
        parameter_versions: Sequence[Mapping[str, Any]] = (),
        evidence: Sequence[Mapping[str, Any]] = (),
        enhancement_id: SubjectId | None = None,
    ) -> Submitted:
        """Claim an enhancement committed to by ``commitment`` (see :func:`commit_dossier`)."""
        payload = {
            "agreement": str(agreement_id),
            "title": title,
            "summary": summary,
            "commitment": commitment,
            "parameter_versions": [dict(item) for item in parameter_versions],
            "evidence": [dict(item) for item in evidence],
            "ownership_claimed": ownership_claimed,
        }
        subject = enhancement_id or uuid.uuid4()
        return self.submit("EnhancementClaimed", subject, payload, meaning="authored")

    def acknowledge_enhancement(self, enhancement_id: SubjectId) -> Submitted:
        """Accept the other party's claim as made."""
        return self.submit("EnhancementAcknowledged", enhancement_id, {}, meaning="acknowledged")

    def dispute_enhancement(self, enhancement_id: SubjectId, *, reason: str) -> Submitted:
        """Dispute the other party's claim."""
        return self.submit(
            "EnhancementDisputed", enhancement_id, {}, meaning="disputed", reason=reason
        )

    def countersign_resolution(self, enhancement_id: SubjectId, owner: str) -> dict[str, str]:
        """This party's countersignature for the other party's resolution naming ``owner``."""
        return self.countersign("EnhancementResolved", enhancement_id, {"owner": owner})

    def resolve_enhancement(
        self, enhancement_id: SubjectId, owner: str, countersignature: Mapping[str, str]
    ) -> Submitted:
        """Record the owner both parties agreed (the other's :meth:`countersign_resolution`)."""
        payload = {"owner": owner, "countersignature": dict(countersignature)}
        return self.submit("EnhancementResolved", enhancement_id, payload, meaning="resolved")

    def disclose_enhancement(
        self, enhancement_id: SubjectId, dossier: bytes, salt: str
    ) -> Submitted:
        """Reveal the committed dossier with its salt (hex)."""
        payload = {"dossier": base64.b64encode(dossier).decode("ascii"), "salt": salt}
        return self.submit("EnhancementDisclosed", enhancement_id, payload, meaning="disclosed")

    # -- reviews -----------------------------------------------------------------------

    def countersign_review(self, review_id: SubjectId, body: Mapping[str, Any]) -> dict[str, str]:
        """This party's countersignature of a review ``body`` the other party will submit."""
        return self.countersign("ReviewCompleted", review_id, body)

    def complete_review(
        self,
        review_id: SubjectId,
        body: Mapping[str, Any],
        countersignature: Mapping[str, str],
    ) -> Submitted:
        """Record a periodic review: ``body`` as countersigned, plus the countersignature."""
        payload = {**dict(body), "countersignature": dict(countersignature)}
        return self.submit("ReviewCompleted", review_id, payload, meaning="completed")

    # -- what people ask: reviews, deliveries, claims, grants, batch data ----------------

    def retire_parameter(self, parameter_id: SubjectId, *, reason: str) -> Submitted:
        """Retire a parameter: a pending revision is withdrawn, no limits apply from now."""
        return self.submit("ParameterRetired", parameter_id, {}, meaning="retired", reason=reason)

    def agreements(self, status: str | None = None) -> list[dict[str, Any]]:
        """The agreements the caller may see, with their pending amendments."""
        return list(self.graphql(AGREEMENTS, {"s": status})["agreements"] or [])

    def reviews(
        self, agreement_id: SubjectId | None = None, *, overdue: bool | None = None
    ) -> list[dict[str, Any]]:
        """Review schedules (``overdue``: only those past due, or only those not)."""
        variables = {"a": _optional_id(agreement_id), "o": overdue}
        return list(self.graphql(REVIEWS, variables)["reviews"] or [])

    def deliveries(
        self,
        agreement_id: SubjectId | None = None,
        *,
        batch: str | None = None,
        late: bool | None = None,
    ) -> list[dict[str, Any]]:
        """Delivery obligations (``late``: late or missing ones, or only the others)."""
        variables = {"a": _optional_id(agreement_id), "b": batch, "l": late}
        return list(self.graphql(DELIVERIES, variables)["deliveries"] or [])

    def enhancements(self, agreement_id: SubjectId | None = None) -> list[dict[str, Any]]:
        """Enhancement claims under the agreements the caller may see (dossiers included)."""
        found = self.graphql(ENHANCEMENTS, {"a": _optional_id(agreement_id)})["enhancements"]
        return list(found or [])

    def changes(
        self, agreement_id: SubjectId | None = None, *, open: bool | None = None
    ) -> list[dict[str, Any]]:
        """Change proposals (R22) under the agreements the caller may see (``open``: only
        those neither rejected nor implemented, or only the others)."""
        variables = {"a": _optional_id(agreement_id), "o": open}
        return list(self.graphql(CHANGES, variables)["changes"] or [])

    def capas(
        self,
        agreement_id: SubjectId | None = None,
        *,
        batch: str | None = None,
        open: bool | None = None,
    ) -> list[dict[str, Any]]:
        """CAPAs on the batches the caller may see (``open``: only open ones, or closed)."""
        variables = {"a": _optional_id(agreement_id), "b": batch, "o": open}
        return list(self.graphql(CAPAS, variables)["capas"] or [])

    def grants(
        self, agreement_id: SubjectId | None = None, *, active: bool | None = None
    ) -> list[dict[str, Any]]:
        """Grants under the agreements the caller may see, and the caller's own."""
        variables = {"a": _optional_id(agreement_id), "active": active}
        return list(self.graphql(GRANTS, variables)["grants"] or [])

    def grants_at(
        self, party: str, valid_at: str | datetime, *, known_at: int | None = None
    ) -> list[dict[str, Any]]:
        """The grants ``party`` held in force at ``valid_at`` (as the ledger knew them at
        position ``known_at``, default now); only grants the caller may see."""
        variables = {"p": party, "t": _time(valid_at, "valid_at"), "k": known_at}
        return list(self.graphql(GRANTS_AT, variables)["grantsAt"] or [])

    def batch_submissions(self, batch: str) -> dict[str, Any]:
        """A batch with every delivery and correction of its data: who signed each, with
        which key, and why a correction was made."""
        found = self.graphql(BATCH_SUBMISSIONS, {"b": batch})["batch"]
        if found is None:
            raise ServerRefused("NOT_FOUND", "batch", f"no batch {batch}: register it first")
        return dict(found)

    def batch_data(
        self,
        batch: str,
        data_class: str,
        *,
        form: str | None = None,
        parameters: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """One class of a batch's data, superseded versions included: discrete results,
        event records, or (continuous) each tag's span. ``form`` is the class's form
        (default: the class named like it)."""
        form = form or data_class
        variables: dict[str, Any] = {"b": batch}
        if form != "continuous":
            variables["c"] = data_class
        if form == "discrete":
            variables["p"] = list(parameters) if parameters is not None else None
        found = self.graphql(BATCH_DATA[form], variables)["batch"]
        if found is None:
            raise ServerRefused("NOT_FOUND", "batch", f"no batch {batch}: register it first")
        if form == "continuous":
            return [tag for tag in found["tags"] or [] if tag["dataClass"] == data_class]
        return list(found["discrete" if form == "discrete" else "events"] or [])

    def data_class_forms(self, agreement_id: SubjectId) -> dict[str, str]:
        """The form of every data class the agreement has defined, retired ones included
        (a class keeps its form for the agreement's life)."""
        found = self.graphql(TERMS_HISTORY, {"a": str(agreement_id)})["agreement"]
        forms: dict[str, str] = {}
        for version in found["termsHistory"] if found else []:
            for name, spec in (version["terms"].get("data_classes") or {}).items():
                forms[str(name)] = str(spec.get("form") or name)
        return forms

    # -- continued process verification (R26) --------------------------------------------

    def define_baseline(
        self,
        agreement_id: SubjectId,
        parameter: str,
        name: str,
        batches: Sequence[str],
        *,
        reason: str | None = None,
    ) -> Submitted:
        """Name the batches whose results set a parameter's CPV control limits."""
        payload = {
            "agreement": str(agreement_id),
            "parameter": parameter,
            "name": name,
            "batches": list(batches),
        }
        subject = baseline_subject(agreement_id, parameter, name)
        return self.submit("BaselineDefined", subject, payload, meaning="authored", reason=reason)

    def revise_baseline(
        self,
        agreement_id: SubjectId,
        parameter: str,
        name: str,
        batches: Sequence[str],
        *,
        reason: str,
    ) -> Submitted:
        """Replace a baseline's batch list (a reason is required)."""
        subject = baseline_subject(agreement_id, parameter, name)
        payload = {"batches": list(batches)}
        return self.submit("BaselineRevised", subject, payload, meaning="authored", reason=reason)

    def acknowledge_cpv_signal(
        self, baseline_id: SubjectId, inputs_digest: str, comment: str
    ) -> Submitted:
        """Acknowledge the CPV signal of the analysis with ``inputs_digest``."""
        payload = {
            "baseline": str(baseline_id),
            "inputs_digest": inputs_digest,
            "comment": comment,
        }
        return self.submit("CpvSignalAcknowledged", baseline_id, payload, meaning="acknowledged")

    def cpv(
        self,
        agreement_id: SubjectId,
        parameter: str,
        baseline: str,
        *,
        valid_from: str | datetime | None = None,
        valid_to: str | datetime | None = None,
        known_at: int | None = None,
        statistic: str | None = None,
    ) -> dict[str, Any]:
        """A parameter's CPV analysis as the ledger knew it at position ``known_at``
        (``statistic``: which statistic of a continuous tag's per-batch summaries)."""
        variables = {
            "a": str(agreement_id),
            "p": parameter,
            "b": baseline,
            "f": _optional_time(valid_from, "valid_from"),
            "t": _optional_time(valid_to, "valid_to"),
            "k": known_at,
            "s": statistic,
        }
        return cpv_answer(self.graphql(CPV, variables)["cpv"])

    def cpv_signals(self, agreement_id: SubjectId) -> list[dict[str, Any]]:
        """The agreement's CPV signals, and whether each was acknowledged."""
        return list(self.graphql(CPV_SIGNALS, {"a": str(agreement_id)})["cpvSignals"] or [])


def review_body(
    agreement_id: SubjectId,
    *,
    period_end: str | datetime,
    outcome: str,
    next_due: str | datetime,
    parameters_confirmed: Sequence[str] = (),
    parameters_revised: Sequence[str] = (),
) -> dict[str, Any]:
    """A ``ReviewCompleted`` payload without its countersignature."""
    return {
        "agreement": str(agreement_id),
        "period_end": _time(period_end, "period_end"),
        "outcome": outcome,
        "parameters_confirmed": list(parameters_confirmed),
        "parameters_revised": list(parameters_revised),
        "next_due": _time(next_due, "next_due"),
    }


def _data_of(response: httpx2.Response, url: str) -> dict[str, Any]:
    if response.status_code >= 500:
        raise TransportFailure(
            f"{url} answered HTTP {response.status_code}: retry later, or ask its operator"
        )
    try:
        document = response.json()
    except ValueError as exc:
        raise TransportFailure(
            f"{url} answered HTTP {response.status_code} without JSON: is it a cmo-ledger server?"
        ) from exc
    errors = document.get("errors") if isinstance(document, dict) else None
    if errors:
        first = errors[0]
        extensions = first.get("extensions") or {}
        raise ServerRefused.of(
            str(extensions.get("code", "UNKNOWN")), extensions.get("field"), first["message"]
        )
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise TransportFailure(f"{url} answered HTTP {response.status_code} without data")
    return data


def _time(value: str | datetime, field: str) -> str:
    """A time as the ledger stores it: a datetime, or RFC 3339 text with ``Z`` or an offset
    (refused naming ``field`` otherwise), the one parser of :mod:`ledger.timeutil`."""
    if isinstance(value, datetime):
        return format_utc(value)
    return canonical_time(value, field=field)


def _optional_time(value: str | datetime | None, field: str) -> str | None:
    return None if value is None else _time(value, field)


_SCOPE_TIMES = ("valid_from", "valid_until")


def _scope_value(name: str, value: Any) -> Any:
    return _time(value, name) if name in _SCOPE_TIMES and value is not None else value


def _drop_none(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in payload.items() if value is not None}


def _optional_id(value: SubjectId | None) -> str | None:
    return None if value is None else str(value)


AGREEMENTS = f"""
query($s: String) {{
  agreements(status: $s) {{
    {_AGREEMENT} proposedBy proposedAt
    amendments {{ position proposedBy proposedAt status reason }}
  }}
}}
"""
_REVIEW = (
    "agreementId cadenceMonths effectiveFrom nextDue lastCompletedAt lastPeriodEnd state "
    "overdue history { id periodEnd nextDue outcome parametersConfirmed parametersRevised "
    "completedBy countersignedBy completedAt }"
)
DATA_READS = """
query($b: String, $a: ID, $n: Int!, $after: String) {
  dataReads(batch: $b, agreement: $a, first: $n, after: $after) {
    reads {
      id reader key agreementId batch fields operation queryHash at
      commitment { position first last count root signedAt }
    }
    endCursor hasNextPage
  }
}
"""
REVIEWS = f"""
query($a: ID, $o: Boolean) {{ reviews(agreementId: $a, overdue: $o) {{ {_REVIEW} }} }}
"""
_DELIVERY = (
    "agreementId batch dataClass item rule withinHours everyDays monthlyOnDay period periodStart "
    "dueAt firstArrivedAt firstSubmission state late"
)
DELIVERIES = f"""
query($a: ID, $b: String, $l: Boolean) {{
  deliveries(agreementId: $a, batch: $b, late: $l) {{ {_DELIVERY} }}
}}
"""
_ENHANCEMENT = (
    "id agreementId claimant claimedAt priority title summary commitment parameterVersions "
    "evidence ownershipClaimed status respondedBy respondedAt disputeReason owner resolvedBy "
    "countersignedBy resolvedAt disclosedAt dossier { dossier salt disclosedAt }"
)
ENHANCEMENTS = f"query($a: ID) {{ enhancements(agreementId: $a) {{ {_ENHANCEMENT} }} }}"
_CHANGE = (
    "id agreementId changeId title description ecImpact reportingCategory affectedParameters "
    "proposedBy proposedAt status open decision decidedBy decidedAt rejectionReason "
    "implementedBy implementedAt"
)
CHANGES = f"""
query($a: ID, $o: Boolean) {{ changes(agreementId: $a, open: $o) {{ {_CHANGE} }} }}
"""
_CAPA = (
    "id agreementId capaId batch records description owner openedBy openedAt status open "
    "closedAt effectivenessCheck closeReason"
)
CAPAS = f"""
query($a: ID, $b: String, $o: Boolean) {{
  capas(agreementId: $a, batch: $b, open: $o) {{ {_CAPA} }}
}}
"""
_GRANT = (
    "id agreementId grantor grantee dataClasses parameters batches windowFrom windowUntil "
    "validFrom validUntil grantedAt purpose includeConfidential enhancements status revokedAt "
    "revokedBy revokeReason active activeNow"
)
GRANTS = f"""
query($a: ID, $active: Boolean) {{ grants(agreementId: $a, active: $active) {{ {_GRANT} }} }}
"""
GRANTS_AT = f"""
query($p: String!, $t: DateTime!, $k: Int) {{
  grantsAt(party: $p, validAt: $t, knownAt: $k) {{ {_GRANT} }}
}}
"""
BATCH_DATA = {
    "discrete": """
query($b: String!, $p: [String!], $c: String!) {
  batch(id: $b) {
    discrete(parameters: $p, includeSuperseded: true, dataClass: $c) {
      id version parameter value unit sampledAt method evaluation limitsVersion status
      submission supersededBy recordedAt masked confidential { element value purged }
    }
  }
}
""",
    "event": """
query($b: String!, $c: String!) {
  batch(id: $b) {
    events(includeSuperseded: true, dataClass: $c) {
      id version kind startedAt endedAt severity description status submission
      supersededBy recordedAt acknowledgedAt acknowledgedBy masked
      confidential { element value purged }
    }
  }
}
""",
    "continuous": """
query($b: String!) { batch(id: $b) { tags { tag dataClass first last points } } }
""",
}
TERMS_HISTORY = """
query($a: ID!) { agreement(id: $a) { termsHistory { terms } } }
"""
BATCH_SUBMISSIONS = """
query($b: String!) {
  batch(id: $b) {
    id agreementId product site startedAt endedAt
    submissions {
      id dataClass correction sourceSystem schemaVersion format supersedes reason signer key
      recordedAt
    }
  }
}
"""
CPV_SIGNALS = """
query($a: ID!) {
  cpvSignals(agreementId: $a) {
    parameter baseline baselineId inputsDigest knownAt reasons cpk cpkThreshold acknowledged
    violations { rule name batches indexes }
    acknowledgements { by at comment }
  }
}
"""
