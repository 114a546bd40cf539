"""The per-request context every resolver reads through ``info.context``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from api.auth import Caller
from api.errors import Unauthenticated

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.websockets import WebSocket
    from strawberry.dataloader import DataLoader

    from api.limits import Limits
    from api.services import Services
    from ledger.application import Ledger
    from ledger.config import Settings

__all__ = ["Context"]


@dataclass
class Context:
    """One request (or one websocket connection): who calls, and what serves it.

    ``dataloaders`` is new for every request, so cached loads never cross callers.
    ``connection_params`` is the websocket's ``connection_init`` payload.
    """

    ledger: Ledger
    settings: Settings
    limits: Limits
    services: Services
    party: Caller | None = None
    request: Request | WebSocket | None = None
    response: Response | WebSocket | None = None
    dataloaders: dict[str, DataLoader[Any, Any]] = field(default_factory=dict)
    connection_params: dict[str, Any] | None = None

    def require_party(self) -> Caller:
        """The authenticated caller; ``UNAUTHENTICATED`` for an unsigned request."""
        if self.party is None:
            raise Unauthenticated(
                "sign the request with your party key (HTTP Message Signatures); "
                "unsigned callers may read only the `ledger` field and the schema (introspection)"
            )
        return self.party
