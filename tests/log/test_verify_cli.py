"""The log's commands end to end, each in its own process, as an operator or auditor runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from ledger.keystore import create_keystore, kdf_limits_from_env
from tests.support.world import ORIGIN, World

CLI = [sys.executable, "-m", "clients.cli.log"]
PASSPHRASE = "correct horse battery staple"


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def cli_env(world: World, tmp_path: Path) -> dict[str, str]:
    """The world's ledger, with the notary's keystore where the CLI looks for it."""
    settings = world.ledger.settings
    opslimit, memlimit = kdf_limits_from_env({"CMO_LEDGER_KDF_PROFILE": "min"})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    create_keystore(
        settings.notary_keystore,
        "notary",
        PASSPHRASE,
        signing_key=world.notary.key,
        opslimit=opslimit,
        memlimit=memlimit,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMO_LEDGER_")}
    env.update(
        CMO_LEDGER_DATABASE_URL=settings.database_url,
        CMO_LEDGER_DATA_DIR=str(settings.data_dir),
        CMO_LEDGER_PASSPHRASE=PASSPHRASE,
    )
    return env


def test_sign_prove_and_verify_a_leaf_offline(cli_env: dict[str, str], tmp_path: Path) -> None:
    assert run(["checkpoint"], cli_env).returncode == 1  # nothing signed yet
    signed = run(["checkpoint", "--sign"], cli_env)
    assert signed.returncode == 0, signed.stderr
    assert signed.stdout.startswith(f"{ORIGIN}\n6\n")
    vkey = run(["checkpoint", "--vkey"], cli_env).stdout.strip()
    assert vkey.startswith(f"{ORIGIN}+")
    (tmp_path / "notary.vkey").write_text(vkey + "\n")

    proof = run(["proof", "--leaf", "2", "--leaf-bytes-out", str(tmp_path / "leaf")], cli_env)
    assert proof.returncode == 0, proof.stderr
    assert proof.stdout.startswith("c2sp.org/tlog-proof@v1\nindex 2\n")
    assert proof.stdout.endswith(signed.stdout)
    (tmp_path / "proof").write_text(proof.stdout)

    # No database: the auditor's machine has only the three files.
    offline = {**cli_env, "CMO_LEDGER_DATABASE_URL": "sqlite:////nonexistent/ledger.db"}
    args = ["verify-proof", str(tmp_path / "proof"), "--vkey", str(tmp_path / "notary.vkey")]
    checked = run([*args, "--leaf-bytes", str(tmp_path / "leaf")], offline)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"OK: leaf 2 is in {ORIGIN} at size 6"

    (tmp_path / "other").write_bytes((tmp_path / "leaf").read_bytes().replace(b"c", b"C", 1))
    wrong = run([*args, "--leaf-bytes", str(tmp_path / "other")], offline)
    assert wrong.returncode == 1
    assert "does not match the checkpoint" in wrong.stderr


def test_verify_exits_0_on_a_clean_ledger_and_1_naming_the_position_after_tampering(
    cli_env: dict[str, str], world: World
) -> None:
    assert run(["checkpoint", "--sign"], cli_env).returncode == 0
    clean = run(["verify"], cli_env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.strip() == "OK: 6 events, 1 checkpoint verified"

    third = world.ledger.read(0, 3)[-1].position
    with world.ledger.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM ledger_events WHERE id = :p"), {"p": third})
    # --database wins over the environment.
    elsewhere = {**cli_env, "CMO_LEDGER_DATABASE_URL": "sqlite:////nonexistent/ledger.db"}
    broken = run(["verify", "--database", cli_env["CMO_LEDGER_DATABASE_URL"]], elsewhere)
    assert broken.returncode == 1
    assert f"position {third} (leaf 2): " in broken.stdout
    assert broken.stdout.splitlines()[-1].startswith("FAILED: ")
