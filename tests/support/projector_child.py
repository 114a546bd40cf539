"""A projector in a child process, for the crash tests.

``python -m tests.support.projector_child URL rebuild`` drops every view and replays the
log in pages of ten events. After the audit view has written its rows of a page, and
before the page commits, it prints ``applying <position>`` and lingers a moment: a parent
that kills it then kills it in the middle of a page's transaction.

``python -m tests.support.projector_child URL replay`` drops every view and replays the log
as a projector does, page by page with no state kept between pages, lingering likewise:
it may share the pages with other processes' projectors (a rebuild would stop instead).

``python -m tests.support.projector_child URL resume`` starts as a projector does (tables
and indexes checked) and catches the views up, then prints ``done <position>``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

from ledger.application import Ledger, Recorded
from ledger.config import Settings
from ledger.log.follow import catch_up_together
from projections.audit import AuditView
from projections.rebuild import drop_views, rebuild
from projections.runner import Projector, view_classes


def _linger_in_every_page() -> None:
    original = AuditView.apply

    def apply(self: AuditView, session: Any, events: Sequence[Recorded]) -> None:
        original(self, session, events)
        print(f"applying {events[-1].position}", flush=True)
        time.sleep(0.05)

    AuditView.apply = apply  # type: ignore[method-assign]


def main(url: str, mode: str) -> None:
    ledger = Ledger(Settings(database_url=url))
    try:
        if mode == "rebuild":
            _linger_in_every_page()
            rebuild(ledger, page_size=10)
        elif mode == "replay":
            _linger_in_every_page()
            views = [cls(ledger) for cls in view_classes()]
            for view in views:
                view.create_tables()
            drop_views(views)
            catch_up_together(views, page_size=10)
        else:
            projector = Projector(ledger)
            projector.create_tables()  # as every start does: restores indexes a rebuild left out
            print(f"done {projector.catch_up()}", flush=True)
    finally:
        ledger.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
