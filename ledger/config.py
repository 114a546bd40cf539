"""Settings: one object, read once from the ``CMO_LEDGER_*`` environment variables.

==================================  ==========================================  ===========
variable                            meaning                                     default
==================================  ==========================================  ===========
``CMO_LEDGER_DATABASE_URL``         SQLAlchemy URL of the ledger database       ``sqlite:///./.cmo-ledger/ledger.db``
``CMO_LEDGER_DATA_DIR``             keystores and generated secrets             ``./.cmo-ledger``
``CMO_LEDGER_PASSPHRASE``           passphrase for keystores (else prompt)      unset
``CMO_LEDGER_CHECKPOINT_INTERVAL``  seconds before new events are checkpointed  ``1.0``
``CMO_LEDGER_MAX_ENVELOPE_BYTES``   largest accepted envelope, in bytes         ``33554432``
``CMO_LEDGER_MAX_BATCH``            most envelopes in one ``submitEvents``      ``1000``
``CMO_LEDGER_MAX_CLOCK_SKEW``       seconds ``signed_at`` may lead the server   ``300``
``CMO_LEDGER_MAX_SIGNATURE_AGE``    seconds ``signed_at`` may lag the server    ``86400``
``CMO_LEDGER_KDF_PROFILE``          argon2id cost: moderate, interactive, min   ``moderate``
``CMO_LEDGER_MAX_QUERY_DEPTH``      nesting depth of a GraphQL operation        ``10``
``CMO_LEDGER_MAX_ALIASES``          aliases in one GraphQL document             ``15``
``CMO_LEDGER_MAX_TOKENS``           lexical tokens in one GraphQL document      ``2000``
``CMO_LEDGER_MAX_PAGE_SIZE``        items one list field returns                ``500``
``CMO_LEDGER_MAX_BODY_BYTES``       HTTP request body, in bytes                 ``67108864``
``CMO_LEDGER_MAX_SUBSCRIPTIONS``    operations running on one websocket         ``10``
``CMO_LEDGER_REQUEST_MAX_AGE``      seconds a request signature stays fresh     ``300``
==================================  ==========================================  ===========

A bad value fails at start-up with ``ConfigurationError`` naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ledger.errors import ConfigurationError

__all__ = ["DEFAULT_DATABASE_URL", "PREFIX", "Settings"]

PREFIX = "CMO_LEDGER_"
DEFAULT_DATABASE_URL = "sqlite:///./.cmo-ledger/ledger.db"
_T = TypeVar("_T")
_SCHEMES = ("sqlite:///", "postgresql+psycopg://", "postgresql://")


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated configuration of one ledger process."""

    database_url: str = DEFAULT_DATABASE_URL
    data_dir: Path = Path(".cmo-ledger")
    passphrase: str | None = None
    checkpoint_interval: float = 1.0
    max_envelope_bytes: int = 32 * 1024 * 1024
    max_batch: int = 1000
    max_clock_skew: float = 300.0
    max_signature_age: float = 86400.0
    kdf_profile: str = "moderate"
    max_query_depth: int = 10
    max_aliases: int = 15
    max_tokens: int = 2000
    max_page_size: int = 500
    max_body_bytes: int = 64 * 1024 * 1024
    max_subscriptions: int = 10
    request_max_age: float = 300.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``CMO_LEDGER_*`` variables; unknown ones are refused to catch typos."""
        env = os.environ if environ is None else environ
        known = {PREFIX + name.upper() for name in cls.__dataclass_fields__}
        for name in env:
            if name.startswith(PREFIX) and name not in known:
                raise ConfigurationError("unknown setting (check the spelling)", field=name)
        return cls(
            database_url=_database_url(env.get(PREFIX + "DATABASE_URL", DEFAULT_DATABASE_URL)),
            data_dir=Path(env.get(PREFIX + "DATA_DIR", ".cmo-ledger")),
            passphrase=env.get(PREFIX + "PASSPHRASE") or None,
            checkpoint_interval=_number(env, "CHECKPOINT_INTERVAL", 1.0, float, minimum=0.01),
            max_envelope_bytes=_number(env, "MAX_ENVELOPE_BYTES", 32 * 1024 * 1024, int),
            max_batch=_number(env, "MAX_BATCH", 1000, int),
            max_clock_skew=_number(env, "MAX_CLOCK_SKEW", 300.0, float, minimum=0.0),
            max_signature_age=_number(env, "MAX_SIGNATURE_AGE", 86400.0, float),
            kdf_profile=_choice(env, "KDF_PROFILE", "moderate", ("moderate", "interactive", "min")),
            max_query_depth=_number(env, "MAX_QUERY_DEPTH", 10, int),
            max_aliases=_number(env, "MAX_ALIASES", 15, int),
            max_tokens=_number(env, "MAX_TOKENS", 2000, int),
            max_page_size=_number(env, "MAX_PAGE_SIZE", 500, int),
            max_body_bytes=_number(env, "MAX_BODY_BYTES", 64 * 1024 * 1024, int),
            max_subscriptions=_number(env, "MAX_SUBSCRIPTIONS", 10, int),
            request_max_age=_number(env, "REQUEST_MAX_AGE", 300.0, float),
        )

    @property
    def is_postgres(self) -> bool:
        """True when the ledger lives in PostgreSQL."""
        return self.database_url.startswith("postgresql")

    def eventsourcing_env(self) -> dict[str, str]:
        """The environment mapping for the eventsourcing ``Application``."""
        url = self.database_url
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        return {
            "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
            "SQLALCHEMY_URL": url,
            "AGGREGATE_CACHE_MAXSIZE": "4096",
            "AGGREGATE_CACHE_FASTFORWARD": "y",
        }

    def sqlite_path(self) -> Path | None:
        """The database file for a SQLite URL, else ``None``."""
        if not self.database_url.startswith("sqlite:///"):
            return None
        return Path(self.database_url[len("sqlite:///") :])


def _database_url(value: str) -> str:
    if not value.startswith(_SCHEMES):
        raise ConfigurationError(
            "expected sqlite:///PATH or postgresql+psycopg://USER@HOST/DB",
            field=PREFIX + "DATABASE_URL",
        )
    if value.startswith("sqlite:///") and ":memory:" in value:
        raise ConfigurationError(
            "an in-memory ledger keeps nothing: give a file path", field=PREFIX + "DATABASE_URL"
        )
    return value


def _number(
    env: Mapping[str, str],
    name: str,
    default: _T,
    kind: Callable[[str], _T],
    *,
    minimum: float = 1,
) -> _T:
    raw = env.get(PREFIX + name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError as exc:
        raise ConfigurationError(f"not a number: {raw!r}", field=PREFIX + name) from exc
    if float(value) < minimum:  # type: ignore[arg-type]
        raise ConfigurationError(f"must be at least {minimum}", field=PREFIX + name)
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(PREFIX + name) or default
    if value not in choices:
        raise ConfigurationError(f"expected one of {', '.join(choices)}", field=PREFIX + name)
    return value
