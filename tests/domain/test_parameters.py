"""The parameter registry (R20): versioned limits, revised only with the counterparty's
approval (R14, R22), answerable for any past time (R27, R28)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from ledger.domain.batches import Batch
from ledger.domain.parameters import Parameter
from ledger.domain.subjects import batch_subject, parameter_subject
from ledger.errors import Forbidden, LedgerError, ValidationFailed, VersionConflict
from ledger.timeutil import now_utc, parse_utc
from tests.support.agreements import propose_and_sign
from tests.support.batches import (
    CMO,
    SPONSOR,
    WORLD_PARAMETERS,
    define_parameter,
    refusal,
    register_batch,
)
from tests.support.world import World, agreement_terms

DO = "dissolved oxygen"
TIGHTER = {"alert": {"low": "35", "high": "50"}}


def _parameter(world: World, subject: uuid.UUID, version: int | None = None) -> Parameter:
    found = world.ledger.repository.get(subject, version=version)
    assert isinstance(found, Parameter)
    return found


def _propose(
    world: World,
    subject: uuid.UUID,
    changes: dict[str, Any],
    *,
    by: str = CMO,
    reason: str | None = "first six-month review: DO rarely below 35 %",
    revision: uuid.UUID | None = None,
) -> uuid.UUID:
    revision = revision or uuid.uuid4()
    world[by].submit(
        world.ledger,
        "ParameterRevisionProposed",
        subject,
        {"revision": str(revision), "changes": changes},
        meaning="authored",
        reason=reason,
    )
    return revision


def _decide(
    world: World,
    subject: uuid.UUID,
    revision: uuid.UUID,
    *,
    by: str = SPONSOR,
    approve: bool = True,
    reason: str | None = None,
) -> object:
    return world[by].submit(
        world.ledger,
        "ParameterRevisionApproved" if approve else "ParameterRevisionRejected",
        subject,
        {"revision": str(revision)},
        meaning="approved" if approve else "rejected",
        reason=reason,
    )


def _retire(
    world: World, subject: uuid.UUID, reason: str | None = "replaced by DO cascade KPI"
) -> object:
    return world[CMO].submit(
        world.ledger, "ParameterRetired", subject, {}, meaning="retired", reason=reason
    )


def test_world_parameters_are_defined_by_either_party_with_their_limits(world: World):
    agreement_id = propose_and_sign(world)
    for index, name in enumerate(WORLD_PARAMETERS):
        by = SPONSOR if index % 2 == 0 else CMO
        subject = define_parameter(world, agreement_id, name, by=by)
        assert subject == parameter_subject(agreement_id, name)
        parameter = _parameter(world, subject)
        kind, unit, target, alert, action, status = WORLD_PARAMETERS[name]
        assert (parameter.name, parameter.kind, parameter.status, parameter.defined_by) == (
            name,
            kind,
            status,
            by,
        )
        assert parameter.current_limits() == {
            "unit": unit,
            "target": target,
            "alert": {"low": alert[0], "high": alert[1]},
            "action": {"low": action[0], "high": action[1]},
        }
        assert parameter.limits_version == 1
        entry = parameter.limits_history[0]
        assert (entry["version"], entry["event_version"], entry["revision"]) == (1, 1, None)
        assert entry["effective_from"] == parameter.defined_at
        assert parameter.pending is None and parameter.retired_at is None


def test_limits_that_do_not_nest_are_refused(world: World):
    agreement_id = propose_and_sign(world)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"alert": {"low": "55", "high": "32"}}, "payload.alert.low"),
        ({"alert": {"low": None, "high": None}}, "payload.alert"),
        ({"alert": {"low": "32", "high": "55", "mid": "40"}}, "payload.alert.mid"),
        ({"alert": {"low": "32", "high": "fifty"}}, "payload.alert.high"),
        ({"action": {"low": "33", "high": "60"}}, "payload.action.low"),
        ({"action": {"low": "30", "high": "54.9"}}, "payload.action.high"),
        ({"alert": {"low": None, "high": "55"}}, "payload.action.low"),
        ({"target": "31"}, "payload.target"),
        ({"target": 40}, "payload.target"),
        ({"unit": "per cent"}, "payload.unit"),
        ({"kind": "CMA"}, "payload.kind"),
        ({"status": "non-critical"}, "payload.status"),
        ({"rationale": None}, "payload.rationale"),
        ({"name": " dissolved oxygen"}, "payload.name"),
        ({"subject": parameter_subject(agreement_id, "pO2")}, "subject"),
        ({"limits": {}}, "payload.limits"),
    ]
    for change, field in cases:
        refusal(
            world,
            ValidationFailed,
            field,
            lambda c=change: define_parameter(world, agreement_id, DO, **c),
        )
    # One-sided specifications: an upper limit only, and no target.
    subject = define_parameter(world, agreement_id, "endotoxin")
    assert _parameter(world, subject).current_limits()["alert"] == {"low": None, "high": "0.25"}


def test_a_parameter_outside_an_agreement_in_force_is_refused(world: World):
    agreement_id = propose_and_sign(world)
    refusal(
        world, Forbidden, "signer", lambda: define_parameter(world, agreement_id, by="helios-tx")
    )
    proposed = uuid.uuid4()
    world[SPONSOR].submit(
        world.ledger,
        "AgreementProposed",
        proposed,
        {"terms": agreement_terms()},
        meaning="authored",
    )
    refusal(world, Forbidden, "payload.agreement", lambda: define_parameter(world, proposed))
    define_parameter(world, agreement_id)

    def again() -> object:
        envelope, _ = world[CMO].prepare(
            world.ledger,
            "ParameterDefined",
            parameter_subject(agreement_id, DO),
            {"agreement": str(agreement_id)},
            meaning="authored",
        )
        envelope.update(version=1, prev=None)
        return world.ledger.append(envelope, world[CMO].sign(envelope))

    refusal(world, VersionConflict, "version", again)


def test_a_revision_takes_effect_only_when_the_counterparty_approves_it(world: World):
    agreement_id = propose_and_sign(world)
    subject = define_parameter(world, agreement_id)
    revision = _propose(world, subject, {**TIGHTER, "status": "confirmed"})

    pending = _parameter(world, subject)
    assert pending.pending == str(revision)
    assert pending.revisions[str(revision)]["outcome"] == "pending"
    assert pending.alert == {"low": "32", "high": "55"} and pending.limits_version == 1

    _decide(world, subject, revision)
    parameter = _parameter(world, subject)
    assert parameter.pending is None
    assert (parameter.alert, parameter.status) == ({"low": "35", "high": "50"}, "confirmed")
    assert parameter.limits_version == 2
    latest = parameter.limits_history[-1]
    assert (latest["version"], latest["revision"], latest["event_version"]) == (
        2,
        str(revision),
        parameter.version,
    )
    assert parameter.revisions[str(revision)]["decided_by"] == SPONSOR


def test_self_approval_is_refused(world: World):
    agreement_id = propose_and_sign(world)
    subject = define_parameter(world, agreement_id)
    revision = _propose(world, subject, TIGHTER, by=CMO)
    refusal(world, Forbidden, "signer", lambda: _decide(world, subject, revision, by=CMO))
    refusal(
        world,
        Forbidden,
        "signer",
        lambda: _decide(world, subject, revision, by=CMO, approve=False, reason="changed my mind"),
    )
    refusal(world, Forbidden, "signer", lambda: _decide(world, subject, revision, by="helios-tx"))
    _decide(world, subject, revision, by=SPONSOR)


def test_one_revision_is_pending_at_a_time_and_every_step_has_its_reason(world: World):
    agreement_id = propose_and_sign(world)
    subject = define_parameter(world, agreement_id)
    refusal(
        world, ValidationFailed, "reason", lambda: _propose(world, subject, TIGHTER, reason=None)
    )
    first = _propose(world, subject, TIGHTER)
    refusal(
        world, Forbidden, "subject", lambda: _propose(world, subject, {"target": "42"}, by=SPONSOR)
    )
    refusal(
        world, ValidationFailed, "payload.revision", lambda: _decide(world, subject, uuid.uuid4())
    )
    refusal(
        world, ValidationFailed, "reason", lambda: _decide(world, subject, first, approve=False)
    )
    _decide(world, subject, first, approve=False, reason="wait for six more batches")
    parameter = _parameter(world, subject)
    assert parameter.alert == {"low": "32", "high": "55"} and parameter.limits_version == 1
    assert parameter.revisions[str(first)]["outcome"] == "rejected"
    refusal(
        world,
        ValidationFailed,
        "payload.revision",
        lambda: _propose(world, subject, TIGHTER, revision=first),
    )
    refusal(world, ValidationFailed, "payload.revision", lambda: _decide(world, subject, first))
    second = _propose(world, subject, TIGHTER, by=SPONSOR)
    _decide(world, subject, second, by=CMO)
    assert _parameter(world, subject).limits_version == 2


def test_revision_changes_are_checked_like_a_definition(world: World):
    agreement_id = propose_and_sign(world)
    subject = define_parameter(world, agreement_id)
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "payload.changes"),
        ({"name": "pO2"}, "payload.changes.name"),
        ({"alert": {"low": "25", "high": "50"}}, "payload.changes.alert"),
        ({"action": {"low": "33", "high": "60"}}, "payload.changes.action.low"),
        ({"alert": {"low": "50", "high": "35"}}, "payload.changes.alert.low"),
        ({"target": "60"}, "payload.changes.target"),
        ({"unit": "mm Hg"}, "payload.changes.unit"),
        ({"status": "retired"}, "payload.changes.status"),
        ({"status": "hypothesis"}, "payload.changes.status"),
        ({"alert": {"low": "32", "high": "55"}}, "payload.changes.alert"),
    ]
    for changes, field in cases:
        refusal(world, ValidationFailed, field, lambda c=changes: _propose(world, subject, c))
    # Removing the target is a change too.
    revision = _propose(world, subject, {"target": None})
    _decide(world, subject, revision)
    assert _parameter(world, subject).target is None


def test_limits_at_a_past_time_answer_which_limits_applied_to_a_batch(world: World):
    agreement_id = propose_and_sign(world)
    before_definition = now_utc() - timedelta(seconds=1)
    subject = define_parameter(world, agreement_id)
    register_batch(world, agreement_id, "NWB101-24-007", started_at=now_utc())
    batch = world.ledger.get_aggregate(batch_subject("NWB101-24-007"), Batch)
    assert batch is not None
    batch_started = parse_utc(batch.started_at, field="started_at")
    revision = _propose(world, subject, TIGHTER)
    _decide(world, subject, revision)

    parameter = _parameter(world, subject)
    applied = parameter.limits_at(batch_started)
    assert applied is not None
    assert (applied["version"], applied["limits"]["alert"], applied["status"]) == (
        1,
        {"low": "32", "high": "55"},
        "hypothesis",
    )
    now = parameter.limits_at(now_utc())
    assert now is not None and now["version"] == 2 and now["limits"]["alert"]["low"] == "35"
    assert parameter.limits_at(before_definition) is None
    # The same question answered from the aggregate as it stood at each version.
    as_defined = _parameter(world, subject, version=1)
    assert as_defined.limits_at(now_utc()) == applied
    as_proposed = _parameter(world, subject, version=2)
    assert as_proposed.pending == str(revision) and as_proposed.limits_version == 1
    assert _parameter(world, subject, version=3).limits_history == parameter.limits_history


def test_a_retired_parameter_takes_no_revisions(world: World):
    agreement_id = propose_and_sign(world)
    subject = define_parameter(world, agreement_id)
    pending = _propose(world, subject, TIGHTER)
    refusal(world, ValidationFailed, "reason", lambda: _retire(world, subject, reason=None))
    refusal(
        world,
        Forbidden,
        "signer",
        lambda: world["helios-tx"].submit(
            world.ledger, "ParameterRetired", subject, {}, meaning="retired", reason="not ours"
        ),
    )
    _retire(world, subject)
    parameter = _parameter(world, subject)
    assert parameter.retired_at is not None and parameter.retired_by == CMO
    assert parameter.revisions[str(pending)]["outcome"] == "withdrawn"
    assert parameter.limits_at(now_utc()) is None
    just_before = parse_utc(parameter.retired_at, field="retired_at") - timedelta(milliseconds=1)
    assert parameter.limits_at(just_before) == parameter.limits_history[0]
    refusal(world, Forbidden, "subject", lambda: _propose(world, subject, {"target": "42"}))
    refusal(world, ValidationFailed, "payload.revision", lambda: _decide(world, subject, pending))
    refusal(world, Forbidden, "subject", lambda: _retire(world, subject))


def test_a_refused_revision_leaves_no_trace(world: World):
    agreement_id = propose_and_sign(world)
    subject = define_parameter(world, agreement_id)
    version = _parameter(world, subject).version
    error: LedgerError = refusal(
        world,
        ValidationFailed,
        "payload.changes.target",
        lambda: _propose(world, subject, {"target": "99"}),
    )
    assert "alert limits" in error.message
    assert _parameter(world, subject).version == version
