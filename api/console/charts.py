"""Control charts of a batch's continuous tags, drawn on the server as inline SVG.

A chart is geometry only (:class:`Chart`): the template writes the SVG elements, so every
label passes through the template's escaping and no script or style attribute is needed.
The series comes from the API (``Batch.continuous``), bucketed by the API when it holds
more than :data:`MAX_POINTS` points; the limits are the parameter's versions in force
while the batch ran (``BatchTrace.parameterLimits``), each drawn over the time it was in
force: action limits solid, alert limits dashed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "MAX_POINTS",
    "Chart",
    "ControlLine",
    "IndexChart",
    "LimitLine",
    "Mark",
    "Tick",
    "bucket_width",
    "chart",
    "index_chart",
    "parse_time",
]

MAX_POINTS = 2000
"""Points a chart draws at most per series; above, the API's buckets (means) are drawn."""
WIDTH, HEIGHT = 900, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 12, 28


@dataclass(frozen=True, slots=True)
class Tick:
    """An axis label at ``at`` (pixels along its axis)."""

    at: float
    label: str


@dataclass(frozen=True, slots=True)
class LimitLine:
    """One limit of one version, over the time it was in force (pixels)."""

    x1: float
    x2: float
    y: float
    level: str
    """``action`` or ``alert``."""
    side: str
    """``low`` or ``high``."""
    value: str
    version: int


@dataclass(frozen=True, slots=True)
class Chart:
    """Everything the template needs to draw one tag."""

    tag: str
    parameter: str | None
    unit: str
    points: int
    """Points the API holds in the range."""
    drawn: int
    """Points (or bucket means) drawn."""
    every: str | None
    """Bucket width, when downsampled."""
    line: str
    """The SVG polyline's ``points``."""
    limits: tuple[LimitLine, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM


def parse_time(text: str) -> datetime:
    """An RFC 3339 time as the API writes it."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def bucket_width(first: str, last: str, points: int) -> str | None:
    """The ``every`` that brings ``points`` spread from ``first`` to ``last`` under
    :data:`MAX_POINTS` buckets (``None``: draw them all)."""
    if points <= MAX_POINTS:
        return None
    span = (parse_time(last) - parse_time(first)).total_seconds()
    return f"{max(1, math.ceil(span / (MAX_POINTS - 1)))}s"


def _number(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


def _segments(
    versions: Sequence[Mapping[str, Any]], start: float, end: float
) -> list[tuple[float, float, Mapping[str, Any]]]:
    """Each version's ``(from, until)`` in epoch seconds, clipped to ``[start, end]``."""
    ordered = sorted(versions, key=lambda v: parse_time(v["effectiveFrom"]))
    found = []
    for index, version in enumerate(ordered):
        since = parse_time(version["effectiveFrom"]).timestamp()
        until = (
            parse_time(ordered[index + 1]["effectiveFrom"]).timestamp()
            if index + 1 < len(ordered)
            else math.inf
        )
        lo, hi = max(since, start), min(until, end)
        if lo < hi:
            found.append((lo, hi, version))
    return found


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    step = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= step)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(count + 2) if first + i * step <= high + 1e-9]


def chart(
    tag: str,
    series: Mapping[str, Any],
    parameter: Mapping[str, Any] | None,
) -> Chart | None:
    """The chart of one tag's ``series`` (an API ``Series``) with the limits of
    ``parameter`` (an API ``ParameterLimits``, or ``None``); ``None`` without points."""
    times = [parse_time(t).timestamp() for t in series["timestamps"]]
    values = [float(v) for v in series["values"]]
    if not times:
        return None
    start, end = times[0], times[-1]
    if end <= start:
        end = start + 1.0
    segments = _segments(parameter["versions"], start, end) if parameter else []
    limit_values = [
        number
        for _, _, version in segments
        for level in ("action", "alert")
        for side in ("low", "high")
        if (number := _number(version[level][side])) is not None
    ]
    low = min([*values, *limit_values])
    high = max([*values, *limit_values])
    pad = (high - low) * 0.08 or abs(high) * 0.01 or 1.0
    low, high = low - pad, high + pad

    def x(at: float) -> float:
        return round(LEFT + (at - start) / (end - start) * (WIDTH - LEFT - RIGHT), 1)

    def y(value: float) -> float:
        return round(TOP + (high - value) / (high - low) * (HEIGHT - TOP - BOTTOM), 1)

    lines = []
    for since, until, version in segments:
        for level in ("action", "alert"):
            for side in ("low", "high"):
                number = _number(version[level][side])
                if number is not None:
                    lines.append(
                        LimitLine(
                            x(since),
                            x(until),
                            y(number),
                            level,
                            side,
                            str(version[level][side]),
                            int(version["version"]),
                        )
                    )
    versions = parameter["versions"] if parameter else []
    unit = str(versions[-1]["unit"]) if versions else ""
    x_ticks = tuple(
        Tick(x(start + (end - start) * i / 4), _label_time(start + (end - start) * i / 4))
        for i in range(5)
    )
    y_ticks = tuple(Tick(y(v), f"{v:g}") for v in _ticks(low, high))
    return Chart(
        tag=tag,
        parameter=str(parameter["name"]) if parameter else None,
        unit=unit,
        points=int(series["points"]),
        drawn=len(values),
        every=series.get("every"),
        line=" ".join(f"{x(t)},{y(v)}" for t, v in zip(times, values, strict=True)),
        limits=tuple(lines),
        x_ticks=x_ticks,
        y_ticks=y_ticks,
    )


def _label_time(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).strftime("%m-%d %H:%M")


# -- index-based charts: one point per index (a control chart of batches) ------------------


@dataclass(frozen=True, slots=True)
class Mark:
    """One plotted point (pixels), its label and whether a rule names it."""

    x: float
    y: float
    index: int
    label: str
    value: float
    flagged: bool


@dataclass(frozen=True, slots=True)
class ControlLine:
    """A horizontal line across the whole plot: a centre line or a control limit."""

    y: float
    kind: str
    """``centre``, ``lower`` or ``upper``."""
    value: float


@dataclass(frozen=True, slots=True)
class IndexChart:
    """A chart of values by index with horizontal control lines."""

    title: str
    line: str
    """The SVG polyline's ``points``."""
    marks: tuple[Mark, ...]
    lines: tuple[ControlLine, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM


def index_chart(
    title: str,
    values: Sequence[float | None],
    labels: Sequence[str],
    lines: Mapping[str, float],
    flagged: Sequence[int] = (),
) -> IndexChart | None:
    """The chart of ``values`` at x = 0, 1, ... (a ``None`` value is not drawn: the first
    moving range), labelled by ``labels``, with ``lines`` (``centre``/``lower``/``upper``)
    drawn across; the points at ``flagged`` indexes are marked. ``None`` without points."""
    shown = [(i, v) for i, v in enumerate(values) if v is not None]
    if not shown:
        return None
    numbers = [v for _, v in shown] + list(lines.values())
    low, high = min(numbers), max(numbers)
    pad = (high - low) * 0.08 or abs(high) * 0.01 or 1.0
    low, high = low - pad, high + pad
    last = max(len(values) - 1, 1)

    def x(at: float) -> float:
        return round(LEFT + 12 + at / last * (WIDTH - LEFT - RIGHT - 24), 1)

    def y(value: float) -> float:
        return round(TOP + (high - value) / (high - low) * (HEIGHT - TOP - BOTTOM), 1)

    chosen = set(flagged)
    marks = tuple(Mark(x(i), y(v), i, labels[i], v, i in chosen) for i, v in shown)
    step = max(1, math.ceil(len(values) / 12))
    return IndexChart(
        title=title,
        line=" ".join(f"{m.x},{m.y}" for m in marks),
        marks=marks,
        lines=tuple(ControlLine(y(v), kind, v) for kind, v in lines.items()),
        x_ticks=tuple(Tick(x(i), str(i + 1)) for i in range(0, len(values), step)),
        y_ticks=tuple(Tick(y(v), f"{v:g}") for v in _ticks(low, high)),
    )
