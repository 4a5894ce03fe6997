"""``/api/v1/analytics`` (JSON, CSV) and the ``/desk/analytics`` page, on both backend pairs."""

from __future__ import annotations

import csv
import io

from bot.web.api.analytics import csv_text
from storage.models import utcnow
from tests.web.api.conftest import Desk


async def two_conversations(desk: Desk) -> None:
    """One customer served by the bot alone, one handed to a human (one ticket)."""
    await desk.customer_says("alice", "hello")
    await desk.customer_says("bob", "I want to talk to a human")


async def test_analytics_needs_an_agent(desk: Desk) -> None:
    client = desk.client_for()
    for path in ("/api/v1/analytics", "/api/v1/analytics.csv?table=days"):
        answer = await client.get(path)
        assert answer.status_code == 401 and "error" in answer.json()
    page = await client.get("/desk/analytics", follow_redirects=False)
    assert page.status_code in (302, 303, 307) and "/desk/login" in page.headers["location"]


async def test_the_report_counts_what_happened(desk: Desk) -> None:
    await two_conversations(desk)
    headers = await desk.bearer("eve@shop.test")
    today = utcnow().date().isoformat()
    answer = await desk.client_for().get(f"/api/v1/analytics?since={today}&until={today}", headers=headers)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["since"] == data["until"] == today
    (day,) = data["days"]
    assert day["customer_messages"] == 2 and day["tickets_opened"] == 1 and day["bot_messages"] >= 2
    assert data["containment"] == {"conversations": 2, "contained": 1, "rate": 0.5}
    assert sum(row["count"] for row in data["intents"]) == 2
    assert data["sla"]["tickets"] == 1 and data["csat"]["count"] == 0
    assert [c["key"] for c in data["channels"]] == ["rest"]
    assert data["agents"][0]["label"] == "unassigned" and data["agents"][0]["tickets"] == 1


async def test_csv_export_of_each_table(desk: Desk) -> None:
    await two_conversations(desk)
    headers = await desk.bearer("eve@shop.test")
    client = desk.client_for()
    today = utcnow().date().isoformat()
    answer = await client.get(f"/api/v1/analytics.csv?since={today}&until={today}&table=days", headers=headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert f'filename="deskbot-days-{today}-{today}.csv"' in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert rows == [{"day": today, "customer_messages": "2", "bot_messages": rows[0]["bot_messages"],
                     "agent_messages": "0", "tickets_opened": "1", "tickets_resolved": "0"}]
    summary = await client.get(f"/api/v1/analytics.csv?since={today}&until={today}&table=summary", headers=headers)
    metrics = dict(csv.reader(io.StringIO(summary.text)))
    assert metrics["conversations"] == "2" and metrics["containment_rate"] == "0.5" and metrics["tickets"] == "1"
    for table in ("intents", "csat", "agents", "channels"):
        assert (await client.get(f"/api/v1/analytics.csv?table={table}", headers=headers)).status_code == 200


async def test_bad_parameters_are_clear_400s(desk: Desk) -> None:
    headers = await desk.bearer("eve@shop.test")
    client = desk.client_for()
    for query in ("since=yesterday", "since=2026-11-05&until=2026-11-01", "since=2020-01-01&until=2026-01-01",
                  "since=%00%ff"):
        answer = await client.get(f"/api/v1/analytics?{query}", headers=headers)
        assert answer.status_code == 400 and answer.json()["error"], query
    answer = await client.get("/api/v1/analytics.csv?table=passwords", headers=headers)
    assert answer.status_code == 400 and "table must be one of" in answer.json()["error"]


def test_csv_cells_never_run_as_formulas() -> None:
    text = csv_text(["agent", "n"], [["=HYPERLINK(\"http://x\")", 1], ["+1", 2], ["Ann", 3], [None, 4]])
    assert list(csv.reader(io.StringIO(text))) == [
        ["agent", "n"], ["'=HYPERLINK(\"http://x\")", "1"], ["'+1", "2"], ["Ann", "3"], ["", "4"]
    ]


async def test_the_page_renders_its_charts(desk: Desk) -> None:
    await two_conversations(desk)
    client, _ = await desk.session("eve@shop.test")
    page = await client.get("/desk/analytics")
    assert page.status_code == 200
    html = page.text
    for kind in ('data-chart="stacked-bars"', 'data-chart="lines"', 'data-chart="distribution"', 'data-chart="bars"'):
        assert kind in html
    assert "1 of 2 conversations without a human" in html and "50.0 %" in html
    assert "/api/v1/analytics.csv?since=" in html and "table=agents" in html
    assert "<script>" not in html.split("</head>")[1]  # charts are SVG, no inline script
    bad = await client.get("/desk/analytics?since=nonsense")
    assert bad.status_code == 400 and "since and until must be dates" in bad.text


async def test_injected_names_are_text_in_charts(desk: Desk) -> None:
    await desk.customer_says("mallory", "<script>alert(1)</script> I want to talk to a human")
    client, _ = await desk.session("eve@shop.test")
    html = (await client.get("/desk/analytics")).text
    assert "<script>alert(1)" not in html
