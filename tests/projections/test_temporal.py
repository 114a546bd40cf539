"""Row versions: an update closes the current version and opens one; as-of is a range test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from ledger.application import Ledger
from projections.page import Scratch, State, state_table
from projections.temporal import Versions, as_of, temporal_table

metadata = sa.MetaData()
THINGS = temporal_table(
    "test_things",
    metadata,
    [sa.Column("thing", sa.String(10), nullable=False)],
    sa.Column("colour", sa.String(10)),
)


@pytest.fixture
def conn(ledger: Ledger) -> Iterator[sa.Connection]:
    metadata.create_all(ledger.engine)
    with ledger.engine.begin() as connection:
        yield connection


def _all(conn: sa.Connection) -> list[tuple[str, str, int, int | None]]:
    query = sa.select(THINGS.c.thing, THINGS.c.colour, THINGS.c.valid_from, THINGS.c.valid_to)
    return [tuple(r) for r in conn.execute(query.order_by(THINGS.c.valid_from))]


def _as_of(conn: sa.Connection, position: int) -> list[str]:
    query = sa.select(THINGS.c.colour).where(as_of(THINGS, position))
    return [r[0] for r in conn.execute(query)]


def test_an_update_closes_the_current_version_and_opens_a_new_one(conn: sa.Connection) -> None:
    page = Versions(conn, THINGS)
    page.insert(("a",), 3, {"colour": "red"})
    page.flush()
    page.update(("a",), 7, colour="blue")
    page.flush()

    assert _all(conn) == [("a", "red", 3, 7), ("a", "blue", 7, None)]
    assert [_as_of(conn, p) for p in (2, 3, 6, 7, 100)] == [
        [],
        ["red"],
        ["red"],
        ["blue"],
        ["blue"],
    ]


def test_versions_made_and_replaced_within_one_page_keep_their_ranges(conn: sa.Connection) -> None:
    page = Versions(conn, THINGS)
    page.insert(("a",), 1, {"colour": "red"})
    page.update(("a",), 2, colour="green")
    page.end(("a",), 4)
    page.flush()

    assert _all(conn) == [("a", "red", 1, 2), ("a", "green", 2, 4)]


def test_two_changes_by_one_event_leave_one_version(conn: sa.Connection) -> None:
    page = Versions(conn, THINGS)
    page.insert(("a",), 1, {"colour": "red"})
    page.flush()
    page.update(("a",), 5, colour="green")
    page.update(("a",), 5, colour="blue")
    page.flush()

    assert _all(conn) == [("a", "red", 1, 5), ("a", "blue", 5, None)]


def test_an_unchanged_row_makes_no_new_version(conn: sa.Connection) -> None:
    page = Versions(conn, THINGS)
    page.insert(("a",), 1, {"colour": "red"})
    page.flush()
    page.put(("a",), 9, {"colour": "red"})
    page.flush()

    assert _all(conn) == [("a", "red", 1, None)]


def test_prefetched_keys_without_rows_are_known_absent(conn: sa.Connection) -> None:
    page = Versions(conn, THINGS)
    page.insert(("a",), 1, {"colour": "red"})
    page.flush()
    page.prefetch(["a", "b"])

    assert page.get(("a",)) == {"thing": "a", "colour": "red", "valid_from": 1, "valid_to": None}
    assert page.get(("b",)) is None


def test_an_update_that_changes_nothing_makes_no_new_version(conn: sa.Connection) -> None:
    page = Versions(conn, THINGS)
    page.insert(("a",), 1, {"colour": "red"})
    page.flush()

    assert page.update(("a",), 9, colour="red") == {"thing": "a", "colour": "red"}
    assert page.update(("b",), 9, colour="red") is None
    page.flush()

    assert _all(conn) == [("a", "red", 1, None)]


STATE = state_table("test_state", metadata)


def _state(conn: sa.Connection) -> dict[str, str]:
    return dict(conn.execute(sa.select(STATE.c.key, STATE.c.value)).tuples().all())


@pytest.mark.parametrize("whole", [False, True], ids=["read-through", "whole"])
def test_a_state_key_written_again_replaces_its_row(conn: sa.Connection, whole: bool) -> None:
    # A flush writes new keys without deleting first; a key it wrote before, or one
    # read from the table, must still be replaced, and a key set to None removed.
    state = State(conn, STATE, {}, whole=whole)
    state.set("a", {"n": 1})
    state.set("b", [1])
    state.set("c", "x")
    state.flush()
    state.get("a")
    state.set("a", {"n": 2})
    state.set("b", None)
    state.set("d", True)
    state.flush()
    state.set("a", {"n": 3})
    state.flush()

    assert _state(conn) == {"a": '{"n":3}', "c": '"x"', "d": "true"}


def test_handlers_run_on_a_scratch_change_nothing_the_page_holds(conn: sa.Connection) -> None:
    state = State(conn, STATE, {})
    state.set("limits", {"versions": [{"version": 1}]})
    state.remember("subject:s", ["NWB101-24-001"])
    state.flush()
    page_state = State(conn, STATE, {"subject:s": ["NWB101-24-001"]})
    page_state.get("limits")  # held in memory: the scratch must not change it in place
    scratch = Scratch(page_state)

    scratch.get("limits")["versions"][-1]["effective_to"] = "2024-03-01T00:00:00.000Z"
    scratch.set("limits", {"versions": []})
    scratch.remember("subject:t", ["NWB101-24-002"])

    assert scratch.get("limits") == {"versions": []}
    assert scratch.fact("subject:t") == ["NWB101-24-002"]
    assert scratch.fact("subject:s") == ["NWB101-24-001"]  # read through
    assert page_state.get("limits") == {"versions": [{"version": 1}]}
    assert page_state.fact("subject:t") is None
    with pytest.raises(RuntimeError, match="never written"):
        scratch.flush()
    page_state.flush()
    assert _state(conn)["limits"] == '{"versions":[{"version":1}]}'
