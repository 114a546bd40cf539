"""The reliability harness: ``cmo-ledger serve`` workers on one PostgreSQL database, signed
load clients that journal every acknowledgement, and the checks run afterwards.

* :func:`deployment` creates the ledger with ``cmo-ledger init`` (``CMO_LEDGER_PASSPHRASE``,
  ``CMO_LEDGER_KDF_PROFILE=min``) in a private schema, admits the parties of
  :mod:`tests.support.world` and an agreement in force, then runs
  ``cmo-ledger serve --workers N``; it yields a :class:`Deployment`.
* :func:`run_load` runs :class:`LoadClient` threads (signed ``submitEvent``,
  ``submitEvents`` and ``auditTrail``) for a bounded time and number of operations, fires
  the faults it is given on the way, and collects every checkpoint served meanwhile. Each
  acknowledged event goes into the :class:`Journal`; a submission without an answer is
  settled by reading ``nextVersion``, as a client would.
* :func:`check_after_load` asserts that nothing acknowledged was lost or doubled, no batch
  was half-written, leaf indexes are dense, ``cmo-ledger verify`` passes, every checkpoint
  seen extends the final one, and the read models equal a rebuild.
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import sqlalchemy as sa

from clients.http_signing import PartyAuth
from clients.offline import verify_checkpoint, verify_consistency_between
from ledger.application import Ledger
from ledger.config import Settings
from ledger.domain.parties import NOTARY
from ledger.domain.subjects import batch_subject
from ledger.keystore import load_keystore
from ledger.log.checkpoints import Checkpoints
from ledger.log.envelope import event_hash
from ledger.log.tree import LEAVES
from ledger.log.verify import verify_ledger
from ledger.timeutil import format_utc, now_utc
from projections.rebuild import rebuild, status
from projections.runner import Projector
from tests.projections.conftest import differences, snapshot
from tests.support.agreements import propose_and_sign
from tests.support.batches import CMO, SPONSOR, data_payload, discrete_records
from tests.support.server import client_tls
from tests.support.world import ORIGIN, Actor, World, build_world

__all__ = [
    "Deployment",
    "Figures",
    "Journal",
    "LoadClient",
    "check_after_load",
    "deployment",
    "hang_ups",
    "run_load",
]

PASSPHRASE = "reliability suite passphrase"
READERS = (SPONSOR, CMO, "agency-inspectorate")
#: Codes that mean the ledger refused the request and stored nothing.
REFUSALS = frozenset(
    {
        "VALIDATION_FAILED",
        "BAD_SIGNATURE",
        "UNKNOWN_SIGNER",
        "KEY_REVOKED",
        "VERSION_CONFLICT",
        "FORBIDDEN",
        "NOT_FOUND",
        "LIMIT_EXCEEDED",
        "UNAUTHENTICATED",
    }
)
Item = tuple[dict[str, Any], str]

SUBMIT_ONE = """
mutation($e: JSON!, $s: String!) { submitEvent(envelope: $e, signature: $s) {
  position leafIndex eventHash } }
"""
SUBMIT_MANY = """
mutation($events: [SignedEnvelopeInput!]!) { submitEvents(events: $events) {
  position leafIndex eventHash } }
"""
AUDIT = """
query($after: String) { auditTrail(first: 20, after: $after) {
  position edges { node { position leafIndex type } } pageInfo { endCursor hasNextPage } } }
"""
NEXT_VERSION = "query($s: ID!) { nextVersion(subject: $s) { version prev } }"
CONSISTENCY = """
query($from: Int!, $to: Int!) { consistencyProof(fromSize: $from, toSize: $to) { hashes } }
"""


# ------------------------------------------------------------------ deployment


@dataclass
class Deployment:
    """``cmo-ledger serve --workers N`` on a fresh ledger, and the world admitted to it."""

    url: str
    settings: Settings
    world: World
    agreement: uuid.UUID
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    workers: int = 1

    @property
    def ledger(self) -> Ledger:
        return self.world.ledger

    def client(self, party_id: str, *, timeout: float = 60.0) -> httpx2.Client:
        actor = self.world.notary if party_id == NOTARY else self.world[party_id]
        auth = PartyAuth(actor.party_id, actor.key, origin=self.ledger.identity.origin)
        return httpx2.Client(base_url=self.url, auth=auth, timeout=timeout, verify=client_tls())

    def worker_pids(self) -> list[int]:
        """The supervisor's live worker processes."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        found = []
        for pid in children.read_text().split():
            with suppress(OSError):
                command = Path(f"/proc/{pid}/cmdline").read_text()
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                if "resource_tracker" not in command and state not in ("Z", "X"):
                    found.append(int(pid))
        return found

    def kill_worker(self) -> int:
        """``kill -9`` one worker (the supervisor starts another); its pid."""
        pid = random.choice(self.worker_pids())
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_healthy(self, timeout: float = 120.0) -> dict[str, Any]:
        """``/healthz`` once it answers 200, with every worker alive."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            self._check_running()
            try:
                response = httpx2.get(f"{self.url}/healthz", timeout=5)
                last = response.status_code
                if response.status_code == 200 and self._all_workers_up():
                    return dict(response.json())
            except httpx2.HTTPError as error:
                last = error
            time.sleep(0.2)
        raise AssertionError(f"the server is not healthy ({last!r}): {self.log_tail()}")

    def _all_workers_up(self) -> bool:
        # One worker runs in the serving process itself; more run under a supervisor.
        return self.workers == 1 or len(self.worker_pids()) == self.workers

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self, workers: int) -> None:
        self.workers = workers
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = [*_cli(), "serve", "--port", str(port), "--workers", str(workers)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.wait_healthy()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _check_running(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"the server exited: {self.log_tail()}")


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "cmo-ledger"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from clients.cli import main; main()"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(database_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMO_LEDGER_")}
    env.update(
        CMO_LEDGER_DATABASE_URL=database_url,
        CMO_LEDGER_DATA_DIR=str(data_dir),
        CMO_LEDGER_PASSPHRASE=PASSPHRASE,
        CMO_LEDGER_KDF_PROFILE="min",
        CMO_LEDGER_CHECKPOINT_INTERVAL="0.5",
    )
    return env


@contextmanager
def deployment(database_url: str, directory: Path, *, workers: int) -> Iterator[Deployment]:
    """A new ledger made by ``cmo-ledger init``, served by ``workers`` worker processes."""
    data_dir = directory / "data"
    env = server_env(database_url, data_dir)
    init = subprocess.run(
        [*_cli(), "init", "--origin", ORIGIN], env=env, capture_output=True, text=True
    )
    assert init.returncode == 0, init.stderr
    settings = Settings.from_env(env)
    _, notary_key = load_keystore(data_dir / "notary.key", PASSPHRASE)
    ledger = Ledger.open(settings)
    try:
        world = build_world(ledger, Actor(NOTARY, notary_key))
        agreement = propose_and_sign(world)
        deployed = Deployment("", settings, world, agreement, env, directory / "serve.log")
        try:
            deployed.start(workers)
            yield deployed
        finally:
            deployed.stop()
    finally:
        ledger.close()


# --------------------------------------------------------------------- journal


@dataclass(frozen=True, slots=True)
class Ack:
    """An acknowledged event: where the server said it stored it."""

    event_hash: str
    position: int
    leaf_index: int | None


@dataclass(frozen=True, slots=True)
class Submission:
    """What one request carried: its events' hashes, in order."""

    hashes: tuple[str, ...]
    subject: uuid.UUID


@dataclass
class Journal:
    """Everything the clients were told, shared by their threads."""

    acknowledged: list[Ack] = field(default_factory=list)
    submissions: list[Submission] = field(default_factory=list)
    #: Unanswered submissions that ``nextVersion`` showed stored / not stored.
    landed_unanswered: list[Submission] = field(default_factory=list)
    lost_unanswered: list[Submission] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    checkpoints: dict[int, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def latency(self, operation: str, seconds: float) -> None:
        with self._lock:
            self.latencies.setdefault(operation, []).append(seconds)

    def error(self, code: str) -> None:
        with self._lock:
            self.errors[code] += 1

    def submitted(self, submission: Submission) -> None:
        with self._lock:
            self.submissions.append(submission)

    def acknowledge(self, acks: Sequence[Ack]) -> None:
        with self._lock:
            self.acknowledged.extend(acks)

    def settled(self, submission: Submission, landed: bool) -> None:
        with self._lock:
            (self.landed_unanswered if landed else self.lost_unanswered).append(submission)

    def violation(self, message: str) -> None:
        with self._lock:
            self.violations.append(message)


# ---------------------------------------------------------------------- client


class Outcome:
    """One GraphQL call's answer: ``data`` when it succeeded, else an error ``code``."""

    def __init__(self, data: dict[str, Any] | None, code: str | None) -> None:
        self.data = data
        self.code = code


def call(client: httpx2.Client, query: str, variables: dict[str, Any]) -> Outcome:
    """POST one operation; transport failures and 5xx become codes, never exceptions.

    A 5xx is known by the code of the error document it carries (the server's 503 answers
    ``UNAVAILABLE`` when the database does not answer the signature check), and by its
    status alone when it carries none."""
    try:
        response = client.post("/graphql", json={"query": query, "variables": variables})
    except httpx2.HTTPError as error:
        return Outcome(None, f"TRANSPORT:{type(error).__name__}")
    try:
        body = response.json()
    except ValueError:
        body = None
    errors = (body.get("errors") if isinstance(body, dict) else None) or []
    if not isinstance(body, dict) or (response.status_code >= 500 and not errors):
        return Outcome(None, f"HTTP_{response.status_code}")
    if errors:
        return Outcome(None, str((errors[0].get("extensions") or {}).get("code")))
    return Outcome(body.get("data"), None)


class LoadClient(threading.Thread):
    """A CMO's uploader: registers batches and submits their data, one event at a time or
    several in one all-or-nothing request, and reads the audit trail in between."""

    def __init__(
        self, deployed: Deployment, journal: Journal, number: int, stop: threading.Event
    ) -> None:
        super().__init__(name=f"load-client-{number}", daemon=True)
        self.deployed = deployed
        self.journal = journal
        self.number = number
        self.stop_event = stop
        self.rng = random.Random(number)
        self.prefix = uuid.uuid4().hex[:6]
        self.batches = 0
        self.subject: uuid.UUID | None = None
        self.version = 0
        self.prev: str | None = None
        self.operations = 0
        self.max_operations = 100_000

    def run(self) -> None:
        try:
            self._run()
        except Exception as error:  # the test fails on it, with the client's story
            self.journal.violation(f"{self.name} crashed: {error!r}")
            raise

    def _run(self) -> None:
        reader = READERS[self.number % len(READERS)]
        with self.deployed.client(CMO) as writer, self.deployed.client(reader) as auditor:
            while not self.stop_event.is_set() and self.operations < self.max_operations:
                self.operations += 1
                if self.rng.random() < 0.15:
                    self._read_audit_trail(auditor)
                else:
                    self._write(writer)

    # -- writing

    def _write(self, client: httpx2.Client) -> None:
        if self.subject is None or self.version >= 12:
            self._new_batch()
        count = 1 if self.rng.random() < 0.5 else self.rng.randint(2, 5)
        items = self._chain(count)
        submission = Submission(tuple(event_hash(e, s) for e, s in items), self._subject())
        self.journal.submitted(submission)
        operation = "submitEvent" if count == 1 else "submitEvents"
        start = time.perf_counter()
        if count == 1:
            outcome = call(client, SUBMIT_ONE, {"e": items[0][0], "s": items[0][1]})
        else:
            events = [{"envelope": e, "signature": s} for e, s in items]
            outcome = call(client, SUBMIT_MANY, {"events": events})
        if outcome.data is not None:
            self.journal.latency(operation, time.perf_counter() - start)
            answers = outcome.data[operation]
            answers = [answers] if count == 1 else answers
            acks = [Ack(a["eventHash"], a["position"], a["leafIndex"]) for a in answers]
            self.journal.acknowledge(acks)
            self._advance(items)
            return
        assert outcome.code is not None
        self.journal.error(outcome.code)
        self._settle(client, submission, items, outcome.code)

    def _new_batch(self) -> None:
        self.batches += 1
        self.subject = None
        self.version = 0
        self.prev = None

    def _subject(self) -> uuid.UUID:
        return batch_subject(self._batch_name())

    def _batch_name(self) -> str:
        return f"LOAD-{self.prefix}-{self.number:02d}-{self.batches:05d}"

    def _chain(self, count: int) -> list[Item]:
        """``count`` signed events continuing the current batch (registering it first)."""
        items: list[Item] = []
        version, prev = self.version, self.prev
        for _ in range(count):
            version += 1
            items.append(batch_event(self.deployed, self._batch_name(), version, prev))
            prev = event_hash(*items[-1])
        return items

    def _advance(self, items: Sequence[Item]) -> None:
        self.subject = self._subject()
        self.version = int(items[-1][0]["version"])
        self.prev = event_hash(*items[-1])

    def _settle(
        self, client: httpx2.Client, submission: Submission, items: Sequence[Item], code: str
    ) -> None:
        """Tell from ``nextVersion`` whether an unanswered submission was stored."""
        answer = self._next_version(client, submission.subject)
        last = items[-1][0]
        if answer == (int(last["version"]) + 1, submission.hashes[-1]):
            if code in REFUSALS:
                self.journal.violation(f"{code} answered, yet stored: {submission}")
            self.journal.settled(submission, landed=True)
            self._advance(items)
        elif answer == (int(items[0][0]["version"]), items[0][0]["prev"]):
            self.journal.settled(submission, landed=False)
        else:
            self.journal.violation(f"half-written or foreign: {submission} -> {answer}")
            self._new_batch()

    def _next_version(self, client: httpx2.Client, subject: uuid.UUID) -> tuple[int, str | None]:
        deadline = time.monotonic() + 120
        while True:
            outcome = call(client, NEXT_VERSION, {"s": str(subject)})
            if outcome.data is not None:
                found = outcome.data["nextVersion"]
                return int(found["version"]), found["prev"]
            if time.monotonic() > deadline:
                raise AssertionError(f"nextVersion never answered: {outcome.code}")
            time.sleep(0.2)

    # -- reading

    def _read_audit_trail(self, client: httpx2.Client) -> None:
        start = time.perf_counter()
        outcome = call(client, AUDIT, {"after": None})
        if outcome.data is None:
            assert outcome.code is not None
            self.journal.error(outcome.code)
            return
        self.journal.latency("auditTrail", time.perf_counter() - start)


class CheckpointWatcher(threading.Thread):
    """Collects every distinct checkpoint ``GET /checkpoint`` serves."""

    def __init__(self, url: str, journal: Journal, stop: threading.Event) -> None:
        super().__init__(name="checkpoint-watcher", daemon=True)
        self.url = url
        self.journal = journal
        self.stop_event = stop

    def run(self) -> None:
        with httpx2.Client(base_url=self.url, timeout=10) as client:
            while not self.stop_event.wait(0.25):
                with suppress(httpx2.HTTPError):
                    response = client.get("/checkpoint")
                    if response.status_code == 200:
                        size = int(response.text.split("\n")[1])
                        self.journal.checkpoints.setdefault(size, response.text)


# ------------------------------------------------------------------------ load

Fault = tuple[float, str, Callable[[], object]]


@dataclass
class Figures:
    """What a run held: throughput, errors by code, latencies, faults survived."""

    seconds: float
    clients: int
    workers: int
    events: int
    requests: int
    errors: dict[str, int]
    latency_ms: dict[str, tuple[float, float]]
    faults: list[str]
    landed_unanswered: int
    lost_unanswered: int
    checkpoints_seen: int

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        latency = ", ".join(
            f"{op} p50 {p50:.0f} ms p99 {p99:.0f} ms"
            for op, (p50, p99) in sorted(self.latency_ms.items())
        )
        errors = ", ".join(f"{code} {n}" for code, n in sorted(self.errors.items())) or "none"
        return (
            f"{self.workers} workers, {self.clients} clients, {self.seconds:.0f} s: "
            f"{self.events} events acknowledged ({self.events_per_second:.0f} events/s), "
            f"{self.requests} requests; errors: {errors}; {latency}; "
            f"unanswered submissions: {self.landed_unanswered} stored, "
            f"{self.lost_unanswered} not stored; {self.checkpoints_seen} checkpoints seen; "
            f"faults: {', '.join(self.faults) or 'none'}"
        )


def _percentiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        value = values[0] * 1000 if values else 0.0
        return value, value
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


def run_load(
    deployed: Deployment,
    *,
    clients: int,
    seconds: float,
    faults: Sequence[Fault] = (),
    journal: Journal | None = None,
) -> tuple[Journal, Figures]:
    """Load the deployment for ``seconds``, firing each fault ``(at, name, action)`` on the
    way; return the journal (a new one unless given) and the run's figures."""
    journal = journal or Journal()
    stop = threading.Event()
    threads: list[threading.Thread] = [
        LoadClient(deployed, journal, number, stop) for number in range(clients)
    ]
    threads.append(CheckpointWatcher(deployed.url, journal, stop))
    started = time.monotonic()
    for thread in threads:
        thread.start()
    fired: list[str] = []
    try:
        for at, name, action in sorted(faults, key=lambda fault: fault[0]):
            stop.wait(max(0.0, started + at - time.monotonic()))
            action()
            fired.append(name)
        stop.wait(max(0.0, started + seconds - time.monotonic()))
    finally:
        stop.set()
        for thread in threads:
            thread.join(180)
    elapsed = time.monotonic() - started
    assert not any(thread.is_alive() for thread in threads), "a load client hung"
    figures = Figures(
        seconds=elapsed,
        clients=clients,
        workers=deployed.workers,
        events=len(journal.acknowledged),
        requests=sum(len(v) for v in journal.latencies.values()) + sum(journal.errors.values()),
        errors=dict(journal.errors),
        latency_ms={op: _percentiles(v) for op, v in journal.latencies.items()},
        faults=fired,
        landed_unanswered=len(journal.landed_unanswered),
        lost_unanswered=len(journal.lost_unanswered),
        checkpoints_seen=len(journal.checkpoints),
    )
    return journal, figures


# ---------------------------------------------------------------------- faults

ROOT = Path(__file__).resolve().parents[2]


def kill_projector_mid_page(deployed: Deployment, attempts: int = 5) -> None:
    """Start a projector replaying every view in another process and ``kill -9`` it in the
    middle of a page's transaction, while the servers keep projecting.

    The servers' projectors compete for the same pages, so the child may find the work
    done before it applies a page, or lose a deadlock to them; then it is started again.
    (A rebuild, which keeps state between pages, would stop: it must not share its views.)
    """
    url = deployed.settings.database_url
    command = [sys.executable, "-m", "tests.support.projector_child", url, "replay"]
    for _ in range(attempts):
        child = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert child.stdout is not None and child.stderr is not None
        line = child.stdout.readline()
        if line.startswith("applying"):
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            assert child.returncode == -signal.SIGKILL
            return
        child.wait(60)
        said = child.stderr.read()
        # Under heavy load the database may break a deadlock by failing the child's
        # transaction (nothing of it is applied): the fault is then injected again.
        assert child.returncode == 0 or "DeadlockDetected" in said, said
    raise AssertionError(f"the projector never applied a page in {attempts} attempts")


def restart_postgres(database_url: str) -> None:
    """Restart the PostgreSQL cluster serving ``database_url`` (found by its port among
    ``pg_lsclusters``): every connection of the servers breaks."""
    port = sa.make_url(database_url).port or 5432
    clusters = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True
    ).stdout
    found = [line.split()[:2] for line in clusters.splitlines() if line.split()[2] == str(port)]
    assert found, f"no PostgreSQL cluster on port {port}:\n{clusters}"
    version, name = found[0]
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def hang_up(deployed: Deployment, actor: Actor, body: bytes, *, send: int) -> None:
    """Send a signed ``POST /graphql`` carrying the first ``send`` bytes of ``body``, then
    reset the connection without reading any answer."""
    request = httpx2.Request(
        "POST",
        f"{deployed.url}/graphql",
        content=body,
        headers={"content-type": "application/json"},
    )
    PartyAuth(actor.party_id, actor.key, origin=deployed.ledger.identity.origin).sign(request)
    lines = [f"POST {request.url.raw_path.decode()} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in request.headers.items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    port = request.url.port
    assert port is not None
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body[:send])
        # SO_LINGER 0: close with a reset, as a client that dies does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def subject_of(item: Item) -> uuid.UUID:
    """The subject an item's envelope is about."""
    return uuid.UUID(str(item[0]["subject"]))


def stored_once(ledger: Ledger, item: Item) -> bool:
    """Whether the log holds ``item``'s event exactly once."""
    wanted = event_hash(*item)
    subject = subject_of(item)
    found = [r for r in ledger.iter_log() if r.subject == subject]
    return [r.event.event_hash() for r in found].count(wanted) == 1


def submit_body(item: Item) -> bytes:
    envelope, signature = item
    document = {"query": SUBMIT_ONE, "variables": {"e": envelope, "s": signature}}
    return json.dumps(document).encode()


def next_version(deployed: Deployment, subject: uuid.UUID) -> tuple[int, str | None]:
    """``nextVersion`` of ``subject``, asked until the server answers."""
    with deployed.client(CMO) as client:
        deadline = time.monotonic() + 120
        while True:
            outcome = call(client, NEXT_VERSION, {"s": str(subject)})
            if outcome.data is not None:
                found = outcome.data["nextVersion"]
                return int(found["version"]), found["prev"]
            assert time.monotonic() < deadline, f"nextVersion never answered: {outcome.code}"
            time.sleep(0.2)


def resubmit(deployed: Deployment, item: Item) -> Outcome:
    """Submit one signed event over a fresh connection; the outcome."""
    with deployed.client(CMO) as client:
        return call(client, SUBMIT_ONE, {"e": item[0], "s": item[1]})


def hang_ups(deployed: Deployment, batch: str, journal: Journal | None = None) -> Counter[str]:
    """Four clients in turn submit the next event of ``batch``, hang up before the answer
    and recover (:func:`hang_up_and_recover`); what ``nextVersion`` told them, counted."""
    said: Counter[str] = Counter()
    item = batch_event(deployed, batch, 1, None)
    for version in range(1, 5):
        if version > 1:
            item = batch_event(deployed, batch, version, event_hash(*item))
        said[hang_up_and_recover(deployed, item, journal)] += 1
    return said


def hang_up_and_recover(deployed: Deployment, item: Item, journal: Journal | None = None) -> str:
    """Submit ``item`` and hang up before the answer, then recover as a client must: read
    ``nextVersion``; if it shows the event stored, done (a resubmission is refused with
    ``VERSION_CONFLICT``); if not, resubmit, which either stores it or is refused because the
    first request landed meanwhile. Either way the event ends up stored exactly once.

    Returns what ``nextVersion`` said: ``"landed"`` or ``"not landed"``.
    """
    envelope, signature = item
    subject = subject_of(item)
    before = (int(envelope["version"]), envelope["prev"])
    after = (int(envelope["version"]) + 1, event_hash(envelope, signature))
    submission = Submission((after[1],), subject)
    hang_up(deployed, deployed.world[envelope["signer"]], submit_body(item), send=10**9)
    seen = next_version(deployed, subject)
    assert seen in (before, after), f"nextVersion {seen} is neither before nor after"
    outcome = resubmit(deployed, item)
    if seen == after:
        assert outcome.code == "VERSION_CONFLICT", "a stored event was stored again"
    else:
        assert outcome.data is not None or outcome.code == "VERSION_CONFLICT", outcome.code
    assert next_version(deployed, subject) == after
    if journal is not None:
        journal.submitted(submission)
        if outcome.data is not None:
            answer = outcome.data["submitEvent"]
            journal.acknowledge([Ack(answer["eventHash"], answer["position"], answer["leafIndex"])])
        else:
            journal.settled(submission, landed=True)
    return "landed" if seen == after else "not landed"


def batch_event(deployed: Deployment, batch: str, version: int, prev: str | None) -> Item:
    """Event ``version`` of a batch, signed by the CMO: ``BatchRegistered`` under the
    deployment's agreement first, then ``DataSubmitted`` of one run's discrete results."""
    if version == 1:
        type_, meaning = "BatchRegistered", "authored"
        payload = {
            "agreement": str(deployed.agreement),
            "batch": batch,
            "product": "NWB-101",
            "site": "contoso-site-a",
            "started_at": format_utc(now_utc() - timedelta(days=14)),
        }
    else:
        type_, meaning = "DataSubmitted", "submitted"
        payload = data_payload("discrete", discrete_records(f"R{version}"))
    cmo = deployed.world[CMO]
    envelope = cmo.envelope(
        type_, batch_subject(batch), payload, version=version, prev=prev, meaning=meaning
    )
    return envelope, cmo.sign(envelope)


# ---------------------------------------------------------------------- checks


def wait_until_settled(deployed: Deployment, timeout: float = 120.0) -> dict[str, Any]:
    """Wait, with the servers running, until the read models, the tree and a signed
    checkpoint all reach the log's head; the final ``/healthz``."""
    ledger = deployed.ledger
    deadline = time.monotonic() + timeout
    while True:
        health = deployed.wait_healthy()
        head = ledger.head()
        lags = {s.view: s.lag for s in status(ledger)}
        size = _event_count(ledger)
        if health["checkpoint"] == size and health["head"] == head and not any(lags.values()):
            return health
        if time.monotonic() > deadline:
            raise AssertionError(f"never settled: {health}, {size} events, lags {lags}")
        time.sleep(0.25)


def _event_count(ledger: Ledger) -> int:
    table = ledger.storage.events_table
    with ledger.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0)


def check_after_load(deployed: Deployment, journal: Journal) -> None:
    """Every guarantee the load must leave standing (see the module docstring)."""
    assert journal.violations == []
    assert journal.acknowledged or journal.landed_unanswered, "the load stored nothing"
    wait_until_settled(deployed)
    final = _final_checkpoint(deployed)
    check_checkpoints_extend(deployed, journal, final)
    deployed.stop()
    check_log_against_journal(deployed.ledger, journal)
    check_verify_passes(deployed.ledger)
    check_views_equal_a_rebuild(deployed.ledger)


def check_log_against_journal(ledger: Ledger, journal: Journal) -> None:
    """Each acknowledged event stored once where the server said; batches all or nothing;
    leaf indexes dense and in log order."""
    log = list(ledger.iter_log())
    where: dict[str, list[int]] = {}
    for recorded in log:
        where.setdefault(recorded.event.event_hash(), []).append(recorded.position)
    doubled = [h for h, positions in where.items() if len(positions) > 1]
    assert doubled == [], f"events stored more than once: {doubled[:3]}"
    leaves = _leaves(ledger)
    assert [index for index, _ in leaves] == list(range(len(log))), "leaf indexes are not dense"
    assert [position for _, position in leaves] == [r.position for r in log]
    leaf_of = {position: index for index, position in leaves}
    for ack in journal.acknowledged:
        assert where.get(ack.event_hash) == [ack.position], f"acknowledged event lost: {ack}"
        if ack.leaf_index is not None:
            assert leaf_of[ack.position] == ack.leaf_index, f"leaf index changed: {ack}"
    for submission in journal.submissions:
        stored = [h in where for h in submission.hashes]
        assert all(stored) or not any(stored), f"half-written batch: {submission}"
    for submission in journal.landed_unanswered:
        assert all(h in where for h in submission.hashes), submission
    for submission in journal.lost_unanswered:
        assert not any(h in where for h in submission.hashes), submission


def _leaves(ledger: Ledger) -> list[tuple[int, int]]:
    with ledger.engine.connect() as conn:
        query = sa.select(LEAVES.c.leaf_index, LEAVES.c.position).order_by(LEAVES.c.leaf_index)
        return [(int(index), int(position)) for index, position in conn.execute(query)]


def check_verify_passes(ledger: Ledger) -> None:
    """``ledger.log.verify`` (what ``cmo-ledger verify`` runs) re-checks every signature,
    chain link, leaf, tree node and checkpoint."""
    report = verify_ledger(ledger, workers=1)
    assert report.ok, [str(problem) for problem in report.problems[:5]]
    assert report.events == _event_count(ledger) and report.checkpoints >= 2


def _final_checkpoint(deployed: Deployment) -> str:
    response = httpx2.get(f"{deployed.url}/checkpoint", timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def check_checkpoints_extend(deployed: Deployment, journal: Journal, final_note: str) -> None:
    """Every checkpoint signed during the run (each one stored, and each one
    ``/checkpoint`` served) verifies and is a prefix of the final one, by consistency
    proofs served over the API and checked with ``clients.offline``."""
    vkey = _vkey(deployed)
    final = verify_checkpoint(final_note, vkey, origin=ORIGIN)
    notes = {c.size: c.note for c in Checkpoints(deployed.ledger).all()}
    for size, note in journal.checkpoints.items():
        assert (
            verify_checkpoint(note, vkey).root_hash
            == verify_checkpoint(notes[size], vkey).root_hash
        )
    assert len(notes) >= 2, "too few checkpoints were signed to compare"
    with deployed.client(SPONSOR) as client:
        for size, note in sorted({**notes, **journal.checkpoints}.items()):
            old = verify_checkpoint(note, vkey, origin=ORIGIN)
            assert old.size == size <= final.size
            outcome = call(client, CONSISTENCY, {"from": size, "to": final.size})
            assert outcome.data is not None, outcome.code
            hashes = [base64.b64decode(h) for h in outcome.data["consistencyProof"]["hashes"]]
            verify_consistency_between(old, final, hashes)


def _vkey(deployed: Deployment) -> str:
    return Checkpoints(deployed.ledger).vkey()


def check_views_equal_a_rebuild(ledger: Ledger) -> None:
    """The read models the servers kept, row for row, equal the log replayed from scratch."""
    projector = Projector(ledger)
    served = snapshot(projector)
    assert served["audit"]["proj_audit"], "the views are empty"
    rebuild(ledger)
    assert differences(served, snapshot(projector)) == []
