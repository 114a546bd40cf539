"""Backup and restore: an online snapshot restores into an empty database as a ledger that
verifies and extends every checkpoint issued before the backup."""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from nacl.signing import SigningKey
from typer.testing import CliRunner

from clients.cli import app
from clients.offline import verify_checkpoint, verify_consistency_between
from ledger.application import Ledger
from ledger.config import Settings
from ledger.errors import ConfigurationError, ValidationFailed
from ledger.log.backup import backup, restore
from ledger.log.checkpoints import Checkpoints, Notary, SignedCheckpoint
from ledger.log.tree import MerkleTree
from ledger.log.verify import verify_ledger
from projections.runner import Projector
from tests.conftest import fresh_database
from tests.support.world import ORIGIN, World

pytestmark = pytest.mark.reliability


def add_key(world: World, party: str, n: int) -> None:
    key = SigningKey(hashlib.sha256(f"{party} backup key {n}".encode()).digest())
    world.add_key(party, key)


@pytest.fixture
def restored_settings(
    settings: Settings, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Settings]:
    """An empty database on the same backend as ``settings``."""
    backend = "postgres" if settings.is_postgres else "sqlite"
    folder = tmp_path / "restored"
    folder.mkdir()
    with fresh_database(backend, request, folder) as url:
        yield Settings(database_url=url, data_dir=folder / "data", kdf_profile="min")


def checkpoints_with_appends_between(world: World, notary: Notary) -> list[SignedCheckpoint]:
    issued = [notary.checkpoint_now()]
    for n in range(3):
        add_key(world, "contoso-cmo", n)
        add_key(world, "northwind-bio", n)
        issued.append(notary.checkpoint_now())
    return issued


def assert_extends(restored: Ledger, earlier: list[SignedCheckpoint]) -> None:
    """The restored ledger's latest checkpoint is consistent with each earlier one."""
    store = Checkpoints(restored)
    latest = store.latest()
    assert latest is not None
    vkey = store.vkey()
    new = verify_checkpoint(latest.text, vkey, origin=ORIGIN)
    for signed in earlier:
        old = verify_checkpoint(signed.text, vkey, origin=ORIGIN)
        verify_consistency_between(old, new, store.consistency_proof(old.size, new.size))


def table_contents(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, sorted, with bytes and UUIDs as text."""
    engine = sa.create_engine(settings.eventsourcing_env()["SQLALCHEMY_URL"])
    try:
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
            return {
                name: sorted(
                    tuple(str(value) for value in row)
                    for row in conn.exec_driver_sql(f'SELECT * FROM "{name}"')
                )
                for name in tables
            }
    finally:
        engine.dispose()


def test_a_restored_ledger_verifies_and_extends_every_earlier_checkpoint(
    world: World, restored_settings: Settings, tmp_path: Path
) -> None:
    notary = Notary(world.ledger, world.notary.key, MerkleTree(world.ledger))
    issued = checkpoints_with_appends_between(world, notary)
    with Projector(world.ledger) as projector:
        assert projector.reached == world.ledger.head()
    summary = backup(world.ledger.settings, tmp_path / "ledger.backup")
    assert summary.head == world.ledger.head()
    assert summary.tables["ledger_events"] == len(list(world.ledger.iter_log()))
    assert summary.tables["checkpoints"] == len(issued)

    restore(restored_settings, tmp_path / "ledger.backup")
    original = table_contents(world.ledger.settings)
    assert any(name.startswith("proj_") for name in original)
    assert table_contents(restored_settings) == original
    restored = Ledger.open(restored_settings)
    try:
        report = verify_ledger(restored, workers=1)
        assert report.ok, [str(p) for p in report.problems]
        assert (report.events, report.checkpoints) == (summary.tables["ledger_events"], 4)
        assert_extends(restored, issued)
        assert restored.identity == world.ledger.identity
        with Projector(restored) as projector:  # every view is current on the restored ledger
            assert set(projector.positions().values()) == {summary.head}
    finally:
        restored.close()


def test_a_restored_ledger_takes_new_events_after_the_restored_head(
    world: World, restored_settings: Settings, tmp_path: Path
) -> None:
    head = world.ledger.head()
    backup(world.ledger.settings, tmp_path / "ledger.backup")
    restore(restored_settings, tmp_path / "ledger.backup")
    restored = Ledger.open(restored_settings)
    try:
        world.ledger = restored  # the same parties, now on the restored ledger
        add_key(world, "helios-tx", 0)
        assert restored.head() > head
        notary = Notary(restored, world.notary.key, MerkleTree(restored))
        assert notary.checkpoint_now().size == len(list(restored.iter_log()))
        assert verify_ledger(restored, workers=1).ok
    finally:
        restored.close()


def test_restore_refuses_a_database_that_is_not_empty(world: World, tmp_path: Path) -> None:
    backup(world.ledger.settings, tmp_path / "ledger.backup")
    head = world.ledger.head()
    with pytest.raises(ConfigurationError) as refused:
        restore(world.ledger.settings, tmp_path / "ledger.backup")
    assert refused.value.field == "CMO_LEDGER_DATABASE_URL"
    assert world.ledger.head() == head


def test_a_truncated_backup_is_refused_and_leaves_the_database_empty(
    world: World, restored_settings: Settings, tmp_path: Path
) -> None:
    backup_file = tmp_path / "ledger.backup"
    backup(world.ledger.settings, backup_file)
    whole = gzip.decompress(backup_file.read_bytes())
    cut = tmp_path / "cut.backup"
    cut.write_bytes(gzip.compress(whole[: len(whole) * 2 // 3]))
    with pytest.raises(ValidationFailed) as refused:
        restore(restored_settings, cut)
    assert refused.value.field == "FILE"
    engine = sa.create_engine(restored_settings.eventsourcing_env()["SQLALCHEMY_URL"])
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_a_backup_taken_while_writes_continue_is_a_consistent_prefix(
    world: World, restored_settings: Settings, tmp_path: Path
) -> None:
    notary = Notary(world.ledger, world.notary.key, MerkleTree(world.ledger))
    issued = checkpoints_with_appends_between(world, notary)
    notary.start(interval=0.05)
    written, stop = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def writer() -> None:
        n = 100
        try:
            while not stop.is_set():
                add_key(world, "fabrikam-cmo", n)
                n += 1
                if n == 110:
                    written.set()
        except BaseException as exc:  # surfaced by the assertion below
            failures.append(exc)
            written.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        written.wait(60)
        summary = backup(world.ledger.settings, tmp_path / "ledger.backup")
        add_key(world, "helios-tx", 1)  # the writer's appends go on beside this one
    finally:
        stop.set()
        thread.join(60)
        notary.stop()
    assert failures == []

    restore(restored_settings, tmp_path / "ledger.backup")
    restored = Ledger.open(restored_settings)
    try:
        report = verify_ledger(restored, workers=1)
        assert report.ok, [str(p) for p in report.problems]
        copied = [(r.position, r.event.event_hash()) for r in restored.iter_log()]
        original = [(r.position, r.event.event_hash()) for r in world.ledger.iter_log()]
        assert copied == original[: len(copied)]
        assert copied[-1][0] == summary.head < original[-1][0]
        assert_extends(restored, issued)
    finally:
        restored.close()


def test_the_cli_backs_up_and_restores_into_an_empty_database(
    world: World, restored_settings: Settings, tmp_path: Path
) -> None:
    runner = CliRunner()
    out = tmp_path / "cli.backup"
    source_env = {"CMO_LEDGER_DATABASE_URL": world.ledger.settings.database_url}
    taken = runner.invoke(app, ["backup", "--out", str(out)], env=source_env)
    assert taken.exit_code == 0, taken.output
    assert f"log position {world.ledger.head()}" in taken.output

    target_env = {"CMO_LEDGER_DATABASE_URL": restored_settings.database_url}
    restored = runner.invoke(app, ["restore", str(out)], env=target_env)
    assert restored.exit_code == 0, restored.output
    verified = runner.invoke(app, ["verify", "--workers", "1"], env=target_env)
    assert verified.exit_code == 0, verified.output

    again = runner.invoke(app, ["restore", str(out)], env=target_env)
    assert again.exit_code != 0
    assert isinstance(again.exception, ConfigurationError)
