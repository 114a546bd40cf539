"""Settings come from CMO_LEDGER_* variables and fail early, naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.config import DEFAULT_DATABASE_URL, Settings
from ledger.errors import ConfigurationError


def test_defaults_point_at_an_embedded_sqlite_ledger() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.sqlite_path() == Path("./.cmo-ledger/ledger.db")
    assert settings.eventsourcing_env()["PERSISTENCE_MODULE"] == "ledger.log.storage:LedgerFactory"


def test_postgres_urls_select_the_psycopg_driver() -> None:
    settings = Settings.from_env({"CMO_LEDGER_DATABASE_URL": "postgresql://u@h/db"})
    assert settings.is_postgres
    assert settings.eventsourcing_env()["SQLALCHEMY_URL"] == "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CMO_LEDGER_DATABASE_URL", "mysql://x"),
        ("CMO_LEDGER_DATABASE_URL", "sqlite:///:memory:"),
        ("CMO_LEDGER_CHECKPOINT_INTERVAL", "soon"),
        ("CMO_LEDGER_MAX_BATCH", "0"),
        ("CMO_LEDGER_KDF_PROFILE", "fast"),
        ("CMO_LEDGER_DATABSE_URL", "sqlite:///x.db"),
    ],
)
def test_a_bad_setting_fails_early_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({name: value})
    assert caught.value.field == name
