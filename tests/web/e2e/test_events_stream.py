"""``GET /api/v1/events`` over real HTTP (uvicorn on a free port), on both event buses.

A subscriber connected over HTTP sees events that another connection causes (a customer
writing through the REST channel) and, on Redis, events another *process* publishes; it
needs a login or token; and closing the connection releases its bus subscription.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest

from bot.app import App
from bot.web.api.events import StreamLimits, event_stream, sse_frame
from bot.web.app import create_web_app, uvicorn_server
from bot.web.auth import login_policy
from common.errors import StorageError
from desk.accounts import Accounts
from storage.events import BusEvent, EventBus, InProcessEventBus
from storage.redis_events import RedisEventBus
from tests.web.conftest import OpenApp, free_port

GUARD_SECONDS = 30  # only against a hang; nothing here is timed


# -- reading a stream ---------------------------------------------------------------------
class SseReader:
    """Frames of an open ``text/event-stream`` response: comments and decoded ``data``."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()

    async def next_frame(self) -> tuple[list[str], dict[str, Any] | None]:
        comments: list[str] = []
        data: list[str] = []
        async with asyncio.timeout(GUARD_SECONDS):
            async for line in self.lines:
                if line == "":
                    if comments or data:
                        return comments, json.loads("\n".join(data)) if data else None
                    continue
                if line.startswith(":"):
                    comments.append(line[1:].strip())
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
        raise AssertionError("the stream ended")

    async def until_connected(self) -> None:
        while True:
            comments, _ = await self.next_frame()
            if "connected" in comments:
                return

    async def until(self, match: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Every event up to and including the first that matches."""
        seen: list[dict[str, Any]] = []
        while True:
            _, event = await self.next_frame()
            if event is None:
                continue
            seen.append(event)
            if match(event):
                return seen


# -- a real server over an App whose bus is the fixture's -----------------------------------
@asynccontextmanager
async def served(app: App) -> AsyncIterator[str]:
    port = free_port()
    settings = app.settings.model_copy(update={"web": app.settings.web.model_copy(update={"port": port})})
    server = uvicorn_server(create_web_app(app), settings)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(GUARD_SECONDS):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def bus_app(open_app: OpenApp, event_bus: EventBus) -> AsyncIterator[App]:
    """The test app with its ticket store and its web routes on the ``event_bus`` fixture."""
    async with open_app() as app:
        previous = app.tickets.bus  # type: ignore[attr-defined]
        app.tickets.bus = event_bus  # type: ignore[attr-defined]
        try:
            yield replace(app, bus=event_bus)
        finally:
            app.tickets.bus = previous  # type: ignore[attr-defined]


async def api_token(app: App, email: str = "sam@shop.example") -> str:
    accounts = Accounts(app.tickets, login_policy(app.settings))
    await accounts.add_agent(email, "Sam", "agent", "correct horse battery")
    return await accounts.issue_token(email)


async def subscribers(bus: EventBus) -> int:
    if isinstance(bus, InProcessEventBus):
        return len(bus._subscribers)
    assert isinstance(bus, RedisEventBus)
    counts = await bus.redis.pubsub_numsub(bus.channel)
    return int(counts[0][1])


async def until_subscribers(bus: EventBus, count: int) -> None:
    """Wait until the bus has ``count`` subscribers (Redis reports a change a moment late)."""
    async with asyncio.timeout(GUARD_SECONDS):
        while await subscribers(bus) != count:  # noqa: ASYNC110 - a counter in Redis, no event to wait on
            await asyncio.sleep(0.05)


PUBLISH_FROM_ANOTHER_PROCESS = """
import asyncio, sys
from storage.events import BusEvent
from storage.redis_events import RedisEventBus
from storage.state import KeyBuilder

async def main() -> None:
    bus = RedisEventBus.from_url(sys.argv[1], key_builder=KeyBuilder(sys.argv[2]))
    await bus.publish(BusEvent("claimed", 7, "T-1006", "agent:kim", {"agent": "kim@shop.example"}))
    await bus.close()

asyncio.run(main())
"""


# -- the tests ------------------------------------------------------------------------------
async def test_the_stream_needs_a_login_or_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/events")
    assert response.status_code == 401
    assert "error" in response.json()
    bad = await client.get("/api/v1/events", headers={"Authorization": "Bearer dsk_not-a-token"})
    assert bad.status_code == 401


async def test_a_customer_writing_elsewhere_reaches_the_stream(
    bus_app: App, event_bus: EventBus, redis_prefix: str, request: pytest.FixtureRequest
) -> None:
    token = await api_token(bus_app)
    async with served(bus_app) as url:
        async with (
            httpx.AsyncClient(base_url=url, trust_env=False, timeout=GUARD_SECONDS) as agent,
            httpx.AsyncClient(base_url=url, trust_env=False, timeout=GUARD_SECONDS) as customer,
            agent.stream("GET", "/api/v1/events", headers={"Authorization": f"Bearer {token}"}) as stream,
        ):
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert stream.headers["cache-control"] == "no-store"
            reader = SseReader(stream)
            await reader.until_connected()

            answer = await customer.post(
                "/webhooks/rest/webhook", json={"sender": "sse-customer", "message": "I want to talk to a human"}
            )
            assert answer.status_code == 200
            seen = await reader.until(lambda e: e["kind"] == "owner_changed" and e["data"].get("to") == "queued")
            handoff = seen[-1]
            assert handoff["ticket_number"].startswith("T-")
            assert handoff["ticket_number"] in " ".join(m.get("text", "") for m in answer.json())
            assert "created" in [e["kind"] for e in seen if e["ticket_number"] == handoff["ticket_number"]]

            if isinstance(event_bus, RedisEventBus):
                # Another process on the same Redis: what it publishes reaches this agent too.
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-c",
                    PUBLISH_FROM_ANOTHER_PROCESS,
                    request.getfixturevalue("redis_server"),
                    redis_prefix,
                )
                assert await process.wait() == 0
                claimed = (await reader.until(lambda e: e["kind"] == "claimed"))[-1]
                assert claimed == {
                    "kind": "claimed",
                    "ticket_id": 7,
                    "ticket_number": "T-1006",
                    "actor": "agent:kim",
                    "data": {"agent": "kim@shop.example"},
                    "at": None,
                }


async def test_leaving_releases_the_subscription(bus_app: App, event_bus: EventBus) -> None:
    token = await api_token(bus_app)
    async with served(bus_app) as url:
        async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=GUARD_SECONDS) as agent:
            async with agent.stream("GET", "/api/v1/events", headers={"Authorization": f"Bearer {token}"}) as stream:
                reader = SseReader(stream)  # held: a dropped line iterator would close the stream
                await reader.until_connected()
                await until_subscribers(event_bus, 1)
            # The browser went away without any event or keep-alive being due: the server
            # notices the disconnect itself and lets go of the bus.
            await until_subscribers(event_bus, 0)


# -- the stream itself, without HTTP --------------------------------------------------------
async def test_the_stream_keeps_idle_connections_alive_and_ends_at_its_limit(event_bus: EventBus) -> None:
    ticks = iter([0.0, 0.0, 1.0, 100.0])
    limits = StreamLimits(keepalive_seconds=0.01, max_seconds=50, retry_ms=1500)
    stream = event_stream(event_bus, limits, clock=lambda: next(ticks))
    assert await anext(stream) == b"retry: 1500\n: connected\n\n"
    assert await anext(stream) == b": keep-alive\n\n"  # nothing was published
    await event_bus.publish(BusEvent("resolved", 3, "T-1003", "agent:sam"))
    frame = await anext(stream)
    assert frame.startswith(b"data: ") and frame.endswith(b"\n\n")
    assert json.loads(frame[6:])["ticket_number"] == "T-1003"
    with pytest.raises(StopAsyncIteration):  # past max_seconds: the browser reconnects and re-authenticates
        await anext(stream)


async def test_a_broken_bus_ends_the_stream_instead_of_hanging() -> None:
    class BrokenEvents:
        def __aiter__(self) -> BrokenEvents:
            return self

        async def __anext__(self) -> BusEvent:
            raise StorageError("redis event bus: subscription lost")

    class BrokenBus(InProcessEventBus):
        @asynccontextmanager
        async def subscribe(self) -> AsyncIterator[AsyncIterator[BusEvent]]:
            yield BrokenEvents()

    stream = event_stream(BrokenBus(), StreamLimits())
    assert (await anext(stream)).endswith(b": connected\n\n")
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_an_unreachable_bus_ends_the_stream_cleanly() -> None:
    """Redis down when a dashboard connects: no traceback, the browser simply retries."""
    unreachable = RedisEventBus.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        stream = event_stream(unreachable, StreamLimits())
        with pytest.raises(StopAsyncIteration):
            await anext(stream)
    finally:
        await unreachable.close()


def test_frames_carry_text_verbatim_on_one_line() -> None:
    event = BusEvent("customer_message", 1, "T-1001", "customer", {"text": "line one\nline two <b>&</b> 退货"})
    frame = sse_frame(event)
    assert frame.count(b"\n") == 2  # "data: ...\n\n": a newline in the text cannot split the frame
    assert json.loads(frame.decode()[6:])["data"]["text"] == "line one\nline two <b>&</b> 退货"


async def test_redis_subscriber_count_helper_is_exact(redis_server: str, redis_prefix: str) -> None:
    """Regression guard for the disconnect test: NUMSUB counts this channel only."""
    from storage.state import KeyBuilder

    bus = RedisEventBus.from_url(redis_server, key_builder=KeyBuilder(redis_prefix))
    try:
        assert await subscribers(bus) == 0
        async with bus.subscribe():
            assert await subscribers(bus) == 1
    finally:
        await bus.close()
