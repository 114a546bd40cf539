"""A projector killed with SIGKILL in the middle of a page resumes, applies no event
twice, and ends with views equal to a rebuild."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from projections.runner import Projector
from tests.projections.conftest import SMALL, differences, run_scenario, snapshot
from tests.support.world import World

ROOT = Path(__file__).resolve().parents[2]
PAGES_BEFORE_KILL = 6


def _child(database_url: str, mode: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tests.support.projector_child", database_url, mode]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)


def _kill_mid_page(database_url: str) -> None:
    child = _child(database_url, "rebuild")
    assert child.stdout is not None
    try:
        for _ in range(PAGES_BEFORE_KILL):
            line = child.stdout.readline()
            assert line.startswith("applying"), f"the child said {line!r}"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL


def test_a_projector_killed_mid_page_resumes_and_ends_equal_to_a_rebuild(
    world: World, projector: Projector, database_url: str
) -> None:
    run_scenario(world, SMALL)
    projector.close()
    expected = snapshot(projector)
    head = world.ledger.head()

    _kill_mid_page(database_url)

    positions = set(projector.positions().values())
    assert len(positions) == 1, "every view commits each page together"
    killed_at = positions.pop()
    assert 0 < killed_at < head, "killed in the middle of the replay"
    committed = snapshot(projector, killed_at)
    audit = committed["audit"]["proj_audit"]
    assert sorted(row[0] for row in audit) == [
        e.position for e in world.ledger.read(0, head, killed_at)
    ]

    resumed = _child(database_url, "resume")
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0
    assert output.strip() == f"done {head}"

    assert differences(expected, snapshot(projector)) == []
    # What was committed before the kill is exactly what the finished views say of then.
    assert differences(committed, snapshot(projector, killed_at)) == []
    leaves = [row[1] for row in snapshot(projector)["audit"]["proj_audit"]]
    assert sorted(leaves) == list(range(head)), "each event applied exactly once"
    indexes = {i["name"] for i in sa.inspect(world.ledger.engine).get_indexes("proj_audit")}
    assert "ix_proj_audit_recorded_through" in indexes, "the rebuild's indexes are back"
