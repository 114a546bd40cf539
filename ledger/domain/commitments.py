"""Commitments: a hash that binds a party to a value it does not disclose to everyone.

A commitment is hex ``SHA-256(salt || value)``; whoever later receives the salt and the
value (the *opening*) checks them against it.

A confidential element of a record is signed as ``{"commitment": "<hex>"}`` over the
element's canonical JSON value (RFC 8785) and a fresh 32-byte salt
(:func:`element_commitment`); its :class:`Opening` travels beside the envelope, is checked
against the commitment before anything is stored, and is stored apart from the log, so
the signed envelope can be shown to every party that may know the event while the value
goes only to those the grants allow. :func:`commit_records` turns clear records into
committed ones with their openings; :class:`Openings` is what a command's rule takes them
from. Light (standard library and ``rfc8785``), for clients and verifiers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import rfc8785

from ledger.errors import ValidationFailed

__all__ = [
    "COMMITMENT",
    "SALT_BYTES",
    "Opening",
    "Openings",
    "commit_records",
    "commitment_of",
    "committed",
    "element_commitment",
    "opens",
]

#: The one member of a committed element: ``{"commitment": "<64 hex>"}``.
COMMITMENT = "commitment"
SALT_BYTES = 32
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


def commitment_of(salt: bytes, value: bytes) -> str:
    """The commitment to ``value``: hex ``SHA-256(salt || value)``."""
    return hashlib.sha256(salt + value).hexdigest()


def opens(commitment: str, salt: bytes, value: bytes) -> bool:
    """True when ``salt`` and ``value`` are the opening of ``commitment``."""
    return hmac.compare_digest(commitment_of(salt, value), commitment)


def element_commitment(salt: bytes, value: Any) -> str:
    """The commitment to a confidential element's value (its RFC 8785 bytes)."""
    return commitment_of(salt, rfc8785.dumps(value))


def committed(value: Any) -> str | None:
    """The commitment hex when ``value`` is a committed element, else ``None``."""
    if type(value) is str:
        return None  # most members are: answered before the costlier Mapping check
    if isinstance(value, Mapping) and set(value) == {COMMITMENT}:
        found = value[COMMITMENT]
        if isinstance(found, str) and _HEX64.match(found):
            return found
    return None


@dataclass(frozen=True, slots=True)
class Opening:
    """The salt and value of one committed element of one record."""

    record: str
    element: str
    salt: str
    value: str

    @property
    def commitment(self) -> str:
        """The commitment this opening opens."""
        return element_commitment(bytes.fromhex(self.salt), self.value)

    def opens(self, commitment: str) -> bool:
        """True when this is the opening of ``commitment``."""
        return hmac.compare_digest(self.commitment, commitment)

    def as_json(self) -> dict[str, str]:
        """The opening as submitted: ``{"record", "element", "salt", "value"}``."""
        return {
            "record": self.record,
            "element": self.element,
            "salt": self.salt,
            "value": self.value,
        }

    @classmethod
    def parse(cls, raw: Any, field: str) -> Opening:
        """An opening from its JSON form; ``ValidationFailed`` naming ``field`` otherwise."""
        if not isinstance(raw, Mapping):
            raise ValidationFailed("an opening is a JSON object", field=field)
        members = {"record", "element", "salt", "value"}
        extra = sorted(set(raw) - members)
        if extra:
            raise ValidationFailed(
                f"an opening has only record, element, salt and value, not {extra[0]!r}",
                field=f"{field}.{extra[0]}",
            )
        for name in sorted(members):
            if not isinstance(raw.get(name), str):
                raise ValidationFailed(f"{name} must be a string", field=f"{field}.{name}")
        if not _HEX64.match(raw["salt"]):
            raise ValidationFailed(
                f"the salt is {SALT_BYTES} random bytes in lowercase hex (64 characters)",
                field=f"{field}.salt",
            )
        return cls(raw["record"], raw["element"], raw["salt"], raw["value"])


@dataclass
class Openings:
    """The openings submitted beside one envelope, as its rule takes them.

    The rule :meth:`take` s the opening of each committed element it checks and names the
    commitments an owner :meth:`purge` s; the ledger stores what was taken and deletes what
    was purged in the transaction that stores the event, and refuses openings left over.
    """

    offered: list[Opening] = field(default_factory=list)
    taken: dict[str, Opening] = field(default_factory=dict)
    purged: list[str] = field(default_factory=list)
    prefix: str = "openings"

    @classmethod
    def parse(cls, raw: Sequence[Any] | None, prefix: str = "openings") -> Openings:
        """Openings from their JSON form (``None``: none were sent)."""
        if raw is None:
            return cls(prefix=prefix)
        if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
            raise ValidationFailed("openings are a list of objects", field=prefix)
        offered = [Opening.parse(item, f"{prefix}[{i}]") for i, item in enumerate(raw)]
        seen: set[tuple[str, str]] = set()
        for index, opening in enumerate(offered):
            key = (opening.record, opening.element)
            if key in seen:
                raise ValidationFailed(
                    f"record {opening.record} element {opening.element} is opened twice",
                    field=f"{prefix}[{index}]",
                )
            seen.add(key)
        return cls(offered, prefix=prefix)

    def take(self, record: str, element: str, commitment: str, field: str) -> Opening:
        """The opening of ``element`` of ``record``, checked against ``commitment``."""
        for index, opening in enumerate(self.offered):
            if (opening.record, opening.element) != (record, element):
                continue
            if not opening.opens(commitment):
                raise ValidationFailed(
                    f"the opening of record {record} element {element} does not match its "
                    "commitment: SHA-256(salt || RFC 8785 value) differs",
                    field=f"{self.prefix}[{index}].value",
                )
            self.taken[commitment] = opening
            return opening
        raise ValidationFailed(
            f"element {element} of record {record} is committed but no opening was sent "
            f"beside the envelope: send it in {self.prefix}",
            field=field,
        )

    def leftover(self) -> list[tuple[int, Opening]]:
        """The openings no commitment took, with their index."""
        taken = {id(o) for o in self.taken.values()}
        return [(i, o) for i, o in enumerate(self.offered) if id(o) not in taken]

    def purge(self, commitments: Iterable[str]) -> None:
        """Delete the openings of ``commitments`` with the event being stored."""
        self.purged.extend(commitments)


def commit_records(
    records: Iterable[Mapping[str, Any]],
    elements: Iterable[str],
    salt: Callable[[], bytes] = lambda: secrets.token_bytes(SALT_BYTES),
) -> tuple[list[dict[str, Any]], list[Opening]]:
    """``records`` with each text member named in ``elements`` replaced by its commitment,
    and the openings to send beside the envelope."""
    names = frozenset(elements)
    result: list[dict[str, Any]] = []
    openings: list[Opening] = []
    for record in records:
        copy = dict(record)
        for member in sorted(names & set(copy)):
            value = copy[member]
            if not isinstance(value, str):  # left for the ledger to refuse, naming it
                continue
            opening = Opening(str(copy["id"]), member, salt().hex(), value)
            copy[member] = {COMMITMENT: opening.commitment}
            openings.append(opening)
        result.append(copy)
    return result, openings
