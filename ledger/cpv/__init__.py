"""Continued process verification statistics: control charts, run rules, capability, inputs
and per-batch summaries of continuous tags.

Pure computation (numpy and scipy; no database, no I/O). Every bad input is refused with
:class:`ledger.errors.ValidationFailed` naming the field. See ``docs/cpv.md``.
"""

from __future__ import annotations

from ledger.cpv.capability import (
    Capability,
    Index,
    Interval,
    Normality,
    anderson_darling,
    capability_individuals,
    capability_subgroups,
    cp_interval,
    cpk_interval,
)
from ledger.cpv.charts import (
    ControlLimits,
    IndividualsChart,
    SubgroupChart,
    individuals_chart,
    xbar_r_chart,
    xbar_s_chart,
)
from ledger.cpv.constants import ChartFactors, factors
from ledger.cpv.inputs import CpvInput, SummaryInput, canonical_input_bytes, inputs_digest
from ledger.cpv.rules import (
    NELSON,
    WESTERN_ELECTRIC,
    Violation,
    evaluate_chart,
    nelson,
    western_electric,
)
from ledger.cpv.summary import STATISTICS, Summary, chunk_stats, combine

__all__ = [
    "NELSON",
    "STATISTICS",
    "WESTERN_ELECTRIC",
    "Capability",
    "ChartFactors",
    "ControlLimits",
    "CpvInput",
    "Index",
    "IndividualsChart",
    "Interval",
    "Normality",
    "SubgroupChart",
    "Summary",
    "SummaryInput",
    "Violation",
    "anderson_darling",
    "canonical_input_bytes",
    "capability_individuals",
    "capability_subgroups",
    "chunk_stats",
    "combine",
    "cp_interval",
    "cpk_interval",
    "evaluate_chart",
    "factors",
    "individuals_chart",
    "inputs_digest",
    "nelson",
    "western_electric",
    "xbar_r_chart",
    "xbar_s_chart",
]
