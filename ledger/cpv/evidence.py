"""Checking a ``cpv`` answer offline (``verify-bundle`` check 9): its inputs as the query
hashed them, and a batch's summaries of its continuous tags from its signed events.

Only the standard library, numpy and :mod:`ledger.cpv`: no database, no server code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ledger.cpv.inputs import CpvInput, SummaryInput
from ledger.cpv.summary import ChunkStats, Summary, chunk_stats, combine

__all__ = ["analysis_inputs", "signed_summaries", "summary_problem"]


def analysis_inputs(analysis: Mapping[str, Any]) -> list[CpvInput] | list[SummaryInput]:
    """The rows of a ``cpv`` answer (its JSON) whose digest is its ``inputsDigest``: the
    results charted, or each point's summary and the answer's ``statistic``."""
    statistic = analysis.get("statistic")
    if statistic is None:
        return [
            CpvInput(point["batch"], record["recordId"], record["value"], record["limitsVersion"])
            for point in analysis["points"]
            for record in point["records"]
        ]
    rows = []
    for point in analysis["points"]:
        summary = point["summary"]
        outside = summary["timeOutsideLimitsMs"]
        rows.append(
            SummaryInput(
                batch=point["batch"],
                tag=summary["tag"],
                statistic=str(statistic),
                count=summary["count"],
                mean=summary["mean"],
                min=summary["min"],
                max=summary["max"],
                time_outside_limits_ms=None if outside is None else int(outside),
                limits_version=summary["limitsVersion"],
                chunks=tuple(summary["chunks"]),
            )
        )
    return rows


def signed_summaries(payloads: Iterable[Mapping[str, Any]]) -> dict[str, Summary]:
    """Each tag's summary over the current chunks of one batch's ``DataSubmitted`` and
    ``DataCorrected`` payloads (in log order), without limits: count, mean, min, max and
    chunks, as the summaries view computes them."""
    chunks: dict[str, tuple[str, ChunkStats]] = {}
    for payload in payloads:
        for digest in payload.get("supersedes_chunks") or []:
            chunks.pop(str(digest), None)
        for entry in payload.get("series") or []:
            for chunk in entry["chunks"]:
                stats = chunk_stats(chunk["sha256"], chunk["content"], None)
                chunks[chunk["sha256"]] = (entry["tag"], stats)
    tags: dict[str, list[ChunkStats]] = {}
    for tag, stats in chunks.values():
        tags.setdefault(tag, []).append(stats)
    return {tag: combine(found) for tag, found in tags.items()}


def summary_problem(row: SummaryInput, signed: Mapping[str, Summary]) -> str | None:
    """How a charted summary differs from the one its batch's signed chunks give, if it
    does (the time outside limits is not compared: it needs the limits as the ledger knew
    them when each chunk arrived)."""
    found = signed.get(row.tag)
    if found is None:
        return f"{row.tag} of batch {row.batch} is in no signed event of the bundle"
    for name in ("chunks", "count", "mean", "min", "max"):
        charted, computed = getattr(row, name), getattr(found, name)
        if name == "chunks":
            charted, computed = sorted(charted), sorted(computed)
        if charted != computed:
            return (
                f"the {name} of {row.tag} of batch {row.batch} is charted as {charted!r}; its "
                f"signed chunks give {computed!r}"
            )
    return None
