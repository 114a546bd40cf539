"""Settings: one object, read once from the ``CMO_LEDGER_*`` environment variables.

====================================  ==========================================  ===========
variable                              meaning                                     default
====================================  ==========================================  ===========
``CMO_LEDGER_DATABASE_URL``           SQLAlchemy URL of the ledger database       ``sqlite:///./.cmo-ledger/ledger.db``
``CMO_LEDGER_DATA_DIR``               keystores and generated secrets             ``./.cmo-ledger``
``CMO_LEDGER_PASSPHRASE``             passphrase for keystores (else prompt)      unset
``CMO_LEDGER_URL``                    the server the command line talks to        ``http://127.0.0.1:8000``
``CMO_LEDGER_KEY``                    the command line's party keystore file      unset
``CMO_LEDGER_CHECKPOINT_INTERVAL``    seconds before new events are checkpointed  ``1.0``
``CMO_LEDGER_MAX_ENVELOPE_BYTES``     largest accepted envelope, in bytes         ``33554432``
``CMO_LEDGER_MAX_BATCH``              most envelopes in one ``submitEvents``      ``1000``
``CMO_LEDGER_MAX_CLOCK_SKEW``         seconds ``signed_at`` may lead the server   ``300``
``CMO_LEDGER_MAX_SIGNATURE_AGE``      seconds ``signed_at`` may lag the server    ``86400``
``CMO_LEDGER_KDF_PROFILE``            argon2id cost: moderate, interactive, min   ``moderate``
``CMO_LEDGER_MAX_QUERY_DEPTH``        nesting depth of a GraphQL operation        ``10``
``CMO_LEDGER_MAX_ALIASES``            aliases in one GraphQL document             ``15``
``CMO_LEDGER_MAX_TOKENS``             lexical tokens in one GraphQL document      ``2000``
``CMO_LEDGER_MAX_PAGE_SIZE``          items one list field returns                ``500``
``CMO_LEDGER_MAX_BODY_BYTES``         HTTP request body, in bytes                 ``67108864``
``CMO_LEDGER_MAX_SUBSCRIPTIONS``      operations running on one websocket         ``10``
``CMO_LEDGER_REQUEST_MAX_AGE``        seconds a request signature stays fresh     ``300``
``CMO_LEDGER_MAX_QUERY_COST``         estimated cost of one GraphQL operation     ``50000``
``CMO_LEDGER_ASSUMED_LIST_SIZE``      items a list counts in that estimate        ``25``
``CMO_LEDGER_QUERY_TIME_BUDGET``      seconds one operation may run               ``30``
``CMO_LEDGER_SESSION_IDLE``           seconds a console session may sit unused    ``900``
``CMO_LEDGER_SESSION_LIFETIME``       seconds a console session lasts at most     ``28800``
``CMO_LEDGER_TLS_CERT``               server certificate (PEM) for HTTPS          unset
``CMO_LEDGER_TLS_KEY``                its private key (PEM); both or neither      unset
``CMO_LEDGER_CA_FILE``                CA bundle (PEM) clients verify it against   system CAs
``CMO_LEDGER_LOCKOUT_THRESHOLD``      failed sign-ins of one identity to lock it  ``10``
``CMO_LEDGER_LOCKOUT_WINDOW``         seconds those failures are counted over     ``300``
``CMO_LEDGER_LOCKOUT_COOLDOWN``       seconds a locked identity stays locked      ``900``
``CMO_LEDGER_MAX_KEY_LIFETIME_DAYS``  latest expiry a new key may ask for, days   ``730``
``CMO_LEDGER_READ_LOG_INTERVAL``      seconds between read-log commitments        ``10``
====================================  ==========================================  ===========

A bad value fails at start-up with ``ConfigurationError`` naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from ledger.domain.key_history import DEFAULT_KEY_LIFETIME
from ledger.errors import ConfigurationError

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_SERVER_URL",
    "KDF_PROFILES",
    "NOTARY_KEYSTORE",
    "PREFIX",
    "Settings",
    "existing_file",
    "tls_pair",
]

PREFIX = "CMO_LEDGER_"
DEFAULT_DATABASE_URL = "sqlite:///./.cmo-ledger/ledger.db"
DEFAULT_SERVER_URL = "http://127.0.0.1:8000"
NOTARY_KEYSTORE = "notary.key"
"""The notary's keystore file, in the data directory."""
KDF_PROFILES = ("moderate", "interactive", "min")
"""argon2id cost profiles of new keystores (:mod:`ledger.keystore` maps each to its limits)."""
_T = TypeVar("_T")
_SCHEMES = ("sqlite:///", "postgresql+psycopg://", "postgresql://")


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated configuration of one ledger process."""

    database_url: str = DEFAULT_DATABASE_URL
    data_dir: Path = Path(".cmo-ledger")
    passphrase: str | None = None
    url: str = DEFAULT_SERVER_URL
    key: Path | None = None
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
    max_query_cost: int = 50_000
    assumed_list_size: int = 25
    query_time_budget: float = 30.0
    session_idle: float = 900.0
    session_lifetime: float = 28800.0
    tls_cert: Path | None = None
    tls_key: Path | None = None
    ca_file: Path | None = None
    lockout_threshold: int = 10
    lockout_window: float = 300.0
    lockout_cooldown: float = 900.0
    max_key_lifetime_days: int = DEFAULT_KEY_LIFETIME.days
    read_log_interval: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``CMO_LEDGER_*`` variables; unknown ones are refused to catch typos.

        A variable left unset takes the field's default: each default is written once,
        on the field above.
        """
        env = os.environ if environ is None else environ
        known = {PREFIX + name.upper() for name in cls.__dataclass_fields__}
        for name in env:
            if name.startswith(PREFIX) and name not in known:
                raise ConfigurationError("unknown setting (check the spelling)", field=name)
        default = _Defaults(cls)
        tls_cert, tls_key = tls_pair(
            _existing_file(env, "TLS_CERT"), _existing_file(env, "TLS_KEY")
        )
        return cls(
            database_url=_database_url(env.get(PREFIX + "DATABASE_URL") or default.database_url),
            data_dir=Path(env.get(PREFIX + "DATA_DIR") or default.data_dir),
            passphrase=env.get(PREFIX + "PASSPHRASE") or None,
            url=_server_url(env.get(PREFIX + "URL") or default.url),
            key=Path(env[PREFIX + "KEY"]) if env.get(PREFIX + "KEY") else None,
            checkpoint_interval=_number(env, "CHECKPOINT_INTERVAL", default, float, minimum=0.01),
            max_envelope_bytes=_number(env, "MAX_ENVELOPE_BYTES", default, int),
            max_batch=_number(env, "MAX_BATCH", default, int),
            max_clock_skew=_number(env, "MAX_CLOCK_SKEW", default, float, minimum=0.0),
            max_signature_age=_number(env, "MAX_SIGNATURE_AGE", default, float),
            kdf_profile=_choice(env, "KDF_PROFILE", default, KDF_PROFILES),
            max_query_depth=_number(env, "MAX_QUERY_DEPTH", default, int),
            max_aliases=_number(env, "MAX_ALIASES", default, int),
            max_tokens=_number(env, "MAX_TOKENS", default, int),
            max_page_size=_number(env, "MAX_PAGE_SIZE", default, int),
            max_body_bytes=_number(env, "MAX_BODY_BYTES", default, int),
            max_subscriptions=_number(env, "MAX_SUBSCRIPTIONS", default, int),
            request_max_age=_number(env, "REQUEST_MAX_AGE", default, float),
            max_query_cost=_number(env, "MAX_QUERY_COST", default, int),
            assumed_list_size=_number(env, "ASSUMED_LIST_SIZE", default, int),
            query_time_budget=_number(env, "QUERY_TIME_BUDGET", default, float),
            session_idle=_number(env, "SESSION_IDLE", default, float),
            session_lifetime=_number(env, "SESSION_LIFETIME", default, float),
            tls_cert=tls_cert,
            tls_key=tls_key,
            ca_file=_existing_file(env, "CA_FILE"),
            lockout_threshold=_number(env, "LOCKOUT_THRESHOLD", default, int),
            lockout_window=_number(env, "LOCKOUT_WINDOW", default, float),
            lockout_cooldown=_number(env, "LOCKOUT_COOLDOWN", default, float),
            max_key_lifetime_days=_number(env, "MAX_KEY_LIFETIME_DAYS", default, int),
            read_log_interval=_number(env, "READ_LOG_INTERVAL", default, float, minimum=0.01),
        )

    @property
    def notary_keystore(self) -> Path:
        """The notary's keystore: ``NOTARY_KEYSTORE`` in the data directory."""
        return self.data_dir / NOTARY_KEYSTORE

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
            "PERSISTENCE_MODULE": "ledger.log.storage:LedgerFactory",
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


def _server_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ConfigurationError(
            "expected the server's http:// or https:// URL, e.g. http://127.0.0.1:8000",
            field=PREFIX + "URL",
        )
    return value


def _existing_file(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(PREFIX + name)
    if not raw:
        return None
    return existing_file(Path(raw), PREFIX + name)


def existing_file(path: Path, field: str) -> Path:
    """``path`` when it is a readable file, else ``ConfigurationError`` naming ``field``."""
    if not path.is_file():
        raise ConfigurationError(f"no such file: {path}", field=field)
    return path


def tls_pair(
    cert: Path | None,
    key: Path | None,
    cert_field: str = PREFIX + "TLS_CERT",
    key_field: str = PREFIX + "TLS_KEY",
) -> tuple[Path | None, Path | None]:
    """A server certificate and its key: both or neither, refused naming the missing one."""
    if cert is not None and key is None:
        raise ConfigurationError(
            f"a certificate needs its private key: set {key_field}", field=key_field
        )
    if key is not None and cert is None:
        raise ConfigurationError(
            f"a private key needs its certificate: set {cert_field}", field=cert_field
        )
    return cert, key


class _Defaults:
    """The dataclass defaults of :class:`Settings`, by field name."""

    def __init__(self, settings: type[Settings]) -> None:
        self._fields = settings.__dataclass_fields__

    def __getattr__(self, name: str) -> Any:
        return self._fields[name].default

    def of(self, variable: str) -> Any:
        """The default of the field a variable (without the prefix) sets."""
        return self._fields[variable.lower()].default


def _number(
    env: Mapping[str, str],
    name: str,
    defaults: _Defaults,
    kind: Callable[[str], _T],
    *,
    minimum: float = 1,
) -> _T:
    raw = env.get(PREFIX + name)
    if raw is None or raw == "":
        return cast(_T, defaults.of(name))
    try:
        value = kind(raw)
    except ValueError as exc:
        raise ConfigurationError(f"not a number: {raw!r}", field=PREFIX + name) from exc
    if float(value) < minimum:  # type: ignore[arg-type]
        raise ConfigurationError(f"must be at least {minimum}", field=PREFIX + name)
    return value


def _choice(
    env: Mapping[str, str], name: str, defaults: _Defaults, choices: tuple[str, ...]
) -> str:
    value = env.get(PREFIX + name) or str(defaults.of(name))
    if value not in choices:
        raise ConfigurationError(f"expected one of {', '.join(choices)}", field=PREFIX + name)
    return value
