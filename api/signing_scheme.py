"""The request-signing scheme shared by the server (``api.auth``) and clients
(``clients.http_signing``): labels, covered components and the websocket tag.

Kept free of heavy imports so a client can import it alone.
"""

from __future__ import annotations

__all__ = ["ALGORITHM", "HTTP_COMPONENTS", "LABEL", "WS_COMPONENTS", "WS_TAG"]

LABEL = "sig"
ALGORITHM = "ed25519"
HTTP_COMPONENTS = ("@method", "@path", "content-digest")
WS_COMPONENTS = ("@method", "@path")
WS_TAG = "graphql-transport-ws"
