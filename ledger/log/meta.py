"""The ledger's identity, kept in its own database: origin and notary public key.

Written once by ``cmo-ledger init``; every process reads it on start.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Column, MetaData, String, Table, Text, select
from sqlalchemy.engine import Engine

from ledger.errors import ConfigurationError
from ledger.keys import decode_public_key, key_id

__all__ = ["LedgerIdentity", "meta_table", "read_identity", "write_identity"]

metadata = MetaData()
meta_table = Table(
    "cmo_ledger_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


@dataclass(frozen=True, slots=True)
class LedgerIdentity:
    """Who this ledger is: its origin string and its notary's public key."""

    origin: str
    notary_public_key: str
    created_at: str

    @property
    def notary_key_id(self) -> str:
        """Key id of the notary key (see ``ledger.keys``)."""
        return _key_id_of(self.notary_public_key)


@lru_cache(maxsize=16)
def _key_id_of(public_key: str) -> str:
    # A notary envelope compares its key with this on every append.
    return key_id(decode_public_key(public_key))


def read_identity(engine: Engine) -> LedgerIdentity | None:
    """The identity, or ``None`` for a database that was never initialised."""
    metadata.create_all(engine, checkfirst=True)
    with engine.connect() as conn:
        rows = {
            name: value
            for name, value in conn.execute(select(meta_table.c.name, meta_table.c.value))
        }
    if "origin" not in rows:
        return None
    return LedgerIdentity(rows["origin"], rows["notary_public_key"], rows["created_at"])


def write_identity(engine: Engine, identity: LedgerIdentity) -> None:
    """Record the identity; refuse when the database already holds a ledger."""
    metadata.create_all(engine, checkfirst=True)
    with engine.begin() as conn:
        existing = conn.execute(select(meta_table.c.value).where(meta_table.c.name == "origin"))
        if existing.first() is not None:
            raise ConfigurationError(
                "this database already holds a ledger; refusing to overwrite it",
                field="CMO_LEDGER_DATABASE_URL",
            )
        conn.execute(
            meta_table.insert(),
            [
                {"name": "origin", "value": identity.origin},
                {"name": "notary_public_key", "value": identity.notary_public_key},
                {"name": "created_at", "value": identity.created_at},
            ],
        )
