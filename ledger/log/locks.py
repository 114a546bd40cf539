"""PostgreSQL advisory locks, one key per ledger and purpose.

Advisory locks belong to the database, not to a schema: two ledgers in two schemas of one
database (a test run's workers, a staging copy beside production) would wait on each
other's locks if keys were made of the purpose alone. A key is therefore made of the
schema the engine works in (``current_schema()``, asked once per engine) and the purpose.
SQLite needs none of this: its transactions hold the database's write lock.
"""

from __future__ import annotations

import hashlib
import threading
import weakref

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

__all__ = ["lock_key", "xact_lock"]

_schemas: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()
_guard = threading.Lock()


def lock_key(engine: Engine, purpose: str) -> int:
    """The advisory lock key of ``purpose`` for the ledger ``engine`` works in."""
    return int.from_bytes(
        hashlib.sha256(f"{_schema(engine)}/{purpose}".encode()).digest()[:8], "big", signed=True
    )


def xact_lock(session: Session | Connection, keys: list[int]) -> None:
    """Take the transaction-scoped locks ``keys``, in the order given, in one statement."""
    calls = ", ".join(f"pg_advisory_xact_lock(:k{i})" for i in range(len(keys)))
    session.execute(text(f"SELECT {calls}"), {f"k{i}": key for i, key in enumerate(keys)})


def _schema(engine: Engine) -> str:
    if engine.dialect.name != "postgresql":
        return ""
    with _guard:
        found = _schemas.get(engine)
    if found is None:
        with engine.connect() as conn:
            found = str(conn.execute(text("SELECT current_schema()")).scalar_one())
        with _guard:
            _schemas[engine] = found
    return found
