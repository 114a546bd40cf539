"""What verification finds: each problem, where, and how grave; the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ledger.domain.key_history import exit_status

if TYPE_CHECKING:
    pass


# --------------------------------------------------------------------------- results


COMPROMISED_SEVERITY = "compromised"
"""The severity of an event signed under a compromised key (the log may be intact)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: where (position and leaf index, when known) and what."""

    position: int | None
    leaf_index: int | None
    message: str
    severity: str = "error"
    """``error`` (the log is not intact) or ``compromised`` (signed under a compromised key)."""

    def __str__(self) -> str:
        if self.position is not None and self.leaf_index is not None:
            where = f"position {self.position} (leaf {self.leaf_index}): "
        elif self.position is not None:
            where = f"position {self.position}: "
        elif self.leaf_index is not None:
            where = f"leaf {self.leaf_index}: "
        else:
            where = ""
        return f"{where}{self.message}"


@dataclass
class Report:
    """What a verification found."""

    events: int = 0
    checkpoints: int = 0
    stored_leaves: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        """Problems that make the ledger fail verification."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def compromised(self) -> list[Problem]:
        """Events signed under a compromised key (the log itself may still be intact)."""
        return [p for p in self.problems if p.severity == COMPROMISED_SEVERITY]

    @property
    def ok(self) -> bool:
        """True when the log is intact (events under compromised keys aside)."""
        return not self.errors

    @property
    def exit_status(self) -> int:
        """0 clean, 1 the log is not intact, 2 only events signed under a compromised key."""
        return exit_status(intact=self.ok, compromised=bool(self.compromised))


# ------------------------------------------------------------------------ findings


class Findings:
    """Problems found so far, and the positions that failed."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.failed: set[int] = set()

    def error(self, position: int | None, index: int | None, message: str) -> None:
        self.problems.append(Problem(position, index, message))
        if position is not None:
            self.failed.add(position)

    def compromised(self, position: int | None, index: int | None, message: str) -> None:
        self.problems.append(Problem(position, index, message, COMPROMISED_SEVERITY))
