"""Several ``cmo-ledger serve`` workers on one PostgreSQL database, under concurrent signed
load: every acknowledged event is stored exactly once, batches are all or nothing, leaf
indexes are dense, ``cmo-ledger verify`` passes, every checkpoint signed on the way is
consistent with the final one, and the read models equal a rebuild from the log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.support import check_after_load, deployment, run_load

pytestmark = pytest.mark.postgres


def test_two_workers_under_load_lose_nothing_acknowledged(
    pg_database: str, tmp_path: Path, report: Callable[[str, str], None]
) -> None:
    with deployment(pg_database, tmp_path, workers=2) as deployed:
        journal, figures = run_load(deployed, clients=4, seconds=5)
        check_after_load(deployed, journal)
    assert figures.errors == {}, "no request fails when nothing goes wrong"
    report("load (2 workers, 4 clients)", figures.summary())


@pytest.mark.slow
def test_four_workers_under_a_minute_of_load_lose_nothing_acknowledged(
    pg_database: str, tmp_path: Path, report: Callable[[str, str], None]
) -> None:
    with deployment(pg_database, tmp_path, workers=4) as deployed:
        journal, figures = run_load(deployed, clients=16, seconds=60)
        check_after_load(deployed, journal)
    assert figures.errors == {}, "no request fails when nothing goes wrong"
    report("load (4 workers, 16 clients)", figures.summary())
