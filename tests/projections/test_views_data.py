"""The data views answer what a batch holds, what was corrected, and what arrived when."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from ledger.domain.formats import decode_chunk
from ledger.domain.subjects import batch_subject
from ledger.timeutil import now_utc
from projections.data import CHUNKS, RECORDS, SUBMISSIONS
from projections.deliveries import DELIVERIES, delivery_state, late_or_missing
from projections.runner import Projector
from projections.series import series
from projections.temporal import as_of
from tests.support.agreements import propose_and_sign
from tests.support.batches import (
    continuous_series,
    discrete_records,
    end_batch,
    event_records,
    register_batch,
    submit_data,
)
from tests.support.world import World

BATCH = "NWB101-24-001"


def _rows(world: World, table: sa.Table, position: int | None = None, **where: Any) -> list[Any]:
    query = sa.select(table).where(*[table.c[k] == v for k, v in where.items()])
    query = query.where(table.c.valid_to.is_(None) if position is None else as_of(table, position))
    with world.ledger.engine.connect() as conn:
        return [row._mapping for row in conn.execute(query)]


def test_a_correction_keeps_the_original_readable_and_marked_superseded(
    world: World, projector: Projector
) -> None:
    register_batch(world, propose_and_sign(world))
    before = submit_data(world, BATCH, "discrete", discrete_records("R"))
    payload = {
        "submission": "0b4c3f4e-7d4e-4c55-9e57-2c1f0d6b7a11",
        "supersedes": ["R-002"],
        "records": [{**discrete_records("R")[1], "value": "4.26"}],
    }
    world["contoso-cmo"].submit(
        world.ledger,
        "DataCorrected",
        batch_subject(BATCH),
        payload,
        meaning="corrected",
        reason="transcription error: 4.62 was typed for 4.26",
    )

    (then,) = _rows(world, RECORDS, before.position, record_id="R-002")
    assert (then["record_version"], then["value"], then["status"]) == (1, "4.62", "current")
    now = {row["record_version"]: row for row in _rows(world, RECORDS, record_id="R-002")}
    assert (now[1]["value"], now[1]["status"]) == ("4.62", "superseded")
    assert now[1]["superseded_by"] == payload["submission"]
    assert (now[2]["value"], now[2]["status"]) == ("4.26", "current")
    (correction,) = _rows(world, SUBMISSIONS, submission=payload["submission"])
    assert correction["correction"] and correction["reason"].startswith("transcription")


def test_continuous_data_is_read_by_tag_and_time_range(world: World, projector: Projector) -> None:
    register_batch(world, propose_and_sign(world))
    start = now_utc() - timedelta(days=13)
    entry = continuous_series("BR1.TEMP", start, 300, chunk_points=100)
    submit_data(world, BATCH, "continuous", [entry])
    points = [p for chunk in entry["chunks"] for p in decode_chunk(chunk)]
    low, high = points[150][0], points[180][0]

    with world.ledger.engine.connect() as conn:
        found = series(conn, world.ledger, BATCH, "BR1.TEMP", low, high)
        assert series(conn, world.ledger, BATCH, "BR1.PH").timestamps == []
    expected = points[150:181]
    assert found.timestamps == [p[0] for p in expected]
    assert found.values == [p[1] for p in expected]
    assert found.quality == [p[2] for p in expected]
    assert len(_rows(world, CHUNKS, batch=BATCH, tag="BR1.TEMP")) == 3


def test_a_recalibrated_chunk_replaces_the_old_values_from_then_on(
    world: World, projector: Projector
) -> None:
    register_batch(world, propose_and_sign(world))
    start = now_utc() - timedelta(days=13)
    old = continuous_series("BR1.DO", start, 60, chunk_points=60)
    before = submit_data(world, BATCH, "continuous", [old])
    new = continuous_series("BR1.DO", start, 60, chunk_points=60, seed=99)
    world["contoso-cmo"].submit(
        world.ledger,
        "DataCorrected",
        batch_subject(BATCH),
        {
            "submission": "5f0e3a57-64a1-4d1c-9d36-0f7e2b1b9c02",
            "supersedes_chunks": [old["chunks"][0]["sha256"]],
            "series": [new],
        },
        meaning="corrected",
        reason="DO probe recalibrated",
    )

    with world.ledger.engine.connect() as conn:
        then = series(conn, world.ledger, BATCH, "BR1.DO", position=before.position)
        now = series(conn, world.ledger, BATCH, "BR1.DO")
    assert then.values == [p[1] for p in decode_chunk(old["chunks"][0])]
    assert now.values == [p[1] for p in decode_chunk(new["chunks"][0])]


def test_deliveries_are_on_time_late_awaited_or_missing(world: World, projector: Projector) -> None:
    register_batch(world, propose_and_sign(world))
    end_batch(world, BATCH, now_utc() - timedelta(hours=30))  # continuous was due 6 h ago
    start = now_utc() - timedelta(days=13)
    submit_data(world, BATCH, "continuous", [continuous_series("BR1.PH", start, 30)])
    recent = event_records("E", started_at=now_utc() - timedelta(hours=2))[:1]  # a deviation
    old = event_records("F", started_at=now_utc() - timedelta(hours=50))
    submit_data(world, BATCH, "event", recent + old)

    rows = {(r["data_class"], r["item"]): r for r in _rows(world, DELIVERIES, batch=BATCH)}
    now = now_utc()
    assert delivery_state(rows[("continuous", "")], now) == "late"
    assert delivery_state(rows[("discrete", "")], now) == "awaiting"  # due 72 h after the end
    assert delivery_state(rows[("discrete", "")], now + timedelta(days=3)) == "missing"
    assert delivery_state(rows[("event", "E-001")], now) == "on_time"
    assert delivery_state(rows[("event", "F-001")], now) == "late"
    assert ("event", "") not in rows, "events are due after detection, one by one"


def test_the_late_filter_in_sql_selects_what_delivery_state_calls_late_or_missing(
    world: World, projector: Projector
) -> None:
    register_batch(world, propose_and_sign(world))
    end_batch(world, BATCH, now_utc() - timedelta(hours=30))
    start = now_utc() - timedelta(days=13)
    submit_data(world, BATCH, "continuous", [continuous_series("BR1.PH", start, 30)])
    recent = event_records("E", started_at=now_utc() - timedelta(hours=2))[:1]
    old = event_records("F", started_at=now_utc() - timedelta(hours=50))
    submit_data(world, BATCH, "event", recent + old)
    head = world.ledger.head()

    with world.ledger.engine.connect() as conn:
        for when in (now_utc(), now_utc() + timedelta(days=3), now_utc() + timedelta(days=90)):
            current = as_of(DELIVERIES, head)
            rows = [dict(r._mapping) for r in conn.execute(sa.select(DELIVERIES).where(current))]
            assert rows
            judged = {
                (r["batch"], r["data_class"], r["item"])
                for r in rows
                if delivery_state(r, when) in ("late", "missing")
            }
            selected = {
                (r.batch, r.data_class, r.item)
                for r in conn.execute(sa.select(DELIVERIES).where(current, late_or_missing(when)))
            }
            assert judged, f"nothing late or missing at {when}"
            assert selected == judged, when


def test_acknowledging_a_deviation_marks_its_current_version(
    world: World, projector: Projector
) -> None:
    register_batch(world, propose_and_sign(world))
    submit_data(world, BATCH, "event", event_records("E"))
    world["northwind-bio"].submit(
        world.ledger,
        "DataAcknowledged",
        batch_subject(BATCH),
        {"records": ["E-001"]},
        meaning="acknowledged",
    )
    (row,) = _rows(world, RECORDS, record_id="E-001")
    assert row["acknowledged_by"] == "northwind-bio"
    assert row["event_kind"] == "deviation" and row["severity"] == "major"
