"""Process-enhancement claims (R25): committed, claimed under the agreement's IP rule,
acknowledged or disputed by the counterparty, resolved by both, disclosed and checked."""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

from ledger.domain.batches import Batch
from ledger.domain.commitments import commitment_of
from ledger.domain.enhancements import Enhancement
from ledger.domain.subjects import batch_subject
from ledger.errors import BadSignature, Forbidden, NotFound, ValidationFailed
from ledger.log.countersign import countersign
from tests.support.agreements import propose_and_sign
from tests.support.batches import (
    CMO,
    SPONSOR,
    define_parameter,
    discrete_records,
    refusal,
    register_batch,
    submit_data,
)
from tests.support.world import ORIGIN, World, agreement_terms

BATCH = "NWB101-24-003"
DOSSIER = b"Feed strategy FS-2: bolus glucose on days 3, 5, 7; titer +12 % over 6 batches."
SALT = bytes(range(32))


def _enhancement(world: World, subject: uuid.UUID, version: int | None = None) -> Enhancement:
    found = world.ledger.repository.get(subject, version=version)
    assert isinstance(found, Enhancement)
    return found


def _setting(world: World, ip_rule: str = "negotiated") -> tuple[uuid.UUID, dict[str, Any]]:
    """An agreement with a DO parameter and a batch with data: the claim's baseline."""
    terms = agreement_terms()
    terms["ip_rule"] = ip_rule
    agreement_id = propose_and_sign(world, terms=terms)
    parameter = define_parameter(world, agreement_id)
    register_batch(world, agreement_id, BATCH)
    submit_data(world, BATCH, "discrete", discrete_records())
    batch = world.ledger.get_aggregate(batch_subject(BATCH), Batch)
    assert batch is not None
    claim = {
        "agreement": str(agreement_id),
        "title": "Feed strategy FS-2 for NWB-101",
        "summary": "Glucose bolus schedule raising titer at harvest by 12 %",
        "commitment": commitment_of(SALT, DOSSIER),
        "parameter_versions": [{"parameter": str(parameter), "version": 1}],
        "evidence": [{"batch": BATCH, "submission": next(iter(batch.submissions))}],
        "ownership_claimed": "cmo",
    }
    return agreement_id, claim


def _claim(
    world: World,
    claim: dict[str, Any],
    *,
    by: str = CMO,
    subject: uuid.UUID | None = None,
    **changes: Any,
) -> uuid.UUID:
    subject = subject or uuid.uuid4()
    payload = {**claim, **changes}
    world[by].submit(world.ledger, "EnhancementClaimed", subject, payload, meaning="authored")
    return subject


def _respond(
    world: World,
    subject: uuid.UUID,
    *,
    by: str = SPONSOR,
    dispute: bool = False,
    reason: str | None = None,
) -> object:
    return world[by].submit(
        world.ledger,
        "EnhancementDisputed" if dispute else "EnhancementAcknowledged",
        subject,
        {},
        meaning="disputed" if dispute else "acknowledged",
        reason=reason,
    )


def _resolve(
    world: World,
    subject: uuid.UUID,
    owner: str = "joint",
    *,
    by: str = SPONSOR,
    countersigner: str | None = CMO,
    countersigned_body: dict[str, Any] | None = None,
) -> object:
    payload: dict[str, Any] = {"owner": owner}
    if countersigner is not None:
        body = countersigned_body or payload
        payload["countersignature"] = countersign(
            ORIGIN,
            "EnhancementResolved",
            str(subject),
            body,
            countersigner,
            world[countersigner].key,
        )
    return world[by].submit(
        world.ledger, "EnhancementResolved", subject, payload, meaning="resolved"
    )


def _disclose(
    world: World,
    subject: uuid.UUID,
    dossier: bytes = DOSSIER,
    salt: str = SALT.hex(),
    by: str = CMO,
) -> object:
    payload = {"dossier": base64.b64encode(dossier).decode(), "salt": salt}
    return world[by].submit(
        world.ledger, "EnhancementDisclosed", subject, payload, meaning="disclosed"
    )


def test_a_disputed_claim_is_resolved_as_joint_and_its_dossier_disclosed(world: World):
    _, claim = _setting(world)
    subject = _claim(world, claim)
    claimed = _enhancement(world, subject)
    assert (claimed.claimant, claimed.status, claimed.ownership_claimed) == (CMO, "claimed", "cmo")
    assert claimed.commitment == hashlib.sha256(SALT + DOSSIER).hexdigest()
    assert claimed.parameter_versions == claim["parameter_versions"]
    assert claimed.evidence == claim["evidence"]

    _respond(
        world, subject, dispute=True, reason="feed strategy built on Northwind's media platform"
    )
    _resolve(world, subject, "joint")
    _disclose(world, subject)

    enhancement = _enhancement(world, subject)
    assert (enhancement.status, enhancement.owner) == ("resolved", "joint")
    assert enhancement.disclosed_at is not None
    assert DOSSIER.decode() not in str(enhancement.__dict__)
    # Each step stays answerable from the aggregate as it stood.
    disputed = _enhancement(world, subject, version=2)
    assert (disputed.status, disputed.responded_by, disputed.owner) == ("disputed", SPONSOR, None)
    assert disputed.dispute_reason == "feed strategy built on Northwind's media platform"
    assert _enhancement(world, subject, version=3).disclosed_at is None


def test_a_claim_against_the_ip_rule_is_refused(world: World):
    _, claim = _setting(world, ip_rule="sponsor")
    for owner in ("cmo", "joint"):
        refusal(
            world,
            ValidationFailed,
            "payload.ownership_claimed",
            lambda o=owner: _claim(world, claim, ownership_claimed=o),
        )
    subject = _claim(world, claim, ownership_claimed="sponsor")
    _respond(world, subject)
    refusal(world, ValidationFailed, "payload.owner", lambda: _resolve(world, subject, "joint"))
    _resolve(world, subject, "sponsor")
    assert _enhancement(world, subject).owner == "sponsor"


def test_a_joint_ip_rule_allows_only_joint_claims(world: World):
    _, claim = _setting(world, ip_rule="joint")
    refusal(
        world,
        ValidationFailed,
        "payload.ownership_claimed",
        lambda: _claim(world, claim, ownership_claimed="sponsor"),
    )
    _claim(world, claim, ownership_claimed="joint", by=SPONSOR)


def test_a_claim_outside_the_agreement_or_citing_what_does_not_exist_is_refused(world: World):
    agreement_id, claim = _setting(world)
    parameter = claim["parameter_versions"][0]["parameter"]
    submission = claim["evidence"][0]["submission"]
    refusal(world, Forbidden, "signer", lambda: _claim(world, claim, by="helios-tx"))
    refusal(
        world,
        ValidationFailed,
        "subject",
        lambda: _claim(world, claim, subject=uuid.uuid5(uuid.NAMESPACE_URL, "x")),
    )
    cases: list[tuple[type[Any], dict[str, Any], str]] = [
        (
            NotFound,
            {"parameter_versions": [{"parameter": str(uuid.uuid4()), "version": 1}]},
            "payload.parameter_versions[0].parameter",
        ),
        (
            NotFound,
            {"parameter_versions": [{"parameter": parameter, "version": 2}]},
            "payload.parameter_versions[0].version",
        ),
        (
            ValidationFailed,
            {"parameter_versions": [{"parameter": parameter, "version": 0}]},
            "payload.parameter_versions[0].version",
        ),
        (
            NotFound,
            {"evidence": [{"batch": "NWB101-24-404", "submission": submission}]},
            "payload.evidence[0].batch",
        ),
        (
            NotFound,
            {"evidence": [{"batch": BATCH, "submission": str(uuid.uuid4())}]},
            "payload.evidence[0].submission",
        ),
        (ValidationFailed, {"evidence": [{"batch": BATCH}]}, "payload.evidence[0].submission"),
        (ValidationFailed, {"commitment": DOSSIER.hex()}, "payload.commitment"),
        (ValidationFailed, {"ownership_claimed": "contoso"}, "payload.ownership_claimed"),
        (ValidationFailed, {"dossier": "inline"}, "payload.dossier"),
    ]
    for error, change, field in cases:
        refusal(world, error, field, lambda c=change: _claim(world, claim, **c))
    # Parameters and batches of another agreement are not evidence for this one.
    other = propose_and_sign(world)
    other_parameter = define_parameter(world, other)
    refusal(
        world,
        NotFound,
        "payload.parameter_versions[0].parameter",
        lambda: _claim(
            world, claim, parameter_versions=[{"parameter": str(other_parameter), "version": 1}]
        ),
    )
    proposed = uuid.uuid4()
    world[SPONSOR].submit(
        world.ledger,
        "AgreementProposed",
        proposed,
        {"terms": agreement_terms()},
        meaning="authored",
    )
    refusal(
        world, Forbidden, "payload.agreement", lambda: _claim(world, claim, agreement=str(proposed))
    )
    assert agreement_id != other


def test_only_the_counterparty_acknowledges_or_disputes_a_claim(world: World):
    _, claim = _setting(world)
    subject = _claim(world, claim)
    refusal(world, Forbidden, "signer", lambda: _respond(world, subject, by=CMO))
    refusal(world, Forbidden, "signer", lambda: _respond(world, subject, by="helios-tx"))
    refusal(world, ValidationFailed, "reason", lambda: _respond(world, subject, dispute=True))
    refusal(world, Forbidden, "subject", lambda: _resolve(world, subject))
    _respond(world, subject)
    assert _enhancement(world, subject).status == "acknowledged"
    refusal(
        world,
        Forbidden,
        "subject",
        lambda: _respond(world, subject, dispute=True, reason="too late"),
    )


def test_a_resolution_signed_by_one_party_is_refused(world: World):
    _, claim = _setting(world)
    subject = _claim(world, claim)
    _respond(world, subject, dispute=True, reason="ownership")
    refusal(
        world,
        ValidationFailed,
        "payload.countersignature",
        lambda: _resolve(world, subject, countersigner=None),
    )
    refusal(
        world,
        Forbidden,
        "payload.countersignature.signer",
        lambda: _resolve(world, subject, countersigner=SPONSOR),
    )
    refusal(
        world,
        Forbidden,
        "payload.countersignature.signer",
        lambda: _resolve(world, subject, countersigner="helios-tx"),
    )
    refusal(
        world,
        BadSignature,
        "payload.countersignature.signature",
        lambda: _resolve(world, subject, "joint", countersigned_body={"owner": "cmo"}),
    )
    _resolve(world, subject, "cmo", by=CMO, countersigner=SPONSOR)
    assert _enhancement(world, subject).owner == "cmo"
    refusal(world, Forbidden, "subject", lambda: _resolve(world, subject, "joint"))


def test_a_disclosure_that_does_not_match_the_commitment_is_refused(world: World):
    _, claim = _setting(world)
    subject = _claim(world, claim)
    refusal(
        world,
        ValidationFailed,
        "payload.dossier",
        lambda: _disclose(world, subject, DOSSIER + b" "),
    )
    refusal(
        world,
        ValidationFailed,
        "payload.dossier",
        lambda: _disclose(world, subject, salt=bytes(32).hex()),
    )
    refusal(world, ValidationFailed, "payload.salt", lambda: _disclose(world, subject, salt="0102"))
    refusal(world, Forbidden, "signer", lambda: _disclose(world, subject, by=SPONSOR))
    _disclose(world, subject)
    assert _enhancement(world, subject).disclosed_at is not None
    refusal(world, Forbidden, "subject", lambda: _disclose(world, subject))
