"""A world with data to query, for the tests of the authorised data queries.

``build_data_world(world)`` records, in-process:

* agreement **A1** Northwind <-> Contoso (every class owned by Northwind) and **A2**
  Helios <-> Contoso, both with WORLD.md's confidential elements;
* batch ``NWB101-24-001`` (A1): discrete results (the titer carries ``media_lot_supplier``
  and is corrected once), events (a deviation carrying ``other_client_ref``, acknowledged
  by Northwind), ``BR1.TEMP`` for 14 days (20,160 points) and ``BR1.PH`` for a day;
* batch ``NWB101-24-002`` (A1): discrete results delivered late;
* batch ``HEL7-24-001`` (A2): discrete results (titer with ``media_lot_supplier``),
  events and a day of ``BR1.TEMP``;
* parameters (DO revised once on A1), a review on each agreement (A2's overdue), an
  enhancement claim disclosed and one not;
* grants: Northwind -> Fabrikam (tech transfer, every class of A1), Northwind -> the
  regulator (A1, 14 days), Contoso -> the regulator (A1 confidential elements), Helios
  -> the regulator (A2: discrete and continuous of HEL7-24-001, only the titer and
  BR1.TEMP, only two hours of data), and for the auditor only grants that opened
  nothing now: one expired, one revoked, one not yet started.

Every secret value starts with ``SECRET-`` so a test can look for leaks in any answer.
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ledger.clock import FakeClock
from ledger.domain.commitments import commitment_of
from ledger.domain.subjects import batch_subject, parameter_subject
from ledger.log.countersign import countersign
from ledger.timeutil import format_utc, now_utc
from tests.support.agreements import complete_review, grant, propose_and_sign
from tests.support.batches import (
    continuous_series,
    define_parameter,
    discrete_records,
    end_batch,
    event_records,
    register_batch,
    submit_data,
)
from tests.support.world import ORIGIN, World

__all__ = ["SECRET", "DataWorld", "build_data_world"]

SECRET = "SECRET-"
NORTHWIND, HELIOS, CONTOSO = "northwind-bio", "helios-tx", "contoso-cmo"
FABRIKAM, REGULATOR, AUDITOR = "fabrikam-cmo", "agency-inspectorate", "qa-auditor-llc"
B1, B2, H1 = "NWB101-24-001", "NWB101-24-002", "HEL7-24-001"
TEMP_MINUTES = 14 * 24 * 60


@dataclass
class DataWorld:
    """What was recorded, for the tests to name."""

    world: World
    a1: str = ""
    a2: str = ""
    b1_start: datetime = field(default_factory=now_utc)
    h1_titer_at: datetime = field(default_factory=now_utc)
    grants: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    enhancements: dict[str, str] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)
    expires_at: datetime = field(default_factory=now_utc)

    @property
    def ledger(self) -> Any:
        return self.world.ledger


def _agreements(data: DataWorld) -> None:
    world = data.world
    data.a1 = str(propose_and_sign(world, NORTHWIND, CONTOSO))
    data.a2 = str(propose_and_sign(world, HELIOS, CONTOSO))


def _batch_one(data: DataWorld) -> None:
    world, a1 = data.world, uuid.UUID(data.a1)
    data.b1_start = now_utc() - timedelta(days=14)
    register_batch(world, a1, B1, started_at=data.b1_start)
    records = discrete_records("R", sampled_at=now_utc() - timedelta(days=2))
    records[1]["media_lot_supplier"] = f"{SECRET}Lonza lot 4471"
    submit_data(world, B1, "discrete", records)
    events = event_records("E", started_at=now_utc() - timedelta(days=3))
    events[0]["other_client_ref"] = f"{SECRET}HEL7-24-000"
    submit_data(world, B1, "event", events)
    temp = continuous_series("BR1.TEMP", data.b1_start, TEMP_MINUTES, excursion=(9000, 42))
    ph = continuous_series("BR1.PH", data.b1_start, 24 * 60)
    submit_data(world, B1, "continuous", [temp, ph])
    data.positions["before_correction"] = world.ledger.head()
    corrected = dict(records[1], value="4.58", media_lot_supplier=f"{SECRET}Lonza lot 4472")
    payload = {"submission": str(uuid.uuid4()), "supersedes": ["R-002"], "records": [corrected]}
    world[CONTOSO].submit(
        world.ledger,
        "DataCorrected",
        batch_subject(B1),
        payload,
        meaning="corrected",
        reason="transcription error in the titer (4.62 entered for 4.58)",
    )
    world[NORTHWIND].submit(
        world.ledger,
        "DataAcknowledged",
        batch_subject(B1),
        {"records": ["E-001"]},
        meaning="acknowledged",
    )


def _batch_two(data: DataWorld) -> None:
    world, a1 = data.world, uuid.UUID(data.a1)
    register_batch(world, a1, B2, started_at=now_utc() - timedelta(days=20))
    end_batch(world, B2, now_utc() - timedelta(days=5))
    submit_data(
        world, B2, "discrete", discrete_records("S", sampled_at=now_utc() - timedelta(days=6))
    )


def _helios_batch(data: DataWorld) -> None:
    world, a2 = data.world, uuid.UUID(data.a2)
    start = now_utc() - timedelta(days=14)
    register_batch(world, a2, H1, product="HEL-7", started_at=start)
    data.h1_titer_at = now_utc() - timedelta(days=4)
    records = discrete_records("H", sampled_at=data.h1_titer_at)
    records[1]["media_lot_supplier"] = f"{SECRET}Helios media lot 9"
    submit_data(world, H1, "discrete", records)
    submit_data(world, H1, "event", event_records("HE", started_at=now_utc() - timedelta(days=5)))
    temp = continuous_series("BR1.TEMP", data.h1_titer_at - timedelta(hours=12), 24 * 60)
    submit_data(world, H1, "continuous", [temp])


def _parameters(data: DataWorld) -> None:
    world, a1 = data.world, uuid.UUID(data.a1)
    do = define_parameter(world, a1, "dissolved oxygen")
    define_parameter(world, a1, "culture temperature")
    define_parameter(world, uuid.UUID(data.a2), "pH", by=HELIOS)
    data.parameters["do"] = str(do)
    revision = str(uuid.uuid4())
    changes = {"alert": {"low": "35", "high": "50"}, "status": "confirmed"}
    world[CONTOSO].submit(
        world.ledger,
        "ParameterRevisionProposed",
        do,
        {"revision": revision, "changes": changes},
        meaning="authored",
        reason="six-month review: DO tightened to 35-50 %",
    )
    world[NORTHWIND].submit(
        world.ledger, "ParameterRevisionApproved", do, {"revision": revision}, meaning="approved"
    )
    assert parameter_subject(a1, "dissolved oxygen") == do


def _reviews(data: DataWorld) -> None:
    world = data.world
    complete_review(world, uuid.UUID(data.a1), NORTHWIND, CONTOSO)
    period_end = now_utc() - timedelta(days=200)
    complete_review(
        world,
        uuid.UUID(data.a2),
        HELIOS,
        CONTOSO,
        period_end=format_utc(period_end),
        next_due=format_utc(now_utc() - timedelta(days=1)),
    )


def _claim(data: DataWorld, title: str, disclose: bool) -> str:
    world = data.world
    salt, dossier = b"\x01" * 16, f"{SECRET}dossier: {title}".encode()
    payload = {
        "agreement": data.a1,
        "title": title,
        "summary": "A second glucose bolus on day 5 raises titer by about 12 %.",
        "commitment": commitment_of(salt, dossier),
        "parameter_versions": [{"parameter": data.parameters["do"], "version": 1}],
        "evidence": [],
        "ownership_claimed": "cmo",
    }
    subject = uuid.uuid4()
    ledger = world.ledger
    world[CONTOSO].submit(ledger, "EnhancementClaimed", subject, payload, meaning="authored")
    if disclose:
        world[NORTHWIND].submit(
            ledger, "EnhancementDisputed", subject, {}, meaning="disputed", reason="sponsor idea"
        )
        body = {"owner": "joint"}
        cosig = countersign(
            ORIGIN, "EnhancementResolved", str(subject), body, NORTHWIND, world[NORTHWIND].key
        )
        world[CONTOSO].submit(
            ledger,
            "EnhancementResolved",
            subject,
            {**body, "countersignature": cosig},
            meaning="resolved",
        )
        disclosed = {"dossier": base64.b64encode(dossier).decode(), "salt": salt.hex()}
        world[CONTOSO].submit(
            ledger, "EnhancementDisclosed", subject, disclosed, meaning="disclosed"
        )
    return str(subject)


def _grants(data: DataWorld) -> None:
    world = data.world
    a1, a2 = uuid.UUID(data.a1), uuid.UUID(data.a2)
    data.grants["fabrikam"] = str(
        grant(world, a1, NORTHWIND, FABRIKAM, purpose="tech transfer of NWB-101 to Fabrikam")
    )
    data.grants["regulator"] = str(grant(world, a1, NORTHWIND, REGULATOR))
    data.grants["regulator_confidential"] = str(
        grant(world, a1, CONTOSO, REGULATOR, include_confidential=True)
    )
    window = {
        "from": format_utc(data.h1_titer_at - timedelta(hours=1)),
        "until": format_utc(data.h1_titer_at + timedelta(hours=1)),
    }
    data.grants["helios"] = str(
        grant(
            world,
            a2,
            HELIOS,
            REGULATOR,
            data_classes=["discrete", "continuous"],
            batches=[H1],
            parameters=["titer at harvest", "BR1.TEMP"],
            window=window,
        )
    )
    data.positions["auditor_grants"] = world.ledger.head()
    data.expires_at = world.ledger.clock.now() + timedelta(seconds=1)
    data.grants["expired"] = str(
        grant(world, a1, NORTHWIND, AUDITOR, valid_until=format_utc(data.expires_at))
    )
    revoked = grant(world, a1, NORTHWIND, AUDITOR)
    data.grants["revoked"] = str(revoked)
    data.positions["auditor_active"] = world.ledger.head()
    world[NORTHWIND].submit(
        world.ledger,
        "AccessRevoked",
        revoked,
        {},
        meaning="revoked",
        reason="audit postponed",
    )
    later = now_utc() + timedelta(days=30)
    data.grants["future"] = str(
        grant(
            world,
            a1,
            NORTHWIND,
            AUDITOR,
            valid_from=format_utc(later),
            valid_until=format_utc(later + timedelta(days=14)),
        )
    )


def build_data_world(world: World) -> DataWorld:
    """Record the data world; returns once the short-lived grant has expired."""
    data = DataWorld(world)
    _agreements(data)
    _batch_one(data)
    _batch_two(data)
    _helios_batch(data)
    _parameters(data)
    _reviews(data)
    data.enhancements["disclosed"] = _claim(data, "Feed strategy B", disclose=True)
    data.enhancements["sealed"] = _claim(data, "Harvest timing", disclose=False)
    _grants(data)
    data.positions["built"] = world.ledger.head()
    clock = world.ledger.clock
    if isinstance(clock, FakeClock):
        clock.advance(timedelta(seconds=2))
    else:
        while clock.now() <= data.expires_at:
            time.sleep(0.01)
    return data
