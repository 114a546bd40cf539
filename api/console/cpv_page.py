"""The console's CPV page: a parameter's control chart, run rules and capability.

``GET /console/agreements/{id}/parameters/{name}/cpv?baseline=NAME[&knownAt=N]`` runs the
API's ``cpv`` query (``docs/cpv.md``) as the session's party and draws its answer: the
individuals (or X-bar) chart with the baseline's centre line and control limits, the points
a Nelson rule names marked and listed, the moving range (or range) chart, one capability
study per limits version, and the log position, checkpoint and inputs digest the answer
stands at. What a party may read is the API's decision: its ``FORBIDDEN`` is this page's
403, with no data. The statistics are the API's; this module only lays them out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from api.console.charts import IndexChart, index_chart
from api.console.pages import _error_page, _message, render
from api.console.queries import execute
from api.console.records import _too_long, _visitor

__all__ = ["CPV_PAGE", "cpv_page"]

_INDEX = "value interval { lower upper confidence }"

CPV_PAGE = f"""
query ConsoleCpv($a: ID!, $p: String!, $b: String!, $k: Int) {{
  agreement(id: $a) {{ id title sponsor cmo }}
  cpv(agreementId: $a, parameter: $p, baseline: $b, knownAt: $k) {{
    agreementId parameter unit baseline baselineId baselineVersion baselineBatches
    knownAt chart subgroupSize sigma
    location {{ centre lower upper }} dispersion {{ centre lower upper }}
    points {{ index batch validAt value dispersion limitsVersion records {{ recordId value }} }}
    violations {{ rule name batches indexes }}
    capability {{
      limitsVersion lsl usl batches n mean sigmaWithin sigmaOverall withinMethod
      cp {{ {_INDEX} }} cpk {{ {_INDEX} }} pp {{ {_INDEX} }} ppk {{ {_INDEX} }}
      normality {{ statistic adjustedStatistic pValue method }} warnings
    }}
    warnings inputsDigest checkpoint {{ treeSize rootHash }}
  }}
}}
"""

_TITLES = {"I-MR": ("Individuals", "Moving range"), "XBAR-R": ("X-bar", "Range")}


def _lines(limits: Mapping[str, float]) -> dict[str, float]:
    return {kind: float(limits[kind]) for kind in ("lower", "centre", "upper")}


def _charts(analysis: Mapping[str, Any]) -> tuple[IndexChart | None, IndexChart | None]:
    """The location chart (violations marked) and the dispersion chart of an analysis."""
    points = analysis["points"]
    labels = [str(p["batch"]) for p in points]
    flagged = sorted({i for v in analysis["violations"] for i in v["indexes"]})
    location, dispersion = _TITLES.get(str(analysis["chart"]), ("Location", "Dispersion"))
    return (
        index_chart(
            location,
            [float(p["value"]) for p in points],
            labels,
            _lines(analysis["location"]),
            flagged,
        ),
        index_chart(
            dispersion,
            [None if p["dispersion"] is None else float(p["dispersion"]) for p in points],
            labels,
            _lines(analysis["dispersion"]),
        ),
    )


async def cpv_page(request: Request) -> Response:
    """``GET /console/agreements/{id}/parameters/{name}/cpv?baseline=&knownAt=``."""
    found = await _visitor(request)
    if isinstance(found, Response):
        return found
    caller, csrf = found
    agreement_id, name = request.path_params["id"], request.path_params["name"]
    baseline = request.query_params.get("baseline", "").strip()
    known_at = request.query_params.get("knownAt", "").strip()
    for value, field in ((agreement_id, "agreement"), (name, "parameter"), (baseline, "baseline")):
        if (refused := _too_long(value, field, caller, csrf)) is not None:
            return refused
    if not baseline:
        message = "VALIDATION_FAILED (baseline): name the baseline whose limits to draw"
        return _message(400, "Refused", message, caller=caller, csrf=csrf)
    if known_at and not (known_at.isdigit() and len(known_at) <= 18):
        message = f"VALIDATION_FAILED (knownAt): {known_at!r} is no log position"
        return _message(400, "Refused", message, caller=caller, csrf=csrf)
    variables = {
        "a": agreement_id,
        "p": name,
        "b": baseline,
        "k": int(known_at) if known_at else None,
    }
    answer = await execute(request, caller, CPV_PAGE, variables)
    if answer.errors or answer.data is None or answer.data.get("cpv") is None:
        return _error_page(answer, caller, csrf)
    analysis = answer.data["cpv"]
    location, dispersion = _charts(analysis)
    parameter_path = (
        f"/console/agreements/{quote(agreement_id, safe='')}/parameters/{quote(name, safe='')}"
    )
    return render(
        "cpv.html",
        title=f"CPV {analysis['parameter']}: baseline {analysis['baseline']}",
        me=caller,
        csrf=csrf,
        agreement=answer.data["agreement"],
        analysis=analysis,
        location=location,
        dispersion=dispersion,
        parameter_path=parameter_path,
        batch_link=lambda batch: f"/console/batches/{quote(batch, safe='')}",
    )
