"""The request-signing scheme (RFC 9421 HTTP Message Signatures) both sides of the wire
share: the server checks it (``api.auth``), clients sign with it (``clients.http_signing``).
Its label, algorithm, the covered components, the websocket tag and payload members live
here, below both.

A signature binds a request to one ledger twice over: ``"@authority"`` is the host (and
port) the request is sent to, as the server receives it in ``Host``, and ``"ledger-origin"``
is the ``Ledger-Origin`` header, which must be the ledger's origin (``ledger { origin }``,
answered unsigned). A request signed for one ledger therefore does not verify at another
that admits the same key. ``Content-Digest`` must carry a ``sha-256`` member.
"""

from __future__ import annotations

__all__ = [
    "ALGORITHM",
    "BINDING_COMPONENTS",
    "DIGEST_ALGORITHM",
    "HTTP_COMPONENTS",
    "LABEL",
    "ORIGIN_FIELD",
    "WS_COMPONENTS",
    "WS_HOST",
    "WS_TAG",
]

LABEL = "sig"
ALGORITHM = "ed25519"
ORIGIN_FIELD = "ledger-origin"
DIGEST_ALGORITHM = "sha-256"
# What a signature made before requests were bound to one ledger lacks.
BINDING_COMPONENTS = ("@authority", ORIGIN_FIELD)
HTTP_COMPONENTS = ("@method", "@authority", "@path", "content-digest", ORIGIN_FIELD)
WS_COMPONENTS = ("@method", "@authority", "@path", ORIGIN_FIELD)
WS_TAG = "graphql-transport-ws"
# The connection_init member naming the Host the websocket was opened with.
WS_HOST = "host"
