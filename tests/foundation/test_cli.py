"""`cmo-ledger init` and `keygen`, run as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.application import Ledger
from ledger.config import Settings
from ledger.keystore import load_keystore

CLI = [sys.executable, "-c", "from clients.cli import main; main()"]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMO_LEDGER_")}
    env.update(
        CMO_LEDGER_DATABASE_URL=database_url,
        CMO_LEDGER_DATA_DIR=str(tmp_path / "data"),
        CMO_LEDGER_PASSPHRASE="correct horse battery staple",
        CMO_LEDGER_KDF_PROFILE="min",
    )
    return env


def test_init_creates_a_ledger_and_prints_the_notary_key(cli_env: dict[str, str]) -> None:
    result = run(["init", "--origin", "ledger.example.com/cmo"], cli_env)
    assert result.returncode == 0, result.stderr
    public_key = result.stdout.split("notary public key: ")[1].split()[0]
    settings = Settings.from_env(cli_env)
    ledger = Ledger.open(settings)
    try:
        assert ledger.identity.origin == "ledger.example.com/cmo"
        assert ledger.identity.notary_public_key == public_key
    finally:
        ledger.close()
    keystore, _ = load_keystore(settings.notary_keystore, cli_env["CMO_LEDGER_PASSPHRASE"])
    assert keystore.public_key == public_key


def test_init_refuses_to_overwrite_an_existing_ledger(cli_env: dict[str, str]) -> None:
    assert run(["init", "--origin", "ledger.example.com/cmo"], cli_env).returncode == 0
    again = run(["init", "--origin", "ledger.example.com/other"], cli_env)
    assert again.returncode == 1
    assert "refusing to overwrite" in again.stderr
    # Even with the keystore gone, the database itself is protected.
    (Path(cli_env["CMO_LEDGER_DATA_DIR"]) / "notary.key").unlink()
    third = run(["init", "--origin", "ledger.example.com/other"], cli_env)
    assert third.returncode == 1
    assert "refusing to overwrite" in third.stderr


def test_keygen_writes_an_encrypted_keystore_and_prints_the_public_key(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "contoso.key"
    result = run(["keygen", "--party", "contoso-cmo", "--out", str(out)], cli_env)
    assert result.returncode == 0, result.stderr
    assert "ed25519:" in result.stdout
    assert out.stat().st_mode & 0o777 == 0o600
    assert "seed" not in out.read_text() and "private" not in out.read_text()
    keystore, _signing_key = load_keystore(out, cli_env["CMO_LEDGER_PASSPHRASE"])
    assert keystore.party == "contoso-cmo"
    assert keystore.public_key in result.stdout


def test_keygen_refuses_to_overwrite_a_keystore(cli_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "contoso.key"
    assert run(["keygen", "--party", "contoso-cmo", "--out", str(out)], cli_env).returncode == 0
    before = out.read_bytes()
    again = run(["keygen", "--party", "contoso-cmo", "--out", str(out)], cli_env)
    assert again.returncode == 1
    assert out.read_bytes() == before


def test_a_wrong_passphrase_is_refused(cli_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "contoso.key"
    assert run(["keygen", "--party", "contoso-cmo", "--out", str(out)], cli_env).returncode == 0
    wrong = dict(cli_env, CMO_LEDGER_PASSPHRASE="wrong")
    result = run(["whoami", "--key", str(out)], wrong)
    assert result.returncode == 1
    assert "VALIDATION_FAILED" in result.stderr and "passphrase" in result.stderr
    right = run(["whoami", "--key", str(out)], cli_env)
    assert right.returncode == 0, right.stderr
    assert "contoso-cmo" in right.stdout


def test_without_a_terminal_or_passphrase_the_cli_says_what_to_set(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {k: v for k, v in cli_env.items() if k != "CMO_LEDGER_PASSPHRASE"}
    result = run(["keygen", "--party", "contoso-cmo", "--out", str(tmp_path / "k.key")], env)
    assert result.returncode == 1
    assert "CMO_LEDGER_PASSPHRASE" in result.stderr
