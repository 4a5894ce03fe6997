"""A whole dialogue through the REST channel over HTTP, on both backend pairs."""

from __future__ import annotations

import httpx

from bot.app import App
from bot.web.app import create_web_app
from tests.factories import add_orders, order
from tests.rest_client import RestClient


async def test_return_and_agent_reply_over_the_rest_channel(app: App) -> None:
    await add_orders(app, order("A20001"))
    transport = httpx.ASGITransport(app=create_web_app(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        rest = RestClient(http)  # proves "rest-7" with the token its first answer carried

        async def say(message: str) -> list[dict[str, object]]:
            replies = await rest.say("rest-7", message)
            assert all(r["recipient_id"] == "rest-7" for r in replies)
            return replies

        await say("I want to return order A20001, it is too small")
        await say("alice@example.com")
        replies = await say('/choose{"resolution": "refund"}')
        assert [b["payload"] for b in replies[-1]["buttons"]] == ["/affirm", "/deny"]  # type: ignore[index]
        done = await say("/affirm")
        assert "T-1001" in str(done[0]["text"])

        await say("I'd like to talk to a person")
        await app.desk.reply("T-1002", "Hi, Sam here.")
        polled = await rest.poll("rest-7")
        assert [m["text"] for m in polled] == ["Hi, Sam here."]
        assert await rest.poll("rest-7") == []  # the widget's next poll acknowledges it
        assert await say("thanks Sam") == []  # the agent owns the conversation
        await app.desk.resolve("T-1002")
        rating = await say("hello?")  # queued rating request comes first, then the bot answers
        assert any("rate" in str(r["text"]) for r in rating)
        assert len(rating[0]["buttons"]) == 5  # type: ignore[arg-type]
