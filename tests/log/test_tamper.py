"""Tampering with the stored rows is found by `cmo-ledger verify`, which names the position.

Each test builds a ledger (admissions, key additions, a revocation), builds the tree and
signs a checkpoint, appends one more event (not yet checkpointed), then edits the
database behind the ledger's back with plain SQL.
"""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta

import pytest
import typer
from typer.testing import CliRunner

from clients.cli.log import register
from ledger.application import Ledger
from ledger.domain.subjects import party_subject
from ledger.keys import encode_public_key, key_id
from ledger.log.checkpoints import Notary
from ledger.log.verify import verify_ledger
from ledger.timeutil import format_utc, now_utc
from tests.support.tamper import EVENTS, execute, new_key, positions, state_of
from tests.support.world import World


def add_key(world: World, party: str, seed: str = "second key") -> None:
    world.add_key(party, new_key(party, seed))


@pytest.fixture
def built(world: World) -> World:
    """Twelve events: six admissions, three key additions, a revocation, a checkpoint of
    those ten, then one more key addition and one more admission."""
    for party in ("contoso-cmo", "helios-tx", "northwind-bio"):
        add_key(world, party)
    world["helios-tx"].submit(
        world.ledger,
        "KeyRevoked",
        party_subject("helios-tx"),
        {"key": key_id(new_key("helios-tx", "second key").verify_key)},
        meaning="revoked",
        reason="laptop lost",
    )
    Notary(world.ledger, world.notary.key).checkpoint_now()
    add_key(world, "qa-auditor-llc")
    world.admit("gamma-cmo", "Gamma Biologics s.r.o.", "cmo")
    return world


def run_verify(ledger: Ledger) -> tuple[int, list[str]]:
    app = typer.Typer()
    register(app)
    # Settings refuse unknown CMO_LEDGER_* variables, such as the test suite's own.
    env: dict[str, str | None] = {name: None for name in os.environ if name.startswith("CMO_")}
    result = CliRunner().invoke(
        app, ["verify", "--database", ledger.settings.database_url], env=env
    )
    return result.exit_code, result.output.splitlines()


def named(lines: list[str], position: int) -> bool:
    return any(re.match(rf"position {position} \(leaf \d+\): ", line) for line in lines)


def test_a_clean_ledger_verifies(built: World) -> None:
    code, lines = run_verify(built.ledger)
    assert code == 0, lines
    assert lines == ["OK: 12 events, 1 checkpoint verified"]


def test_text_beyond_ascii_verifies(built: World) -> None:
    built.admit("ueberlingen-pharma", "Überlingen Pharma AG, Zürich", "sponsor")
    built.admit("lab-emoji", "Laboratoire \U0001f9ea Genève", "auditor")  # beyond the BMP
    Notary(built.ledger, built.notary.key).checkpoint_now()
    report = verify_ledger(built.ledger)
    assert report.ok, report.problems
    assert (report.events, report.checkpoints) == (14, 2)


def test_one_changed_byte_of_a_state_is_found(built: World) -> None:
    target = positions(built.ledger)[1]
    state = bytearray(state_of(built.ledger, target))
    state[state.index(b"Helios") + 5] = ord("z")  # Helios -> Helioz
    execute(built.ledger, f"UPDATE {EVENTS} SET state = :s WHERE id = :p", s=bytes(state), p=target)
    code, lines = run_verify(built.ledger)
    assert code == 1
    assert named(lines, target)
    assert any("signature does not verify" in line for line in lines)


def test_a_changed_topic_is_found(built: World) -> None:
    target = positions(built.ledger)[6]  # contoso's KeyAdded
    execute(
        built.ledger, f"UPDATE {EVENTS} SET topic = 'cmo.KeyRevoked.v1' WHERE id = :p", p=target
    )
    code, lines = run_verify(built.ledger)
    assert code == 1
    assert named(lines, target)
    assert any("is not the topic of KeyAdded" in line for line in lines)


def test_a_changed_version_is_found(built: World) -> None:
    target = positions(built.ledger)[-2]  # the last event of qa-auditor-llc
    execute(
        built.ledger,
        f"UPDATE {EVENTS} SET originator_version = originator_version + 1 WHERE id = :p",
        p=target,
    )
    code, lines = run_verify(built.ledger)
    assert code == 1
    assert named(lines, target)


def test_a_deleted_row_is_found(built: World) -> None:
    target = positions(built.ledger)[2]
    execute(built.ledger, f"DELETE FROM {EVENTS} WHERE id = :p", p=target)
    code, lines = run_verify(built.ledger)
    assert code == 1
    assert named(lines, target)
    assert any("checkpoint 10" in line for line in lines)


def swap(ledger: Ledger, first: int, second: int) -> None:
    execute(ledger, f"UPDATE {EVENTS} SET id = :t WHERE id = :a", t=-first, a=first)
    execute(ledger, f"UPDATE {EVENTS} SET id = :a WHERE id = :b", a=first, b=second)
    execute(ledger, f"UPDATE {EVENTS} SET id = :b WHERE id = :t", b=second, t=-first)


def test_two_swapped_rows_are_found(built: World) -> None:
    first, second = positions(built.ledger)[1], positions(built.ledger)[4]
    swap(built.ledger, first, second)
    code, lines = run_verify(built.ledger)
    assert code == 1
    assert named(lines, first) and named(lines, second)


def test_a_row_signed_by_a_valid_key_but_inserted_behind_the_ledger_is_found(
    built: World,
) -> None:
    ledger = built.ledger
    party = "fabrikam-cmo"  # no later events: the forged event chains correctly
    envelope, signature = built[party].prepare(
        ledger,
        "KeyAdded",
        party_subject(party),
        {"public_key": encode_public_key(new_key(party, "forged")), "purpose": "party"},
        meaning="authored",
    )
    document = json.loads(state_of(ledger, positions(ledger)[0]))
    document.update(envelope=envelope, signature=signature, recorded_at=format_utc(now_utc()))
    target = positions(ledger)[5]
    # Make room at the target position, then insert the forged row there.
    execute(ledger, f"UPDATE {EVENTS} SET id = -id WHERE id >= :p", p=target)
    execute(ledger, f"UPDATE {EVENTS} SET id = 1 - id WHERE id < 0")
    table = ledger.storage.events_table
    with ledger.engine.begin() as conn:
        conn.execute(
            table.insert().values(
                id=target,
                originator_id=party_subject(party),
                originator_version=envelope["version"],
                topic="cmo.KeyAdded.v1",
                state=json.dumps(document, separators=(",", ":")).encode(),
            )
        )
    code, lines = run_verify(ledger)
    assert code == 1
    assert named(lines, target)


def test_a_tampered_tree_node_is_found(built: World) -> None:
    execute(
        built.ledger, "UPDATE merkle_nodes SET hash = :h WHERE level = 2 AND idx = 1", h=bytes(32)
    )
    code, lines = run_verify(built.ledger)
    assert code == 1
    assert any("stored tree nodes differ" in line for line in lines)


def test_workers_find_what_one_process_finds(built: World) -> None:
    ledger = built.ledger
    swap(ledger, positions(ledger)[3], positions(ledger)[8])
    alone = verify_ledger(ledger, workers=1, chunk_size=3)
    together = verify_ledger(ledger, workers=2, chunk_size=3)
    assert together == alone
    assert not alone.ok


def test_events_signed_under_a_compromised_key_are_reported_with_exit_status_2(
    built: World,
) -> None:
    ledger = built.ledger
    contoso = built["contoso-cmo"]
    # The notary revokes contoso's first key, compromised since before it signed KeyAdded.
    built.notary.submit(
        ledger,
        "KeyRevoked",
        party_subject("contoso-cmo"),
        {
            "key": contoso.key_id,
            "compromised_since": format_utc(now_utc() - timedelta(hours=1)),
        },
        meaning="revoked",
        reason="key found on a public file share",
    )
    report = verify_ledger(ledger)
    assert report.ok
    flagged = [p.position for p in report.compromised]
    assert flagged == [positions(ledger)[6]]  # contoso's KeyAdded, signed with that key
    assert report.exit_status == 2
    code, lines = run_verify(ledger)
    assert code == 2
    assert any("signed under a compromised key: key" in line for line in lines)
    assert lines[-1].startswith("COMPROMISED:")
