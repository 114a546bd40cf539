# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""Continued process verification as a query (R26): ``cpv`` and ``cpvSignals``.

``cpv(agreementId, parameter, baseline, validFrom, validTo, knownAt, statistic)`` charts a
parameter's discrete results (or, for a parameter measured by a continuous tag, one
``statistic`` of each batch's summary of the tag, :mod:`projections.summaries`), one point
per batch, for the batches whose valid time (``startedAt``) lies
in ``[validFrom, validTo]``, as the ledger knew them at log position ``knownAt`` (default:
the views' head). One result per batch gives an I-MR chart; ``n`` results per batch (the
same ``n`` for every batch, 2..25) an X̄-R chart whose subgroup is the batch. The control
limits come from the batches of the baseline's list as it stood at ``knownAt``; the run
rules are Nelson's eight; capability is computed against the action limits (the
specification) in force at each batch's valid time, one study per limits version. Every
read is ``as_of(knownAt)``, so an analysis at a position answers the same bytes whatever
is recorded later (what the caller may read is still decided now). The statistics are
:mod:`ledger.cpv`'s; ``docs/cpv.md`` states the contract.

``cpvSignals(agreementId)`` runs the current analysis of every baseline of the agreement
and lists those with a rule violation or a Cpk below the terms' ``cpk_threshold``, and
whether a party acknowledged that analysis (``CpvSignalAcknowledged`` naming its inputs
digest).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import Enum
from operator import itemgetter
from typing import Any

import orjson

# Loaded with the server, not by its first analysis (the command line loads it on first use).
import scipy.stats  # noqa: F401
import strawberry
from sqlalchemy import ColumnElement, ScalarSelect, Text, case, cast, func, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Connection
from strawberry.scalars import JSON

from api.permissions import forbidden
from api.queries.agreements import require_agreement
from api.queries.common import Info, Scope, read, scope_of, time_text
from api.read_log import note_field
from api.services import Services
from api.threads import in_thread
from ledger.application import Ledger
from ledger.cpv import (
    Capability,
    Index,
    IndividualsChart,
    SubgroupChart,
    SummaryInput,
    capability_individuals,
    capability_subgroups,
    evaluate_chart,
    individuals_chart,
    inputs_digest,
    xbar_r_chart,
)
from ledger.cpv.inputs import batch_results_digest
from ledger.cpv.summary import STATISTICS
from ledger.domain.limits import LimitsVersion, in_force_at, tag_for
from ledger.domain.scope import DataItem
from ledger.domain.subjects import baseline_subject
from ledger.domain.terms_schema import DEFAULT_CPK_THRESHOLD
from ledger.errors import NotFound, ValidationFailed
from projections.agreements import AGREEMENTS
from projections.audit import AUDIT
from projections.data import BATCHES, RECORDS
from projections.parameters import LIMITS, PARAMETERS
from projections.summaries import SUMMARIES
from projections.temporal import as_of

__all__ = [
    "CpvAnalysis",
    "CpvQuery",
    "CpvSignal",
    "CpvStatistic",
    "cpv_analysis",
    "cpv_signals",
]

BASELINE_EVENTS = ("BaselineDefined", "BaselineRevised", "CpvSignalAcknowledged")
MAX_SUBGROUP = 25


# -- answer types ---------------------------------------------------------------------------


@strawberry.enum(
    description="The statistic of each batch's summary of a continuous tag that is charted."
)
class CpvStatistic(Enum):
    MEAN = "MEAN"
    MIN = "MIN"
    MAX = "MAX"
    TIME_OUTSIDE_LIMITS = strawberry.enum_value(
        "TIME_OUTSIDE_LIMITS",
        description="Seconds the points spent beyond the action limits in force at the "
        "batch's valid time.",
    )


assert tuple(member.value for member in CpvStatistic) == STATISTICS


@strawberry.type(description="A centre line and its lower and upper control limits.")
class CpvLimits:
    centre: float
    lower: float
    upper: float


@strawberry.type(description="One result a CPV analysis used, as the ledger holds it.")
class CpvInputRow:
    record_id: str
    value: str = strawberry.field(description="The value as submitted (a decimal string).")
    limits_version: int = strawberry.field(
        description="The parameter's limits version in force at the batch's valid time."
    )


@strawberry.type(
    description="A batch's summary of a continuous tag, as the ledger holds it "
    "(ledger/cpv/summary.py): mean, min and max are decimal strings."
)
class CpvSummary:
    tag: str
    data_class: str
    first: str = strawberry.field(description="The time of the first point.")
    last: str = strawberry.field(description="The time of the last point.")
    count: int
    mean: str
    min: str
    max: str
    time_outside_limits_ms: float | None = strawberry.field(
        description="Milliseconds beyond the action limits (a whole number; Float because "
        "GraphQL's Int is 32-bit); null when no limits were in force at the batch's valid "
        "time as known when its chunks arrived."
    )
    limits_version: int | None = strawberry.field(
        description="The limits version the time outside limits was judged against."
    )
    chunks: list[str] = strawberry.field(description="SHA-256 of each chunk summarised.")


@strawberry.type(description="One plotted point: a batch.")
class CpvPoint:
    index: int
    batch: str
    valid_at: str = strawberry.field(description="The batch's valid time (its startedAt).")
    value: float = strawberry.field(
        description="The individual value (I-MR) or the batch's mean (X-bar/R)."
    )
    dispersion: float | None = strawberry.field(
        description="Moving range to the previous point (null for the first), or the range."
    )
    limits_version: int
    records: list[CpvInputRow] = strawberry.field(
        description="The discrete results charted (empty for a continuous parameter)."
    )
    summary: CpvSummary | None = strawberry.field(
        description="The summary of the continuous tag charted (null for discrete results)."
    )


@strawberry.type(description="One occurrence of a Nelson rule: the batches that form it.")
class CpvViolation:
    rule: int
    name: str
    batches: list[str]
    indexes: list[int]


@strawberry.type(description="A two-sided confidence interval.")
class CpvInterval:
    lower: float
    upper: float
    confidence: float


@strawberry.type(description="A capability or performance index and its confidence interval.")
class CpvIndex:
    value: float
    interval: CpvInterval


@strawberry.type(description="Anderson-Darling test of normality (mean and variance estimated).")
class CpvNormality:
    statistic: float
    adjusted_statistic: float
    p_value: float
    method: str


@strawberry.type(
    description="Capability of the batches judged against one limits version: against its "
    "action limits (the specification; either may be null, one-sided)."
)
class CpvCapability:
    limits_version: int
    lsl: str | None
    usl: str | None
    batches: list[str]
    n: int = strawberry.field(description="Number of values.")
    mean: float
    sigma_within: float
    sigma_overall: float
    within_method: str
    cp: CpvIndex | None
    cpk: CpvIndex
    pp: CpvIndex | None
    ppk: CpvIndex
    normality: CpvNormality | None
    warnings: list[str]


@strawberry.type(description="A signed checkpoint, by its size and root hash.")
class CpvCheckpoint:
    tree_size: int
    root_hash: str = strawberry.field(description="Root hash, base64.")


@dataclass(frozen=True, slots=True)
class _Plot:
    """One charted batch: what its point answers; the point is built only when asked for."""

    index: int
    batch: _Batch
    value: float
    dispersion: float | None
    limits_version: int


def _points(root: Any) -> list[CpvPoint]:
    return [
        CpvPoint(
            index=plot.index,
            batch=plot.batch.name,
            valid_at=plot.batch.valid_at,
            value=plot.value,
            dispersion=plot.dispersion,
            limits_version=plot.limits_version,
            records=[
                CpvInputRow(record_id=record_id, value=value, limits_version=version)
                for version in (plot.limits_version,)
                for record_id, value in plot.batch.records
            ],
            summary=_summary(plot.batch),
        )
        for plot in root.plotted
    ]


def _points_json(root: Any) -> JSON:
    # Plain dicts straight from the rows: one scalar for the whole list, where the typed
    # field completes every point and every result as an object of its own.
    points = [
        {
            "index": plot.index,
            "batch": plot.batch.name,
            "validAt": plot.batch.valid_at,
            "value": plot.value,
            "dispersion": plot.dispersion,
            "limitsVersion": version,
            "records": [
                {"recordId": record_id, "value": value, "limitsVersion": version}
                for record_id, value in plot.batch.records
            ],
            "summary": _summary_json(plot.batch),
        }
        for plot in root.plotted
        for version in (plot.limits_version,)
    ]
    return JSON(points)


@strawberry.type(
    description="A CPV analysis as the ledger knew it at position knownAt: the same question "
    "at the same knownAt answers the same bytes."
)
class CpvAnalysis:
    agreement_id: strawberry.ID
    parameter: str
    parameter_id: strawberry.ID
    unit: str
    baseline: str
    baseline_id: strawberry.ID
    baseline_version: int = strawberry.field(
        description="The version of the baseline's batch list used (1 = as defined)."
    )
    baseline_batches: list[str]
    valid_from: str | None
    valid_to: str | None
    known_at: int = strawberry.field(description="The log position the analysis stands at.")
    chart: str = strawberry.field(description="I-MR, or XBAR-R (subgroup = batch).")
    statistic: CpvStatistic | None = strawberry.field(
        description="The statistic of a continuous tag's summaries charted (null: discrete)."
    )
    tag: str | None = strawberry.field(description="The continuous tag charted (null: discrete).")
    subgroup_size: int
    sigma: float = strawberry.field(description="Within sigma of the baseline (MR/d2, R/d2).")
    location: CpvLimits = strawberry.field(description="The individuals or X-bar chart.")
    dispersion: CpvLimits = strawberry.field(description="The moving range or range chart.")
    points: list[CpvPoint] = strawberry.field(resolver=_points)
    points_json: JSON = strawberry.field(
        resolver=_points_json,
        description="The points as one JSON value: the list, member names and values that "
        "points { index batch validAt value dispersion limitsVersion records { recordId value "
        "limitsVersion } summary { tag dataClass first last count mean min max "
        "timeOutsideLimitsMs limitsVersion chunks } } answers, much faster to answer for "
        "many batches.",
    )
    violations: list[CpvViolation] = strawberry.field(description="Nelson rules 1..8.")
    capability: list[CpvCapability] = strawberry.field(
        description="One study per limits version in force over the charted batches."
    )
    warnings: list[str]
    inputs_digest: str = strawberry.field(
        description="SHA-256 of the canonical JSON of (batch, record_id, value, "
        "limits_version) of every charted result, or of every charted summary "
        "(docs/cpv.md)."
    )
    plotted: strawberry.Private[list[_Plot]]
    last_position: strawberry.Private[int | None] = None

    @strawberry.field(
        description="The smallest signed checkpoint whose tree includes the last event at "
        "knownAt; null until one is signed."
    )
    async def checkpoint(self, info: Info) -> CpvCheckpoint | None:
        if self.last_position is None:
            return None
        return await in_thread(_checkpoint, info.context.services, self.last_position)


@strawberry.type(description="Who acknowledged a CPV signal, when, and what they said.")
class CpvAcknowledgement:
    by: str
    at: str
    comment: str


@strawberry.type(
    description="The current analysis of a baseline shows a rule violation or a Cpk below the "
    "agreement's cpk_threshold."
)
class CpvSignal:
    parameter: str
    baseline: str
    baseline_id: strawberry.ID
    inputs_digest: str
    known_at: int
    reasons: list[str]
    violations: list[CpvViolation]
    cpk: float | None = strawberry.field(
        description="The lowest Cpk of the analysis's capability studies."
    )
    cpk_threshold: str
    acknowledged: bool
    acknowledgements: list[CpvAcknowledgement]


# -- reading the ledger at a position -------------------------------------------------------


@dataclass
class _Baseline:
    subject: str
    name: str
    parameter: str
    version: int = 0
    batches: list[str] = field(default_factory=list)
    acknowledgements: dict[str, list[CpvAcknowledgement]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Question:
    agreement: str
    parameter: str
    baseline: str
    valid_from: str | None
    valid_to: str | None
    known_at: int
    statistic: str | None = None


def _baseline_at(conn: Connection, ledger: Ledger, subject: str, position: int) -> _Baseline | None:
    """The baseline folded from its events up to ``position``."""
    positions = [
        int(p)
        for p in conn.execute(
            select(AUDIT.c.position)
            .where(AUDIT.c.subject == subject, AUDIT.c.position <= position)
            .where(AUDIT.c.type.in_(BASELINE_EVENTS))
            .order_by(AUDIT.c.position)
        ).scalars()
    ]
    events = ledger.read_at(positions)
    found: _Baseline | None = None
    for at in positions:
        recorded = events[at]
        envelope = recorded.event.envelope
        payload = envelope["payload"]
        if envelope["type"] == "BaselineDefined":
            found = _Baseline(subject, payload["name"], payload["parameter"])
        if found is None:
            continue
        if envelope["type"] in ("BaselineDefined", "BaselineRevised"):
            found.version += 1
            found.batches = list(payload["batches"])
        else:
            found.acknowledgements.setdefault(payload["inputs_digest"], []).append(
                CpvAcknowledgement(
                    by=envelope["signer"],
                    at=recorded.event.recorded_at,
                    comment=payload["comment"],
                )
            )
    return found


def _limits_versions(conn: Connection, parameter: Any, position: int) -> list[LimitsVersion]:
    rows = conn.execute(
        select(LIMITS)
        .where(LIMITS.c.parameter == parameter.parameter, as_of(LIMITS, position))
        .order_by(LIMITS.c.limits_version)
    ).all()
    versions = []
    for index, row in enumerate(rows):
        data = dict(row._mapping)
        following = rows[index + 1].effective_from if index + 1 < len(rows) else None
        data["version"] = data["limits_version"]
        data["effective_to"] = following if following is not None else parameter.retired_at
        versions.append(LimitsVersion.of(data))
    return versions


_Sampling = tuple[str, str, str | None]
"""A result's data class, parameter and sampling time: what the read rules judge."""


@dataclass
class _Batch:
    name: str
    valid_at: str
    records: list[tuple[str, str]] = field(default_factory=list)
    """The results charted, (record id, value), in record id order. Plain tuples of text,
    which the collector stops tracking: a chart holds tens of thousands of them."""
    sampled: dict[_Sampling, str] = field(default_factory=dict)
    """Each sampling of the results and its first record id."""
    summaries: list[Any] = field(default_factory=list)
    numbers: list[float] = field(default_factory=list)
    """The values charted: the results, or the chosen statistic of the summary."""
    summary: CpvSummary | None = None
    summary_made: bool = False


class _Found(dict[str, _Batch]):
    """The batches of the agreement with data of the parameter, by name. A batch enters
    when its first result or summary is read: most of an agreement's batches often have
    none, and need no object."""

    def of(self, name: str, started_at: str) -> _Batch:
        """The batch ``name`` (valid time ``started_at``), entered now if it had no data yet."""
        found = self.get(name)
        if found is None:
            found = self[name] = _Batch(name, started_at)
        return found


def _started(question: _Question, batch: ColumnElement[str]) -> ScalarSelect[str | None]:
    """The valid time (startedAt) of ``batch`` at ``knownAt`` if it is a batch of the
    agreement, else NULL. Found by the batch's key alone, once per batch with data: a
    condition on the agreement lets the planner scan every batch of the agreement for each,
    a cost that grows with the log."""
    of_agreement = case((BATCHES.c.agreement == question.agreement, BATCHES.c.started_at))
    return (
        select(of_agreement)
        .where(BATCHES.c.batch == batch, as_of(BATCHES, question.known_at))
        .scalar_subquery()
    )


def _batches(conn: Connection, question: _Question, parameter: str) -> _Found:
    found = _Found()
    for name, started_at, results in _results(conn, question, parameter):
        batch = found.of(name, started_at)
        batch.records = [(record_id, value) for record_id, value, _, _ in results]
        sampled, last = batch.sampled, None
        for record_id, _, data_class, sampled_at in results:
            # Replicates sampled together follow each other: one key for all of them.
            if last is None or last[0] != data_class or last[2] != sampled_at:
                last = (data_class, parameter, sampled_at)
                sampled.setdefault(last, record_id)
    return found


def _results(
    conn: Connection, question: _Question, parameter: str
) -> Iterator[tuple[str, str, list[list[Any]]]]:
    """Each registered batch's name, valid time and charted results at ``knownAt``, these
    as ``[record id, value, data class, sampled at]`` in record id order: one row and one
    JSON array per batch, where a row per result would cost a Python row each."""
    columns = [RECORDS.c[name] for name in ("record_id", "value", "data_class", "sampled_at")]
    postgres = conn.dialect.name == "postgresql"
    results: ColumnElement[str]
    if postgres:
        ordered = aggregate_order_by(func.json_build_array(*columns), RECORDS.c.record_id)
        results = cast(func.json_agg(ordered), Text)
    else:
        results = func.json_group_array(func.json_array(*columns), type_=Text)
    grouped = (
        select(RECORDS.c.batch, results.label("results"))
        .where(RECORDS.c.agreement == question.agreement, RECORDS.c.parameter == parameter)
        .where(RECORDS.c.form == "discrete", RECORDS.c.status == "current")
        .where(RECORDS.c.verified.is_(True))  # R17: an unverified manual value does not count
        .where(RECORDS.c.value.is_not(None), as_of(RECORDS, question.known_at))
        .group_by(RECORDS.c.batch)
        .subquery()
    )
    rows = conn.execute(
        select(grouped.c.batch, _started(question, grouped.c.batch), grouped.c.results).order_by(
            grouped.c.batch
        )
    )
    for name, started, text in rows.tuples():
        if started is None:
            continue  # not a batch of the agreement at knownAt
        found: list[list[Any]] = orjson.loads(text)
        if not postgres:
            # SQLite aggregates in no promised order; its BINARY collation compares UTF-8
            # bytes, which order text as Python compares code points.
            found.sort(key=itemgetter(0))
        yield name, started, found


def _summaries(conn: Connection, question: _Question, batches: _Found) -> list[str]:
    """Give each batch its summaries, at ``knownAt``, of the continuous tags that measure
    the parameter (:func:`ledger.domain.limits.tag_for`); those tags, sorted."""
    at = question.known_at
    known = conn.execute(
        select(SUMMARIES.c.tag)
        .where(SUMMARIES.c.agreement == question.agreement, as_of(SUMMARIES, at))
        .distinct()
    ).scalars()
    tags = sorted(t for t in known if tag_for(question.parameter, [t]) == t)
    if not tags:
        return []
    rows = conn.execute(
        select(SUMMARIES, _started(question, SUMMARIES.c.batch).label("batch_started_at"))
        .where(SUMMARIES.c.agreement == question.agreement, SUMMARIES.c.tag.in_(tags))
        .where(as_of(SUMMARIES, at))
        .order_by(SUMMARIES.c.batch, SUMMARIES.c.tag)
    )
    for row in rows:
        if row.batch_started_at is not None:  # else not a batch of the agreement at knownAt
            batches.of(row.batch, row.batch_started_at).summaries.append(row)
    return tags


def _continuous(question: _Question, batches: dict[str, _Batch], tags: list[str]) -> bool:
    """Whether the parameter is charted by a statistic of continuous summaries; refuses a
    statistic for discrete results and discrete charting of a continuous tag."""
    discrete = any(b.records for b in batches.values())
    if question.statistic is not None and discrete:
        raise ValidationFailed(
            f"{question.parameter!r} has discrete results: a statistic applies only to a "
            "parameter measured by a continuous tag",
            field="statistic",
        )
    if question.statistic is None and not discrete and tags:
        raise ValidationFailed(
            f"{question.parameter!r} is measured by the continuous tag {', '.join(tags)}: "
            f"choose the statistic to chart ({', '.join(STATISTICS)})",
            field="statistic",
        )
    return question.statistic is not None


def _statistic(batch: _Batch, statistic: str) -> list[float]:
    """The batch's value of ``statistic`` (one number), from its one summary."""
    if len(batch.summaries) > 1:
        tags = ", ".join(row.tag for row in batch.summaries)
        raise ValidationFailed(
            f"batch {batch.name} has several tags measuring the parameter ({tags})",
            field="parameter",
        )
    row = batch.summaries[0]
    if statistic == "TIME_OUTSIDE_LIMITS":
        if row.time_outside_limits_ms is None:
            raise ValidationFailed(
                f"batch {batch.name}'s {row.tag} has no time outside limits: no single limits "
                "version was in force at its valid time when its chunks arrived",
                field="statistic",
            )
        return [row.time_outside_limits_ms / 1000]
    return [float({"MEAN": row.mean, "MIN": row.min, "MAX": row.max}[statistic])]


def _chartable(batches: Sequence[_Batch], question: _Question, continuous: bool) -> None:
    for batch in batches:
        if continuous:
            batch.numbers = _statistic(batch, str(question.statistic)) if batch.summaries else []
        else:
            batch.numbers = _numbers(batch)


def _require_readable(scope: Scope, agreement: str, batches: Sequence[_Batch]) -> None:
    judged: set[str] = set()  # a baseline batch is often charted too
    for batch in batches:
        if batch.name in judged:
            continue
        judged.add(batch.name)
        for row in batch.summaries:  # the same grants as reading the points themselves
            item = DataItem(agreement, row.data_class, batch.name, row.tag)
            refusal = scope.authority.series_refusal(item, row.first, row.last, scope.now)
            if refusal is not None:
                raise forbidden(
                    f"{refusal}: a CPV analysis needs read access to every series it "
                    "summarises and every series of its baseline",
                    row.data_class,
                )
        # Replicates sampled together are one item to the rules: judged once.
        for (data_class, measured, sampled_at), record_id in batch.sampled.items():
            item = DataItem(agreement, data_class, batch.name, measured, sampled_at)
            if not scope.authority.sees_data(item, scope.now):
                raise forbidden(
                    f"{scope.party} may not read {data_class} result {record_id} of "
                    f"batch {batch.name} ({measured}): a CPV analysis needs read access "
                    "to every result it charts and every result of its baseline",
                    data_class,
                )


def _in_window(batch: _Batch, question: _Question) -> bool:
    if question.valid_from is not None and batch.valid_at < question.valid_from:
        return False
    return question.valid_to is None or batch.valid_at <= question.valid_to


def _ordered(batches: Sequence[_Batch]) -> list[_Batch]:
    return sorted(batches, key=lambda b: (b.valid_at, b.name))


# -- the analysis ---------------------------------------------------------------------------


def _analyse(conn: Connection, ledger: Ledger, scope: Scope, question: _Question) -> CpvAnalysis:
    at = question.known_at
    parameter = conn.execute(
        select(PARAMETERS).where(
            PARAMETERS.c.agreement == question.agreement,
            PARAMETERS.c.name == question.parameter,
            as_of(PARAMETERS, at),
        )
    ).first()
    if parameter is None:
        raise NotFound(
            f"the agreement had no parameter {question.parameter!r} at position {at}",
            field="parameter",
        )
    subject = str(baseline_subject(question.agreement, question.parameter, question.baseline))
    baseline = _baseline_at(conn, ledger, subject, at)
    if baseline is None:
        raise NotFound(
            f"parameter {question.parameter!r} had no baseline {question.baseline!r} at "
            f"position {at}",
            field="baseline",
        )
    batches = _batches(conn, question, question.parameter)
    continuous = _continuous(question, batches, _summaries(conn, question, batches))
    if not continuous:
        for batch in batches.values():
            batch.summaries = []
    charted = _ordered(
        [b for b in batches.values() if (b.records or b.summaries) and _in_window(b, question)]
    )
    if not charted:
        raise ValidationFailed(
            f"no results of {question.parameter!r} in batches from {question.valid_from or '-'} "
            f"to {question.valid_to or '-'} at position {at}",
            field="validFrom",
        )
    base = _ordered([batches[name] for name in baseline.batches if name in batches])
    _require_readable(scope, question.agreement, [*charted, *base])
    _chartable([*charted, *base], question, continuous)
    versions = _limits_versions(conn, parameter, at)
    last = conn.execute(
        select(AUDIT.c.position)
        .where(AUDIT.c.position <= at)
        .order_by(AUDIT.c.position.desc())
        .limit(1)
    ).first()
    return _compute(question, parameter, baseline, charted, base, versions, last)


def _size(batches: Sequence[_Batch]) -> int:
    sizes = {len(b.numbers) for b in batches}
    if len(sizes) > 1:
        first = batches[0]
        other = next(b for b in batches if len(b.numbers) != len(first.numbers))
        raise ValidationFailed(
            f"batch {first.name} has {len(first.numbers)} results of the parameter and batch "
            f"{other.name} has {len(other.numbers)}: every batch needs the same number "
            "(1 for I-MR, 2..25 for X-bar/R)",
            field="parameter",
        )
    size = sizes.pop()
    if size > MAX_SUBGROUP:
        raise ValidationFailed(
            f"batches have {size} results each: X-bar/R takes at most {MAX_SUBGROUP}",
            field="parameter",
        )
    return size


def _numbers(batch: _Batch) -> list[float]:
    # A decimal string parses to the float nearest its value, as float(Decimal(...)) does.
    return [float(value) for _, value in batch.records]


def _core(fn: Callable[[], Any], field_name: str) -> Any:
    """Run a :mod:`ledger.cpv` computation; its refusals name this query's argument."""
    try:
        return fn()
    except ValidationFailed as error:
        raise ValidationFailed(error.message, field=field_name) from None


def _compute(
    question: _Question,
    parameter: Any,
    baseline: _Baseline,
    charted: list[_Batch],
    base: list[_Batch],
    versions: list[LimitsVersion],
    last: Any,
) -> CpvAnalysis:
    warnings: list[str] = []
    base = [b for b in base if b.numbers]
    missing = sorted(set(baseline.batches) - {b.name for b in base})
    if missing:
        warnings.append(f"baseline batches without results at this position: {', '.join(missing)}")
    size = _size([*charted, *base])
    chart: IndividualsChart | SubgroupChart
    if size == 1:
        values = [b.numbers[0] for b in charted]
        base_values = [b.numbers[0] for b in base]
        individuals: IndividualsChart = _core(
            lambda: individuals_chart(values, baseline_values=base_values), "baseline"
        )
        chart, dispersion = individuals, list(individuals.moving_ranges)
        location, spread = individuals.individuals, individuals.moving_range
    else:
        groups = [b.numbers for b in charted]
        base_groups = [b.numbers for b in base]
        subgroups: SubgroupChart = _core(
            lambda: xbar_r_chart(groups, baseline_subgroups=base_groups), "baseline"
        )
        chart, dispersion = subgroups, [float(d) for d in subgroups.dispersions]
        location, spread = subgroups.location, subgroups.dispersion
    judged: list[LimitsVersion] = []
    for batch in charted:
        version = in_force_at(versions, batch.valid_at)
        if version is None:
            raise ValidationFailed(
                f"no limits of {question.parameter!r} were in force at batch {batch.name}'s "
                f"valid time {batch.valid_at}: narrow validFrom/validTo",
                field="validFrom",
            )
        judged.append(version)
    plotted = [
        _Plot(index, batch, float(chart.points[index]), dispersion[index], judged[index].version)
        for index, batch in enumerate(charted)
    ]
    violations = [
        CpvViolation(
            rule=v.rule,
            name=v.name,
            batches=[charted[i].name for i in v.indexes],
            indexes=list(v.indexes),
        )
        for v in evaluate_chart(chart)
    ]
    return CpvAnalysis(
        agreement_id=strawberry.ID(question.agreement),
        parameter=question.parameter,
        parameter_id=strawberry.ID(parameter.parameter),
        unit="s" if question.statistic == "TIME_OUTSIDE_LIMITS" else parameter.unit,
        baseline=baseline.name,
        baseline_id=strawberry.ID(baseline.subject),
        baseline_version=baseline.version,
        baseline_batches=list(baseline.batches),
        valid_from=question.valid_from,
        valid_to=question.valid_to,
        known_at=question.known_at,
        chart="I-MR" if size == 1 else "XBAR-R",
        statistic=None if question.statistic is None else CpvStatistic(question.statistic),
        tag=_tag(charted),
        subgroup_size=size,
        sigma=float(chart.sigma),
        location=CpvLimits(centre=location.centre, lower=location.lower, upper=location.upper),
        dispersion=CpvLimits(centre=spread.centre, lower=spread.lower, upper=spread.upper),
        plotted=plotted,
        violations=violations,
        capability=_capabilities(charted, judged, size, warnings, question.statistic),
        warnings=warnings,
        inputs_digest=_digest(plotted, question.statistic),
        last_position=None if last is None else int(last[0]),
    )


def _summary(batch: _Batch) -> CpvSummary | None:
    """The batch's summary as answered (made once: the points and the digest ask it)."""
    if not batch.summary_made:
        batch.summary, batch.summary_made = _make_summary(batch), True
    return batch.summary


def _make_summary(batch: _Batch) -> CpvSummary | None:
    if not batch.summaries:
        return None
    row = batch.summaries[0]
    outside = row.time_outside_limits_ms
    return CpvSummary(
        tag=row.tag,
        data_class=row.data_class,
        first=row.first,
        last=row.last,
        count=row.count,
        mean=row.mean,
        min=row.min,
        max=row.max,
        time_outside_limits_ms=None if outside is None else float(outside),
        limits_version=row.limits_version,
        chunks=list(orjson.loads(row.chunks)),
    )


def _summary_json(batch: _Batch) -> dict[str, Any] | None:
    """:func:`_summary` as the JSON its typed field answers."""
    summary = _summary(batch)
    if summary is None:
        return None
    return {
        "tag": summary.tag,
        "dataClass": summary.data_class,
        "first": summary.first,
        "last": summary.last,
        "count": summary.count,
        "mean": summary.mean,
        "min": summary.min,
        "max": summary.max,
        "timeOutsideLimitsMs": summary.time_outside_limits_ms,
        "limitsVersion": summary.limits_version,
        "chunks": summary.chunks,
    }


def _tag(charted: list[_Batch]) -> str | None:
    tags = sorted({row.tag for batch in charted for row in batch.summaries})
    return ", ".join(tags) if tags else None


def _digest(plotted: list[_Plot], statistic: str | None) -> str:
    """The inputs digest of the results charted, or of the summaries (docs/cpv.md)."""
    if statistic is None:
        return batch_results_digest(
            [(plot.batch.name, plot.limits_version, plot.batch.records) for plot in plotted]
        )
    return inputs_digest(_summary_inputs(plotted, statistic))


def _summary_inputs(plotted: list[_Plot], statistic: str) -> list[SummaryInput]:
    """The digest's rows of a continuous analysis: the summaries charted."""
    found = [(plot.batch.name, _summary(plot.batch)) for plot in plotted]
    summaries = [(batch, summary) for batch, summary in found if summary is not None]
    return [
        SummaryInput(
            batch=batch,
            tag=summary.tag,
            statistic=statistic,
            count=summary.count,
            mean=summary.mean,
            min=summary.min,
            max=summary.max,
            time_outside_limits_ms=None
            if summary.time_outside_limits_ms is None
            else int(summary.time_outside_limits_ms),
            limits_version=summary.limits_version,
            chunks=tuple(summary.chunks),
        )
        for batch, summary in summaries
    ]


def _capabilities(
    charted: list[_Batch],
    judged: list[LimitsVersion],
    size: int,
    warnings: list[str],
    statistic: str | None,
) -> list[CpvCapability]:
    if statistic == "TIME_OUTSIDE_LIMITS":
        warnings.append("no capability of the time outside limits: the limits bound values")
        return []
    groups: dict[int, list[int]] = {}
    for index, version in enumerate(judged):
        groups.setdefault(version.version, []).append(index)
    studies = []
    for number in sorted(groups):
        members = groups[number]
        version = next(v for v in judged if v.version == number)
        lsl, usl = version.action_low, version.action_high
        low = None if lsl is None else float(Decimal(lsl))
        high = None if usl is None else float(Decimal(usl))
        try:
            if size == 1:
                found = capability_individuals(
                    [charted[i].numbers[0] for i in members], lsl=low, usl=high
                )
            else:
                found = capability_subgroups(
                    [charted[i].numbers for i in members], lsl=low, usl=high
                )
        except ValidationFailed as error:
            warnings.append(f"no capability against limits version {number}: {error.message}")
            continue
        studies.append(_study(found, number, lsl, usl, [charted[i].name for i in members]))
    return studies


def _index(index: Index | None) -> CpvIndex | None:
    if index is None:
        return None
    interval = index.interval
    return CpvIndex(
        value=index.value,
        interval=CpvInterval(
            lower=interval.lower, upper=interval.upper, confidence=interval.confidence
        ),
    )


def _study(
    found: Capability, version: int, lsl: str | None, usl: str | None, batches: list[str]
) -> CpvCapability:
    normality = found.normality
    cpk, ppk = _index(found.cpk), _index(found.ppk)
    assert cpk is not None and ppk is not None
    return CpvCapability(
        limits_version=version,
        lsl=lsl,
        usl=usl,
        batches=batches,
        n=found.n,
        mean=found.mean,
        sigma_within=found.sigma_within,
        sigma_overall=found.sigma_overall,
        within_method=found.within_method,
        cp=_index(found.cp),
        cpk=cpk,
        pp=_index(found.pp),
        ppk=ppk,
        normality=None
        if normality is None
        else CpvNormality(
            statistic=normality.statistic,
            adjusted_statistic=normality.adjusted_statistic,
            p_value=normality.p_value,
            method=normality.method,
        ),
        warnings=list(found.warnings),
    )


def _checkpoint(services: Services, position: int) -> CpvCheckpoint | None:
    leaf_index = services.tree.leaf_index(position)
    signed = None if leaf_index is None else services.notary.covering(leaf_index)
    if signed is None:
        return None
    return CpvCheckpoint(tree_size=signed.size, root_hash=base64.b64encode(signed.root).decode())


# -- the fields -----------------------------------------------------------------------------


def _known_at(scope: Scope, known_at: int | None) -> int:
    head = scope.at.position
    if known_at is not None and not 0 <= known_at <= head:
        raise ValidationFailed(f"knownAt must be between 0 and {head}", field="knownAt")
    return head if known_at is None else known_at


async def cpv_analysis(
    source: Any,
    info: Info,
    agreement: str,
    parameter: str,
    baseline: str,
    valid_from: datetime | None,
    valid_to: datetime | None,
    known_at: int | None,
    statistic: CpvStatistic | None = None,
) -> CpvAnalysis:
    """The root ``cpv`` field (see the module docstring)."""
    scope = await scope_of(source, info)
    require_agreement(scope, agreement, "agreementId")
    start, end = time_text(valid_from, "validFrom"), time_text(valid_to, "validTo")
    if start is not None and end is not None and end < start:
        raise ValidationFailed("validTo is before validFrom", field="validTo")
    question = _Question(
        agreement,
        parameter,
        baseline,
        start,
        end,
        _known_at(scope, known_at),
        None if statistic is None else statistic.value,
    )
    analysis = await read(info, _analyse, info.context.ledger, scope, question)
    for batch in {*analysis.baseline_batches, *(plot.batch.name for plot in analysis.plotted)}:
        note_field(info, agreement, batch)  # the results of each batch are GxP data read
    return analysis


def _threshold(conn: Connection, agreement: str, position: int) -> str:
    terms = conn.execute(
        select(AGREEMENTS.c.terms).where(
            AGREEMENTS.c.agreement == agreement, as_of(AGREEMENTS, position)
        )
    ).scalar()
    found = None if terms is None else json.loads(terms).get("cpk_threshold")
    return str(found) if found is not None else DEFAULT_CPK_THRESHOLD


def _signals(conn: Connection, ledger: Ledger, scope: Scope, agreement: str) -> list[CpvSignal]:
    at = scope.at.position
    threshold = _threshold(conn, agreement, at)
    subjects = conn.execute(
        select(AUDIT.c.subject)
        .where(AUDIT.c.agreement == agreement, AUDIT.c.type == "BaselineDefined")
        .where(AUDIT.c.position <= at)
        .order_by(AUDIT.c.position)
    ).scalars()
    found = []
    for subject in subjects:
        baseline = _baseline_at(conn, ledger, str(subject), at)
        if baseline is None:  # pragma: no cover - the subject's first event defines it
            continue
        question = _Question(agreement, baseline.parameter, baseline.name, None, None, at)
        try:
            analysis = _signal_analysis(conn, ledger, scope, question)
        except (NotFound, ValidationFailed):
            continue  # nothing to chart (yet): no signal
        signal = _signal(analysis, baseline, Decimal(threshold), threshold)
        if signal is not None:
            found.append(signal)
    return found


def _signal_analysis(
    conn: Connection, ledger: Ledger, scope: Scope, question: _Question
) -> CpvAnalysis:
    """The analysis a signal is raised on: a continuous parameter's is of its batch means."""
    try:
        return _analyse(conn, ledger, scope, question)
    except ValidationFailed as error:
        if error.field != "statistic" or question.statistic is not None:
            raise
    return _analyse(conn, ledger, scope, replace(question, statistic="MEAN"))


def _signal(
    analysis: CpvAnalysis, baseline: _Baseline, limit: Decimal, threshold: str
) -> CpvSignal | None:
    reasons = [
        f"Nelson rule {v.rule} ({v.name}): {', '.join(v.batches)}" for v in analysis.violations
    ]
    cpks = [study.cpk.value for study in analysis.capability]
    lowest = min(cpks) if cpks else None
    if lowest is not None and Decimal(repr(lowest)) < limit:
        reasons.append(f"Cpk {lowest:.3f} is below the agreement's threshold {threshold}")
    if not reasons:
        return None
    acknowledgements = baseline.acknowledgements.get(analysis.inputs_digest, [])
    return CpvSignal(
        parameter=analysis.parameter,
        baseline=analysis.baseline,
        baseline_id=analysis.baseline_id,
        inputs_digest=analysis.inputs_digest,
        known_at=analysis.known_at,
        reasons=reasons,
        violations=analysis.violations,
        cpk=lowest,
        cpk_threshold=threshold,
        acknowledged=bool(acknowledgements),
        acknowledgements=list(acknowledgements),
    )


async def cpv_signals(source: Any, info: Info, agreement: str) -> list[CpvSignal]:
    """The root ``cpvSignals`` field (see the module docstring)."""
    scope = await scope_of(source, info)
    require_agreement(scope, agreement, "agreementId")
    return await read(info, _signals, info.context.ledger, scope, agreement)


@strawberry.type
class CpvQuery:
    """Root CPV fields (R26)."""

    @strawberry.field(
        description="A control chart, Nelson rule violations and capability of a parameter's "
        "discrete results (or, with statistic, of one statistic of each batch's summary of the "
        "continuous tag measuring it), one point per batch whose startedAt lies in "
        "[validFrom, validTo], as the ledger knew them at position knownAt (default: now), "
        "with control limits from the baseline's batch list at knownAt. FORBIDDEN unless you "
        "may read every result or series it uses. See docs/cpv.md."
    )
    async def cpv(
        self,
        info: Info,
        agreement_id: strawberry.ID,
        parameter: str,
        baseline: str,
        valid_from: datetime | None = None,
        valid_to: datetime | None = None,
        known_at: int | None = None,
        statistic: CpvStatistic | None = None,
    ) -> CpvAnalysis:
        return await cpv_analysis(
            self,
            info,
            str(agreement_id),
            parameter,
            baseline,
            valid_from,
            valid_to,
            known_at,
            statistic,
        )

    @strawberry.field(
        description="The baselines of an agreement whose current analysis has a rule violation "
        "or a Cpk below the terms' cpk_threshold (default 1.33), and whether each was "
        "acknowledged (CpvSignalAcknowledged naming its inputs digest)."
    )
    async def cpv_signals(self, info: Info, agreement_id: strawberry.ID) -> list[CpvSignal]:
        return await cpv_signals(self, info, str(agreement_id))
