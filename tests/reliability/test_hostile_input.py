"""Hostile input: generated GraphQL operations and envelopes, and malformed JSON bodies.

* Schemathesis generates queries and mutations from ``api/schema.graphql`` (IDs and strings
  drawn partly from the data world, so that many operations reach real data) and sends
  each one signed by a sponsor, the CMO, the regulator and the auditor: no answer is a 5xx
  or ``INTERNAL_ERROR``, none shows internal error text, and none carries a ``SECRET-``
  value the caller may not see.
* Hypothesis mutates a signed envelope (wrong types, huge strings, deep nesting, lone
  surrogates, NUL, astral characters, NaN and infinities): each is refused with a code, or
  accepted whole, and a refusal stores nothing.
* Raw bodies a JSON library would let through (duplicate members, ``NaN`` literals, invalid
  UTF-8, 5000-digit numbers, deep nesting) are refused with a code.

``make test`` runs 100 generated operations per role and backend; ``make slow`` runs
1,000 per role and backend (8,000 in all).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.graphql import nodes
from schemathesis.specs.graphql import scalars

from ledger.domain.subjects import party_subject
from tests.conftest import BACKENDS
from tests.support.data_server import Served, shared_data_server
from tests.support.data_world import B1, B2, H1, SECRET
from tests.support.server import codes
from tests.support.world import Actor

pytestmark = [pytest.mark.reliability, pytest.mark.xdist_group("data_queries")]

NORTHWIND, HELIOS, CONTOSO = "northwind-bio", "helios-tx", "contoso-cmo"
FABRIKAM, REGULATOR, AUDITOR = "fabrikam-cmo", "agency-inspectorate", "qa-auditor-llc"
ROLES = {"sponsor": NORTHWIND, "cmo": CONTOSO, "regulator": REGULATOR, "auditor": AUDITOR}
SCHEMA_FILE = os.path.join(os.path.dirname(__file__), "..", "..", "api", "schema.graphql")
FAST_CASES, SLOW_CASES = 100, 1000
JSON_TYPE = {"content-type": "application/json"}

# What each caller may never see (the auditor's grants opened nothing: it sees none).
CONFIDENTIAL = (
    f"{SECRET}Lonza lot 4471",
    f"{SECRET}Lonza lot 4472",
    f"{SECRET}HEL7-24-000",
    f"{SECRET}Helios media lot 9",
)
NEVER_SHOWN = {
    NORTHWIND: set(CONFIDENTIAL),
    CONTOSO: set(),
    REGULATOR: {f"{SECRET}Helios media lot 9"},
}
SECRET_TEXT = re.compile(re.escape(SECRET) + r"[^\"\\]*")
INTERNAL_TEXT = re.compile(
    r"Traceback|File \"|line \d+, in |sqlalchemy|psycopg|sqlite3|"
    r"\b(SELECT .* FROM|INSERT INTO|UPDATE \w+ SET|DELETE FROM)\b|"
    r"\b(KeyError|TypeError|ValueError|AttributeError|IndexError|RecursionError|"
    r"UnicodeDecodeError|UnicodeEncodeError|IntegrityError|OperationalError|"
    r"ProgrammingError|DataError|JSONDecodeError|AssertionError)\b"
)

# Unicode edge cases: NUL, controls, a lone surrogate, astral and combining characters.
EDGE_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(["\x00", "\x1f", "\ud800", "\udfff", "\U0001f9ea", "\u0301", "\ufeff"]),
        st.characters(),
    ),
    max_size=40,
)
HUGE_TEXT = st.integers(10_000, 200_000).map(lambda n: "x" * n)


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


HOSTILE_VALUE = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from([2**53, 2**63, -(2**64), 10**40]),
        st.floats(allow_nan=True, allow_infinity=True),
        EDGE_TEXT,
        HUGE_TEXT,
        st.integers(50, 900).map(nested),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(EDGE_TEXT, children, max_size=4)
    ),
    max_leaves=8,
)


# ---------------------------------------------------------------- the served data world


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest) -> Served:
    return shared_data_server(request, request.param)


def graphql_value(value: Any) -> Any:
    """A JSON value as a GraphQL literal (object keys that are not names are left out)."""
    if value is None:
        return nodes.Null
    if isinstance(value, bool):
        return nodes.Boolean(value)
    if isinstance(value, int):
        return nodes.Int(value)
    if isinstance(value, float):
        return nodes.Float(value)
    if isinstance(value, str):
        return nodes.String(value)
    if isinstance(value, list):
        return nodes.List([graphql_value(item) for item in value])
    fields = [
        _field(key, graphql_value(item))
        for key, item in value.items()
        if re.fullmatch(r"[_A-Za-z][_0-9A-Za-z]*", key)
    ]
    return nodes.Object(fields)


def _field(name: str, value: Any) -> Any:
    import graphql

    return graphql.ObjectFieldNode(name=graphql.NameNode(value=name), value=value)


@pytest.fixture(scope="module")
def schema(served: Served) -> Iterator[Any]:
    """The API's schema for Schemathesis, with IDs and strings that name real data."""
    data = served.data
    ids = [data.a1, data.a2, B1, B2, H1, *data.grants.values(), *data.enhancements.values()]
    ids += [*data.parameters.values(), *(str(party_subject(p)) for p in ROLES.values())]
    strings = [B1, B2, H1, *ROLES.values(), HELIOS, FABRIKAM, "titer at harvest", "BR1.TEMP"]
    strings += ["discrete", "continuous", "events", "deviation", "DataCorrected", "KeyAdded"]
    finite = st.floats(allow_nan=False, allow_infinity=False)
    json_values = st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), finite, EDGE_TEXT),
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(EDGE_TEXT, children, max_size=4)
        ),
        max_leaves=10,
    )
    added = {
        "ID": st.one_of(st.sampled_from(ids), EDGE_TEXT).map(nodes.String),
        "String": st.one_of(st.sampled_from(strings), EDGE_TEXT).map(nodes.String),
        "JSON": json_values.map(graphql_value),
    }
    saved = dict(scalars.CUSTOM_SCALARS)
    for name, strategy in added.items():
        schemathesis.graphql.scalar(name, strategy)
    try:
        yield schemathesis.graphql.from_path(SCHEMA_FILE)
    finally:
        scalars.CUSTOM_SCALARS.clear()
        scalars.CUSTOM_SCALARS.update(saved)


def signed_client(served: Served, party: str | None) -> httpx2.Client:
    """A client signing as ``party`` (``None``: unsigned)."""
    actor = None if party is None else served.data.world[party]
    auth = None if actor is None else served.server.auth(actor)
    return httpx2.Client(base_url=served.server.url, auth=auth, timeout=60)


def check_answer(response: httpx2.Response, party: str | None) -> None:
    """No 5xx, every error coded and not internal, no internal text, no foreign secret."""
    assert response.status_code < 500, response.text[:500]
    text = response.text
    assert not INTERNAL_TEXT.search(text), text[:1000]
    document = response.json()
    error_codes = codes(document.get("errors") or [])
    assert "None" not in error_codes and "INTERNAL_ERROR" not in error_codes, text[:1000]
    shown = set(SECRET_TEXT.findall(text))
    forbidden = shown if party not in NEVER_SHOWN else shown & NEVER_SHOWN[party]
    assert not forbidden, (party, sorted(forbidden))


# Root fields that lead to confidential values: drawn as often as all the others together.
DATA_FIELDS = ("batch", "agreements", "agreement", "auditTrail", "log", "asOf", "traceBatch")


def operations(schema: Any) -> Any:
    data = [schema["Query"][name].as_strategy() for name in DATA_FIELDS]
    return st.one_of(schema.as_strategy(), st.one_of(data))


def run_generated(served: Served, schema: Any, party: str | None, cases: int) -> int:
    head = served.server.services.ledger.head()
    sent = 0
    with signed_client(served, party) as client:

        @settings(
            max_examples=cases,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operations(schema))
        def answer_is_safe(case: Any) -> None:
            nonlocal sent
            # ASCII-escaped JSON, so lone surrogates travel as \ud800 escapes.
            body = json.dumps(schema.prepare_request_body(case)).encode()
            response = client.post("/graphql", content=body, headers=JSON_TYPE)
            sent += 1
            check_answer(response, party)

        answer_is_safe()
    assert served.server.services.ledger.head() == head
    return sent


@pytest.mark.parametrize("role", ROLES)
def test_generated_operations_get_safe_answers(served: Served, schema: Any, role: str) -> None:
    assert run_generated(served, schema, ROLES[role], FAST_CASES) >= FAST_CASES // 2


def test_unsigned_generated_operations_get_safe_answers(served: Served, schema: Any) -> None:
    assert run_generated(served, schema, None, FAST_CASES // 2) >= FAST_CASES // 4


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
def test_thousands_of_generated_operations_get_safe_answers(
    served: Served, schema: Any, role: str
) -> None:
    assert run_generated(served, schema, ROLES[role], SLOW_CASES) >= SLOW_CASES // 2


# ------------------------------------------------- guided toward confidential values

# Random selection sets rarely reach a confidential value, so these operations ask for the
# fields that hold them, with arguments drawn from the data world and from hostile text.
BATCH = """
  id
  discrete(parameters: $p, includeSuperseded: $s) { id value confidential { value } other }
  events(includeSuperseded: $s) { id description confidential { value } masked other }
"""
BATCH_VARIABLES = "$b: String!, $p: [String!], $s: Boolean!"
GUIDED = (
    f"query({BATCH_VARIABLES}) {{ batch(id: $b) {{ {BATCH} }} }}",
    f"query({BATCH_VARIABLES}, $at: Int) "
    f"{{ asOf(position: $at) {{ batch(id: $b) {{ {BATCH} }} }} }}",
    f"query({BATCH_VARIABLES}) {{ traceBatch(id: $b) {{ batch {{ {BATCH} }} }} }}",
    "query($after: Int!, $first: Int!) "
    "{ log(after: $after, first: $first) { events { envelope } } }",
    "query($b: String, $first: Int!) { auditTrail(first: $first, filter: {batch: $b}) "
    "{ edges { node { event { envelope } } } } }",
    "{ agreements { id enhancements { title dossier { dossier } } } }",
    "query($i: Int!) { event(leafIndex: $i) { envelope } }",
)


def guided_operations(served: Served) -> Any:
    head = served.server.services.ledger.head()
    positions = st.integers(-2, head + 2)
    parameters = st.lists(st.sampled_from(["titer at harvest", "pH at harvest", "x"]), max_size=3)
    variables = st.fixed_dictionaries(
        {
            "b": st.one_of(st.sampled_from([B1, B2, H1]), EDGE_TEXT),
            "p": st.one_of(st.none(), parameters),
            "s": st.booleans(),
            "at": st.one_of(st.none(), positions),
            "after": positions,
            "first": st.integers(1, 200),
            "i": positions,
        }
    )
    return st.tuples(st.sampled_from(GUIDED), variables)


def used(query: str, variables: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in variables.items() if f"${name}" in query}


@pytest.mark.parametrize("role", ROLES)
def test_guided_operations_show_secrets_only_to_those_allowed(served: Served, role: str) -> None:
    party, seen = ROLES[role], set()
    with signed_client(served, party) as client:

        @settings(
            max_examples=FAST_CASES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(operation=guided_operations(served))
        def answer_is_safe(operation: tuple[str, dict[str, Any]]) -> None:
            query, variables = operation
            body = json.dumps({"query": query, "variables": used(query, variables)}).encode()
            response = client.post("/graphql", content=body, headers=JSON_TYPE)
            check_answer(response, party)
            seen.update(SECRET_TEXT.findall(response.text))

        answer_is_safe()
    # The search reaches confidential values: the CMO, who may see them all, saw some.
    if party == CONTOSO:
        assert seen & set(CONFIDENTIAL)


# ------------------------------------------------------------------ hostile envelopes

SUBMIT = (
    "mutation($e: JSON!, $s: String!) { submitEvent(envelope: $e, signature: $s) { position } }"
)
ENVELOPE_MEMBERS = ["ledger", "type", "subject", "version", "prev", "payload", "signer", "key"]
ENVELOPE_MEMBERS += ["signed_at", "meaning", "reason", "extra"]


def key_added(served: Served, actor: Actor) -> dict[str, Any]:
    envelope, _ = actor.prepare(
        served.server.services.ledger,
        "KeyAdded",
        party_subject(actor.party_id),
        {"public_key": actor.public_key, "purpose": "party"},
        meaning="authored",
    )
    return envelope


def sign_if_possible(actor: Actor, envelope: dict[str, Any]) -> str:
    try:
        return actor.sign(envelope)
    except Exception:  # the canonical form refuses it: send a signature of nothing
        return "AAAA"


def body_of(envelope: dict[str, Any], signature: str) -> bytes:
    text = json.dumps({"query": SUBMIT, "variables": {"e": envelope, "s": signature}})
    return text.encode("utf-8")


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    where=st.sampled_from([*ENVELOPE_MEMBERS, "payload.public_key", "payload.purpose"]),
    value=HOSTILE_VALUE,
)
def hostile_envelopes(served: Served, where: str, value: Any) -> None:
    actor = served.data.world[CONTOSO]
    envelope = key_added(served, actor)
    if where.startswith("payload."):
        envelope["payload"] = {**envelope["payload"], where.split(".", 1)[1]: value}
    else:
        envelope[where] = value
    head = served.server.services.ledger.head()
    with signed_client(served, CONTOSO) as client:
        response = client.post(
            "/graphql",
            content=body_of(envelope, sign_if_possible(actor, envelope)),
            headers=JSON_TYPE,
        )
    check_answer(response, CONTOSO)
    document = response.json()
    assert document.get("errors"), "a hostile envelope was accepted"
    assert served.server.services.ledger.head() == head


def test_hostile_envelopes_are_refused_with_a_code_and_store_nothing(served: Served) -> None:
    hostile_envelopes(served)


# ---------------------------------------------------------------------- raw bodies

QUERY = "query($x: JSON) { ledger { origin } }"


def envelope_body(served: Served, mangle: Any) -> bytes:
    actor = served.data.world[CONTOSO]
    envelope = key_added(served, actor)
    text = body_of(envelope, actor.sign(envelope)).decode()
    return bytes(mangle(text, envelope), "utf-8", "surrogatepass")


RAW_BODIES: dict[str, tuple[Any, str]] = {
    "a duplicate query member": (
        lambda s, e: '{"query": "{ me { id } }", "query": "{ ledger { origin } }"}',
        "VALIDATION_FAILED",
    ),
    "a duplicate member inside the signed envelope": (
        lambda s, e: s.replace('"ledger": ', '"ledger": "elsewhere", "ledger": ', 1),
        "VALIDATION_FAILED",
    ),
    "a NaN literal": (
        lambda s, e: s.replace('"version": ', '"version": NaN, "v": ', 1),
        "VALIDATION_FAILED",
    ),
    "an Infinity literal": (
        lambda s, e: json.dumps({"query": QUERY})[:-1] + ', "variables": {"x": Infinity}}',
        "VALIDATION_FAILED",
    ),
    "a 5000-digit number": (
        lambda s, e: s.replace('"version": ', '"version": ' + "9" * 5000 + ', "v": ', 1),
        "LIMIT_EXCEEDED",
    ),
    "JSON nested 100000 deep": (
        lambda s, e: (
            '{"query": "{ me { id } }", "variables": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}"
        ),
        "LIMIT_EXCEEDED",
    ),
    "a string at the top": (lambda s, e: '"{ ledger { origin } }"', "VALIDATION_FAILED"),
    "a number at the top": (lambda s, e: "12", "VALIDATION_FAILED"),
    "an empty body": (lambda s, e: "", "VALIDATION_FAILED"),
    "a lone surrogate in the envelope": (
        lambda s, e: s.replace('"meaning": "authored"', '"meaning": "authored\\ud800"', 1),
        "VALIDATION_FAILED",
    ),
    "a NUL in the envelope": (
        lambda s, e: s.replace('"meaning": "authored"', '"meaning": "auth\\u0000ored"', 1),
        "VALIDATION_FAILED",
    ),
    "a query nested deeper than the parser allows": (
        lambda s, e: json.dumps({"query": "{" + "me {" * 3000 + "id" + "}" * 3001}),
        "LIMIT_EXCEEDED",
    ),
}


@pytest.mark.parametrize("case", RAW_BODIES)
def test_raw_bodies_that_json_libraries_let_through_are_refused(served: Served, case: str) -> None:
    mangle, expected = RAW_BODIES[case]
    body = envelope_body(served, mangle)
    head = served.server.services.ledger.head()
    with signed_client(served, CONTOSO) as client:
        response = client.post("/graphql", content=body, headers=JSON_TYPE)
    check_answer(response, CONTOSO)
    assert codes(response.json()["errors"]) == [expected], response.text
    assert served.server.services.ledger.head() == head


def test_invalid_utf8_is_refused(served: Served) -> None:
    with signed_client(served, CONTOSO) as client:
        response = client.post(
            "/graphql",
            content=b'{"query": "\xff\xfe"}',
            headers=JSON_TYPE,
        )
    assert response.status_code == 400
    assert codes(response.json()["errors"]) == ["VALIDATION_FAILED"]
