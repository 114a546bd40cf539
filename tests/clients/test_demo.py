"""`cmo-ledger demo`: the story it tells, as each party sees it through the HTTP API.

The demo runs once per module as a user runs it (`cmo-ledger demo --no-serve`, a
subprocess with its own loopback server); the tests then serve the ledger it left and
ask, with each party's keystore from the demo's directory, what that party can see.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from clients.demo import DEFAULT_DIR
from clients.demo.query import run_query, variables_of
from clients.demo.run import placement, run
from clients.errors import ServerRefused
from ledger.config import Settings
from ledger.errors import ConfigurationError
from ledger.keystore import load_keystore
from ledger.timeutil import format_utc, now_utc, parse_utc
from tests.support.server import Server, codes, running_server
from tests.support.world import Actor

NORTHWIND, HELIOS, CONTOSO = "northwind-bio", "helios-tx", "contoso-cmo"
FABRIKAM, REGULATOR = "fabrikam-cmo", "agency-inspectorate"
PASSPHRASE = "demo test passphrase"
CLI = str(Path(sys.executable).with_name("cmo-ledger"))

pytestmark = pytest.mark.xdist_group("demo")


def run_cli(
    *args: str,
    timeout: float = 300,
    settings: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``cmo-ledger ARGS`` as a user runs it (cheap key derivation, a known passphrase, and
    only the ``CMO_LEDGER_*`` ``settings`` given)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CMO_LEDGER_")}
    env.update(CMO_LEDGER_PASSPHRASE=PASSPHRASE, CMO_LEDGER_KDF_PROFILE="min", COLUMNS="200")
    env.update(settings or {})
    return subprocess.run(
        [CLI, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_demo(directory: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("demo", "--no-serve", "--port", "0", "--dir", str(directory), *extra)


SHORT = ("--batches", "1", "--run-hours", "1")


@dataclass
class Demo:
    """The demo's ledger served again, its parties and what its story recorded."""

    directory: Path
    output: str
    story: dict[str, Any]
    server: Server
    actors: dict[str, Actor]

    def ask(self, party: str, query: str, **variables: Any) -> tuple[Any, list[str]]:
        data, errors = self.server.call(self.actors[party], query, variables)
        return data, codes(errors)

    def data(self, party: str, query: str, **variables: Any) -> Any:
        data, errors = self.ask(party, query, **variables)
        assert errors == [], errors
        return data


def serve_demo(directory: Path, output: str) -> Generator[Demo, None, None]:
    settings = Settings(
        database_url=f"sqlite:///{directory / 'ledger.db'}",
        data_dir=directory,
        passphrase=PASSPHRASE,
    )
    _, notary_key = load_keystore(directory / "notary.key", PASSPHRASE)
    actors = {}
    for path in sorted((directory / "keys").glob("*.key")):
        keystore, key = load_keystore(path, PASSPHRASE)
        actors[keystore.party] = Actor(keystore.party, key)
    story = json.loads((directory / "demo.json").read_text("utf-8"))
    with running_server(settings, notary_key) as server:
        yield Demo(directory, output, story, server, actors)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    directory = tmp_path_factory.mktemp("demo") / "ledger"
    result = run_demo(directory, "--batches", "3", "--run-hours", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    yield from serve_demo(directory, result.stdout)


BATCH = """
query($b: String!) {
  batch(id: $b) {
    id
    discrete { id parameter value status masked confidential { element value } }
    events { id kind acknowledgedBy masked confidential { element value } }
    tags { tag points }
  }
}
"""
AGREEMENTS = "{ agreements { id sponsor cmo } }"
PARAMETER = """
query($a: ID!) { parameters(agreementId: $a) { name status alert { low high } limitsVersion } }
"""
PARAMETER_AS_OF = """
query($p: Int!, $a: ID!) {
  asOf(position: $p) { parameters(agreementId: $a) { name status alert { low high } } }
}
"""


def _dissolved_oxygen(parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return next(p for p in parameters if p["name"] == "dissolved oxygen")


def _confidential(record: dict[str, Any]) -> dict[str, str | None]:
    return {item["element"]: item["value"] for item in record["confidential"]}


# ------------------------------------------------------------------- the run itself


def test_demo_verifies_the_ledger_it_wrote(demo: Demo) -> None:
    assert "verified:" in demo.output
    database = f"sqlite:///{demo.directory / 'ledger.db'}"
    result = run_cli("verify", "--database", database, "--workers", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().startswith("OK:")


def test_demo_prints_what_to_open(demo: Demo) -> None:
    assert "/graphql" in demo.output
    assert "docs/queries" in demo.output
    for name in ("trace_batch", "limits_as_of", "enhancement_dossier", "what_each_party_sees"):
        assert (Path(__file__).parents[2] / "docs" / "queries" / f"{name}.graphql").is_file()


def _refusal(directory: Path, *, fresh: bool) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        run(directory, fresh=fresh, serve=False, port=0, batches=1, run_minutes=60)
    assert (info.value.code, info.value.field) == ("CONFIGURATION_ERROR", "--dir")
    return info.value


def test_demo_refuses_a_directory_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me", "utf-8")
    assert "pass --fresh" in str(_refusal(tmp_path, fresh=False))
    assert (tmp_path / "notes.txt").read_text("utf-8") == "keep me"


def test_fresh_refuses_a_directory_that_holds_no_earlier_demo(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me", "utf-8")
    assert "holds no earlier demo" in str(_refusal(tmp_path, fresh=True))
    assert (tmp_path / "notes.txt").exists()


# ------------------------------------------------------------ where the demo writes


def test_demo_honours_the_data_dir_setting(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run_cli(
        "demo", "--no-serve", "--port", "0", *SHORT,
        settings={"CMO_LEDGER_DATA_DIR": str(data)}, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"the demo's directory: {data} (CMO_LEDGER_DATA_DIR)" in result.stdout
    assert f"the demo's ledger: sqlite:///{data / 'ledger.db'}" in result.stdout
    for name in ("ledger.db", "notary.key", "demo.json", "keys/contoso-cmo.key", "evidence"):
        assert (data / name).exists(), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no ./.cmo-ledger-demo


def test_demo_honours_the_database_url_setting(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'elsewhere' / 'demo.db'}"
    directory = tmp_path / "demo"
    result = run_cli(
        "demo", "--no-serve", "--port", "0", "--dir", str(directory), *SHORT,
        settings={"CMO_LEDGER_DATABASE_URL": database},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"the demo's ledger: {database} (CMO_LEDGER_DATABASE_URL)" in result.stdout
    assert f"cmo-ledger verify --database {database}" in result.stdout
    assert (tmp_path / "elsewhere" / "demo.db").is_file()
    assert not (directory / "ledger.db").exists()
    assert (directory / "keys" / "contoso-cmo.key").is_file()
    verified = run_cli("verify", "--database", database, "--workers", "1")
    assert verified.stdout.strip().startswith("OK:"), verified.stdout + verified.stderr


def test_demo_refuses_a_database_url_naming_a_file_that_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    existing = tmp_path / "ledger.db"
    existing.write_bytes(b"someone's ledger")
    monkeypatch.setenv("CMO_LEDGER_DATABASE_URL", f"sqlite:///{existing}")
    directory = tmp_path / "demo"
    with pytest.raises(ConfigurationError) as refused:
        run(directory, fresh=True, serve=False, port=0, batches=1, run_minutes=60)
    assert refused.value.field == "CMO_LEDGER_DATABASE_URL"
    assert f"{existing} exists: the demo starts a new ledger" in str(refused.value)
    assert "unset CMO_LEDGER_DATABASE_URL" in str(refused.value)
    assert existing.read_bytes() == b"someone's ledger"
    assert not directory.exists()


def test_demo_refusals_name_the_data_dir_setting_that_chose_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "notes.txt").write_text("keep me", "utf-8")
    monkeypatch.setenv("CMO_LEDGER_DATA_DIR", str(tmp_path))
    with pytest.raises(ConfigurationError) as refused:
        run(None, fresh=False, serve=False, port=0, batches=1, run_minutes=60)
    assert refused.value.field == "CMO_LEDGER_DATA_DIR"
    assert "set CMO_LEDGER_DATA_DIR to another directory" in str(refused.value)
    assert (tmp_path / "notes.txt").read_text("utf-8") == "keep me"


def test_dir_comes_before_the_data_dir_setting_and_neither_means_the_default(
    tmp_path: Path,
) -> None:
    data = {"CMO_LEDGER_DATA_DIR": str(tmp_path / "data")}
    assert placement(tmp_path / "option", data).directory == tmp_path / "option"
    assert placement(None, data).directory == tmp_path / "data"
    default = placement(None, {})
    assert (default.directory, default.directory_from) == (DEFAULT_DIR, "the default")
    assert default.database_url == f"sqlite:///{DEFAULT_DIR.resolve() / 'ledger.db'}"
    with pytest.raises(ConfigurationError) as refused:
        placement(None, {"CMO_LEDGER_DATABASE_URL": "mysql://nowhere/db"})
    assert refused.value.field == "CMO_LEDGER_DATABASE_URL"


# ------------------------------------------------------------------ who sees what


def test_each_sponsor_sees_only_its_own_agreement(demo: Demo) -> None:
    for sponsor, other in ((NORTHWIND, HELIOS), (HELIOS, NORTHWIND)):
        agreements = demo.data(sponsor, AGREEMENTS)["agreements"]
        assert [a["id"] for a in agreements] == [demo.story["agreements"][sponsor]]
        assert other not in json.dumps(agreements)


def test_sponsor_a_never_sees_sponsor_b_batches(demo: Demo) -> None:
    assert demo.story["helios_batches"] and demo.story["batches"], "the demo made no batches"
    for batch in demo.story["helios_batches"]:
        assert demo.ask(NORTHWIND, BATCH, b=batch)[1] == ["FORBIDDEN"]
    for batch in demo.story["batches"]:
        assert demo.ask(HELIOS, BATCH, b=batch)[1] == ["FORBIDDEN"]


def test_sponsor_a_audit_trail_holds_nothing_of_sponsor_b(demo: Demo) -> None:
    query = "{ auditTrail(first: 500) { edges { node { agreementId batch signer } } } }"
    nodes = [e["node"] for e in demo.data(NORTHWIND, query)["auditTrail"]["edges"]]
    assert nodes, "Northwind sees its own history"
    helios_agreement = demo.story["agreements"][HELIOS]
    assert all(node["agreementId"] != helios_agreement for node in nodes)
    assert all(node["signer"] != HELIOS for node in nodes)
    assert all(node["batch"] not in demo.story["helios_batches"] for node in nodes)


def test_a_sponsor_sees_its_results_with_the_cmo_confidential_elements_masked(
    demo: Demo,
) -> None:
    batch = demo.story["deviation_batches"][0]
    found = demo.data(NORTHWIND, BATCH, b=batch)["batch"]
    titer = next(r for r in found["discrete"] if r["parameter"] == "titer at harvest")
    assert titer["value"] is not None
    assert titer["masked"] == ["media_lot_supplier"]
    assert _confidential(titer) == {"media_lot_supplier": None}
    deviation = next(e for e in found["events"] if e["kind"] == "deviation")
    assert set(deviation["masked"]) == {"other_client_ref", "shared_equipment_schedule"}
    assert set(_confidential(deviation).values()) == {None}


def test_the_cmo_sees_both_sponsors_and_the_confidential_elements(demo: Demo) -> None:
    agreements = demo.data(CONTOSO, AGREEMENTS)["agreements"]
    assert {a["id"] for a in agreements} == set(demo.story["agreements"].values())
    batch = demo.story["deviation_batches"][0]
    found = demo.data(CONTOSO, BATCH, b=batch)["batch"]
    deviation = next(e for e in found["events"] if e["kind"] == "deviation")
    assert deviation["masked"] == []
    assert _confidential(deviation)["other_client_ref"] == demo.story["helios_batches"][-1]
    helios = demo.data(CONTOSO, BATCH, b=demo.story["helios_batches"][0])["batch"]
    assert {tag["tag"] for tag in helios["tags"]} == {"BR1.TEMP", "BR1.PH", "BR1.DO"}


def test_northwind_process_history_is_open_to_fabrikam_and_helios_is_not(demo: Demo) -> None:
    assert demo.story["batches"], "the demo made no batches"
    for batch in demo.story["batches"]:
        found = demo.data(FABRIKAM, BATCH, b=batch)["batch"]
        assert [tag["points"] for tag in found["tags"]] == [120, 120, 120]
    assert demo.ask(FABRIKAM, BATCH, b=demo.story["helios_batches"][0])[1] == ["FORBIDDEN"]


def test_the_regulator_sees_only_the_inspected_batch_for_two_weeks(demo: Demo) -> None:
    inspected = demo.story["inspected_batch"]
    found = demo.data(REGULATOR, BATCH, b=inspected)["batch"]
    assert len(found["discrete"]) == 5
    others = [b for b in demo.story["batches"] if b != inspected]
    assert others and demo.story["helios_batches"], "the demo made no other batches"
    for batch in [*others, *demo.story["helios_batches"]]:
        assert demo.ask(REGULATOR, BATCH, b=batch)[1] == ["FORBIDDEN"]
    query = "{ grants { id grantor grantee validFrom validUntil activeNow includeConfidential } }"
    grants = [g for g in demo.data(REGULATOR, query)["grants"] if g["grantee"] == REGULATOR]
    assert {(g["grantor"], g["includeConfidential"]) for g in grants} == {
        (NORTHWIND, False),
        (CONTOSO, True),
    }
    for grant in grants:
        box = parse_utc(grant["validUntil"], field="t") - parse_utc(grant["validFrom"], field="t")
        assert timedelta(days=14) - timedelta(minutes=1) < box <= timedelta(days=14)
        assert grant["activeNow"] is True


def test_the_regulator_sees_the_confidential_elements_of_the_inspected_batch_only(
    demo: Demo,
) -> None:
    found = demo.data(REGULATOR, BATCH, b=demo.story["inspected_batch"])["batch"]
    titer = next(r for r in found["discrete"] if r["parameter"] == "titer at harvest")
    assert titer["masked"] == []
    assert _confidential(titer)["media_lot_supplier"]


def test_the_exported_evidence_bundle_verifies_offline(demo: Demo) -> None:
    bundle = demo.directory / "evidence"
    assert str(bundle) in demo.output
    result = run_cli("verify-bundle", str(bundle))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("OK: verified"), result.stdout
    assert "nothing withheld" in result.stdout


def test_each_chiller_trip_is_a_continuous_action_excursion_its_deviation_reported(
    demo: Demo,
) -> None:
    query = """query($b: String!) { traceBatch(id: $b) {
      seriesExcursions { tag limitsVersion evaluation count reporting reportedBy }
    } }"""
    assert demo.story["deviation_batches"], "the demo has no chiller trip"
    for name in demo.story["deviation_batches"]:
        found = demo.data(NORTHWIND, query, b=name)["traceBatch"]["seriesExcursions"]
        action = [e for e in found if e["evaluation"] == "action"]
        assert [e["tag"] for e in action] == ["BR1.TEMP"], found
        [trip] = action
        assert trip["count"] > 0 and trip["limitsVersion"] == 1
        assert (trip["reporting"], trip["reportedBy"]) == ("reported", f"{name}-DEV01")


# --------------------------------------------------------- reviews, limits, claims


def test_helios_review_is_overdue_and_northwind_review_is_not(demo: Demo) -> None:
    query = "{ reviews { agreementId overdue state } }"
    helios = demo.data(HELIOS, query)["reviews"]
    assert [(r["agreementId"], r["overdue"]) for r in helios] == [
        (demo.story["agreements"][HELIOS], True)
    ]
    northwind = demo.data(NORTHWIND, query)["reviews"]
    assert [(r["agreementId"], r["overdue"]) for r in northwind] == [
        (demo.story["agreements"][NORTHWIND], False)
    ]


def test_dissolved_oxygen_limits_before_and_after_the_review(demo: Demo) -> None:
    agreement = demo.story["agreements"][NORTHWIND]
    before = demo.data(
        NORTHWIND, PARAMETER_AS_OF, p=demo.story["positions"]["before_review"], a=agreement
    )["asOf"]["parameters"]
    assert _dissolved_oxygen(before)["status"] == "hypothesis"
    assert _dissolved_oxygen(before)["alert"] == {"low": "32", "high": "55"}
    now = _dissolved_oxygen(demo.data(NORTHWIND, PARAMETER, a=agreement)["parameters"])
    assert (now["status"], now["limitsVersion"]) == ("confirmed", 2)
    assert now["alert"] == {"low": "35", "high": "50"}


def test_the_disclosed_dossier_matches_its_commitment(demo: Demo) -> None:
    query = """
    query($a: ID!) { enhancements(agreementId: $a) {
      id status owner ownershipClaimed disputeReason commitment dossier { dossier salt }
    } }
    """
    found = demo.data(NORTHWIND, query, a=demo.story["agreements"][NORTHWIND])
    [claim] = found["enhancements"]
    assert claim["id"] == demo.story["enhancement"]
    assert (claim["status"], claim["owner"], claim["ownershipClaimed"]) == (
        "resolved",
        "joint",
        "cmo",
    )
    assert claim["disputeReason"]
    dossier = base64.b64decode(claim["dossier"]["dossier"])
    salt = bytes.fromhex(claim["dossier"]["salt"])
    assert hashlib.sha256(salt + dossier).hexdigest() == claim["commitment"]
    assert hashlib.sha256(dossier).hexdigest() == demo.story["dossier_sha256"]


def test_deviations_are_acknowledged_by_the_sponsor(demo: Demo) -> None:
    assert demo.story["deviation_batches"], "the demo recorded no deviations"
    for batch in demo.story["deviation_batches"]:
        events = demo.data(NORTHWIND, BATCH, b=batch)["batch"]["events"]
        deviation = next(e for e in events if e["kind"] == "deviation")
        assert deviation["acknowledgedBy"] == NORTHWIND


def test_the_corrected_titer_keeps_the_original_readable(demo: Demo) -> None:
    query = """
    query($b: String!) { batch(id: $b) {
      discrete(parameters: ["titer at harvest"], includeSuperseded: true) { id status value }
    } }
    """
    records = demo.data(NORTHWIND, query, b=demo.story["corrected_batch"])["batch"]["discrete"]
    assert sorted(r["status"] for r in records) == ["current", "superseded"]


# ---------------------------------------------------------------- example queries

QUERIES = Path(__file__).parents[2] / "docs" / "queries"


def _example_runs(story: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each example query: the party docs/demo.md runs it as, and its variables."""
    northwind = story["agreements"][NORTHWIND]
    deviation_batch = story["deviation_batches"][0]
    return {
        "what_each_party_sees": (FABRIKAM, {}),
        "batch_data": (NORTHWIND, {"batch": deviation_batch, "tag": "BR1.TEMP"}),
        "trace_batch": (REGULATOR, {"batch": story["inspected_batch"]}),
        "limits_as_of": (
            NORTHWIND,
            {"position": story["positions"]["before_review"], "agreement": northwind},
        ),
        "enhancement_dossier": (CONTOSO, {"agreement": northwind}),
        "overdue_and_late": (HELIOS, {}),
        "audit_trail": (NORTHWIND, {"batch": deviation_batch, "after": None}),
    }


def test_every_example_query_answers_as_the_demo_guide_says(demo: Demo) -> None:
    runs = _example_runs(demo.story)
    assert sorted(runs) == sorted(path.stem for path in QUERIES.glob("*.graphql"))
    answers = {}
    for name, (party, variables) in runs.items():
        query = (QUERIES / f"{name}.graphql").read_text("utf-8")
        answers[name] = demo.data(party, query, **variables)
    assert [a["sponsor"] for a in answers["what_each_party_sees"]["agreements"]] == [NORTHWIND]
    series = answers["batch_data"]["batch"]["continuous"]
    assert series["points"] == sum(series["count"]) == 120
    trace = answers["trace_batch"]["traceBatch"]
    assert trace["batch"]["id"] == demo.story["inspected_batch"]
    assert trace["checkpoint"]["treeSize"] > trace["events"][-1]["leafIndex"]
    assert [r["agreementId"] for r in answers["overdue_and_late"]["reviews"]] == [
        demo.story["agreements"][HELIOS]
    ]
    assert answers["audit_trail"]["auditTrail"]["edges"]


def test_an_example_query_runs_signed_as_a_party_of_the_demo(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CMO_LEDGER_PASSPHRASE", PASSPHRASE)
    query = (QUERIES / "trace_batch.graphql").read_text("utf-8")
    variables = variables_of([f"batch={demo.story['inspected_batch']}"])
    answer = run_query(query, REGULATOR, variables, directory=demo.directory, url=demo.server.url)
    assert answer["traceBatch"]["batch"]["id"] == demo.story["inspected_batch"]
    with pytest.raises(ServerRefused) as info:
        run_query(query, HELIOS, variables, directory=demo.directory, url=demo.server.url)
    assert info.value.code == "FORBIDDEN"


def test_query_variables_are_json_values_or_text() -> None:
    assert variables_of(["position=30", "batch=NWB101-24-007", "after=null"]) == {
        "position": 30,
        "batch": "NWB101-24-007",
        "after": None,
    }
    with pytest.raises(ConfigurationError) as info:
        variables_of(["position"])
    assert info.value.field == "--var"


# ------------------------------------------------------- the story, by command line


def _terms_for_fabrikam(path: Path) -> Path:
    """Northwind's terms with Fabrikam for the transferred process (docs/events.md)."""
    columns = {
        "continuous": ["tag", "timestamp", "value", "quality"],
        "discrete": ["parameter", "value", "unit", "sampled_at", "method"],
        "event": ["kind", "started_at", "ended_at", "severity", "description"],
    }
    terms = {
        "sponsor": NORTHWIND,
        "cmo": FABRIKAM,
        "title": "Quality agreement northwind-bio / fabrikam-cmo for NWB-101 (tech transfer)",
        "products": ["NWB-101"],
        "sites": ["fabrikam-site-b"],
        "data_classes": {
            kind: {
                "owner": NORTHWIND,
                "delivery": {"within_hours": 72, "after": "batch_end"},
                "format": {"name": f"{kind}-csv/v1", "columns": names},
            }
            for kind, names in columns.items()
        },
        "confidential_elements": ["media_lot_supplier"],
        "ip_rule": "negotiated",
        "review_cadence_months": 6,
        "deviation_deadline_hours": 24,
        # The transferred process's parameters are not registered under this agreement yet.
        "unregistered": "flag",
    }
    path.write_text(json.dumps(terms), "utf-8")
    return path


class User:
    """A party at the command line, with its keystore from the demo's directory."""

    def __init__(self, demo: Demo, party: str) -> None:
        self.key = demo.directory / "keys" / f"{party}.key"
        self.url = demo.server.url

    def __call__(self, *args: str) -> Any:
        result = run_cli(*args, "--key", str(self.key), "--url", self.url, "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout)

    def refused(self, *args: str) -> str:
        result = run_cli(*args, "--key", str(self.key), "--url", self.url, "--json")
        assert result.returncode == 1, result.stdout
        return result.stderr


def _subject(stored: Any) -> str:
    return str((stored[0] if isinstance(stored, list) else stored)["subject"])


def test_the_story_can_be_continued_with_the_command_line(demo: Demo, tmp_path: Path) -> None:
    northwind, fabrikam = User(demo, NORTHWIND), User(demo, FABRIKAM)
    regulator, helios = User(demo, REGULATOR), User(demo, HELIOS)
    terms = _terms_for_fabrikam(tmp_path / "terms.json")
    agreement = _subject(northwind("agreement", "propose", str(terms)))
    fabrikam("agreement", "sign", agreement)
    batch = "NWB101-24-T01"
    fabrikam(
        "batch", "register", batch, "--agreement", agreement,
        "--product", "NWB-101", "--site", "fabrikam-site-b",
        "--started-at", "2024-11-01T06:00:00Z",
    )  # fmt: skip
    results = tmp_path / "results.csv"
    results.write_text(
        "parameter,value,unit,sampled_at,method\n"
        "titer at harvest,4.41,g/L,2024-11-14T06:00:00Z,Protein A HPLC\n"
        "endotoxin,0.04,EU/mL,2024-11-14T06:00:00Z,LAL kinetic chromogenic\n",
        "utf-8",
    )
    fabrikam(
        "data", "submit", str(results), "--batch", batch, "--kind", "discrete",
        "--source-system", "fabrikam-lims",
    )  # fmt: skip
    fabrikam("batch", "end", batch, "--ended-at", "2024-11-15T06:00:00Z")
    grant = northwind(
        "grant", agreement, "--grantee", REGULATOR, "--class", "discrete",
        "--batch", batch, "--purpose", "pre-approval inspection of the transferred process",
        "--valid-until", format_utc(now_utc() + timedelta(days=14)),
    )  # fmt: skip
    assert _subject(grant)
    trail = regulator("audit", "trail", "--batch", batch)
    assert [entry["type"] for entry in trail] == [
        "BatchRegistered",
        "DataSubmitted",
        "BatchEnded",
    ]
    assert "FORBIDDEN" in helios.refused("trace", "batch", batch)


# ------------------------------------------------------------------ the full story


@pytest.mark.slow
def test_the_full_story_replaces_an_earlier_demo_and_verifies(tmp_path: Path) -> None:
    directory = tmp_path / "ledger"
    first = run_demo(directory, "--batches", "1", "--run-hours", "1")
    assert first.returncode == 0, first.stdout + first.stderr
    result = run_demo(directory, "--fresh")
    assert result.returncode == 0, result.stdout + result.stderr
    served = serve_demo(directory, result.stdout)
    demo = next(served)
    try:
        _check_the_full_story(demo)
    finally:
        served.close()


def _check_the_full_story(demo: Demo) -> None:
    batches = demo.story["batches"]
    assert batches == [f"NWB101-24-{n:03d}" for n in range(1, 21)]
    assert demo.story["inspected_batch"] == "NWB101-24-007"
    points = 0
    for batch in batches:
        tags = demo.data(CONTOSO, BATCH, b=batch)["batch"]["tags"]
        assert [tag["points"] for tag in tags] == [720, 720, 720]
        points += sum(tag["points"] for tag in tags)
    assert points == 20 * 3 * 720
    late = demo.data(NORTHWIND, "{ deliveries(late: true) { batch dataClass } }")
    # The deviations of the earliest runs (and their alarms) were reported after 24 h.
    late_events = {d["batch"] for d in late["deliveries"] if d["dataClass"] == "event"}
    assert late_events == {"NWB101-24-002", "NWB101-24-007"}
    assert {d["dataClass"] for d in late["deliveries"]} == {"event"}
    database = f"sqlite:///{demo.directory / 'ledger.db'}"
    assert run_cli("verify", "--database", database).returncode == 0


TRACE_TERMS = """
query($b: String!) {
  traceBatch(id: $b) {
    termsInForce { version retroactive }
    parameterLimits { name versions { version } }
  }
}
"""


def test_every_demo_batch_s_trace_names_its_terms_and_limits(demo: Demo) -> None:
    batches = demo.story["batches"]
    assert batches, "the demo made no batches"
    for batch in batches:
        trace = demo.data(NORTHWIND, TRACE_TERMS, b=batch)["traceBatch"]
        assert [t["version"] for t in trace["termsInForce"]][:1] == [1], batch
        assert trace["termsInForce"][0]["retroactive"] is True
        assert {p["name"] for p in trace["parameterLimits"]}, batch
    inspected = demo.story["inspected_batch"]
    trace = demo.data(REGULATOR, TRACE_TERMS, b=inspected)["traceBatch"]
    assert trace["termsInForce"] and trace["parameterLimits"]
