"""The API server for the demo: uvicorn on loopback, in a thread of this process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from nacl.signing import SigningKey

from api.app import KEEP_ALIVE_SECONDS, create_app
from ledger.config import Settings
from ledger.errors import ConfigurationError

__all__ = ["DemoServer", "running"]

_START_TIMEOUT = 60.0


@dataclass
class DemoServer:
    """A server that is up: its base URL and the thread serving it."""

    url: str
    thread: threading.Thread

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C stops it)."""
        while self.thread.is_alive():
            self.thread.join(0.5)


def _bind(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only then, else loopback requests
    # wait on delayed ACKs.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"cannot listen on {host}:{port} ({exc.strerror}): choose another --port (0: any)",
            field="port",
        ) from None
    sock.listen(128)
    return sock


@contextmanager
def running(
    settings: Settings, notary_key: SigningKey, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[DemoServer]:
    """Serve the ledger of ``settings`` until the block ends (port 0: a free port)."""
    app = create_app(settings, notary_key=notary_key)
    sock = _bind(host, port)
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="on",
        ws="websockets-sansio",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise ConfigurationError("the API server did not start: see the log above")
        time.sleep(0.02)
    try:
        yield DemoServer(f"http://{host}:{sock.getsockname()[1]}", thread)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
