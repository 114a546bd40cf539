"""Every event type of the domain, registered: importing this module imports each aggregate
module, whose :class:`~ledger.domain.catalogue.EventSpec` registrations fill the catalogue.

``python -m ledger.domain.registry`` prints the catalogue (``docs/events.md``).
"""

from __future__ import annotations

import ledger.domain.agreements
import ledger.domain.baselines
import ledger.domain.batches
import ledger.domain.capa
import ledger.domain.changes
import ledger.domain.disposition
import ledger.domain.enhancements
import ledger.domain.grants
import ledger.domain.parameters
import ledger.domain.parties
import ledger.domain.persons
import ledger.domain.reads
import ledger.domain.reviews
import ledger.domain.security
import ledger.domain.verification  # noqa: F401  (ruff flags only the last of these submodule imports)
from ledger.domain.catalogue import catalogue_markdown, registered_types

__all__ = ["catalogue_markdown", "registered_types"]

if __name__ == "__main__":
    print(catalogue_markdown(), end="")
