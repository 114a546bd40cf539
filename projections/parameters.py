"""Parameters: definitions, the limits in force (every version), revisions and status.

``proj_parameters``: one row per parameter (CPP, CQA, KPI, IPC) of an agreement: name,
kind, unit, target, alert and action limits, rationale, status (``hypothesis`` or
``confirmed``), ``active`` or ``retired``, the limits version in force and the pending
revision.
``proj_parameter_limits``: one row per limits version; a version's row is current while
those limits are in force (retirement ends the last one), so ``as_of`` answers "which
limits applied when batch B was made".
``proj_parameter_revisions``: each proposed revision, its changes and its outcome
(``pending``, ``approved``, ``rejected``, ``withdrawn``).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Boolean, Column, Index, Integer, MetaData, String, Text, select
from sqlalchemy.engine import Connection

from ledger.domain.limits import bounds, changed_limits
from ledger.domain.validity import effective_from
from projections.temporal import Row, as_of, temporal_table
from projections.view import Fact, Page, View, dumps, handles

__all__ = ["LIMITS", "PARAMETERS", "REVISIONS", "ParametersView", "parameters_as_of"]

metadata = MetaData()


def _limit_columns() -> list[Column[Any]]:
    return [
        Column("unit", String(64), nullable=False),
        Column("target", String(40)),
        Column("alert_low", String(40)),
        Column("alert_high", String(40)),
        Column("action_low", String(40)),
        Column("action_high", String(40)),
        Column("status", String(16), nullable=False),
        Column("rationale", Text, nullable=False),
    ]


PARAMETERS = temporal_table(
    "proj_parameters",
    metadata,
    [Column("parameter", String(36), nullable=False)],
    Column("agreement", String(36), nullable=False),
    Column("name", String(100), nullable=False),
    Column("kind", String(8), nullable=False),
    *_limit_columns(),
    Column("state", String(16), nullable=False),
    Column("limits_version", Integer, nullable=False),
    Column("pending_revision", String(36)),
    Column("defined_by", String(64), nullable=False),
    Column("defined_at", String(30), nullable=False),
    Column("retired_at", String(30)),
    Column("retired_by", String(64)),
    Index("ix_proj_parameters_agreement", "agreement", "valid_from"),
)

LIMITS = temporal_table(
    "proj_parameter_limits",
    metadata,
    [
        Column("parameter", String(36), nullable=False),
        Column("limits_version", Integer, nullable=False),
    ],
    Column("agreement", String(36), nullable=False),
    Column("effective_from", String(30), nullable=False),
    Column("retroactive", Boolean, nullable=False),
    Column("revision", String(36)),
    *_limit_columns(),
    Index("ix_proj_parameter_limits_agreement", "agreement", "valid_from"),
)

REVISIONS = temporal_table(
    "proj_parameter_revisions",
    metadata,
    [
        Column("parameter", String(36), nullable=False),
        Column("revision", String(36), nullable=False),
    ],
    Column("agreement", String(36), nullable=False),
    Column("proposed_by", String(64), nullable=False),
    Column("proposed_at", String(30), nullable=False),
    Column("reason", Text),
    Column("changes", Text, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("decided_by", String(64)),
    Column("decided_at", String(30)),
    Column("decision_reason", Text),
)

_LIMIT_FIELDS = (
    "unit",
    "target",
    "alert_low",
    "alert_high",
    "action_low",
    "action_high",
    "status",
    "rationale",
)


def parameters_as_of(conn: Connection, position: int, agreement: str) -> list[Row]:
    """The parameters of an agreement as they stood at ``position``."""
    query = (
        select(PARAMETERS)
        .where(PARAMETERS.c.agreement == agreement, as_of(PARAMETERS, position))
        .order_by(PARAMETERS.c.name)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def _limits(source: dict[str, Any]) -> Row:
    return {
        "unit": source["unit"],
        "target": source.get("target"),
        **bounds(source),
        "status": source["status"],
        "rationale": source["rationale"],
    }


class ParametersView(View):
    """Parameter definitions, limits versions and revisions."""

    name = "parameters"
    tables = (PARAMETERS, LIMITS, REVISIONS)

    @handles("ParameterDefined")
    def _defined(self, page: Page, fact: Fact) -> None:
        payload = fact.payload
        limits = _limits(dict(payload))
        page.versions(PARAMETERS).insert(
            (fact.subject,),
            fact.position,
            {
                "agreement": payload["agreement"],
                "name": payload["name"],
                "kind": payload["kind"],
                **limits,
                "state": "active",
                "limits_version": 1,
                "pending_revision": None,
                "defined_by": fact.signer,
                "defined_at": fact.recorded_at,
                "retired_at": None,
                "retired_by": None,
            },
        )
        self._limits_take_effect(page, fact, payload["agreement"], 1, None, limits)

    @handles("ParameterRevisionProposed")
    def _proposed(self, page: Page, fact: Fact) -> None:
        revision = fact.payload["revision"]
        parameter = page.versions(PARAMETERS).update(
            (fact.subject,), fact.position, pending_revision=revision
        )
        if parameter is None:
            return
        page.versions(REVISIONS).insert(
            (fact.subject, revision),
            fact.position,
            {
                "agreement": parameter["agreement"],
                "proposed_by": fact.signer,
                "proposed_at": fact.recorded_at,
                "reason": fact.reason,
                "changes": dumps(fact.payload["changes"]),
                "outcome": "pending",
                "decided_by": None,
                "decided_at": None,
                "decision_reason": None,
            },
        )

    @handles("ParameterRevisionApproved")
    def _approved(self, page: Page, fact: Fact) -> None:
        revision = fact.payload["revision"]
        decided = self._decide(page, fact, revision, "approved")
        parameter = page.versions(PARAMETERS).get((fact.subject,))
        if decided is None or parameter is None:
            return
        changes = json.loads(decided["changes"])
        merged = {name: parameter[name] for name in _LIMIT_FIELDS}
        merged.update(changed_limits(changes))
        version = int(parameter["limits_version"]) + 1
        page.versions(PARAMETERS).update(
            (fact.subject,),
            fact.position,
            **merged,
            limits_version=version,
            pending_revision=None,
        )
        page.versions(LIMITS).end((fact.subject, version - 1), fact.position)
        self._limits_take_effect(page, fact, parameter["agreement"], version, revision, merged)

    @handles("ParameterRevisionRejected")
    def _rejected(self, page: Page, fact: Fact) -> None:
        if self._decide(page, fact, fact.payload["revision"], "rejected") is not None:
            page.versions(PARAMETERS).update((fact.subject,), fact.position, pending_revision=None)

    @handles("ParameterRetired")
    def _retired(self, page: Page, fact: Fact) -> None:
        parameter = page.versions(PARAMETERS).get((fact.subject,))
        if parameter is None:
            return
        if parameter["pending_revision"] is not None:
            self._decide(page, fact, parameter["pending_revision"], "withdrawn")
        page.versions(LIMITS).end((fact.subject, parameter["limits_version"]), fact.position)
        page.versions(PARAMETERS).update(
            (fact.subject,),
            fact.position,
            state="retired",
            pending_revision=None,
            retired_at=fact.recorded_at,
            retired_by=fact.signer,
        )

    def _decide(self, page: Page, fact: Fact, revision: str, outcome: str) -> Row | None:
        return page.versions(REVISIONS).update(
            (fact.subject, revision),
            fact.position,
            outcome=outcome,
            decided_by=fact.signer,
            decided_at=fact.recorded_at,
            decision_reason=fact.reason,
        )

    def _limits_take_effect(
        self,
        page: Page,
        fact: Fact,
        agreement: str,
        version: int,
        revision: str | None,
        limits: Row,
    ) -> None:
        effective = effective_from(fact.payload, fact.recorded_at)
        page.versions(LIMITS).insert(
            (fact.subject, version),
            fact.position,
            {
                "agreement": agreement,
                "effective_from": effective,
                "retroactive": effective < fact.recorded_at,
                "revision": revision,
                **limits,
            },
        )
