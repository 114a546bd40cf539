"""Event payloads: one typed definition per event type.

Each payload is a msgspec ``Struct``: its members, their JSON types, which are optional,
and the bounds that need no other entity (list lengths, the chunk's shape). From it come
the command path's first check of every new envelope (:func:`decode_payload`, whose
refusals name ``payload.a.b[3].c``), the catalogue's list of members
(:func:`members`, ``docs/events.md``), the JSON Schema of each event type
(:func:`json_schema`, ``docs/schema/``, served at ``/schema/<type>.json``) and the client's
payload builders (:func:`build`). The aggregate modules' rules keep what needs the ledger's
state: agreements in force, signers, records that exist, formats of the agreement, time.

Light: msgspec and the standard library, so a client imports it without the database.
Stored events are never decoded through these types: replay reads what was stored.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from ledger.domain.formats import MAX_RECORDS, MAX_SERIES
from ledger.domain.terms_schema import TERMS_SCHEMA_NAME, terms_schema
from ledger.errors import ValidationFailed

__all__ = [
    "PAYLOADS",
    "SCHEMAS",
    "Payload",
    "build",
    "decode_payload",
    "json_schema",
    "members",
]

Records = Annotated[list[dict[str, Any]], Meta(max_length=MAX_RECORDS)]
Ids = Annotated[list[str], Meta(max_length=MAX_RECORDS)]
Object = dict[str, Any]
MAX_BASELINE_BATCHES = 1000
"""The most batches one CPV baseline lists."""
MAX_AFFECTED_PARAMETERS = 100
"""The most parameters one change proposal names."""
MAX_CAPA_RECORDS = 100
"""The most deviation, OOS and OOT records one CAPA addresses."""


class Payload(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Base of every payload: unknown members are refused; unset optional ones are omitted."""


class Chunk(Payload):
    """One continuous chunk: gzip CSV in base64, and what it claims to hold."""

    start: str
    end: str
    count: Annotated[int, Meta(ge=1)]
    sha256: str
    content: str


class Series(Payload):
    """The chunks of one tag, in time order."""

    tag: str
    chunks: list[Chunk]


# -- parties and keys ----------------------------------------------------------------------


class PartyAdmitted(Payload):
    party: str
    legal_name: str
    role: str
    public_key: str
    expires_at: str | None = None


class KeyAdded(Payload):
    public_key: str
    purpose: str
    source: str | None = None
    expires_at: str | None = None


class KeyRevoked(Payload):
    key: str
    compromised_since: str | None = None


# -- persons (R4, R5, R7) ------------------------------------------------------------------

MAX_DOCUMENT = 200
"""The longest description of an identity document (what was checked, never the document)."""
POLICY_STATEMENT = (
    "I agree that my electronic signature on this ledger is the legally binding equivalent "
    "of my handwritten signature (21 CFR 11.100(c))."
)
"""The statement a person signs, word for word, before their signature counts (R7)."""


class PersonAdmitted(Payload):
    party: str
    person: str
    printed_name: str
    job_function: str
    meanings: Annotated[list[str], Meta(min_length=1, max_length=50)]
    public_key: str


class IdentityVerified(Payload):
    person: str
    document: Annotated[str, Meta(min_length=1, max_length=MAX_DOCUMENT)]
    key: str


class SignaturePolicyAccepted(Payload):
    person: str
    statement: str


class PersonKeyAdded(Payload):
    public_key: str


# -- agreements ----------------------------------------------------------------------------


class AgreementProposed(Payload):
    terms: Object


class AgreementAmended(Payload):
    terms: Object


class TermsSigned(Payload):
    effective_from: str | None = None


class NoMembers(Payload):
    """A payload with no members: the envelope says it all."""


# -- batches and data ----------------------------------------------------------------------


class BatchRegistered(Payload):
    agreement: str
    batch: str
    product: str
    site: str
    started_at: str


class BatchEnded(Payload):
    ended_at: str


class DataSubmitted(Payload):
    submission: str
    kind: str
    source_system: str
    schema_version: str
    format: str
    original_sha256: str | None = None
    records: Records | None = None
    series: Annotated[list[Series], Meta(max_length=MAX_SERIES)] | None = None


class DataCorrected(Payload):
    submission: str
    original_sha256: str | None = None
    supersedes: Ids | None = None
    records: Records | None = None
    supersedes_chunks: Ids | None = None
    series: Annotated[list[Series], Meta(max_length=MAX_SERIES)] | None = None


class DataAcknowledged(Payload):
    records: Ids


class ElementsPurged(Payload):
    commitments: Ids


class DataVerified(Payload):
    batch: str
    submission: str
    records: Annotated[list[str], Meta(min_length=1, max_length=MAX_RECORDS)]
    comment: str | None = None


# -- review and disposition (R13) ----------------------------------------------------------


class AuditTrailReviewed(Payload):
    batch: str
    checkpoint_size: Annotated[int, Meta(ge=1)]
    checkpoint_root: str
    outcome: str


class BatchDispositioned(Payload):
    batch: str
    disposition: str


# -- parameters ----------------------------------------------------------------------------


class ParameterDefined(Payload):
    agreement: str
    name: str
    kind: str
    unit: str
    alert: Object
    action: Object
    rationale: str
    status: str
    target: str | None = None
    effective_from: str | None = None


class ParameterRevisionProposed(Payload):
    revision: str
    changes: Object
    change: str | None = None


class ParameterRevisionApproved(Payload):
    revision: str
    effective_from: str | None = None


class ParameterRevisionDecided(Payload):
    revision: str


# -- enhancements --------------------------------------------------------------------------


class EnhancementClaimed(Payload):
    agreement: str
    title: str
    summary: str
    commitment: str
    parameter_versions: list[Object]
    evidence: list[Object]
    ownership_claimed: str


class EnhancementResolved(Payload):
    owner: str
    countersignature: Object | None = None


class EnhancementDisclosed(Payload):
    dossier: str
    salt: str


# -- access and reviews --------------------------------------------------------------------


class AccessGranted(Payload):
    agreement: str
    grantee: str
    data_classes: list[str]
    purpose: str
    valid_until: str | None = None
    valid_from: str | None = None
    parameters: list[str] | None = None
    batches: list[str] | None = None
    window: Object | None = None
    include_confidential: bool | None = None
    enhancements: bool | None = None


class ReviewCompleted(Payload):
    agreement: str
    period_end: str
    outcome: str
    next_due: str
    countersignature: Object | None = None
    parameters_confirmed: list[Any] | None = None
    parameters_revised: list[Any] | None = None


# -- security (R9) -------------------------------------------------------------------------


class SecurityAlert(Payload):
    identity: str
    failures: int
    window_seconds: int
    locked_until: str
    kinds: list[str]


class ReadsRecorded(Payload):
    first: int
    last: int
    count: int
    root: str


# -- continued process verification -------------------------------------------------------


class BaselineDefined(Payload):
    agreement: str
    parameter: str
    name: str
    batches: Annotated[list[str], Meta(max_length=MAX_BASELINE_BATCHES)]


class BaselineRevised(Payload):
    batches: Annotated[list[str], Meta(max_length=MAX_BASELINE_BATCHES)]


class CpvSignalAcknowledged(Payload):
    baseline: str
    inputs_digest: str
    comment: str


# -- change control (R22) and CAPA ---------------------------------------------------------


class ChangeProposed(Payload):
    agreement: str
    change: str
    title: str
    description: str
    ec_impact: bool
    reporting_category: str
    affected_parameters: Annotated[list[str], Meta(max_length=MAX_AFFECTED_PARAMETERS)]


class CapaOpened(Payload):
    agreement: str
    capa: str
    batch: str
    records: Annotated[list[str], Meta(min_length=1, max_length=MAX_CAPA_RECORDS)]
    description: str
    owner: str


class CapaClosed(Payload):
    effectiveness_check: str


PAYLOADS: Mapping[str, type[Payload]] = {
    "PartyAdmitted": PartyAdmitted,
    "KeyAdded": KeyAdded,
    "KeyRevoked": KeyRevoked,
    "PersonAdmitted": PersonAdmitted,
    "IdentityVerified": IdentityVerified,
    "SignaturePolicyAccepted": SignaturePolicyAccepted,
    "PersonKeyAdded": PersonKeyAdded,
    "PersonKeyRevoked": KeyRevoked,
    "AgreementProposed": AgreementProposed,
    "AgreementSigned": TermsSigned,
    "AgreementAmended": AgreementAmended,
    "AgreementAmendmentSigned": TermsSigned,
    "AgreementAmendmentRejected": NoMembers,
    "AgreementTerminated": NoMembers,
    "BatchRegistered": BatchRegistered,
    "BatchEnded": BatchEnded,
    "DataSubmitted": DataSubmitted,
    "DataCorrected": DataCorrected,
    "DataAcknowledged": DataAcknowledged,
    "ElementsPurged": ElementsPurged,
    "DataVerified": DataVerified,
    "AuditTrailReviewed": AuditTrailReviewed,
    "BatchDispositioned": BatchDispositioned,
    "ParameterDefined": ParameterDefined,
    "ParameterRevisionProposed": ParameterRevisionProposed,
    "ParameterRevisionApproved": ParameterRevisionApproved,
    "ParameterRevisionRejected": ParameterRevisionDecided,
    "ParameterRetired": NoMembers,
    "EnhancementClaimed": EnhancementClaimed,
    "EnhancementAcknowledged": NoMembers,
    "EnhancementDisputed": NoMembers,
    "EnhancementResolved": EnhancementResolved,
    "EnhancementDisclosed": EnhancementDisclosed,
    "AccessGranted": AccessGranted,
    "AccessRevoked": NoMembers,
    "ReviewCompleted": ReviewCompleted,
    "BaselineDefined": BaselineDefined,
    "BaselineRevised": BaselineRevised,
    "CpvSignalAcknowledged": CpvSignalAcknowledged,
    "SecurityAlert": SecurityAlert,
    "ReadsRecorded": ReadsRecorded,
    "ChangeProposed": ChangeProposed,
    "ChangeApproved": NoMembers,
    "ChangeRejected": NoMembers,
    "ChangeImplemented": NoMembers,
    "CapaOpened": CapaOpened,
    "CapaClosed": CapaClosed,
}
"""The payload type of every event type."""

# msgspec ends each refusal with the JSON path of what it refused: "- at `$.a[3].b`".
_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`$")


def payload_type(event_type: str) -> type[Payload]:
    """The payload type of ``event_type`` (``VALIDATION_FAILED`` naming ``type`` if none)."""
    found = PAYLOADS.get(event_type)
    if found is None:
        raise ValidationFailed(f"unknown event type {event_type!r}", field="type")
    return found


def decode_payload(event_type: str, payload: object) -> Payload:
    """``payload`` checked against its event type's definition; refusals name the member."""
    kind = payload_type(event_type)
    try:
        return msgspec.convert(payload, type=kind, strict=True)
    except msgspec.ValidationError as exc:
        message, field = _refusal(str(exc))
        raise ValidationFailed(message, field=field) from None


def _refusal(text: str) -> tuple[str, str]:
    found = _AT.match(text)
    message = found["message"] if found else text
    path = "payload" + ((found["path"] or "") if found else "")
    for pattern, what in ((_MISSING, "required field is missing"), (_UNKNOWN, "unknown field")):
        named = pattern.match(message)
        if named is not None:
            return what, f"{path}.{named['name']}"
    return message, path


def members(event_type: str) -> tuple[str, ...]:
    """The payload's members, optional ones marked, as the catalogue lists them."""
    fields = msgspec.structs.fields(payload_type(event_type))
    return tuple(f.name if f.required else f"{f.name} (optional)" for f in fields)


_TERMS_EVENTS = ("AgreementProposed", "AgreementAmended")
SCHEMAS: tuple[str, ...] = (*PAYLOADS, TERMS_SCHEMA_NAME)
"""The JSON Schemas published: each event type's payload, and the agreement terms."""


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of event type ``name``'s payload, or of the agreement
    terms (``AgreementTerms``)."""
    if name == TERMS_SCHEMA_NAME:
        return terms_schema()
    schema: dict[str, Any] = msgspec.json.schema(payload_type(name))
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"{name} payload"
    if name in _TERMS_EVENTS:
        _embed_terms(schema, name)
    return schema


def _embed_terms(schema: dict[str, Any], event_type: str) -> None:
    """Make the payload's ``terms`` the terms schema, embedded so the document stands alone
    (its definitions join the payload's ``$defs``, where its references point)."""
    terms = terms_schema()
    definitions = schema.setdefault("$defs", {})
    definitions.update(terms.pop("$defs"))
    terms.pop("$schema")
    definitions[TERMS_SCHEMA_NAME] = terms
    definitions[event_type]["properties"]["terms"] = {"$ref": f"#/$defs/{TERMS_SCHEMA_NAME}"}


def build(kind: type[Payload], **values: Any) -> dict[str, Any]:
    """A payload of ``kind`` as JSON values: checked, unset optional members left out."""
    try:
        payload = kind(**values)
    except TypeError as exc:
        raise ValidationFailed(str(exc), field="payload") from None
    built: dict[str, Any] = msgspec.to_builtins(payload)
    decode_payload(_type_name(kind), built)
    return built


def _type_name(kind: type[Payload]) -> str:
    return next(name for name, found in PAYLOADS.items() if found is kind)


def write_schemas(directory: Path) -> list[Path]:
    """Write ``<name>.json`` for every published schema into ``directory``; the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type in SCHEMAS:
        path = directory / f"{event_type}.json"
        path.write_bytes(schema_bytes(event_type))
        written.append(path)
    return written


@cache
def schema_bytes(event_type: str) -> bytes:
    """The committed form of a published JSON Schema: sorted, indented, one newline."""
    encoded = msgspec.json.encode(json_schema(event_type), order="sorted")
    return msgspec.json.format(encoded, indent=2) + b"\n"


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schema")
    for path in write_schemas(target):
        print(path)
