"""Prometheus text exposition (format 0.0.4) of the process's counters and the log's gauges.

Counters are per process (each worker exposes its own); gauges read the shared database:

* ``cmo_ledger_http_requests_total{path}``   HTTP requests and websocket connections served
* ``cmo_ledger_errors_total{code}``           GraphQL errors answered, by ``extensions.code``
* ``cmo_ledger_appends_total``                events appended through this process
* ``cmo_ledger_console_sign_ins_total{party,outcome}``  console sign-ins: ``accepted``,
  ``failed``, ``expired`` or ``replayed`` (``party`` is ``unknown`` when no challenge matched)
* ``cmo_ledger_lockouts_total{party}``        identities this process locked after repeated
  failed sign-ins (R9, :mod:`api.security_log`)
* ``cmo_ledger_log_size``                     position of the log's last event
* ``cmo_ledger_tree_size``                    leaves in the Merkle tree
* ``cmo_ledger_checkpoint_size``              tree size of the latest signed checkpoint
* ``cmo_ledger_projection_lag``               log positions the read models are behind
* ``cmo_ledger_subscribers``                  live subscriptions in this process
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping

__all__ = ["CONTENT_TYPE", "Metrics", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_HELP = {
    "cmo_ledger_http_requests_total": ("counter", "HTTP requests and websockets served."),
    "cmo_ledger_errors_total": ("counter", "GraphQL errors answered, by code."),
    "cmo_ledger_appends_total": ("counter", "Events appended through this process."),
    "cmo_ledger_console_sign_ins_total": ("counter", "Console sign-ins, by party and outcome."),
    "cmo_ledger_lockouts_total": ("counter", "Identities locked after failed sign-ins."),
    "cmo_ledger_log_size": ("gauge", "Position of the log's last event."),
    "cmo_ledger_tree_size": ("gauge", "Leaves in the Merkle tree."),
    "cmo_ledger_checkpoint_size": ("gauge", "Tree size of the latest signed checkpoint."),
    "cmo_ledger_projection_lag": ("gauge", "Log positions the read models are behind."),
    "cmo_ledger_subscribers": ("gauge", "Live subscriptions in this process."),
}


class Metrics:
    """Thread-safe counters of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.appends = 0
        self.sign_ins: Counter[tuple[str, str]] = Counter()
        self.lockouts: Counter[str] = Counter()

    def request(self, path: str) -> None:
        """Count one request to ``path``."""
        with self._lock:
            self.requests[path] += 1

    def error(self, code: str) -> None:
        """Count one error answered with ``code``."""
        with self._lock:
            self.errors[code] += 1

    def appended(self, count: int) -> None:
        """Count ``count`` appended events."""
        with self._lock:
            self.appends += count

    def sign_in(self, party: str, outcome: str) -> None:
        """Count one console sign-in of ``party`` with ``outcome``."""
        with self._lock:
            self.sign_ins[(party, outcome)] += 1

    def lockout(self, party: str) -> None:
        """Count one lockout of ``party``."""
        with self._lock:
            self.lockouts[party] += 1

    def counters(self) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        """A snapshot of every counter, by metric name and label set."""
        with self._lock:
            return {
                "cmo_ledger_http_requests_total": {
                    (("path", path),): n for path, n in sorted(self.requests.items())
                },
                "cmo_ledger_errors_total": {
                    (("code", code),): n for code, n in sorted(self.errors.items())
                },
                "cmo_ledger_appends_total": {(): self.appends},
                "cmo_ledger_console_sign_ins_total": {
                    (("party", party), ("outcome", outcome)): n
                    for (party, outcome), n in sorted(self.sign_ins.items())
                },
                "cmo_ledger_lockouts_total": {
                    (("party", party),): n for party, n in sorted(self.lockouts.items())
                },
            }


def render(metrics: Metrics, gauges: Mapping[str, float]) -> str:
    """The exposition text of the counters and ``gauges`` (metric name to value)."""
    samples = metrics.counters()
    for name, value in gauges.items():
        samples[name] = {(): value}
    lines: list[str] = []
    for name, (kind, help_text) in _HELP.items():
        if name not in samples:
            continue
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples[name].items():
            lines.append(f"{name}{_labels(labels)} {_number(value)}")
    return "\n".join(lines) + "\n"


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in labels)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
