"""Changing a stored log behind the ledger's back, as the tamper tests do."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from nacl.signing import SigningKey

from ledger.application import Ledger

EVENTS = "ledger_events"


def new_key(party: str, seed: str) -> SigningKey:
    """A signing key of ``party``, the same for the same ``seed``."""
    return SigningKey(hashlib.sha256(f"{party} {seed}".encode()).digest())


def positions(ledger: Ledger) -> list[int]:
    return [recorded.position for recorded in ledger.iter_log()]


def execute(ledger: Ledger, sql: str, **params: object) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def state_of(ledger: Ledger, position: int) -> bytes:
    with ledger.engine.connect() as conn:
        value = conn.execute(
            sa.text(f"SELECT state FROM {EVENTS} WHERE id = :p"), {"p": position}
        ).scalar_one()
    return bytes(value)
