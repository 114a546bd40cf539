"""Faults under load: a server worker killed with SIGKILL, a projector killed in the middle
of a page, clients hanging up mid-request, and (last, in the long run) a PostgreSQL restart.

Afterwards no acknowledged event is missing or doubled, no batch is half-written, the tree
and every checkpoint seen stay consistent, the read models equal a rebuild, and the server
is healthy again with no manual step. A request that got no answer may or may not have
been stored: the client tells which from ``nextVersion``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ledger.log.envelope import event_hash
from tests.reliability.conftest import PG_RESTART
from tests.reliability.support import (
    Deployment,
    Fault,
    Journal,
    batch_event,
    check_after_load,
    deployment,
    hang_up,
    hang_up_and_recover,
    hang_ups,
    kill_projector_mid_page,
    next_version,
    restart_postgres,
    resubmit,
    run_load,
    stored_once,
    subject_of,
    submit_body,
)

pytestmark = pytest.mark.postgres
Report = Callable[[str, str], None]


@pytest.fixture(scope="module")
def served(
    module_pg_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """Two workers shared by the fast tests; the worker-kill test, last, stops them."""
    with deployment(module_pg_database, tmp_path_factory.mktemp("served"), workers=2) as it:
        yield it


def test_a_request_cut_off_before_its_body_ends_stores_nothing(served: Deployment) -> None:
    item = batch_event(served, "NWB101-24-101", 1, None)
    body = submit_body(item)
    hang_up(served, served.world["contoso-cmo"], body, send=len(body) // 2)

    assert next_version(served, subject_of(item)) == (1, None), "nothing was stored"
    stored = resubmit(served, item)
    assert stored.data is not None, stored.code
    assert next_version(served, subject_of(item)) == (2, event_hash(*item))


def test_a_client_that_hangs_up_learns_from_next_version_whether_its_event_landed(
    served: Deployment, report: Report
) -> None:
    said: Counter[str] = Counter()
    item = batch_event(served, "NWB101-24-102", 1, None)
    for version in range(1, 7):
        if version > 1:
            item = batch_event(served, "NWB101-24-102", version, event_hash(*item))
        said[hang_up_and_recover(served, item)] += 1
        assert stored_once(served.ledger, item), "stored exactly once, whatever was said"
    report("hang-ups (2 workers)", f"nextVersion said {dict(said)}; each event stored once")


def test_a_worker_killed_under_load_is_replaced_and_loses_nothing_acknowledged(
    served: Deployment, report: Report
) -> None:
    killed: list[int] = []
    faults: list[Fault] = [
        (2.0, "kill -9 of a worker", lambda: killed.append(served.kill_worker()))
    ]

    journal, figures = run_load(served, clients=4, seconds=5, faults=faults)

    served.wait_healthy()
    assert killed and killed[0] not in served.worker_pids(), "the killed worker was replaced"
    check_after_load(served, journal)
    report("worker kill (2 workers, 4 clients)", figures.summary())


@pytest.mark.slow
def test_four_workers_survive_every_fault_under_a_minute_of_load(
    pg_database: str, tmp_path: Path, report: Report
) -> None:
    journal = Journal()
    said: Counter[str] = Counter()
    with deployment(pg_database, tmp_path, workers=4) as deployed:

        def four_hang_ups() -> None:
            said.update(hang_ups(deployed, "NWB101-24-201", journal))

        faults: list[Fault] = [
            (12.0, "projector killed mid-page", lambda: kill_projector_mid_page(deployed)),
            (24.0, "kill -9 of a worker", deployed.kill_worker),
            (32.0, "4 clients hanging up mid-request", four_hang_ups),
        ]
        if PG_RESTART:  # the last fault: it disturbs everyone using the cluster
            restart = (42.0, "PostgreSQL restart", lambda: restart_postgres(pg_database))
            faults.append(restart)
        journal, figures = run_load(
            deployed, clients=16, seconds=60, faults=faults, journal=journal
        )
        check_after_load(deployed, journal)
    report("faults (4 workers, 16 clients)", f"{figures.summary()}; hang-ups: {dict(said)}")
