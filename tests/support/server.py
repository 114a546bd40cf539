"""A real HTTP server for API tests: uvicorn on a free loopback port, in a thread.

``running_server(settings, notary_key)`` serves ``api.app.create_app`` and yields a
:class:`Server` that makes signed clients for any :class:`~tests.support.world.Actor`:
``server.http(actor)`` (an ``httpx2.Client``), ``server.gql(actor)`` (a ``gql`` client over
HTTP) and ``server.ws(actor)`` (a ``gql`` client over ``graphql-transport-ws``), signing for
the served ledger's origin and this server's host (``server.auth(actor)`` and
``server.init_payload(actor)`` are their signatures). Pass ``None`` for an unsigned client.
``server.call(actor, query, variables)`` runs one operation and returns ``(data, errors)``
without raising on GraphQL errors; ``server.submit(actor, type, subject, payload,
meaning=...)`` signs and stores one event.

A test server commits the read-access log (R11) only when a test asks
(``server.services.read_log.commit_pending()``) unless ``read_log_interval`` is given, so
that reads never append ``ReadsRecorded`` events behind a test that expects a still log.
"""

from __future__ import annotations

import dataclasses
import functools
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import uvicorn
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXTransport
from gql.transport.websockets import WebsocketsTransport
from nacl.signing import SigningKey
from starlette.applications import Starlette

from api.app import create_app
from api.limits import Limits
from api.services import Services
from clients.http_signing import PartyAuth, connection_init_payload
from ledger.clock import SYSTEM, Clock
from ledger.config import Settings
from tests.support.world import Actor

__all__ = ["NEXT_VERSION", "SUBMIT", "Server", "codes", "running_server"]

_START_TIMEOUT = 60.0
_WHEN_ASKED = 1e9
"""A read-log interval no test outlives."""


@functools.cache
def client_tls() -> ssl.SSLContext:
    """The clients' default TLS context, made once: making one loads the system's
    certificate authorities (~50 ms), and the suite makes thousands of clients."""
    return httpx2.create_ssl_context()


@dataclass
class Server:
    """A running API server and client factories for it."""

    url: str
    uvicorn: uvicorn.Server
    app: Starlette

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    @property
    def ws_url(self) -> str:
        return self.graphql_url.replace("http://", "ws://", 1)

    @property
    def origin(self) -> str:
        """The served ledger's origin: what requests to it are signed for."""
        return self.services.ledger.identity.origin

    def auth(self, actor: Actor) -> PartyAuth:
        """Signs as ``actor`` for this server's ledger."""
        return PartyAuth(actor.party_id, actor.key, origin=self.origin)

    def init_payload(self, actor: Actor) -> dict[str, str]:
        """A ``connection_init`` payload signed by ``actor`` for this server's websocket."""
        return connection_init_payload(
            actor.party_id, actor.key, url=self.ws_url, origin=self.origin
        )

    @property
    def services(self) -> Services:
        """The server's services (it runs in this process)."""
        services: Services = self.app.state.services
        return services

    def http(self, actor: Actor | None, *, timeout: float = 30.0) -> httpx2.Client:
        auth = self.auth(actor) if actor is not None else None
        return httpx2.Client(base_url=self.url, auth=auth, timeout=timeout, verify=client_tls())

    def gql(self, actor: Actor | None, *, timeout: float = 60.0) -> Client:
        auth = self.auth(actor) if actor is not None else None
        transport = HTTPXTransport(
            url=self.graphql_url, auth=auth, timeout=timeout, verify=client_tls()
        )
        return Client(transport=transport, execute_timeout=timeout)

    def ws(self, actor: Actor | None, *, payload: dict[str, Any] | None = None) -> Client:
        if payload is None and actor is not None:
            payload = self.init_payload(actor)
        transport = WebsocketsTransport(
            url=self.ws_url,
            init_payload=payload or {},
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        )
        return Client(transport=transport, execute_timeout=30)

    def call(
        self, actor: Actor | None, query: str, variables: dict[str, Any] | None = None
    ) -> tuple[Any, list[dict[str, Any]]]:
        """Run one operation over signed HTTP: ``(data, errors)``."""
        request = GraphQLRequest(query, variable_values=variables)
        with self.gql(actor) as session:
            try:
                return session.execute(request), []
            except TransportQueryError as error:
                return error.data, list(error.errors or [])

    def prepare(
        self,
        actor: Actor,
        type_: str,
        subject: uuid.UUID,
        payload: dict[str, Any],
        *,
        meaning: str,
        reason: str | None = None,
    ) -> tuple[dict[str, Any], str]:
        """An envelope for the subject's next version (asked of the API), signed."""
        data, errors = self.call(actor, NEXT_VERSION, {"s": str(subject)})
        assert errors == [], errors
        next_version = data["nextVersion"]
        envelope = actor.envelope(
            type_,
            subject,
            payload,
            version=next_version["version"],
            prev=next_version["prev"],
            meaning=meaning,
            reason=reason,
        )
        return envelope, actor.sign(envelope)

    def submit(
        self,
        actor: Actor,
        type_: str,
        subject: uuid.UUID,
        payload: dict[str, Any],
        *,
        meaning: str,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Sign and submit one event through ``submitEvent``; its ``Submitted`` answer."""
        envelope, signature = self.prepare(
            actor, type_, subject, payload, meaning=meaning, reason=reason
        )
        data, errors = self.call(actor, SUBMIT, {"e": envelope, "s": signature})
        assert errors == [], errors
        return dict(data["submitEvent"])


NEXT_VERSION = "query($s: ID!) { nextVersion(subject: $s) { version prev } }"
SUBMIT = """
mutation($e: JSON!, $s: String!) {
  submitEvent(envelope: $e, signature: $s) {
    position leafIndex recordedAt eventHash
    event { type subject version signer envelope signature leafIndex }
  }
}
"""


def codes(errors: list[dict[str, Any]]) -> list[str]:
    """The ``extensions.code`` of each error."""
    return [str((error.get("extensions") or {}).get("code")) for error in errors]


def _free_socket() -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only then, else loopback requests
    # wait on delayed ACKs.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@contextmanager
def running_server(
    settings: Settings,
    notary_key: SigningKey,
    *,
    limits: Limits | None = None,
    clock: Clock = SYSTEM,
    read_log_interval: float = _WHEN_ASKED,
) -> Iterator[Server]:
    """Serve the API for ``settings`` until the block ends (committing the read-access log
    every ``read_log_interval`` seconds: by default only when a test asks)."""
    settings = dataclasses.replace(settings, read_log_interval=read_log_interval)
    app = create_app(settings, notary_key=notary_key, limits=limits, clock=clock)
    sock = _free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="websockets-sansio")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the API server did not start: see the log above")
        time.sleep(0.02)
    try:
        yield Server(f"http://127.0.0.1:{port}", server, app)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def wait_until_serving(
    url: str, process: subprocess.Popen[bytes], log: Path, *, verify: Any = True
) -> None:
    """Wait until a ``cmo-ledger serve`` child answers ``/healthz``; fail with its log when
    it exits or stays silent for 90 s (``verify``: the TLS check, as httpx takes it)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"cmo-ledger serve exited:\n{log.read_text()}")
        try:
            if httpx2.get(f"{url}/healthz", timeout=2, verify=verify).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"cmo-ledger serve did not answer:\n{log.read_text()}")
