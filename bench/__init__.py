"""Benchmarks (not tests): ``python -m bench`` runs every ``bench/bench_*.py`` module's ``main()``.

``CMO_BENCH_SCALE`` picks the size: ``small`` (default, seconds) or ``full`` (the
sizes the requirements name, e.g. a 1,000,000-row import).
"""

from __future__ import annotations

import os

__all__ = ["SCALES", "scale"]

SCALES = ("small", "full")


def scale() -> str:
    """The scale named by ``CMO_BENCH_SCALE``: ``small`` unless set to ``full``."""
    value = os.environ.get("CMO_BENCH_SCALE", "small")
    if value not in SCALES:
        raise SystemExit(f"CMO_BENCH_SCALE is {value!r}: set it to small or full")
    return value
