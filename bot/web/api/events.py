"""``GET /api/v1/events``: the EventBus as Server-Sent Events, for the agents' dashboard.

One ``data: {BusEvent as JSON}`` frame per event published on ``app.bus`` — in-process by
default, Redis pub/sub in production, so an agent connected to one web process sees what a
worker or another web process did. The stream opens with ``retry:`` (how soon the browser's
``EventSource`` reconnects) and a ``: connected`` comment sent once the subscription is in
place, so a client knows from then on that nothing published is missed.

Why Server-Sent Events and not a WebSocket: the dashboard only listens (its actions are plain
REST calls with CSRF), SSE rides on ordinary HTTP with the session cookie, passes proxies,
and the browser reconnects by itself.

Keeping connections honest:

- a ``: keep-alive`` comment every ``keepalive_seconds`` of silence keeps idle proxies from
  cutting the stream and lets the server notice a peer that vanished without a FIN;
- a client disconnect ends the stream at once (the subscription — a Redis connection in
  production — is released), whatever ASGI version the server speaks;
- a stream lasts at most ``max_seconds``; the browser then reconnects and is authenticated
  again, so a logged-out or deactivated agent stops receiving events soon after;
- a lost Redis subscription ends the stream instead of hanging it; the client reconnects.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from functools import partial

from fastapi import APIRouter, Depends
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from bot.app import App
from bot.web.auth import current_agent
from common.errors import StorageError
from storage.events import BusEvent, EventBus

log = logging.getLogger("deskbot.web.events")

MEDIA_TYPE = "text/event-stream"


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """How the stream paces itself; the defaults suit browsers behind ordinary proxies."""

    keepalive_seconds: float = 15.0
    max_seconds: float = 15 * 60.0
    retry_ms: int = 3000


def sse_frame(event: BusEvent) -> bytes:
    """One event as an SSE frame. JSON has no raw newlines, so one ``data:`` line suffices."""
    payload = json.dumps(event.to_dict(), ensure_ascii=False, separators=(",", ":"), default=str)
    return f"data: {payload}\n\n".encode()


async def event_stream(
    bus: EventBus, limits: StreamLimits, clock: Callable[[], float] | None = None
) -> AsyncGenerator[bytes, None]:
    """The bytes of one SSE connection: preamble, then events and keep-alives until a limit.

    ``clock`` (seconds, monotonic) defaults to the running loop's; tests pass their own to
    reach ``max_seconds`` without waiting.
    """
    now = clock or asyncio.get_running_loop().time
    try:
        async with bus.subscribe() as events:
            yield f"retry: {limits.retry_ms}\n: connected\n\n".encode()
            iterator = aiter(events)
            deadline = now() + limits.max_seconds
            while True:
                remaining = deadline - now()
                if remaining <= 0:
                    return  # the browser reconnects, and is authenticated afresh
                try:
                    event = await asyncio.wait_for(anext(iterator), timeout=min(limits.keepalive_seconds, remaining))
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                yield sse_frame(event)
    except StorageError as exc:
        # Redis unreachable or the subscription lost: end this stream cleanly; the browser
        # retries after ``retry`` and the dashboard shows "Reconnecting…" meanwhile.
        log.warning("event stream ended: the bus failed", extra={"error": exc.__class__.__name__})


class EventStreamResponse(StreamingResponse):
    """A streaming response that always watches for the client leaving.

    Starlette relies on a failing ``send`` to notice a disconnect under ASGI 2.4, which for
    a quiet stream means holding the subscription until the next keep-alive. Listening for
    ``http.disconnect`` beside the stream ends it the moment the browser goes away.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = asyncio.ensure_future(self.stream_response(send))
        leaving = asyncio.ensure_future(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait({stream, leaving}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stream, leaving):
                task.cancel()
            results = await asyncio.gather(stream, leaving, return_exceptions=True)
            # A cancelled ``async for`` leaves its generator suspended; close it now so the
            # subscription (a Redis connection) is released here, not whenever GC runs.
            if isinstance(self.body_iterator, AsyncGenerator):
                await self.body_iterator.aclose()
        for result in results:
            if isinstance(result, OSError):
                return  # the client went away mid-write: nothing left to do
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result


def open_event_stream(bus: EventBus, limits: StreamLimits) -> EventStreamResponse:
    return EventStreamResponse(
        event_stream(bus, limits),
        media_type=MEDIA_TYPE,
        headers={
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # nginx: pass each frame on as it comes
        },
    )


def build_router(app: App, limits: StreamLimits | None = None) -> APIRouter:
    """``GET /api/v1/events`` over ``app.bus``; any authenticated agent may listen."""
    router = APIRouter(prefix="/api/v1", tags=["events"])
    stream = partial(open_event_stream, app.bus, limits or StreamLimits())

    @router.get(
        "/events",
        summary="Live ticket events (Server-Sent Events)",
        response_class=EventStreamResponse,
        responses={200: {"content": {MEDIA_TYPE: {}}, "description": "`data: {event JSON}` frames"}},
        dependencies=[Depends(current_agent)],
    )
    async def events() -> EventStreamResponse:
        return stream()

    return router
