"""Telegram's routes in deskbot's web app: the webhook, and file downloads for agents.

``POST /telegram/webhook`` accepts an update only with the right
``X-Telegram-Bot-Api-Secret-Token`` (the ``telegram_webhook_secret`` secret, compared in
constant time): a forged call gets 401 before anything is read or stored. The 200 is the
update's confirmation, so it is answered only after the sink (``TelegramChannel.process``)
returned, i.e. the update is stored; if the sink raised, the answer is 503 and Telegram
delivers the update again, and the delivery key drops it if it was stored after all. The
body reaches the sink as Telegram's raw JSON, as in polling (see ``bot/channels/telegram/intake.py``).

``GET /telegram/files/{file_id}`` fetches a customer's file (``getFile`` + download) for an
agent signed in to the workspace (session cookie or an agent's API token as
``Authorization: Bearer``): customers' files are personal data.

The routes belong to the web app, not to the channel: they are HTTP, and the download is
for agents signed in to the workspace (``bot.web.auth``). They are given the channel and the
webhook secret, nothing more of the app.
"""

from __future__ import annotations

import hmac
import logging
import mimetypes
import re
from typing import TYPE_CHECKING

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import SecretStr

from bot.channels.telegram.api import BadRequest, TelegramError
from bot.web.auth import CurrentAgent
from bot.web.rest_channel import decode_json_object
from common.errors import StorageError

if TYPE_CHECKING:
    from bot.channels.telegram.channel import TelegramChannel
    from bot.intake import QueuedIntake

log = logging.getLogger("deskbot.telegram.web")

SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 - a header name
FILE_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
FILE_PATH = re.compile(r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+){0,7}$")  # "photos/file_12.jpg"


def build_router(
    channel: TelegramChannel, hook_secret: SecretStr | None, intake: QueuedIntake | None = None
) -> APIRouter:
    """The routes over ``channel``; ``hook_secret`` is ``secrets.telegram_webhook_secret``
    (None: every webhook call is refused). With ``intake`` (``intake.queue: redis``) an update
    is confirmed once it is in the intake stream, and a worker's channel processes it."""
    router = APIRouter(prefix="/telegram", tags=["telegram"])

    @router.post("/webhook", summary="Telegram Bot API webhook (checks the secret-token header)",
                 include_in_schema=False)
    async def webhook(request: Request) -> JSONResponse:
        given = request.headers.get(SECRET_HEADER, "")
        if hook_secret is None or not hmac.compare_digest(given.encode(), hook_secret.get_secret_value().encode()):
            log.warning("webhook call with a wrong secret token", extra={"client": _client(request)})
            raise HTTPException(401, "wrong or missing X-Telegram-Bot-Api-Secret-Token")
        raw = decode_json_object(await request.body())
        if not isinstance(raw.get("update_id"), int):
            raise HTTPException(422, "not a Telegram update: 'update_id' must be an integer")
        try:
            if intake is not None:
                await intake.submit_telegram(raw)  # stored in the stream: a worker runs it
            else:
                await channel.feed_webhook(raw)  # returns once the update is stored
        except Exception as exc:  # noqa: BLE001 - not stored: Telegram must send it again
            log.error("webhook update not stored; answering 503 so Telegram redelivers it",
                      exc_info=not isinstance(exc, StorageError),
                      extra={"update": raw["update_id"], "error": exc.__class__.__name__})
            return JSONResponse({"ok": False, "error": "not stored, send it again"}, status_code=503,
                                headers={"Retry-After": "1"})
        return JSONResponse({"ok": True})

    @router.get("/files/{file_id}", summary="Download a file a customer sent on Telegram")
    async def download(file_id: str, agent: CurrentAgent) -> Response:
        if not FILE_ID.match(file_id):
            raise HTTPException(422, "not a Telegram file id")
        try:
            info = await channel.sender.call(lambda: channel.api.get_file(file_id), "getFile")
            if not info.file_path:
                raise HTTPException(404, "Telegram has no downloadable copy of this file")
            path = info.file_path
            if not FILE_PATH.match(path) or ".." in path.split("/"):
                # Only a path below the bot's file storage is fetched, never "../" out of it.
                log.warning("Telegram gave an unusable file path", extra={"agent_id": agent.id})
                raise HTTPException(502, "Telegram gave an unusable path for this file; it was not fetched")
            content = await channel.sender.call(lambda: channel.api.download_file(path), "download")
        except BadRequest as exc:
            raise HTTPException(404, f"file not available: {exc}") from None
        except TelegramError as exc:
            log.warning("file download failed", extra={"error": str(exc), "agent_id": agent.id})
            raise HTTPException(502, "Telegram did not deliver the file; try again later") from None
        media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        name = re.sub(r"[^\w.-]", "_", path.rsplit("/", 1)[-1])
        return Response(content, media_type=media_type,
                        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "private"})

    return router


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"
