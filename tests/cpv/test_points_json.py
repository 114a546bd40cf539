"""``cpv { pointsJson }``: the points as one JSON value, equal to what the typed ``points``
field answers, and the typed answer unchanged by it; each point's results in record id
order, whatever order they were read in."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from clients.client import CPV
from ledger.application import Ledger
from ledger.config import Settings
from ledger.domain.subjects import baseline_subject
from ledger.evidence.export import TYPED_POINTS
from ledger.timeutil import format_utc, now_utc
from tests.conftest import BACKENDS, fresh_database
from tests.support.agreements import propose_and_sign, sign_retroactively
from tests.support.batches import continuous_series, define_parameter, register_batch, submit_data
from tests.support.server import Server, running_server
from tests.support.world import ORIGIN, World, build_world, notary_actor

pytestmark = pytest.mark.xdist_group("cpv")

NORTHWIND, CONTOSO = "northwind-bio", "contoso-cmo"
PH, TAG = "pH", "BR1.PH"
BATCHES, REPLICATES, BASELINE = 12, 3, 8
SHUFFLED_IDS = ["r9", "r10", "r2", "r1b", "a1", "r1"]
"""Record ids whose order is not their numeric order, submitted in another order by each
batch (lowercase letters and digits: every collation orders them alike)."""
POINTS_JSON = CPV
"""The client's whole analysis: it asks for ``pointsJson``."""
TYPED = CPV.replace("pointsJson", TYPED_POINTS)
"""The same analysis with the typed ``points { ... }``."""


def _baseline(world: World, agreement: str, batches: list[str]) -> None:
    world[CONTOSO].submit(
        world.ledger,
        "BaselineDefined",
        baseline_subject(agreement, PH, "PPQ"),
        {"agreement": agreement, "parameter": PH, "name": "PPQ", "batches": batches},
        meaning="authored",
        reason="process performance qualification campaign",
    )


def _replicates(world: World) -> str:
    """An agreement whose pH batches each hold three results: an X-bar/R chart."""
    rng = random.Random(41)
    agreement = propose_and_sign(world)
    define_parameter(world, agreement, PH)
    names = []
    for number in range(BATCHES):
        name = f"CPV-J-{number:03d}"
        register_batch(world, agreement, name, started_at=now_utc())
        sampled = format_utc(now_utc())
        records = [
            {
                "id": f"PH-{index:03d}",
                "parameter": PH,
                "value": f"{rng.gauss(7.05, 0.02):.3f}",
                "unit": "[pH]",
                "sampled_at": sampled,
                "method": "in-process control",
            }
            for index in range(1, REPLICATES + 1)
        ]
        submit_data(world, name, "discrete", records)
        names.append(name)
    _baseline(world, str(agreement), names[:BASELINE])
    return str(agreement)


def _shuffled(world: World) -> tuple[str, dict[tuple[str, str], str]]:
    """An agreement whose batches' results arrive in no order of their record ids, each
    batch's in another; the value of each (batch, record id)."""
    rng = random.Random(43)
    agreement = propose_and_sign(world)
    define_parameter(world, agreement, PH)
    names, values = [], {}
    for number in range(BATCHES):
        name = f"CPV-S-{number:03d}"
        register_batch(world, agreement, name, started_at=now_utc())
        sampled = format_utc(now_utc())
        ids = rng.sample(SHUFFLED_IDS, len(SHUFFLED_IDS))
        records = []
        for record_id in ids:
            value = values[name, record_id] = f"{rng.gauss(7.05, 0.02):.3f}"
            records.append(
                {
                    "id": record_id,
                    "parameter": PH,
                    "value": value,
                    "unit": "[pH]",
                    "sampled_at": sampled,
                    "method": "in-process control",
                }
            )
        submit_data(world, name, "discrete", records)
        names.append(name)
    _baseline(world, str(agreement), names[:BASELINE])
    return str(agreement), values


def _continuous(world: World) -> str:
    """An agreement whose pH is measured by the continuous tag BR1.PH."""
    since = format_utc(now_utc() - timedelta(days=1))
    agreement = sign_retroactively(world, since)
    define_parameter(
        world, agreement, PH, effective_from=since, reason="history migrated from paper"
    )
    names = []
    for number in range(BATCHES):
        name = f"CPV-JC-{number:03d}"
        started = now_utc() - timedelta(hours=1)
        register_batch(world, agreement, name, started_at=started)
        entry = continuous_series(TAG, started, 20, seed=number, chunk_points=10)
        submit_data(world, name, "continuous", [entry])
        names.append(name)
    _baseline(world, str(agreement), names[:BASELINE])
    return str(agreement)


@dataclass
class Served:
    server: Server
    world: World
    agreements: dict[str, str]
    """The agreement of each kind of chart."""
    position: int
    """The head once everything was recorded: every question is asked at it."""
    shuffled: dict[tuple[str, str], str]
    """The value of each (batch, record id) of the agreement ``shuffled``."""


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("points-json")
    with fresh_database(request.param, request, folder) as url:
        settings = Settings(database_url=url, data_dir=folder / "data", kdf_profile="min")
        notary = notary_actor()
        ledger = Ledger.initialise(settings, ORIGIN, notary.public_key)
        try:
            world = build_world(ledger, notary)
            agreements = {"replicates": _replicates(world), "continuous": _continuous(world)}
            agreements["shuffled"], shuffled = _shuffled(world)
            position = ledger.head()
            with running_server(settings, notary.key) as server:
                yield Served(server, world, agreements, position, shuffled)
        finally:
            ledger.close()


def _ask(served: Served, query: str, kind: str, **more: Any) -> dict[str, Any]:
    variables = {"a": served.agreements[kind], "p": PH, "b": "PPQ", "k": served.position}
    data, errors = served.server.call(served.world[NORTHWIND], query, {**variables, **more})
    assert errors == [], errors
    found: dict[str, Any] = data["cpv"]
    return found


def test_points_json_is_the_typed_points_of_a_replicate_chart(
    served: Served,
) -> None:
    assert "pointsJson" in POINTS_JSON and TYPED != POINTS_JSON
    typed = _ask(served, TYPED, "replicates")
    fast = _ask(served, POINTS_JSON, "replicates")
    assert typed["chart"] == "XBAR-R"
    assert [len(p["records"]) for p in typed["points"]] == [REPLICATES] * BATCHES
    assert json.dumps(fast.pop("pointsJson")) == json.dumps(typed.pop("points"))
    assert fast == typed, "the rest of the analysis is the same"


def test_points_json_is_the_typed_points_of_a_continuous_chart(
    served: Served,
) -> None:
    typed = _ask(served, TYPED, "continuous", s="MEAN")
    fast = _ask(served, POINTS_JSON, "continuous", s="MEAN")
    assert typed["chart"] == "I-MR"
    assert all(p["summary"] is not None and p["records"] == [] for p in typed["points"])
    assert json.dumps(fast.pop("pointsJson")) == json.dumps(typed.pop("points"))
    assert fast == typed, "the rest of the analysis is the same"


def test_the_digest_of_the_typed_points_is_the_answered_digest(
    served: Served,
) -> None:
    answer = _ask(served, POINTS_JSON, "replicates")
    rows = sorted(
        (
            {
                "batch": point["batch"],
                "limits_version": record["limitsVersion"],
                "record_id": record["recordId"],
                "value": record["value"],
            }
            for point in answer["pointsJson"]
            for record in point["records"]
        ),
        key=lambda row: (row["batch"], row["record_id"]),
    )
    text = json.dumps(rows, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert answer["inputsDigest"] == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_each_point_lists_its_results_in_record_id_order_whatever_order_they_arrived_in(
    served: Served,
) -> None:
    typed = _ask(served, TYPED, "shuffled")
    fast = _ask(served, POINTS_JSON, "shuffled")
    points = typed["points"]
    assert len(points) == BATCHES
    for point in points:
        ids = [record["recordId"] for record in point["records"]]
        assert ids == sorted(SHUFFLED_IDS)
        values = [served.shuffled[point["batch"], record_id] for record_id in ids]
        assert [record["value"] for record in point["records"]] == values
    assert json.dumps(fast.pop("pointsJson")) == json.dumps(typed.pop("points"))
    assert fast == typed
