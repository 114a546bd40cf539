"""The demo's guide points to example queries that exist."""

from __future__ import annotations

from clients.demo.run import QUERIES


def test_the_example_queries_the_demo_names_exist() -> None:
    queries = sorted(QUERIES.glob("*.graphql"))
    assert queries, QUERIES
    assert (QUERIES / "trace_batch.graphql") in queries
