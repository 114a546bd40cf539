"""The access matrix: for each role and each root field, what is visible and what is refused.

Roles: Northwind (sponsor of A1), Helios (sponsor of A2), Contoso (CMO of both),
Fabrikam (tech-transfer grantee of A1), the regulator (grants on A1 including its
confidential elements, and a narrow grant on A2) and the auditor, a stranger whose grants
have all expired, been revoked or not started. A refusal is FORBIDDEN with the field
null; a leak of any kind is a failure.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError

from api.permissions import AgreementRoles, Authority
from ledger.domain.scope import DataItem, GrantScope
from ledger.domain.subjects import batch_subject, party_subject
from projections.audit import AUDIT
from tests.conftest import BACKENDS
from tests.support.data_server import Served, shared_data_server
from tests.support.data_world import B1, B2, H1, SECRET
from tests.support.loop import run as run_coroutine
from tests.support.server import codes
from tests.support.world import Actor

pytestmark = pytest.mark.xdist_group("data_queries")

NORTHWIND, HELIOS, CONTOSO = "northwind-bio", "helios-tx", "contoso-cmo"
FABRIKAM, REGULATOR, AUDITOR = "fabrikam-cmo", "agency-inspectorate", "qa-auditor-llc"
ROLES = (NORTHWIND, HELIOS, CONTOSO, FABRIKAM, REGULATOR, AUDITOR)
DENIED = "FORBIDDEN"


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest) -> Served:
    return shared_data_server(request, request.param)


@dataclass(frozen=True)
class Case:
    """A root field asked by every role. ``path`` leads to the field; ``expect[role]`` is
    what ``pick`` makes of its value, or ``DENIED``: FORBIDDEN, with the field null."""

    name: str
    query: str
    path: tuple[str, ...]
    expect: dict[str, Any]
    pick: Callable[[Any], Any] = lambda value: value
    variables: Callable[[Served], dict[str, Any]] = lambda served: {}


def ids(items: list[dict[str, Any]] | None) -> set[str]:
    return {item["id"] for item in items or []}


def a1(served: Served) -> dict[str, Any]:
    return {"a": served.data.a1}


def a2(served: Served) -> dict[str, Any]:
    return {"a": served.data.a2}


def both(served: Served) -> dict[str, Any]:
    return {"a1": served.data.a1, "a2": served.data.a2}


def built(served: Served) -> dict[str, Any]:
    return {"p": served.data.positions["built"]}


def only(*roles: str, value: Any = True) -> dict[str, Any]:
    return {role: value if role in roles else DENIED for role in ROLES}


def present(value: Any) -> bool:
    return value is not None


def names(items: list[dict[str, Any]]) -> set[str]:
    return {item["name"] for item in items}


SPONSOR_SIDE = (NORTHWIND, CONTOSO, FABRIKAM, REGULATOR)
A1_PARTIES = (NORTHWIND, CONTOSO)
HELIOS_SIDE = (HELIOS, CONTOSO, REGULATOR)
PER_AGREEMENT = {
    NORTHWIND: {"A1"},
    HELIOS: {"A2"},
    CONTOSO: {"A1", "A2"},
    FABRIKAM: {"A1"},
    REGULATOR: {"A1", "A2"},
    AUDITOR: set(),
}
A1_GRANTS = {("A1", FABRIKAM), ("A1", REGULATOR), ("A1", AUDITOR)}
B1_RESULTS = {"R-001", "R-002", "R-003", "R-004", "R-005"}
CLAIMS = {"Feed strategy B", "Harvest timing"}
EVERYONE = {role: set(ROLES) for role in ROLES}
CASES = [
    Case("parties", "{ parties { id role } }", ("parties",), EVERYONE, ids),
    Case("agreements", "{ agreements { id } }", ("agreements",), PER_AGREEMENT),
    Case(
        "agreement(A1)",
        "query($a: ID!) { agreement(id: $a) { id } }",
        ("agreement",),
        only(*SPONSOR_SIDE),
        present,
        a1,
    ),
    Case(
        "agreement(A2)",
        "query($a: ID!) { agreement(id: $a) { id } }",
        ("agreement",),
        only(*HELIOS_SIDE),
        present,
        a2,
    ),
    Case(
        "batch(B1)", f'{{ batch(id: "{B1}") {{ id }} }}', ("batch",), only(*SPONSOR_SIDE), present
    ),
    Case("batch(H1)", f'{{ batch(id: "{H1}") {{ id }} }}', ("batch",), only(*HELIOS_SIDE), present),
    Case(
        "batch(unknown)",
        '{ batch(id: "NWB101-99-999") { id } }',
        ("batch",),
        dict.fromkeys(ROLES, DENIED),
    ),
    Case(
        "discrete of B1",
        f'{{ batch(id: "{B1}") {{ discrete {{ id }} }} }}',
        ("batch", "discrete"),
        only(*SPONSOR_SIDE, value=B1_RESULTS),
        ids,
    ),
    Case(
        "events of H1 (outside the regulator's grant)",
        f'{{ batch(id: "{H1}") {{ events {{ id }} }} }}',
        ("batch", "events"),
        only(HELIOS, CONTOSO, value={"HE-001", "HE-002", "HE-003"}),
        ids,
    ),
    Case(
        "continuous of B1",
        f'{{ batch(id: "{B1}") {{ continuous(tag: "BR1.PH") {{ points }} }} }}',
        ("batch", "continuous"),
        only(*SPONSOR_SIDE, value=1440),
        lambda series: series["points"],
    ),
    Case(
        "parameters(A1)",
        "query($a: ID!) { parameters(agreementId: $a) { name } }",
        ("parameters",),
        only(*SPONSOR_SIDE, value={"culture temperature", "dissolved oxygen"}),
        names,
        a1,
    ),
    Case(
        "parameters(A2)",
        "query($a: ID!) { parameters(agreementId: $a) { name } }",
        ("parameters",),
        only(*HELIOS_SIDE, value={"pH"}),
        names,
        a2,
    ),
    Case(
        "grants",
        "{ grants { agreementId grantee } }",
        ("grants",),
        {
            NORTHWIND: A1_GRANTS,
            HELIOS: {("A2", REGULATOR)},
            CONTOSO: {*A1_GRANTS, ("A2", REGULATOR)},
            FABRIKAM: A1_GRANTS,
            REGULATOR: {*A1_GRANTS, ("A2", REGULATOR)},
            AUDITOR: {("A1", AUDITOR)},
        },
    ),
    Case(
        "grants(A2)",
        "query($a: ID!) { grants(agreementId: $a) { grantee } }",
        ("grants",),
        only(*HELIOS_SIDE, value={REGULATOR}),
        lambda grants: {g["grantee"] for g in grants},
        a2,
    ),
    Case(
        "enhancements",
        "{ enhancements { title } }",
        ("enhancements",),
        {role: CLAIMS if role in A1_PARTIES else set() for role in ROLES},
        lambda claims: {e["title"] for e in claims},
    ),
    Case(
        "enhancements(A1): grants without `enhancements` open no claim",
        "query($a: ID!) { enhancements(agreementId: $a) { title } }",
        ("enhancements",),
        {**only(*SPONSOR_SIDE, value=0), NORTHWIND: 2, CONTOSO: 2},
        len,
        a1,
    ),
    Case(
        "agreement(A1) enhancements: claims, commitments and dossiers",
        "query($a: ID!) { agreement(id: $a) { enhancements { commitment dossier { salt } } } }",
        ("agreement", "enhancements"),
        {**only(*SPONSOR_SIDE, value=0), NORTHWIND: 2, CONTOSO: 2},
        len,
        a1,
    ),
    Case("reviews", "{ reviews { agreementId } }", ("reviews",), PER_AGREEMENT),
    Case(
        "deliveries",
        "{ deliveries { batch } }",
        ("deliveries",),
        {
            NORTHWIND: {B1, B2},
            HELIOS: {H1},
            CONTOSO: {B1, B2, H1},
            FABRIKAM: {B1, B2},
            REGULATOR: {B1, B2, H1},
            AUDITOR: set(),
        },
        lambda found: {d["batch"] for d in found},
    ),
    Case(
        "deliveries(batch: H1)",
        f'{{ deliveries(batch: "{H1}") {{ batch }} }}',
        ("deliveries",),
        only(*HELIOS_SIDE, value={H1}),
        lambda found: {d["batch"] for d in found},
    ),
    Case(
        "asOf agreements",
        "query($p: Int!) { asOf(position: $p) { agreements { id } } }",
        ("asOf", "agreements"),
        PER_AGREEMENT,
        variables=built,
    ),
    Case(
        "asOf batch(B1)",
        f'query($p: Int!) {{ asOf(position: $p) {{ batch(id: "{B1}") {{ id }} }} }}',
        ("asOf", "batch"),
        only(*SPONSOR_SIDE),
        present,
        built,
    ),
    Case(
        "traceBatch(B1)",
        f'{{ traceBatch(id: "{B1}") {{ batch {{ id }} }} }}',
        ("traceBatch",),
        only(*SPONSOR_SIDE),
        present,
    ),
    Case(
        "traceBatch(H1)",
        f'{{ traceBatch(id: "{H1}") {{ batch {{ id }} }} }}',
        ("traceBatch",),
        only(*HELIOS_SIDE),
        present,
    ),
    Case(
        "auditTrail(batch: H1)",
        f'{{ auditTrail(filter: {{batch: "{H1}"}}) {{ edges {{ node {{ batch }} }} }} }}',
        ("auditTrail",),
        only(*HELIOS_SIDE, value={H1}),
        lambda trail: {e["node"]["batch"] for e in trail["edges"]},
    ),
    Case(
        "auditTrail(agreement: A1)",
        "query($a: ID!) { auditTrail(filter: {agreement: $a}) { edges { cursor } } }",
        ("auditTrail",),
        only(*SPONSOR_SIDE),
        lambda trail: len(trail["edges"]) > 0,
        a1,
    ),
]


def normalise(value: Any, served: Served) -> Any:
    """Agreement ids as A1/A2 so the expectations read plainly."""
    labels = {served.data.a1: "A1", served.data.a2: "A2"}
    if not isinstance(value, list):
        return value
    if value and "grantee" in value[0]:
        return {(labels[g["agreementId"]], g["grantee"]) for g in value}
    return {labels.get(item.get("id") or item.get("agreementId"), "?") for item in value}


def walk(data: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        if data is None:
            return None
        data = data[name]
    return data


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_exactly_what_it_may(served: Served, case: Case, role: str) -> None:
    data, errors = served.call(role, case.query, case.variables(served))
    expected = case.expect[role]
    if expected != DENIED:
        assert errors == [], errors
        assert normalise(case.pick(walk(data, case.path)), served) == expected
        return
    assert codes(errors) == [DENIED], errors
    assert errors[0]["message"]
    assert walk(data, case.path) is None


@pytest.mark.parametrize(
    "query",
    [
        "{ parties { id } }",
        "{ agreements { id } }",
        f'{{ batch(id: "{B1}") {{ id }} }}',
        "{ grants { id } }",
        "{ auditTrail { edges { cursor } } }",
        "{ asOf(position: 1) { position } }",
        f'{{ traceBatch(id: "{B1}") {{ position }} }}',
    ],
)
def test_an_unsigned_caller_gets_none_of_the_data_fields(served: Served, query: str) -> None:
    _, errors = served.call(None, query)
    assert codes(errors) == ["UNAUTHENTICATED"]


# -- confidential elements, field by field -------------------------------------------------

CONFIDENTIAL = f"""
{{
  batch(id: "{B1}") {{
    discrete(parameters: ["titer at harvest"], includeSuperseded: true) {{
      id version value confidential {{ element value }} masked
    }}
    events(kinds: ["deviation"]) {{ id description confidential {{ element value }} masked }}
  }}
}}
"""
SEES_SECRETS = (CONTOSO, REGULATOR)


@pytest.mark.parametrize("role", (NORTHWIND, CONTOSO, FABRIKAM, REGULATOR))
def test_confidential_elements_are_shown_only_to_the_cmo_and_confidential_grantees(
    served: Served, role: str
) -> None:
    data, errors = served.call(role, CONFIDENTIAL)
    assert errors == []
    titer = {(r["id"], r["version"]): r for r in data["batch"]["discrete"]}
    deviation = data["batch"]["events"][0]
    shown = role in SEES_SECRETS
    expected = {
        ("R-002", 1): ("4.62", f"{SECRET}Lonza lot 4471"),
        ("R-002", 2): ("4.58", f"{SECRET}Lonza lot 4472"),
    }
    for key, (value, secret) in expected.items():
        record = titer[key]
        assert record["value"] == value, "the data itself is never masked"
        assert record["confidential"] == [
            {"element": "media_lot_supplier", "value": secret if shown else None}
        ]
        assert record["masked"] == ([] if shown else ["media_lot_supplier"])
    assert deviation["description"].startswith("BR1.TEMP above 37.5")
    assert deviation["confidential"] == [
        {"element": "other_client_ref", "value": f"{SECRET}HEL7-24-000" if shown else None}
    ]
    assert deviation["masked"] == ([] if shown else ["other_client_ref"])


def test_the_regulator_sees_helios_data_masked_without_a_confidential_grant(
    served: Served,
) -> None:
    query = f"""
    {{ batch(id: "{H1}") {{
        discrete(parameters: ["titer at harvest"]) {{ id confidential {{ value }} masked }} }} }}
    """
    data, errors = served.call(REGULATOR, query)
    assert errors == []
    assert data["batch"]["discrete"] == [
        {"id": "H-002", "confidential": [{"value": None}], "masked": ["media_lot_supplier"]}
    ]


LEAK_PROBE = """
query($a1: ID!, $a2: ID!) {
  agreements { id terms grants { purpose } enhancements { title summary dossier { dossier } } }
  one: agreement(id: $a1) { id }
  two: agreement(id: $a2) { id }
  b1: batch(id: "NWB101-24-001") {
    discrete(includeSuperseded: true) { value confidential { value } other }
    events(includeSuperseded: true) { description confidential { value } other }
  }
  h1: batch(id: "HEL7-24-001") {
    discrete(parameters: ["titer at harvest"]) { value confidential { value } other }
  }
  auditTrail(first: 200) { edges { node { type batch event { envelope } } } }
}
"""


@pytest.mark.parametrize("role", ROLES)
def test_no_answer_carries_a_secret_the_role_may_not_see(served: Served, role: str) -> None:
    data, _ = served.call(role, LEAK_PROBE, both(served))
    text = json.dumps(data)
    a1_secrets = [f"{SECRET}Lonza lot 4471", f"{SECRET}Lonza lot 4472", f"{SECRET}HEL7-24-000"]
    helios_secret = f"{SECRET}Helios media lot 9"
    for secret in a1_secrets:
        assert (secret in text) == (role in SEES_SECRETS), (role, secret)
    assert (helios_secret in text) == (role == CONTOSO)
    # Claims, commitments and dossiers reach only the parties (no grant names enhancements).
    for claim in CLAIMS:
        assert (claim in text) == (role in A1_PARTIES), (role, claim)
    if role in (HELIOS, AUDITOR):
        assert B1 not in text
    if role == HELIOS:  # the auditor reads its own (lapsed) grants, which name A1
        assert served.data.a1 not in text
    if role in (NORTHWIND, FABRIKAM, AUDITOR):
        assert H1 not in text
        assert served.data.a2 not in text


# -- single events and the subscription ------------------------------------------------------


def leaf_of(served: Served, **where: Any) -> int:
    engine = served.server.services.ledger.engine
    query = sa.select(AUDIT.c.leaf_index).where(
        *[AUDIT.c[name] == value for name, value in where.items()]
    )
    with engine.connect() as conn:
        return int(conn.execute(query.order_by(AUDIT.c.position).limit(1)).scalar_one())


EVENT = "query($i: Int!) { event(leafIndex: $i) { type envelope } }"


@pytest.mark.parametrize(
    ("name", "where", "readers"),
    [
        ("a party's admission", {"type": "PartyAdmitted"}, ROLES),
        ("A1 signed", {"type": "AgreementSigned"}, SPONSOR_SIDE),
        ("B1 registered", {"type": "BatchRegistered", "batch": B1}, SPONSOR_SIDE),
        # A committed confidential element withholds nothing: whoever reads the data reads
        # the envelope, the commitment in it, and checks the CMO's signature.
        ("B1 results with a commitment", {"type": "DataCorrected", "batch": B1}, SPONSOR_SIDE),
        ("H1 registered", {"type": "BatchRegistered", "batch": H1}, (HELIOS, CONTOSO, REGULATOR)),
        ("H1 results with a commitment", {"type": "DataSubmitted", "batch": H1}, (HELIOS, CONTOSO)),
    ],
)
@pytest.mark.parametrize("role", ROLES)
def test_an_event_is_readable_by_exactly_its_readers(
    served: Served, role: str, name: str, where: dict[str, Any], readers: tuple[str, ...]
) -> None:
    data, errors = served.call(role, EVENT, {"i": leaf_of(served, **where)})
    if role in readers:
        assert errors == [], errors
        assert data["event"]["type"] == where["type"]
    else:
        assert codes(errors) == [DENIED], (name, errors)
        assert data is None


SUBSCRIBE = """
subscription($f: EventFilter) { events(filter: $f) { position type subject } }
"""


async def stream_until_sentinel(served: Served, actor: Actor, subjects: list[str]) -> list[Any]:
    """Events of ``subjects`` and of the caller's own party subject, until the caller's
    new key (a sentinel every role may read) arrives."""
    own = str(party_subject(actor.party_id))
    wanted = {"after": 0, "subjects": [*subjects, own]}
    request = GraphQLRequest(SUBSCRIBE, variable_values={"f": wanted})
    received: list[Any] = []
    async with served.server.ws(actor) as session:
        stream = session.subscribe(request)
        try:
            first = asyncio.ensure_future(anext(stream))
            while served.server.services.feed.subscribers == 0 and not first.done():
                await asyncio.sleep(0.01)
            await asyncio.to_thread(add_key, served, actor)
            item = await first
            while item["events"]["subject"] != own or item["events"]["type"] != "KeyAdded":
                received.append(item["events"])
                item = await anext(stream)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
    return received


def add_key(served: Served, actor: Actor) -> None:
    from nacl.signing import SigningKey

    from ledger.keys import encode_public_key

    payload = {"public_key": encode_public_key(SigningKey.generate()), "purpose": "party"}
    served.server.submit(
        actor, "KeyAdded", party_subject(actor.party_id), payload, meaning="authored"
    )


B1_READERS = {
    CONTOSO: [
        "BatchRegistered",
        "DataSubmitted",
        "DataSubmitted",
        "DataSubmitted",
        "DataCorrected",
        "DataAcknowledged",
    ],
    REGULATOR: [
        "BatchRegistered",
        "DataSubmitted",
        "DataSubmitted",
        "DataSubmitted",
        "DataCorrected",
        "DataAcknowledged",
    ],
    # Confidential elements are committed: the envelopes carrying them are readable too.
    NORTHWIND: [
        "BatchRegistered",
        "DataSubmitted",
        "DataSubmitted",
        "DataSubmitted",
        "DataCorrected",
        "DataAcknowledged",
    ],
    FABRIKAM: [
        "BatchRegistered",
        "DataSubmitted",
        "DataSubmitted",
        "DataSubmitted",
        "DataCorrected",
        "DataAcknowledged",
    ],
    HELIOS: [],
    AUDITOR: [],
}


@pytest.mark.parametrize("role", ROLES)
def test_the_subscription_sends_only_what_the_role_may_read(served: Served, role: str) -> None:
    subject = str(batch_subject(B1))
    actor = served.data.world[role]
    if not B1_READERS[role]:
        # Naming a subject the role may not read is refused, never streamed filtered out.
        with pytest.raises(TransportQueryError) as refused:
            run_coroutine(stream_until_sentinel(served, actor, [subject]))
        errors = refused.value.errors or []
        assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in errors] == [
            ("FORBIDDEN", "filter.subjects[0]")
        ]
        return
    received = run_coroutine(stream_until_sentinel(served, actor, [subject]))
    of_b1 = [e["type"] for e in received if e["subject"] == subject]
    assert of_b1 == B1_READERS[role]


# -- the rules themselves, without a server ----------------------------------------------------


def scope(**changes: Any) -> GrantScope:
    values: dict[str, Any] = {
        "id": "g1",
        "agreement": "A1",
        "grantor": NORTHWIND,
        "grantee": REGULATOR,
        "data_classes": frozenset({"discrete", "continuous"}),
        "parameters": frozenset(),
        "batches": frozenset(),
        "window_from": None,
        "window_until": None,
        "starts_at": "2024-03-01T00:00:00.000Z",
        "ends_at": "2024-03-15T00:00:00.000Z",
        "granted_at": "2024-03-01T00:00:00.000Z",
        "revoked_at": None,
        "include_confidential": False,
    }
    values.update(changes)
    return GrantScope(**values)


def authority(party: str, *grants: GrantScope) -> Authority:
    roles = AgreementRoles("A1", NORTHWIND, CONTOSO, {"discrete": NORTHWIND, "continuous": CONTOSO})
    return Authority(party, "regulator", 1, {"A1": roles}, grants)


MARCH, MAY = "2024-03-10T00:00:00.000Z", "2024-05-10T00:00:00.000Z"


def test_a_grant_is_active_only_from_its_recording_until_its_end_or_revocation() -> None:
    grant = scope(starts_at="2024-02-01T00:00:00.000Z", granted_at="2024-03-01T00:00:00.000Z")
    assert not grant.is_active_at("2024-02-15T00:00:00.000Z"), "never before it was recorded"
    assert grant.is_active_at("2024-03-01T00:00:00.000Z")
    assert not grant.is_active_at("2024-03-15T00:00:00.000Z"), "the end is exclusive"
    assert not scope(revoked_at="2024-03-05T00:00:00.000Z").is_active_at(MARCH)


def test_a_grant_valid_in_march_opens_march_data_only_while_it_is_valid() -> None:
    item = DataItem("A1", "discrete", B1, "titer at harvest", "2024-03-02T00:00:00.000Z")
    regulator = authority(REGULATOR, scope())
    assert regulator.sees_data(item, MARCH)
    assert not regulator.sees_data(item, MAY)


def test_a_grant_covers_only_its_parameters_batches_and_window() -> None:
    grant = scope(
        parameters=frozenset({"titer at harvest"}),
        batches=frozenset({B1}),
        window_from="2024-03-01T00:00:00.000Z",
        window_until="2024-03-02T00:00:00.000Z",
    )
    inside = DataItem("A1", "discrete", B1, "titer at harvest", "2024-03-01T12:00:00.000Z")
    assert grant.covers(inside)
    assert not grant.covers(DataItem("A1", "discrete", B1, "endotoxin", inside.data_time))
    assert not grant.covers(DataItem("A1", "discrete", B2, inside.parameter, inside.data_time))
    assert not grant.covers(DataItem("A1", "event", B1, None, inside.data_time))
    late = DataItem("A1", "discrete", B1, inside.parameter, "2024-03-02T00:00:00.000Z")
    assert not grant.covers(late), "until is exclusive"
    assert not grant.covers(DataItem("A1", "discrete", B1, inside.parameter, None))


def test_owners_and_the_cmo_see_data_others_need_a_grant() -> None:
    discrete = DataItem("A1", "discrete", B1, "titer at harvest", MARCH)
    continuous = DataItem("A1", "continuous", B1, "BR1.TEMP", MARCH)
    assert authority(NORTHWIND).sees_data(discrete, MARCH)
    assert not authority(NORTHWIND).sees_data(continuous, MARCH), "the CMO owns this class"
    assert authority(CONTOSO).sees_data(discrete, MARCH)
    assert not authority(REGULATOR).sees_data(discrete, MARCH)


def test_confidential_elements_open_only_through_the_cmos_confidential_grant() -> None:
    item = DataItem("A1", "discrete", B1, "titer at harvest", MARCH)
    assert authority(CONTOSO).sees_confidential(item, MARCH)
    assert not authority(NORTHWIND).sees_confidential(item, MARCH)
    by_cmo = scope(grantor=CONTOSO, include_confidential=True)
    by_sponsor = scope(grantor=NORTHWIND, include_confidential=True)
    assert authority(REGULATOR, by_cmo).sees_confidential(item, MARCH)
    assert not authority(REGULATOR, by_sponsor).sees_confidential(item, MARCH)
    assert not authority(REGULATOR, by_cmo).sees_data(item, MARCH), "it opens no data"


def test_a_series_is_open_only_inside_the_union_of_its_windows() -> None:
    first = scope(window_from="2024-03-01T00:00:00.000Z", window_until="2024-03-02T00:00:00.000Z")
    second = scope(window_from="2024-03-02T00:00:00.000Z", window_until="2024-03-03T00:00:00.000Z")
    item = DataItem("A1", "continuous", B1, "BR1.TEMP")
    regulator = authority(REGULATOR, first, second)
    inside = ("2024-03-01T06:00:00.000Z", "2024-03-02T18:00:00.000Z")
    assert regulator.series_refusal(item, *inside, MARCH) is None
    beyond = ("2024-03-01T06:00:00.000Z", "2024-03-03T00:00:00.000Z")
    assert regulator.series_refusal(item, *beyond, MARCH) is not None
    assert regulator.series_refusal(item, None, None, MARCH) is not None
    assert authority(REGULATOR, scope()).series_refusal(item, None, None, MARCH) is None


def test_event_metadata_follows_the_subjects_visibility() -> None:
    batch_only = scope(batches=frozenset({B1}))
    events = authority(REGULATOR, batch_only).event_scope(MARCH)
    assert events.admits("PartyAdmitted", "s", None, None)
    assert events.admits("ParameterDefined", "s", "A1", None)
    assert events.admits("DataSubmitted", "s", "A1", B1)
    assert not events.admits("DataSubmitted", "s", "A1", B2)
    assert not events.admits("AgreementSigned", "s", "A2", None)
    lapsed = authority(REGULATOR, batch_only).event_scope(MAY)
    assert not lapsed.admits("DataSubmitted", "s", "A1", B1)
    assert lapsed.admits("AccessGranted", "g1", "A1", None), "a party's own grant stays visible"
