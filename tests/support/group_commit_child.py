"""A group commit in a child process, for the crash test.

``python -m tests.support.group_commit_child URL FILE`` opens the ledger at ``URL`` and
submits each request of ``FILE`` (JSON: a list of ``[envelope, signature]``) from a thread
of its own, all through one :class:`~ledger.group_commit.GroupCommit` whose leader waits
until every request has joined, so that they share one transaction. Once the
transaction has inserted the events, before it commits, the child prints ``inserted`` and
lingers; a parent that kills it then kills it mid-transaction. A request acknowledged
prints ``acknowledged <position>``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ledger.application import Ledger
from ledger.config import Settings
from ledger.group_commit import GroupCommit


class _WaitForAll(GroupCommit):
    expected = 0

    def _lead(self) -> None:
        while len(self._queue) < self.expected:
            time.sleep(0.01)
        super()._lead()


def _linger_after_insert(ledger: Ledger) -> None:
    original = ledger.save

    def save(*events: Any, **kwargs: Any) -> Any:
        recordings = original(*events, **kwargs)
        print(f"inserted {len(events)}", flush=True)
        time.sleep(60)
        return recordings

    ledger.save = save  # type: ignore[method-assign]


def main(url: str, requests_file: str) -> None:
    requests = json.loads(Path(requests_file).read_text())
    ledger = Ledger.open(Settings(database_url=url))
    _linger_after_insert(ledger)
    writer = _WaitForAll(ledger)
    writer.expected = len(requests)

    def submit(envelope: dict[str, Any], signature: str) -> None:
        appended = writer.append(envelope, signature)
        print(f"acknowledged {appended.position}", flush=True)

    threads = [threading.Thread(target=submit, args=tuple(pair)) for pair in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
