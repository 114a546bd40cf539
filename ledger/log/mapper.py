"""What the events table holds: each signed event's Merkle leaf bytes, verbatim.

:class:`LeafMapper` stores a signed event as ``RFC8785({"envelope", "recorded_at",
"signature", "written_by"})``, the bytes the Merkle tree hashes; ``written_by`` is the
mapper's :attr:`LeafMapper.written_by` (the software and schema version of this process,
set by the ledger) and is left out when that is ``None``. The leaf is put together from the
envelope's canonical bytes, which the envelope the append path records keeps
(:meth:`ledger.log.envelope.Envelope.signed_copy`), so it is encoded once, when it is
checked. Reading an event back, hashing its
leaf and checking its signature then need no re-encoding: the signed envelope is a slice
of the stored state. What the library's events carry besides is derived on the way back:
``timestamp`` is ``recorded_at``, and a creating event's ``originator_topic`` is its
aggregate's topic.

Rows written in the library's JSON form (``{"timestamp": ..., "envelope": ...}``), as
ledgers created before this form held, are read as they always were.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from datetime import datetime
from functools import cache
from typing import Any, cast

import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    find_id_convertor,
)
from eventsourcing.utils import get_topic, resolve_topic

from ledger.canonical import CanonicalObject, canonical_bytes
from ledger.log.leaf import is_leaf, leaf_from_parts, written_by_part

__all__ = ["LeafMapper"]

_SIGNED_FIELDS = frozenset({"timestamp", "envelope", "signature", "recorded_at"})


@cache
def _creating_topics() -> dict[str, str]:
    """Topic of each creating event type, to the topic of the aggregate it creates."""
    from ledger.domain.catalogue import registered_types

    return {
        get_topic(getattr(spec.aggregate, spec.type)): get_topic(spec.aggregate)
        for spec in registered_types()
        if spec.creates
    }


class LeafMapper(Mapper[Any]):
    """The library's mapper, storing signed events in leaf form (see the module)."""

    written_by: Mapping[str, Any] | None = None
    """What new leaves record as ``written_by`` (``None``: nothing, as earlier releases)."""

    def to_stored_event(self, domain_event: DomainEventProtocol[Any]) -> StoredEvent:
        """Signed events in leaf form; any other event as the library stores it."""
        state = vars(domain_event)
        topic = get_topic(type(domain_event))
        if not self._is_plain_signed(state, topic, type(domain_event)):
            # The library's JSON keeps the attributes' order; with the timestamp first it
            # can never be read as a leaf (an event decoded from one starts with envelope).
            ordered = object.__new__(type(domain_event))
            object.__setattr__(ordered, "__dict__", {"timestamp": state["timestamp"], **state})
            return super().to_stored_event(ordered)
        leaf = leaf_from_parts(
            _envelope_bytes(state["envelope"]),
            canonical_bytes(state["recorded_at"]),
            canonical_bytes(state["signature"]),
            self._written_by_part(),
        )
        if self.compressor:
            leaf = self.compressor.compress(leaf)
        if self.cipher:
            leaf = self.cipher.encrypt(leaf)
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=topic,
            state=leaf,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[Any]:
        """Rebuild the library's event from a leaf; other forms as the library does."""
        state = self.plain_state(stored_event.state)
        if not is_leaf(state):
            return super().to_domain_event(stored_event)
        cls = resolve_topic(stored_event.topic)
        try:
            fields: dict[str, Any] = orjson.loads(state)
            fields["timestamp"] = datetime.fromisoformat(fields["recorded_at"])
        except (ValueError, TypeError, KeyError) as exc:
            raise MapperDeserialisationError(
                f"stored event at version {stored_event.originator_version} of "
                f"{stored_event.originator_id} is not a readable leaf: {exc}"
            ) from exc
        creates = _creating_topics().get(stored_event.topic)
        if creates is not None:
            fields["originator_topic"] = creates
        convert = find_id_convertor(cls, cast("Hashable", type(stored_event.originator_id)))
        fields["originator_id"] = convert(stored_event.originator_id)
        fields["originator_version"] = stored_event.originator_version
        # Leaves are written in class version 1 only: upcast as the library does.
        for version in range(1, getattr(cls, "class_version", 1)):
            getattr(cls, f"upcast_v{version}_v{version + 1}")(fields)
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", fields)
        return event  # type: ignore[no-any-return]

    def _written_by_part(self) -> bytes:
        # Encoded once for each value the ledger sets, not once per event.
        written_by = self.written_by
        cached = self.__dict__.get("_written_by_encoded")
        if cached is None or cached[0] is not written_by:
            cached = (written_by, written_by_part(written_by))
            self.__dict__["_written_by_encoded"] = cached
        return cached[1]

    def plain_state(self, state: bytes) -> bytes:
        """``state`` with the configured cipher and compressor undone."""
        data = bytes(state)
        if self.cipher:
            data = self.cipher.decrypt(data)
        if self.compressor:
            data = self.compressor.decompress(data)
        return data

    @staticmethod
    def _is_plain_signed(state: dict[str, Any], topic: str, cls: type) -> bool:
        # Exactly the signed fields (and a creating event's own aggregate topic), in a
        # first class version: then nothing is lost by keeping only the leaf.
        if getattr(cls, "class_version", 1) != 1:
            return False
        names = state.keys() - {"originator_id", "originator_version"}
        if names == _SIGNED_FIELDS:
            return topic not in _creating_topics()
        return names == _SIGNED_FIELDS | {"originator_topic"} and state[
            "originator_topic"
        ] == _creating_topics().get(topic)


def _envelope_bytes(value: Mapping[str, Any]) -> bytes:
    """The canonical bytes of an envelope: those a :class:`CanonicalObject` keeps (the
    signed envelope, as the append path records it), else encoded now."""
    if isinstance(value, CanonicalObject):
        return value.canonical
    return canonical_bytes(dict(value))
