"""Two time axes: an answer at valid time ``validAt`` as the ledger knew it at ``knownAt``
equals what a plain fold over the log cut at ``knownAt`` gives at ``validAt``.

The scenario signs some agreements as in force since a past time, and defines and
revises some limits effective in the past (history migrated from paper), so the two
axes differ. The fold below knows nothing of the views: it reads the signed events.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from ledger.domain.validity import effective_from, successive
from ledger.timeutil import format_utc, parse_utc
from tests.projections.conftest import run_scenario
from tests.support.scenario import Scenario
from tests.support.server import Server
from tests.support.world import World

EVENTS = 400
SAMPLES = 6

LIMITS_AS_OF = """
query($k: Int!, $a: ID!, $v: DateTime!) {
  asOf(position: $k) { parameters(agreementId: $a) { id limitsAt(time: $v) { version } } }
}
"""
TERMS_AS_OF = """
query($k: Int!, $a: ID!) {
  asOf(position: $k) { agreement(id: $a) { termsHistory { version effectiveFrom } } }
}
"""


@dataclass
class Folded:
    """What the events up to a position say about one agreement."""

    parties: tuple[str, str] = ("", "")
    terms: dict[int, str] = field(default_factory=dict)
    terminated: str | None = None
    limits: dict[str, dict[int, str]] = field(default_factory=dict)
    retired: dict[str, str] = field(default_factory=dict)


def fold(world: World, known_at: int) -> dict[str, Folded]:
    """Each agreement's terms and limits versions with their effective times, from the
    log cut at ``known_at``."""
    agreements: dict[str, Folded] = {}
    owner: dict[str, str] = {}
    for recorded in world.ledger.iter_log():
        if recorded.position > known_at:
            break
        envelope, at = recorded.event.envelope, recorded.event.recorded_at
        kind, subject, payload = envelope["type"], envelope["subject"], envelope["payload"]
        if kind == "AgreementProposed":
            terms = payload["terms"]
            agreements[subject] = Folded(parties=(terms["sponsor"], terms["cmo"]))
        elif kind in ("AgreementSigned", "AgreementAmendmentSigned"):
            found = agreements[subject]
            found.terms[len(found.terms) + 1] = effective_from(payload, at)
        elif kind == "AgreementTerminated":
            agreements[subject].terminated = at
        elif kind == "ParameterDefined":
            owner[subject] = payload["agreement"]
            agreements[payload["agreement"]].limits[subject] = {1: effective_from(payload, at)}
        elif kind == "ParameterRevisionApproved":
            versions = agreements[owner[subject]].limits[subject]
            versions[len(versions) + 1] = effective_from(payload, at)
        elif kind == "ParameterRetired":
            agreements[owner[subject]].retired[subject] = at
    return agreements


def in_force(starts: dict[int, str], at: str, ended: str | None) -> int | None:
    found = [n for n, interval in successive(starts, ended).items() if interval.covers(at)]
    return max(found) if found else None


@pytest.fixture(scope="module")
def scenario(server: Server, api_world: World) -> Scenario:
    played = run_scenario(api_world, EVENTS, seed=72)
    server.services.projector.catch_up_safely(api_world.ledger.head())
    return played


def valid_times(rng: random.Random, folded: Folded, known_at: str) -> list[str]:
    """Instants around every effective time of the agreement, and a few others."""
    stamps = [*folded.terms.values(), *(s for v in folded.limits.values() for s in v.values())]
    around = [
        format_utc(parse_utc(stamp, field="t") + timedelta(milliseconds=delta))
        for stamp in rng.sample(stamps, min(len(stamps), 4))
        for delta in (-1, 0, 1)
    ]
    return [*around, "2000-01-01T00:00:00.000Z", known_at]


def test_limits_at_a_valid_time_as_known_then_equal_the_folded_log(
    server: Server, api_world: World, scenario: Scenario
) -> None:
    rng = random.Random(5)
    head = api_world.ledger.head()
    events = {r.position: r for r in api_world.ledger.iter_log()}
    checked = 0
    for known_at in sorted(rng.sample(range(1, head + 1), SAMPLES)):
        folded = fold(api_world, known_at)
        for agreement, found in folded.items():
            if not found.terms or not found.limits:
                continue
            sponsor = api_world[found.parties[0]]
            for valid_at in valid_times(rng, found, events[known_at].event.recorded_at):
                variables = {"k": known_at, "a": agreement, "v": valid_at}
                data, errors = server.call(sponsor, LIMITS_AS_OF, variables)
                assert errors == [], errors
                answered = {
                    p["id"]: (p["limitsAt"] or {}).get("version")
                    for p in data["asOf"]["parameters"]
                }
                expected = {
                    parameter: in_force(starts, valid_at, found.retired.get(parameter))
                    for parameter, starts in found.limits.items()
                }
                assert answered == expected, (known_at, valid_at)
                checked += 1
    assert checked > 0, "no agreement with parameters was sampled"
    assert any(p.since is not None for a in scenario.agreements for p in a.parameters.values())


def test_terms_history_as_known_then_equals_the_folded_log(
    server: Server, api_world: World, scenario: Scenario
) -> None:
    rng = random.Random(9)
    head = api_world.ledger.head()
    checked = 0
    for known_at in sorted(rng.sample(range(1, head + 1), SAMPLES)):
        for agreement, found in fold(api_world, known_at).items():
            if not found.terms:
                continue
            sponsor = api_world[found.parties[0]]
            data, errors = server.call(sponsor, TERMS_AS_OF, {"k": known_at, "a": agreement})
            assert errors == [], errors
            history = data["asOf"]["agreement"]["termsHistory"]
            assert {v["version"]: v["effectiveFrom"] for v in history} == found.terms
            checked += 1
    assert checked > 0
    assert any(a.since is not None for a in scenario.agreements), "no migrated agreement"
