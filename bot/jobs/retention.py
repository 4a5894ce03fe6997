"""Retention on a schedule inside ``deskbot serve``: anonymise old conversations every
``retention.interval_minutes`` (what that means: ``storage/data_rights.py``).

A failed run is logged and retried at the next interval; it never stops the server. Of
several server processes only the elected leader runs it (``bot/leader.py``); were two to
run it during a takeover, every statement skips rows already anonymised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from bot.config import RetentionConfig
from storage.data_rights import RetentionResult, run_retention
from storage.tickets import TicketStore

log = logging.getLogger("deskbot.retention")


async def retention_loop(
    store: TicketStore, config: RetentionConfig, clock: Callable[[], datetime], *, runs: int | None = None
) -> list[RetentionResult]:
    """Run retention now and then every interval (``runs`` bounds it, for tests)."""
    done: list[RetentionResult] = []
    while runs is None or len(done) < runs:
        try:
            done.append(await run_retention(store, config.days, now=clock()))
        except Exception:  # noqa: BLE001 - logged; the next interval tries again
            log.exception("retention run failed")
            done.append(RetentionResult())
        if runs is not None and len(done) >= runs:
            break
        await asyncio.sleep(config.interval_minutes * 60)
    return done


@contextlib.asynccontextmanager
async def retention_schedule(
    store: TicketStore, config: RetentionConfig, clock: Callable[[], datetime]
) -> AsyncIterator[asyncio.Task[list[RetentionResult]] | None]:
    """A background retention task for the duration of the block (none when not configured)."""
    if not config.days or config.interval_minutes <= 0:
        yield None
        return
    task = asyncio.create_task(retention_loop(store, config, clock), name="deskbot-retention")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
