"""A large batch's signatures checked ahead by worker processes.

Checking an envelope's signature costs as much as every other check of it together, and
needs nothing but three byte strings: the public key, the signed bytes and the signature.
For a large batch, the ledger hands those of each envelope to worker processes (on the
machine's other cores) before it checks the envelopes in order. The check in order then
skips the signature of an envelope only when a worker verified exactly the bytes it would
verify, with exactly the key it resolves then; anything else (a key the batch itself
changes, a part a worker failed to check) is verified in process, as without workers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from ledger.runtime import worker_pool

__all__ = ["SIGNATURES_AHEAD_FROM", "Checks", "SignatureWorkers"]

SIGNATURES_AHEAD_FROM = 64
"""Envelopes in a batch from which their signatures are checked ahead by workers."""

Signed = tuple[bytes, bytes, bytes]
"""A public key, the bytes it signed, and the signature."""

_PARTS_PER_WORKER = 4  # the first part done early, the rest while the caller checks


def _verify_all(items: Sequence[Signed]) -> list[bool]:
    verified = []
    for key, message, signature in items:
        try:
            VerifyKey(key).verify(message, signature)
        except (BadSignatureError, ValueError, TypeError):
            verified.append(False)
        else:
            verified.append(True)
    return verified


class Checks:
    """The workers' verdicts on the signatures handed to them, by envelope index."""

    def __init__(self) -> None:
        self._asked: dict[int, tuple[Signed, Future[list[bool]], int]] = {}

    def add(
        self, indexes: Sequence[int], items: Sequence[Signed], part: Future[list[bool]]
    ) -> None:
        for offset, (index, item) in enumerate(zip(indexes, items, strict=True)):
            self._asked[index] = (item, part, offset)

    def asked(self, index: int) -> bool:
        """True when the workers were handed envelope ``index``."""
        return index in self._asked

    def verified(self, index: int, key: bytes, message: bytes, signature: bytes) -> bool:
        """True when a worker verified ``signature`` of ``message`` by ``key`` for envelope
        ``index``; False when it did not or was not asked (the caller verifies then)."""
        asked = self._asked.get(index)
        if asked is None or asked[0] != (key, message, signature):
            return False
        try:
            return asked[1].result()[asked[2]]
        except Exception:  # a worker lost: the caller verifies in process
            return False

    def cancel(self) -> None:
        for _, part, _ in self._asked.values():
            part.cancel()


class SignatureWorkers:
    """Worker processes (one per CPU), started on first use."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    def check(self, indexes: Sequence[int], items: Sequence[Signed]) -> Checks:
        """Start verifying ``items`` (envelope ``indexes[i]`` for ``items[i]``)."""
        checks = Checks()
        if not items:
            return checks
        if self._pool is None:
            self._pool = worker_pool(self.workers)
        size = max(1, -(-len(items) // (_PARTS_PER_WORKER * self.workers)))
        try:
            for at in range(0, len(items), size):
                part = items[at : at + size]
                checks.add(indexes[at : at + size], part, self._pool.submit(_verify_all, part))
        except BrokenExecutor:
            self.close()  # a worker was lost: the rest is checked in process, new ones start
        return checks

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
