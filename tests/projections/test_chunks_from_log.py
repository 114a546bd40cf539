"""Continuous chunk content stays in the log: the data view says where each chunk is."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ledger.domain.formats import decode_chunk
from ledger.domain.subjects import batch_subject
from ledger.timeutil import now_utc
from projections.data import CHUNKS
from projections.rebuild import rebuild
from projections.runner import Projector
from projections.series import series
from projections.view import VIEWS_TABLE
from tests.projections.conftest import snapshot
from tests.support.agreements import propose_and_sign
from tests.support.batches import continuous_series, register_batch, submit_data
from tests.support.world import World

BATCH = "NWB101-24-001"
RETIRED = "proj_chunk_content"


def _start() -> datetime:
    return now_utc() - timedelta(days=13)


def _two_tags(start: datetime) -> list[dict[str, Any]]:
    return [
        continuous_series("BR1.TEMP", start, 90, chunk_points=30),
        continuous_series("BR1.PH", start, 60, chunk_points=30),
    ]


def _correct(world: World, payload: dict[str, Any]) -> int:
    appended = world["contoso-cmo"].submit(
        world.ledger,
        "DataCorrected",
        batch_subject(BATCH),
        {"submission": "5f0e3a57-64a1-4d1c-9d36-0f7e2b1b9c02", **payload},
        meaning="corrected",
        reason="pH probe recalibrated",
    )
    return appended.position


def _chunk_rows(world: World) -> list[Any]:
    query = sa.select(CHUNKS).where(CHUNKS.c.batch == BATCH, CHUNKS.c.valid_to.is_(None))
    with world.ledger.engine.connect() as conn:
        return list(conn.execute(query))


def _has_table(world: World, name: str) -> bool:
    return sa.inspect(world.ledger.engine).has_table(name)


def _old_content_table(world: World) -> None:
    """The table of chunk content an earlier data view wrote, with a row in it."""
    table = sa.Table(
        RETIRED, sa.MetaData(), sa.Column("batch", sa.String(64)), sa.Column("content", sa.Text)
    )
    with world.ledger.engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert().values(batch=BATCH, content="H4sI"))


def test_each_chunk_row_names_the_event_and_the_place_in_its_payload_that_hold_it(
    world: World, projector: Projector
) -> None:
    register_batch(world, propose_and_sign(world))
    start = _start()
    sent = _two_tags(start)
    submitted = submit_data(world, BATCH, "continuous", sent).position
    recalibrated = continuous_series("BR1.PH", start + timedelta(minutes=30), 30, seed=99)
    corrected = _correct(
        world,
        {"supersedes_chunks": [sent[1]["chunks"][1]["sha256"]], "series": [recalibrated]},
    )

    rows = _chunk_rows(world)
    assert len(rows) == 3 + 2 + 1, "one row per chunk of each submission"
    events = world.ledger.read_at([submitted, corrected])
    for row in rows:
        payload = events[row.position].event.envelope["payload"]
        entry = payload["series"][row.series_index]
        assert (entry["tag"], entry["chunks"][row.chunk_index]["sha256"]) == (row.tag, row.sha256)
    superseded = {row.sha256: row for row in rows}[sent[1]["chunks"][1]["sha256"]]
    assert (superseded.status, superseded.position) == ("superseded", submitted)
    assert {row.position for row in rows if row.status == "current"} == {submitted, corrected}


def test_no_view_holds_chunk_content(world: World, projector: Projector) -> None:
    register_batch(world, propose_and_sign(world))
    sent = _two_tags(_start())
    submit_data(world, BATCH, "continuous", sent)

    contents = [chunk["content"] for entry in sent for chunk in entry["chunks"]]
    texts = [
        value
        for tables in snapshot(projector).values()
        for rows in tables.values()
        for row in rows
        for value in row
        if isinstance(value, str)
    ]
    assert not [text for text in texts if any(content in text for content in contents)]
    assert not _has_table(world, RETIRED)


def test_a_rebuild_drops_the_chunk_content_an_earlier_view_copied(
    world: World, projector: Projector
) -> None:
    register_batch(world, propose_and_sign(world))
    sent = _two_tags(_start())
    submit_data(world, BATCH, "continuous", sent)
    projector.close()
    _old_content_table(world)

    rebuild(world.ledger, ["data"])

    assert not _has_table(world, RETIRED)
    with world.ledger.engine.connect() as conn:
        found = series(conn, world.ledger, BATCH, "BR1.PH")
    assert found.values == [p[1] for chunk in sent[1]["chunks"] for p in decode_chunk(chunk)]


def test_a_database_of_an_earlier_data_view_is_replayed_without_chunk_content(
    world: World, projector: Projector
) -> None:
    register_batch(world, propose_and_sign(world))
    submit_data(world, BATCH, "continuous", _two_tags(_start()))
    before = snapshot(projector)["data"]
    projector.close()
    _old_content_table(world)
    with world.ledger.engine.begin() as conn:  # the fingerprint of an earlier schema
        stale = VIEWS_TABLE.update().where(VIEWS_TABLE.c.view == "data")
        conn.execute(stale.values(fingerprint="0" * 64))

    again = Projector(world.ledger)
    again.create_tables()
    assert again.positions()["data"] == 0, "the earlier view was dropped"
    assert not _has_table(world, RETIRED)
    again.catch_up()

    assert snapshot(again)["data"] == before


def test_a_series_as_of_a_position_before_a_correction_reads_the_original_points_from_the_log(
    world: World, projector: Projector
) -> None:
    register_batch(world, propose_and_sign(world))
    start = _start()
    sent = _two_tags(start)
    before = submit_data(world, BATCH, "continuous", sent).position
    recalibrated = continuous_series("BR1.PH", start + timedelta(minutes=30), 30, seed=99)
    first, second = sent[1]["chunks"]
    _correct(world, {"supersedes_chunks": [second["sha256"]], "series": [recalibrated]})

    with world.ledger.engine.connect() as conn:
        then = series(conn, world.ledger, BATCH, "BR1.PH", position=before)
        now = series(conn, world.ledger, BATCH, "BR1.PH")
        late = series(conn, world.ledger, BATCH, "BR1.PH", start=decode_chunk(second)[5][0])
    original = decode_chunk(first) + decode_chunk(second)
    assert (then.timestamps, then.values) == ([p[0] for p in original], [p[1] for p in original])
    assert then.quality == [p[2] for p in original]
    assert now.values == [
        p[1] for p in decode_chunk(first) + decode_chunk(recalibrated["chunks"][0])
    ]
    assert late.values == [p[1] for p in decode_chunk(recalibrated["chunks"][0])[5:]]
