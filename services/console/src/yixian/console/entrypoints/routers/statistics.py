"""Statistics as charts: the registry's ``/v1/statistics`` for one period, broken down by
partner, state, month of departure and organization (one request), drawn as SVG on the
server."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from yixian.console.adapters.services import ServiceRefusal
from yixian.console.domain import labels
from yixian.console.domain.charts import Chart, bar_chart
from yixian.console.entrypoints.dependencies import Parts, Who, render
from yixian.runtime.divisions import division_name

router = APIRouter()
Day = Annotated[str | None, Query(max_length=10)]
BREAKDOWNS = ("partner", "state", "month", "branch")


def _label(group_by: str, group: dict[str, Any]) -> str:
    key = str(group["key"])
    if group_by == "state":
        return labels.label(labels.STATES, key)
    if group_by == "partner":
        return f"{key} {division_name(key) or ''}".strip()
    if group_by == "branch":
        return str(group.get("name") or key)
    return key


@router.get("/statistics", response_class=HTMLResponse)
async def statistics(
    request: Request,
    who: Who,
    parts: Parts,
    since: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    until: Annotated[str | None, Query(alias="to", max_length=10)] = None,
    side: Annotated[str | None, Query(pattern=r"^(origin|host)?$")] = None,
    partner: Annotated[str | None, Query(pattern=r"^([0-9]{6})?$")] = None,
) -> Response:
    query = {"from": since or None, "to": until or None, "side": side or None,
             "partner": partner or None}  # fmt: skip
    charts: list[Chart] = []
    totals: dict[str, Any] = {}
    errors: dict[str, str] = {}
    general = ""
    try:  # every breakdown in one request: the registry counts them in one statement
        totals = await who.caller.get("/v1/statistics", breakdown=list(BREAKDOWNS), **query)
    except ServiceRefusal as refusal:
        if refusal.field in query:
            errors[str(refusal.field)] = refusal.message
        else:
            general = refusal.message
    for group_by in BREAKDOWNS if totals else ():
        groups = totals["breakdowns"][group_by]
        charts.append(
            bar_chart(
                labels.GROUP_BY[group_by],
                [(_label(group_by, g), g["movements"], g.get("open", 0)) for g in groups],
            )
        )
    return render(
        request,
        "statistics.html",
        {"charts": charts, "totals": totals, "errors": errors, "general": general,
         "query": {k: v or "" for k, v in query.items()}, "partners": parts.partners},
        status=422 if errors or general else 200,
    )  # fmt: skip
