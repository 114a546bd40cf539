"""The demo's world: parties, agreement terms, parameters and batch data (WORLD.md).

Pure data builders: nothing here talks to a ledger. Values are deterministic (seeded by
batch and tag), so two demo runs tell the same story with different keys and times.

The demo compresses time: its runs overlap, each ending 22 hours or less before the demo
starts, so that every continuous and discrete delivery is on time; the one late delivery
is a deviation detected more than 24 hours before it was reported.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ledger.domain.formats import CHUNK_POINTS, encode_chunk
from ledger.timeutil import format_utc

__all__ = [
    "CONFIDENTIAL_ELEMENTS",
    "CONTOSO",
    "FABRIKAM",
    "HELIOS",
    "NORTHWIND",
    "PARAMETERS",
    "PARTIES",
    "REGULATOR",
    "TAGS",
    "BatchPlan",
    "agreement_terms",
    "continuous_series",
    "data_format",
    "deviation_records",
    "discrete_records",
    "parameter_payload",
    "plan_batches",
]

NORTHWIND, HELIOS, CONTOSO = "northwind-bio", "helios-tx", "contoso-cmo"
FABRIKAM, REGULATOR, AUDITOR = "fabrikam-cmo", "agency-inspectorate", "qa-auditor-llc"

PARTIES: dict[str, tuple[str, str]] = {
    NORTHWIND: ("Northwind Biologics Inc.", "sponsor"),
    HELIOS: ("Helios Therapeutics Ltd.", "sponsor"),
    CONTOSO: ("Contoso Contract Manufacturing GmbH", "cmo"),
    FABRIKAM: ("Fabrikam Biomanufacturing LLC", "cmo"),
    REGULATOR: ("National Medicines Agency, Inspectorate", "regulator"),
    AUDITOR: ("QA Auditor LLC", "auditor"),
}
PRODUCTS = {NORTHWIND: ("NWB-101", "NWB101-24"), HELIOS: ("HEL-7", "HEL7-24")}
SITE = "contoso-site-a"
CONFIDENTIAL_ELEMENTS = ["media_lot_supplier", "shared_equipment_schedule", "other_client_ref"]

# Set point, noise, drift per minute and decimal places of the tags of BR-2000-1.
TAGS: dict[str, tuple[float, float, float, int]] = {
    "BR1.TEMP": (37.0, 0.04, 0.0, 2),
    "BR1.PH": (7.05, 0.01, -0.000004, 3),
    "BR1.DO": (40.0, 1.5, 0.0, 1),
}

# name: (kind, UCUM unit, target, alert (low, high), action (low, high), status at start).
PARAMETERS: dict[str, tuple[str, str, str | None, tuple[Any, Any], tuple[Any, Any], str]] = {
    "culture temperature": ("CPP", "Cel", "37.0", ("36.8", "37.2"), ("36.5", "37.5"), "confirmed"),
    "pH": ("CPP", "[pH]", "7.05", ("6.95", "7.15"), ("6.90", "7.20"), "confirmed"),
    "dissolved oxygen": ("CPP", "%", "40", ("32", "55"), ("30", "60"), "hypothesis"),
    "viable cell density, day 7": ("IPC", "10*6/mL", "18", ("14", None), ("12", None), "confirmed"),
    "titer at harvest": ("KPI", "g/L", "4.5", ("3.8", None), ("3.0", None), "confirmed"),
    "high molecular weight species": ("CQA", "%", "1.0", (None, "1.5"), (None, "2.0"), "confirmed"),
    "endotoxin": ("CQA", "EU/mL", None, (None, "0.25"), (None, "0.5"), "confirmed"),
}

# data class: (format name, columns, delivery hours, counted from).
_FORMATS: dict[str, tuple[str, list[str], int, str]] = {
    "continuous": ("continuous-csv/v1", ["tag", "timestamp", "value", "quality"], 24, "batch_end"),
    "discrete": (
        "discrete-csv/v1",
        ["parameter", "value", "unit", "sampled_at", "method"],
        72,
        "batch_end",
    ),
    "event": (
        "event-csv/v1",
        ["kind", "started_at", "ended_at", "severity", "description"],
        24,
        "detection",
    ),
}
# Runs end within this span before the demo starts (deliveries are due 24 h after the end).
_END_SPAN = timedelta(hours=22)
_EXCURSION_MINUTE, _EXCURSION_LENGTH = 60, 42


def agreement_terms(sponsor: str, cmo: str = CONTOSO) -> dict[str, Any]:
    """Quality-agreement terms as in WORLD.md: every data class owned by the sponsor."""
    product = PRODUCTS[sponsor][0]
    classes = {}
    for data_class, (name, columns, hours, after) in _FORMATS.items():
        classes[data_class] = {
            "owner": sponsor,
            "delivery": {"within_hours": hours, "after": after},
            "format": {"name": name, "columns": columns},
        }
    return {
        "sponsor": sponsor,
        "cmo": cmo,
        "title": f"Quality agreement {sponsor} / {cmo} for {product}",
        "products": [product],
        "sites": [SITE],
        "data_classes": classes,
        "confidential_elements": list(CONFIDENTIAL_ELEMENTS),
        "ip_rule": "negotiated",
        "review_cadence_months": 6,
        "deviation_deadline_hours": 24,
        # Results of parameters not (yet) in the registry are stored, flagged.
        "unregistered": "flag",
    }


def data_format(kind: str) -> str:
    """The agreement's format name for a data class."""
    return _FORMATS[kind][0]


def parameter_payload(agreement: str, name: str) -> dict[str, Any]:
    """A ``ParameterDefined`` payload for one of WORLD.md's parameters."""
    kind, unit, target, alert, action, status = PARAMETERS[name]
    payload: dict[str, Any] = {
        "agreement": agreement,
        "name": name,
        "kind": kind,
        "unit": unit,
        "alert": {"low": alert[0], "high": alert[1]},
        "action": {"low": action[0], "high": action[1]},
        "rationale": f"{name}: limits from process characterisation report PC-2023-014",
        "status": status,
    }
    if target is not None:
        payload["target"] = target
    return payload


@dataclass(frozen=True)
class BatchPlan:
    """One run of the story: its name, times and whether a deviation happened."""

    index: int
    name: str
    product: str
    start: datetime
    end: datetime
    deviation: bool

    @property
    def excursion_start(self) -> datetime:
        return self.start + timedelta(minutes=_EXCURSION_MINUTE)


def plan_batches(
    sponsor: str, count: int, minutes: int, now: datetime, *, deviations: frozenset[int]
) -> list[BatchPlan]:
    """``count`` runs of ``minutes`` each, the last ending an hour before ``now``."""
    product, prefix = PRODUCTS[sponsor]
    spacing = (_END_SPAN - timedelta(hours=1)) / max(count - 1, 1)
    plans = []
    for index in range(count):
        end = now - timedelta(hours=1) - spacing * (count - 1 - index)
        start = end - timedelta(minutes=minutes)
        name = f"{prefix}-{index + 1:03d}"
        plans.append(BatchPlan(index, name, product, start, end, index in deviations))
    return plans


def discrete_records(plan: BatchPlan, supplier: str) -> list[dict[str, Any]]:
    """VCD day 7, titer, HMW, endotoxin and bioburden of a run; the titer names its media lot."""
    rng = random.Random(f"{plan.name}/discrete")
    results = [
        ("viable cell density, day 7", f"{rng.gauss(18.2, 0.6):.1f}", "10*6/mL", "Vi-CELL BLU"),
        ("titer at harvest", f"{rng.gauss(4.6, 0.15):.2f}", "g/L", "Protein A HPLC"),
        ("high molecular weight species", f"{abs(rng.gauss(0.8, 0.1)):.2f}", "%", "SE-HPLC"),
        ("endotoxin", f"{abs(rng.gauss(0.05, 0.01)):.3f}", "EU/mL", "LAL kinetic chromogenic"),
        ("bioburden", "0", "[CFU]/mL", "membrane filtration"),
    ]
    sampled = format_utc(plan.end - timedelta(minutes=30))
    records: list[dict[str, Any]] = [
        {
            "id": f"{plan.name}-R{index:02d}",
            "parameter": parameter,
            "value": value,
            "unit": unit,
            "sampled_at": sampled,
            "method": method,
        }
        for index, (parameter, value, unit, method) in enumerate(results, 1)
    ]
    records[1]["media_lot_supplier"] = supplier
    return records


def deviation_records(plan: BatchPlan, previous_client_batch: str) -> list[dict[str, Any]]:
    """The temperature excursion of a run (a deviation) and its alarm."""
    start = plan.excursion_start
    return [
        {
            "id": f"{plan.name}-DEV01",
            "kind": "deviation",
            "started_at": format_utc(start),
            "ended_at": format_utc(start + timedelta(minutes=_EXCURSION_LENGTH)),
            "severity": "major",
            "description": "BR1.TEMP above 37.5 Cel for 42 min after a chiller trip",
            "other_client_ref": previous_client_batch,
            "shared_equipment_schedule": "BR-2000-1 chiller shared with suite 2 (week 46 plan)",
        },
        {
            "id": f"{plan.name}-ALM01",
            "kind": "alarm",
            "started_at": format_utc(start + timedelta(minutes=3)),
            "severity": "minor",
            "description": "BR1.TEMP high-high alarm acknowledged by the operator",
        },
    ]


def continuous_points(tag: str, plan: BatchPlan) -> list[tuple[str, str, int]]:
    """One-minute ``(timestamp, value, quality)`` points from the start to the end of a run."""
    base, noise, drift, places = TAGS[tag]
    rng = random.Random(f"{plan.name}/{tag}")
    minutes = int((plan.end - plan.start).total_seconds() // 60)
    points = []
    for minute in range(minutes):
        value = base + drift * minute + rng.gauss(0.0, noise)
        if tag == "BR1.TEMP" and plan.deviation and _in_excursion(minute):
            value += 0.8
        # A historian marks a rare reading uncertain (64) instead of good (192).
        quality = 64 if rng.random() < 0.001 else 192
        stamp = format_utc(plan.start + timedelta(minutes=minute))
        points.append((stamp, f"{value:.{places}f}", quality))
    return points


def _in_excursion(minute: int) -> bool:
    return _EXCURSION_MINUTE <= minute < _EXCURSION_MINUTE + _EXCURSION_LENGTH


def continuous_series(plan: BatchPlan, tags: list[str]) -> list[dict[str, Any]]:
    """The ``series`` of a ``DataSubmitted``: each tag's points cut into chunks."""
    series = []
    for tag in tags:
        points = continuous_points(tag, plan)
        chunks = [
            encode_chunk(points[offset : offset + CHUNK_POINTS])
            for offset in range(0, len(points), CHUNK_POINTS)
        ]
        series.append({"tag": tag, "chunks": chunks})
    return series
