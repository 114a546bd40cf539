"""A witness: a party that cosigns the ledger's checkpoints after checking them.

The witness keeps, in a small JSON file, the last checkpoint it cosigned. To cosign a new
one it checks the notary's signature on it (with the log's verifier key) and a
consistency proof from the last cosigned checkpoint to it, then returns a C2SP
``cosignature/v1`` line (Ed25519, timestamped) whose key name is the party id. A
checkpoint that does not extend what the witness saw, or a smaller one, is refused with
:class:`WitnessRefused`, and the state file is left as it was.

The module imports only the standard library, PyNaCl, ``ledger.log.merkle``, ``ledger.log.notes``
and ``clients.offline``, so a witness runs anywhere, without the ledger's database stack.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from nacl.signing import SigningKey

from clients.offline import VerificationError, verify_checkpoint, verify_consistency_between
from ledger.log.notes import Checkpoint, NoteError, cosign, cosigner_vkey, parse_note

__all__ = ["Witness", "WitnessRefused"]

_STATE_VERSION = 1


class WitnessRefused(VerificationError):
    """The witness will not cosign this checkpoint; the message says why."""


class Witness:
    """Cosigns checkpoints of one log as party ``party_id``.

    ``log_vkey`` is the notary's verifier key text; ``state_file`` holds the last
    cosigned checkpoint (created on the first cosignature).
    """

    def __init__(
        self,
        party_id: str,
        signing_key: SigningKey,
        state_file: Path | str,
        log_vkey: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.party_id = party_id
        self.state_file = Path(state_file)
        self.log_vkey = log_vkey.strip()
        self._key = signing_key
        self._clock = clock

    def vkey(self) -> str:
        """This witness's cosigner verifier key (``<party>+<key ID>+base64(0x04 || key)``)."""
        return cosigner_vkey(self.party_id, self._key.verify_key)

    @property
    def last(self) -> Checkpoint | None:
        """The last checkpoint this witness cosigned, or ``None``."""
        if not self.state_file.exists():
            return None
        try:
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
            return Checkpoint(
                str(state["origin"]),
                int(state["size"]),
                base64.b64decode(state["root"], validate=True),
            )
        except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise WitnessRefused(f"witness state {self.state_file} is unreadable: {exc}") from exc

    def cosign(self, checkpoint_note: str, consistency_proof: Sequence[bytes]) -> str:
        """A cosignature line for ``checkpoint_note``, once it is proven to extend the last
        cosigned checkpoint by ``consistency_proof`` (ignored for a first checkpoint)."""
        try:
            checkpoint = verify_checkpoint(checkpoint_note, self.log_vkey)
            body, _ = parse_note(checkpoint_note)
        except (VerificationError, NoteError) as exc:
            raise WitnessRefused(f"not a checkpoint signed by the log: {exc}") from exc
        last = self.last
        if last is not None:
            self._check_extends(last, checkpoint, consistency_proof)
        line = cosign(body, self.party_id, self._key, int(self._clock()))
        if last is None or checkpoint.size > last.size:
            self._save(checkpoint)
        return line

    @staticmethod
    def _check_extends(last: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> None:
        if new.origin != last.origin:
            raise WitnessRefused(
                f"checkpoint is of {new.origin!r}; this witness follows {last.origin!r}"
            )
        if new.size < last.size:
            raise WitnessRefused(
                f"checkpoint size {new.size} is smaller than the size {last.size} already cosigned"
            )
        try:
            verify_consistency_between(last, new, proof)
        except VerificationError as exc:
            raise WitnessRefused(
                f"checkpoint of size {new.size} is not consistent with the checkpoint of size "
                f"{last.size} this witness cosigned: {exc}"
            ) from exc

    def _save(self, checkpoint: Checkpoint) -> None:
        state = {
            "version": _STATE_VERSION,
            "origin": checkpoint.origin,
            "size": checkpoint.size,
            "root": base64.b64encode(checkpoint.root_hash).decode("ascii"),
        }
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        # Write, flush and rename: a crash leaves the old state or the new, never half.
        fd, tmp = tempfile.mkstemp(dir=self.state_file.parent, prefix=".witness-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(state, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.state_file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
