"""Which software wrote an event (R31): the package version and the catalogue's schema version.

Every event the ledger stores records both beside its envelope, in its Merkle leaf
(``written_by``, see :mod:`ledger.log.leaf`): the signer never signs them (a party's
client does not know which server release will record its envelope), yet the notary's
checkpoints commit to them, so changing either after the fact breaks ``verify``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any

__all__ = ["SOFTWARE_VERSION", "WrittenBy", "software_version"]


def software_version() -> str:
    """The installed ``cmo-ledger`` package version (``0+unknown`` when not installed)."""
    try:
        return metadata.version("cmo-ledger")
    except metadata.PackageNotFoundError:
        return "0+unknown"


SOFTWARE_VERSION = software_version()
"""This process's software version, read once."""


@dataclass(frozen=True, slots=True)
class WrittenBy:
    """The software and catalogue schema version that recorded an event."""

    software_version: str
    schema_version: int

    def as_json(self) -> dict[str, Any]:
        """The leaf's ``written_by`` member."""
        return {"schema_version": self.schema_version, "software_version": self.software_version}
