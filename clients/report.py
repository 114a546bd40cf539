"""``report.html`` of an evidence bundle, drawn by :mod:`ledger.evidence.report` (below
the server and the client, so that the console's download and ``export-evidence`` draw
the same page)."""

from __future__ import annotations

from ledger.evidence.report import render_report

__all__ = ["render_report"]
