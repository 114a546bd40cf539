"""One typed definition per event type's payload: its JSON Schema, the catalogue in
``docs/events.md`` and the command path's first check all come from it, and agree."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import httpx2
import pytest

import ledger.domain.registry  # noqa: F401  (registers every event type)
from ledger.domain.catalogue import registered_types
from ledger.domain.payloads import PAYLOADS, decode_payload, members, schema_bytes
from ledger.errors import ValidationFailed
from tests.conftest import BACKENDS
from tests.support.data_server import Served, shared_data_server

ROOT = Path(__file__).resolve().parents[2]
TYPES = [spec.type for spec in registered_types()]


def test_every_event_type_has_a_payload_definition_and_no_other() -> None:
    assert TYPES, "no event type is registered"
    assert sorted(PAYLOADS) == sorted(TYPES)


@pytest.mark.parametrize("event_type", TYPES)
def test_the_committed_json_schema_is_the_generated_one(event_type: str) -> None:
    committed = ROOT / "docs" / "schema" / f"{event_type}.json"
    assert committed.read_bytes() == schema_bytes(event_type), (
        "docs/schema is stale: run `python -m ledger.domain.payloads docs/schema`"
    )


@pytest.mark.parametrize("event_type", TYPES)
def test_docs_events_md_lists_exactly_the_payload_s_members(event_type: str) -> None:
    rows = (ROOT / "docs" / "events.md").read_text("utf-8").splitlines()
    (row,) = [line for line in rows if line.startswith(f"| `{event_type}` |")]
    listed = row.split(" | ")[5]
    assert listed == (", ".join(f"`{name}`" for name in members(event_type)) or "-")


@pytest.mark.parametrize("event_type", TYPES)
def test_an_unknown_member_is_refused_naming_it(event_type: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        decode_payload(event_type, {"colour": "blue"})
    assert refused.value.field == "payload.colour"


@pytest.mark.parametrize("event_type", TYPES)
def test_a_missing_member_is_refused_naming_it(event_type: str) -> None:
    required = [name for name in members(event_type) if not name.endswith("(optional)")]
    if not required:
        assert decode_payload(event_type, {}) is not None
        return
    with pytest.raises(ValidationFailed) as refused:
        decode_payload(event_type, {})
    assert refused.value.field is not None
    assert refused.value.field.removeprefix("payload.") in required


def test_a_nested_refusal_names_its_path() -> None:
    payload = {
        "submission": "0b4c3f4e-7d4e-4c55-9e57-2c1f0d6b7a11",
        "kind": "continuous",
        "source_system": "historian",
        "schema_version": "1",
        "format": "continuous-csv/v1",
        "series": [{"tag": "BR1.TEMP", "chunks": [{"start": "x", "end": "y", "count": "3"}]}],
    }
    with pytest.raises(ValidationFailed) as refused:
        decode_payload("DataSubmitted", payload)
    assert refused.value.field == "payload.series[0].chunks[0].count"


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest) -> Served:
    return shared_data_server(request, request.param)


@pytest.mark.xdist_group("data_queries")
def test_every_stored_payload_of_a_realistic_world_decodes(served: Served) -> None:
    seen: Counter[str] = Counter()
    for recorded in served.data.world.ledger.iter_log():
        envelope = recorded.event.envelope
        decode_payload(str(envelope["type"]), envelope["payload"])
        seen[str(envelope["type"])] += 1
    assert len(seen) >= 15, seen


@pytest.mark.xdist_group("data_queries")
def test_the_api_serves_each_committed_schema(served: Served) -> None:
    with httpx2.Client(base_url=served.server.url) as client:
        index = client.get("/schema/").json()["event_types"]
        assert sorted(index) == sorted(f"/schema/{name}.json" for name in TYPES)
        for event_type in ("BatchRegistered", "DataSubmitted", "AccessGranted"):
            response = client.get(f"/schema/{event_type}.json")
            assert response.status_code == 200
            assert response.content == (ROOT / "docs/schema" / f"{event_type}.json").read_bytes()
        missing = client.get("/schema/BatchExploded.json")
    assert missing.status_code == 404
    assert json.loads(missing.content)["errors"][0]["extensions"]["field"] == "event_type"
