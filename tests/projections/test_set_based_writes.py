"""A page writes its row versions set by set: the closes of many keys in one call, each
closing only the current version of its own key."""

from __future__ import annotations

import sqlalchemy as sa

from ledger.application import Ledger
from projections.temporal import Versions, temporal_table

metadata = sa.MetaData()
PAIRS = temporal_table(
    "test_pairs",
    metadata,
    [sa.Column("left", sa.String(10), nullable=False), sa.Column("right", sa.Integer)],
    sa.Column("colour", sa.String(10)),
)


def test_one_page_closes_the_current_versions_of_many_two_column_keys(ledger: Ledger) -> None:
    metadata.create_all(ledger.engine)
    with ledger.engine.begin() as conn:
        versions = Versions(conn, PAIRS)
        for left, right in [("a", 1), ("a", 2), ("b", 1)]:
            versions.insert((left, right), 1, {"colour": "red"})
        versions.flush()
        versions.update(("a", 1), 3, colour="blue")
        versions.update(("a", 1), 5, colour="green")
        versions.end(("b", 1), 5)
        versions.flush()
        rows = conn.execute(
            sa.select(
                PAIRS.c.left, PAIRS.c.right, PAIRS.c.colour, PAIRS.c.valid_from, PAIRS.c.valid_to
            )
        ).all()

    assert sorted(map(tuple, rows)) == [
        ("a", 1, "blue", 3, 5),
        ("a", 1, "green", 5, None),
        ("a", 1, "red", 1, 3),
        ("a", 2, "red", 1, None),
        ("b", 1, "red", 1, 5),
    ]
