"""The request-signing scheme (RFC 9421 HTTP Message Signatures) both sides of the wire
share: the server checks it (``api.auth``), clients sign with it (``clients.http_signing``).
Its label, algorithm, the covered components and the websocket tag live here, below both.
"""

from __future__ import annotations

__all__ = ["ALGORITHM", "HTTP_COMPONENTS", "LABEL", "WS_COMPONENTS", "WS_TAG"]

LABEL = "sig"
ALGORITHM = "ed25519"
HTTP_COMPONENTS = ("@method", "@path", "content-digest")
WS_COMPONENTS = ("@method", "@path")
WS_TAG = "graphql-transport-ws"
