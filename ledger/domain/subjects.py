"""Subject ids derived from names, so a client addresses a party, person, batch or parameter
by name.

Each is a UUID version 5 in a namespace of its own. The module is light (standard library
only): clients compute subjects without the ledger's aggregates or its database stack.
A subject is derived once per name and remembered: the append path derives the same few
(the signer's party, the parameters a result names) for every envelope.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from uuid import UUID

__all__ = [
    "BASELINE_NAMESPACE",
    "BATCH_NAMESPACE",
    "CAPA_NAMESPACE",
    "CHANGE_NAMESPACE",
    "PARAMETER_NAMESPACE",
    "PARTY_NAMESPACE",
    "PERSON_NAMESPACE",
    "baseline_subject",
    "batch_subject",
    "capa_subject",
    "change_subject",
    "parameter_subject",
    "party_subject",
    "person_subject",
]

PARTY_NAMESPACE = uuid.UUID("0b7d1f5e-4c0a-4a55-9a53-6f0c2f3e8d21")
BATCH_NAMESPACE = uuid.UUID("aa007c5a-1227-4c7a-9a07-0033465d20ff")
PARAMETER_NAMESPACE = uuid.UUID("b6e8d4f6-6f91-4e60-8e67-baa2ae61f79e")
BASELINE_NAMESPACE = uuid.UUID("5c1d3f0e-8a27-4b6e-9f43-2d7e0c9b6a15")
PERSON_NAMESPACE = uuid.UUID("3f6a2c84-91d7-4e0b-b5a9-7c2e18d46f03")
CHANGE_NAMESPACE = uuid.UUID("9e4a6c21-3b7d-4f08-a5e2-71c0d8b94f36")
CAPA_NAMESPACE = uuid.UUID("d2f85b17-60ce-4a93-8b1f-4e7a93c05d68")


@lru_cache(maxsize=8192)
def _derived(namespace: UUID, name: str) -> UUID:
    return uuid.uuid5(namespace, name)


@lru_cache(maxsize=1024)
def _uuid_text(value: UUID | str) -> str:
    """The lowercase hyphenated form of a UUID given as a UUID or any form of its text."""
    return str(UUID(str(value)))


def party_subject(party_id: str) -> UUID:
    """The subject id of a party: ``uuid5(PARTY_NAMESPACE, party_id)``."""
    return _derived(PARTY_NAMESPACE, party_id)


def person_subject(party_id: str, person_id: str) -> UUID:
    """The subject id of a person of a party: ``uuid5(PERSON_NAMESPACE,
    f"{party_id}/{person_id}")``; neither id holds a ``/``, so the text names one pair."""
    return _derived(PERSON_NAMESPACE, f"{party_id}/{person_id}")


def batch_subject(batch_id: str) -> UUID:
    """The subject id of a batch: ``uuid5(BATCH_NAMESPACE, batch_id)``."""
    return _derived(BATCH_NAMESPACE, batch_id)


def parameter_subject(agreement_id: UUID | str, name: str) -> UUID:
    """The subject id of a parameter: ``uuid5(PARAMETER_NAMESPACE, f"{agreement_id}/{name}")``."""
    return _derived(PARAMETER_NAMESPACE, f"{_uuid_text(agreement_id)}/{name}")


def baseline_subject(agreement_id: UUID | str, parameter: str, name: str) -> UUID:
    """The subject id of a CPV baseline: ``uuid5(BASELINE_NAMESPACE,
    f"{agreement_id}/{parameter}/{name}")``; a baseline name holds no ``/``, so the text
    names one (parameter, baseline) pair."""
    return _derived(BASELINE_NAMESPACE, f"{_uuid_text(agreement_id)}/{parameter}/{name}")


def change_subject(agreement_id: UUID | str, change: str) -> UUID:
    """The subject id of a change proposal: ``uuid5(CHANGE_NAMESPACE, f"{agreement_id}/{change}")``;
    one change id names one change of an agreement, never a second."""
    return _derived(CHANGE_NAMESPACE, f"{_uuid_text(agreement_id)}/{change}")


def capa_subject(agreement_id: UUID | str, capa: str) -> UUID:
    """The subject id of a CAPA: ``uuid5(CAPA_NAMESPACE, f"{agreement_id}/{capa}")``."""
    return _derived(CAPA_NAMESPACE, f"{_uuid_text(agreement_id)}/{capa}")
