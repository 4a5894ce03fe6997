"""``/desk/analytics``: the analytics report as a page of server-rendered SVG charts.

The page needs no script: the range form is a plain GET, the charts are SVG from
``bot/web/charts.py``, and every table links to its CSV export.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response

from bot.app import App
from bot.web import charts
from bot.web.api.analytics import load_report
from bot.web.auth import PagePrincipal
from bot.web.pages import render_desk_page
from storage.analytics import TABLES, InvalidRange, Report


def duration(seconds: float | None) -> str:
    """``95`` → ``1 min 35 s``, ``7200`` → ``2 h 0 min``; ``—`` for no value."""
    if seconds is None:
        return "—"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    if seconds < 86400:
        hours, rest = divmod(seconds, 3600)
        return f"{hours} h {rest // 60} min" if rest // 60 else f"{hours} h"
    days, rest = divmod(seconds, 86400)
    return f"{days} d {rest // 3600} h" if rest // 3600 else f"{days} d"


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f} %"


def hours_axis(value: float) -> str:
    return f"{value:g} h"


def chart_set(report: Report) -> dict[str, Any]:
    labels = [d.day[5:] for d in report.days]  # MM-DD under the bars
    messages = charts.stacked_bars(
        "Messages per day",
        labels,
        [
            charts.Series("customers", [d.customer_messages for d in report.days]),
            charts.Series("bot", [d.bot_messages for d in report.days]),
            charts.Series("agents", [d.agent_messages for d in report.days]),
        ],
    )
    tickets = charts.lines(
        "Tickets per day",
        labels,
        [
            charts.Series("opened", [d.tickets_opened for d in report.days]),
            charts.Series("resolved", [d.tickets_resolved for d in report.days]),
        ],
    )
    intents = charts.distribution("Intents", [(name, count) for name, count in report.intents[:15]])
    csat = charts.distribution(
        "CSAT distribution", [(f"{score} ★", report.csat.distribution[score]) for score in ("5", "4", "3", "2", "1")]
    )
    times = charts.bars(
        "Response times in hours (p50 / p90)",
        ["first response p50", "first response p90", "resolution p50", "resolution p90"],
        [
            round((seconds or 0) / 3600, 2)
            for seconds in (
                report.first_response.p50,
                report.first_response.p90,
                report.resolution.p50,
                report.resolution.p90,
            )
        ],
        fmt=hours_axis,
    )
    containment = charts.distribution(
        "Containment rate per channel (%)",
        [
            (g.key, round((g.containment.rate or 0) * 100, 1))
            for g in report.channels
            if g.containment is not None and g.containment.conversations
        ],
    )
    return {
        "messages": messages,
        "tickets": tickets,
        "intents": intents,
        "csat": csat,
        "times": times,
        "containment": containment,
    }


def build_router(app: App) -> APIRouter:
    router = APIRouter(prefix="/desk", include_in_schema=False)

    @router.get("/analytics", response_class=HTMLResponse)
    async def analytics(
        request: Request, principal: PagePrincipal, since: str | None = None, until: str | None = None
    ) -> Response:
        error = None
        try:
            report = await load_report(app, since, until)
        except InvalidRange as exc:
            error = str(exc)
            report = await load_report(app, None, None)
        query = {"since": report.since.isoformat(), "until": report.until.isoformat()}
        context = {
            "report": report,
            "charts": chart_set(report),
            "error": error,
            "csv_links": {table: "/api/v1/analytics.csv?" + urlencode(query | {"table": table}) for table in TABLES},
            "json_link": "/api/v1/analytics?" + urlencode(query),
            "duration": duration,
            "percent": percent,
        }
        return render_desk_page(
            request,
            principal,
            "desk/analytics.html",
            title="Analytics",
            nav="analytics",
            context=context,
            status_code=400 if error else 200,
        )

    return router
