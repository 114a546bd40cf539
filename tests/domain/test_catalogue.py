"""The event catalogue: every type documented, every meaning controlled (Part 11 §11.50)."""

from __future__ import annotations

from pathlib import Path

import ledger.domain.registry  # noqa: F401  (registers every event type)
from ledger.domain.catalogue import catalogue_markdown, registered_types

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_docs_events_md_is_the_generated_catalogue() -> None:
    assert DOCS.read_text(encoding="utf-8") == catalogue_markdown(), (
        "docs/events.md is stale: run `python -m ledger.domain.registry > docs/events.md`"
    )


def test_every_event_type_names_its_signers_meanings_and_purpose() -> None:
    specs = list(registered_types())
    assert len(specs) >= 25
    for spec in specs:
        assert spec.meanings and spec.signers and spec.description, spec.type
        topic = getattr(spec.aggregate, spec.type).TOPIC
        assert topic == f"cmo.{spec.type}.v1"
