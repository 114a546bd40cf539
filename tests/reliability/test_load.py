"""Several ``cmo-ledger serve`` workers on one PostgreSQL database, under concurrent signed
load: every acknowledged event is stored exactly once, batches are all or nothing, leaf
indexes are dense, ``cmo-ledger verify`` passes, every checkpoint signed on the way is
consistent with the final one, and the read models equal a rebuild from the log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.conftest import PG_RESTART
from tests.reliability.support import (
    Fault,
    check_after_load,
    deployment,
    hang_ups,
    restart_postgres,
    run_load,
)

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


@pytest.mark.slow
def test_sixty_four_clients_get_no_error_but_unavailable_under_a_fault(
    pg_database: str, tmp_path: Path, report: Callable[[str, str], None]
) -> None:
    with deployment(pg_database, tmp_path, workers=4) as deployed:
        faults: list[Fault] = [
            (10.0, "4 clients hanging up mid-request", lambda: hang_ups(deployed, "NWB101-24-301"))
        ]
        if PG_RESTART:  # it disturbs everyone using the cluster
            faults.append((20.0, "PostgreSQL restart", lambda: restart_postgres(pg_database)))
        journal, figures = run_load(deployed, clients=64, seconds=30, faults=faults)
        check_after_load(deployed, journal)
    assert set(figures.errors) <= {"UNAVAILABLE"}, figures.errors
    report("load (4 workers, 64 clients)", figures.summary())
