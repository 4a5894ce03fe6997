"""``/api/v1/analytics``: the analytics report as JSON, and each of its tables as CSV.

Figures and their definitions: ``storage/analytics.py``. The range is two UTC dates, both
included (default: the last 30 days); a bad date or a range over a year is a 400.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from bot.app import App
from bot.web.auth import CurrentAgent
from common.errors import DeskbotError
from storage.analytics import TABLES, Report, build_report, parse_range, report_tables

SinceParam = Annotated[str | None, Query(description="first UTC day, YYYY-MM-DD (default: 29 days before until)")]
UntilParam = Annotated[str | None, Query(description="last UTC day, YYYY-MM-DD, included (default: today)")]


class UnknownTable(DeskbotError):
    """A CSV table name the report does not have."""


async def load_report(app: App, since: str | None, until: str | None) -> Report:
    """The report for a range given as query strings (shared with the analytics page)."""
    now = app.services.clock()
    first, last = parse_range(since, until, today=now.date())
    async with app.tickets.session() as tx:
        return await build_report(tx, first, last, now=now)


def csv_text(header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        # Spreadsheets run a cell starting with = + - @ as a formula; intents and agent names
        # are data, so such cells get a leading apostrophe (OWASP "CSV injection").
        writer.writerow(
            ["'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r") else v for v in row]
        )
    return out.getvalue()


def build_router(app: App) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["analytics"])

    @router.get("/analytics", summary="The analytics report for a date range (JSON)")
    async def analytics(_agent: CurrentAgent, since: SinceParam = None, until: UntilParam = None) -> dict[str, Any]:
        report = await load_report(app, since, until)
        return report.as_dict() | {"tables": list(TABLES)}

    @router.get(
        "/analytics.csv",
        summary="One table of the analytics report as CSV",
        response_class=Response,
        responses={200: {"content": {"text/csv": {}}}},
    )
    async def analytics_csv(
        _agent: CurrentAgent,
        since: SinceParam = None,
        until: UntilParam = None,
        table: Annotated[str, Query(description=f"one of: {', '.join(TABLES)}")] = "days",
    ) -> Response:
        if table not in TABLES:
            raise UnknownTable(f"table must be one of {', '.join(TABLES)}")
        report = await load_report(app, since, until)
        header, rows = report_tables(report)[table]
        name = f"deskbot-{table}-{report.since.isoformat()}-{report.until.isoformat()}.csv"
        return Response(
            csv_text(header, rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    return router


__all__ = ["build_router", "csv_text", "load_report"]
