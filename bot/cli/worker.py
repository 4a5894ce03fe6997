"""``deskbot worker [--metrics-port P]``: the queued intake's worker (``bot/worker.py``), and
``GET /metrics`` on a port of its own, since a worker serves no other HTTP: its turns, its
sends and the stream lag of the partitions it owns reach Prometheus from there."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from bot.app import App
from bot.config import Settings


def metrics_http(port: int) -> Callable[[App], AbstractAsyncContextManager[None]]:
    """Serve ``bot.web.metrics.metrics_app`` on ``web.host:port`` while the worker runs."""

    @asynccontextmanager
    async def serving(app: App) -> AsyncIterator[None]:
        import uvicorn

        from bot.web.metrics import metrics_app

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield  # SIGTERM is the worker's: it stops the turns first, then this server

        config = uvicorn.Config(
            metrics_app(app), host=app.settings.web.host, port=port, lifespan="off", log_config=None,
            server_header=False,
        )  # fmt: skip
        server = Server(config)
        task = asyncio.create_task(server.serve(), name="worker-metrics")
        try:
            yield
        finally:
            server.should_exit = True
            await task

    return serving


async def run(settings: Settings, metrics_port: int | None) -> None:
    from bot.worker import run_worker
    from storage.migrate import upgrade

    await upgrade(settings.storage.url)  # an advisory lock keeps concurrent start-ups apart
    await run_worker(settings, http=metrics_http(metrics_port) if metrics_port else None)
