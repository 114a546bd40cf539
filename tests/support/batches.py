"""Batches and their data for tests, shaped like WORLD.md's fed-batch runs.

``register_batch`` registers a batch under an agreement in force; ``discrete_records`` and
``event_records`` give the results and occurrences of one run; ``continuous_series`` gives
one-minute historian data for a tag (noise, a slow pH drift, an optional temperature
excursion) already cut into chunks; ``submit_data`` delivers any of them.
``define_parameter`` defines one of the parameters watched over those batches.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from ledger.application import Appended
from ledger.domain.formats import CHUNK_POINTS, encode_chunk
from ledger.domain.subjects import batch_subject, parameter_subject
from ledger.errors import LedgerError
from ledger.timeutil import format_utc, now_utc
from tests.support.world import Actor, World, agreement_terms

__all__ = [
    "CMO",
    "SPONSOR",
    "WORLD_PARAMETERS",
    "continuous_points",
    "continuous_series",
    "data_payload",
    "define_parameter",
    "discrete_records",
    "end_batch",
    "event_records",
    "refusal",
    "register_batch",
    "registration",
    "revise_parameter",
    "submit_data",
]

SPONSOR = "northwind-bio"
CMO = "contoso-cmo"
_FORMATS = {
    kind: spec["format"]["name"] for kind, spec in agreement_terms()["data_classes"].items()
}
# Set point, noise and drift per minute for the tags of bioreactor BR-2000-1.
_TAGS: dict[str, tuple[float, float, float, int]] = {
    "BR1.TEMP": (37.0, 0.04, 0.0, 2),
    "BR1.PH": (7.05, 0.01, -0.000004, 3),
    "BR1.DO": (40.0, 1.5, 0.0, 1),
}


def register_batch(
    world: World,
    agreement_id: uuid.UUID,
    batch_id: str = "NWB101-24-001",
    *,
    cmo: str = CMO,
    product: str = "NWB-101",
    site: str = "contoso-site-a",
    started_at: datetime | None = None,
) -> uuid.UUID:
    """Register a batch (started 14 days ago unless given); return its subject."""
    subject = batch_subject(batch_id)
    payload = registration(
        agreement_id, batch_id, product=product, site=site, started_at=started_at
    )
    world[cmo].submit(world.ledger, "BatchRegistered", subject, payload, meaning="authored")
    return subject


def registration(
    agreement_id: uuid.UUID,
    batch_id: str,
    *,
    product: str = "NWB-101",
    site: str = "contoso-site-a",
    started_at: datetime | None = None,
) -> dict[str, Any]:
    """A ``BatchRegistered`` payload (started 14 days ago unless given)."""
    return {
        "agreement": str(agreement_id),
        "batch": batch_id,
        "product": product,
        "site": site,
        "started_at": format_utc(started_at or now_utc() - timedelta(days=14)),
    }


def end_batch(
    world: World, batch_id: str, ended_at: datetime | None = None, *, cmo: str = CMO
) -> Appended:
    """Record the end of a batch (an hour ago unless given)."""
    payload = {"ended_at": format_utc(ended_at or now_utc() - timedelta(hours=1))}
    return world[cmo].submit(
        world.ledger, "BatchEnded", batch_subject(batch_id), payload, meaning="completed"
    )


def discrete_records(
    prefix: str = "R", *, sampled_at: datetime | None = None, **extra: Any
) -> list[dict[str, Any]]:
    """The discrete results of one run: VCD day 7, titer, HMW, endotoxin, bioburden."""
    when = sampled_at or now_utc() - timedelta(days=2)
    results = [
        ("viable cell density, day 7", "18.4", "10*6/mL", "Vi-CELL BLU trypan blue", -7),
        ("titer at harvest", "4.62", "g/L", "Protein A HPLC", 0),
        ("high molecular weight species", "0.8", "%", "SE-HPLC", 0),
        ("endotoxin", "0.05", "EU/mL", "LAL kinetic chromogenic", 0),
        ("bioburden", "0", "[CFU]/mL", "membrane filtration", 0),
    ]
    return [
        {
            "id": f"{prefix}-{index:03d}",
            "parameter": parameter,
            "value": value,
            "unit": unit,
            "sampled_at": format_utc(when + timedelta(days=days)),
            "method": method,
            **extra,
        }
        for index, (parameter, value, unit, method, days) in enumerate(results, 1)
    ]


def event_records(prefix: str = "E", *, started_at: datetime | None = None) -> list[dict[str, Any]]:
    """A temperature excursion (deviation), its alarm and an OOT titer trend."""
    start = started_at or now_utc() - timedelta(days=3)
    return [
        {
            "id": f"{prefix}-001",
            "kind": "deviation",
            "started_at": format_utc(start),
            "ended_at": format_utc(start + timedelta(minutes=42)),
            "severity": "major",
            "description": "BR1.TEMP above 37.5 Cel for 42 min after a chiller trip",
        },
        {
            "id": f"{prefix}-002",
            "kind": "alarm",
            "started_at": format_utc(start + timedelta(minutes=3)),
            "severity": "minor",
            "description": "BR1.TEMP high-high alarm acknowledged by operator",
        },
        {
            "id": f"{prefix}-003",
            "kind": "oot",
            "started_at": format_utc(start + timedelta(days=1)),
            "severity": "minor",
            "description": "Titer trending below the three-batch mean",
        },
    ]


def continuous_points(
    tag: str,
    start: datetime,
    minutes: int,
    *,
    seed: int = 7,
    excursion: tuple[int, int] | None = None,
) -> list[tuple[str, str, int]]:
    """One-minute ``(timestamp, value, quality)`` points with noise and the tag's drift.

    ``excursion`` = (first minute, length) lifts BR1.TEMP by 0.8 Cel, as in a chiller trip.
    """
    base, noise, drift, places = _TAGS.get(tag, (1.0, 0.01, 0.0, 3))
    rng = random.Random(f"{tag}/{seed}")
    points = []
    for minute in range(minutes):
        value = base + drift * minute + rng.gauss(0.0, noise)
        if excursion is not None and excursion[0] <= minute < excursion[0] + excursion[1]:
            value += 0.8
        # A historian marks a rare reading uncertain (64) instead of good (192).
        quality = 64 if rng.random() < 0.001 else 192
        stamp = format_utc(start + timedelta(minutes=minute))
        points.append((stamp, f"{value:.{places}f}", quality))
    return points


def continuous_series(
    tag: str,
    start: datetime,
    minutes: int,
    *,
    seed: int = 7,
    chunk_points: int = CHUNK_POINTS,
    excursion: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """A ``series`` entry for ``tag``: ``minutes`` one-minute points cut into chunks."""
    points = continuous_points(tag, start, minutes, seed=seed, excursion=excursion)
    chunks = [
        encode_chunk(points[offset : offset + chunk_points])
        for offset in range(0, len(points), chunk_points)
    ]
    return {"tag": tag, "chunks": chunks}


def data_payload(kind: str, content: list[dict[str, Any]], /, **overrides: Any) -> dict[str, Any]:
    """A ``DataSubmitted`` payload in WORLD.md's formats; ``overrides`` replace members."""
    payload: dict[str, Any] = {
        "submission": str(uuid.uuid4()),
        "kind": kind,
        "source_system": "contoso-lims" if kind != "continuous" else "contoso-pi-historian",
        "schema_version": "1.0",
        "format": _FORMATS[kind],
        "series" if kind == "continuous" else "records": content,
    }
    payload.update(overrides)
    return {key: value for key, value in payload.items() if value is not None}


def submit_data(
    world: World,
    batch_id: str,
    kind: str,
    content: list[dict[str, Any]],
    /,
    *,
    by: str | Actor = CMO,
    openings: list[dict[str, Any]] | None = None,
    **overrides: Any,
) -> Appended:
    """Deliver ``content`` (records or series) for a batch, signed by a party or an actor;
    confidential elements in clear are committed unless ``openings`` are given."""
    actor = world[by] if isinstance(by, str) else by
    return actor.submit(
        world.ledger,
        "DataSubmitted",
        batch_subject(batch_id),
        data_payload(kind, content, **overrides),
        meaning="submitted",
        openings=openings,
    )


def refusal(
    world: World, error: type[LedgerError], field: str, action: Callable[[], object]
) -> LedgerError:
    """Run ``action``, expect ``error`` naming ``field`` and an unchanged log; return the error."""
    head = world.ledger.head()
    with pytest.raises(error) as info:
        action()
    assert (info.value.code, info.value.field) == (error.code, field), str(info.value)
    assert world.ledger.head() == head, "a refused command stored something"
    return info.value


# name: (kind, unit, target, alert (low, high), action (low, high), status), from WORLD.md.
WORLD_PARAMETERS: dict[str, tuple[str, str, str | None, tuple[Any, Any], tuple[Any, Any], str]] = {
    "culture temperature": ("CPP", "Cel", "37.0", ("36.8", "37.2"), ("36.5", "37.5"), "confirmed"),
    "pH": ("CPP", "[pH]", "7.05", ("6.95", "7.15"), ("6.90", "7.20"), "confirmed"),
    "dissolved oxygen": ("CPP", "%", "40", ("32", "55"), ("30", "60"), "hypothesis"),
    "viable cell density, day 7": ("IPC", "10*6/mL", "18", ("14", None), ("12", None), "confirmed"),
    "titer at harvest": ("KPI", "g/L", "4.5", ("3.8", None), ("3.0", None), "confirmed"),
    "high molecular weight species": ("CQA", "%", "1.0", (None, "1.5"), (None, "2.0"), "confirmed"),
    "endotoxin": ("CQA", "EU/mL", None, (None, "0.25"), (None, "0.5"), "confirmed"),
}


def define_parameter(
    world: World,
    agreement_id: uuid.UUID,
    name: str = "dissolved oxygen",
    /,
    *,
    by: str = SPONSOR,
    reason: str | None = None,
    **overrides: Any,
) -> uuid.UUID:
    """Define a WORLD.md parameter; ``overrides`` replace payload members (None drops)."""
    kind, unit, target, alert, action, status = WORLD_PARAMETERS[name]
    payload: dict[str, Any] = {
        "agreement": str(agreement_id),
        "name": name,
        "kind": kind,
        "unit": unit,
        "target": target,
        "alert": {"low": alert[0], "high": alert[1]},
        "action": {"low": action[0], "high": action[1]},
        "rationale": f"{name}: limits from process characterisation (PC-2023-014)",
        "status": status,
    }
    payload.update(overrides)
    payload = {key: value for key, value in payload.items() if value is not None}
    subject: uuid.UUID = payload.pop("subject", None) or parameter_subject(agreement_id, name)
    world[by].submit(
        world.ledger, "ParameterDefined", subject, payload, meaning="authored", reason=reason
    )
    return subject


def revise_parameter(
    world: World,
    parameter: uuid.UUID,
    changes: dict[str, Any],
    *,
    reason: str = "six-month review: the limits are revised",
    effective_from: str | None = None,
) -> uuid.UUID:
    """The CMO proposes a revision of a parameter's limits and the sponsor approves it
    (from ``effective_from``, for the same ``reason``, when given; else from now)."""
    revision = uuid.uuid4()
    world[CMO].submit(
        world.ledger,
        "ParameterRevisionProposed",
        parameter,
        {"revision": str(revision), "changes": changes},
        meaning="authored",
        reason=reason,
    )
    approval = {"revision": str(revision)}
    if effective_from is not None:
        approval["effective_from"] = effective_from
    world[SPONSOR].submit(
        world.ledger,
        "ParameterRevisionApproved",
        parameter,
        approval,
        meaning="approved",
        reason=None if effective_from is None else reason,
    )
    return revision
