"""A fake Telegram Bot API server: real HTTP on 127.0.0.1, a random port, Telegram's JSON.

The real aiogram and python-telegram-bot clients talk to it exactly as they talk to
api.telegram.org (aiogram: ``TelegramAPIServer.from_base(fake.base)``; PTB:
``base_url=f"{fake.base}/bot"``), so their request building and response checks run for
real. Tests use it to:

- inject updates (``fake.text(user, "hi")``, ``fake.press(...)``, ``fake.photo(...)``...),
  delivered through ``getUpdates`` (long poll with offset semantics) or, when a webhook is
  set, POSTed to it with the ``X-Telegram-Bot-Api-Secret-Token`` header;
- inject faults (``fault("sendMessage", 429, retry_after=1, times=3)``, 5xx, ``slow()``,
  ``block(chat_id)`` for 403 "bot was blocked by the user");
- read what the bot did (``calls``, ``sent(chat_id)``, ``answered_callbacks``) and wait for
  it (``await fake.wait_until(...)``, ``await fake.settled(update_id)``);
- outlive the bot (the fault suite kills ``deskbot serve`` and restarts it): the queue of
  unconfirmed updates and the offset stay here; ``webhook_max_attempts = None`` retries a
  webhook delivery until the bot answers it (as Telegram keeps retrying), ``in_flight``
  counts the API calls being answered, ``pending_updates()`` what is not confirmed yet, and
  ``call_hooks`` run as a call is answered, before the bot reads the answer (to stop the bot
  at an exact point, e.g. with a reply accepted but its acknowledgement not yet received).

Parameters arrive form-encoded (nested objects as JSON strings), multipart, or JSON; all
three are accepted. Results carry the fields both libraries require to parse them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

TOKEN = "123456:TEST-token_for-the-fake"
BOT_ID = 123456
BOT_USERNAME = "deskbot_test_bot"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int = 200
    via: str = ""  # the caller's tag when it used ``fake.base_for(tag)`` (several bots on one fake)


@dataclass
class Fault:
    method: str
    status: int
    times: int
    retry_after: int | None = None
    chat_id: str | None = None
    description: str | None = None


@dataclass
class Slow:
    method: str
    seconds: float
    times: int


@dataclass
class WebhookResult:
    update_id: int
    status: int


@dataclass
class FakeFile:
    file_id: str
    content: bytes
    file_path: str
    file_size: int


@dataclass
class _Chat:
    next_message_id: int = 1
    next_thread_id: int = 100
    title: str | None = None
    type: str = "private"
    is_forum: bool = False
    members: dict[int, str] = field(default_factory=dict)


class FakeTelegram:
    """The server and its hooks. ``async with FakeTelegram() as fake: fake.base ...``."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.updates: list[dict[str, Any]] = []  # not yet confirmed (getUpdates mode)
        self.confirmed_below = 0  # every update_id < this has been confirmed by an offset
        self.webhook_url: str = ""
        self.webhook_secret: str | None = None
        self.webhook_results: list[WebhookResult] = []
        self.answered_callbacks: list[dict[str, Any]] = []
        self.files: dict[str, FakeFile] = {}
        self.chats: dict[str, _Chat] = {}
        self.blocked: set[str] = set()
        self.faults: list[Fault] = []
        self.slows: list[Slow] = []
        self.commands: list[dict[str, Any]] = []
        # Called with every call as it arrives (before it is answered): lets a test put the
        # bot's calls on one timeline with what its own code did.
        self.observers: list[Callable[[Call], None]] = []
        # Webhook POSTs per update before giving up; None: until the bot answers (< 500).
        self.webhook_max_attempts: int | None = 5
        self.in_flight = 0  # API calls (long polls excepted) received and not yet answered
        self.call_hooks: list[Callable[[Call], None]] = []  # run with each call as it is answered
        self.pushed: list[int] = []  # every update_id pushed, in order
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._webhook_queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._webhook_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._client: ClientSession | None = None
        self.port = 0
        self._closing = False

    # -- lifecycle ------------------------------------------------------------------------
    async def __aenter__(self) -> FakeTelegram:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_route("*", "/via/{via}/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._client = ClientSession(timeout=ClientTimeout(total=30))
        self._webhook_task = asyncio.create_task(self._deliver_webhooks())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True
        await self._notify()  # release long polls still waiting
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base(self) -> str:
        """What ``channels.telegram.api_base`` should be set to."""
        return f"http://127.0.0.1:{self.port}"

    def base_for(self, tag: str) -> str:
        """An ``api_base`` whose calls are recorded with ``Call.via == tag``: which of several
        processes sharing one bot token made a call."""
        return f"{self.base}/via/{tag}"

    # -- injecting updates ----------------------------------------------------------------
    def next_update_id(self) -> int:
        return next(self._ids)

    async def push(self, update: dict[str, Any]) -> int:
        """Queue a raw update (an ``update_id`` is added when missing); returns its id."""
        update = dict(update)
        update.setdefault("update_id", self.next_update_id())
        self.pushed.append(int(update["update_id"]))
        if self.webhook_url:
            await self._webhook_queue.put(update)
        else:
            self.updates.append(update)
        await self._notify()
        return int(update["update_id"])

    async def push_batch(self, updates: list[dict[str, Any]]) -> None:
        """Queue several updates at once, so one ``getUpdates`` answer carries them all."""
        for update in updates:
            self.pushed.append(int(update["update_id"]))
            if self.webhook_url:
                await self._webhook_queue.put(update)
            else:
                self.updates.append(update)
        await self._notify()

    @staticmethod
    def user(user_id: int, first_name: str = "Alice", language_code: str | None = "en") -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if language_code:
            user["language_code"] = language_code
        return user

    def message(
        self, user_id: int, text: str | None = None, *, chat_id: int | None = None, chat_type: str = "private",
        language_code: str | None = "en", extra: dict[str, Any] | None = None, thread_id: int | None = None,
    ) -> dict[str, Any]:
        chat_id = user_id if chat_id is None else chat_id
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = "Alice"
        else:
            chat["title"] = self._chat(chat_id).title or "A group"
            if self._chat(chat_id).is_forum:
                chat["is_forum"] = True
        msg: dict[str, Any] = {
            "message_id": self._chat(chat_id).next_message_id,
            "date": int(time.time()),
            "chat": chat,
            "from": self.user(user_id, language_code=language_code),
        }
        self._chat(chat_id).next_message_id += 1
        if thread_id is not None:
            msg["message_thread_id"] = thread_id
            msg["is_topic_message"] = True
        if text is not None:
            msg["text"] = text
            if text.startswith("/"):
                command = text.split()[0]
                msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        msg.update(extra or {})
        return msg

    async def text(self, user_id: int, text: str, **kwargs: Any) -> int:
        return await self.push({"message": self.message(user_id, text, **kwargs)})

    async def edit(self, user_id: int, message_id: int, text: str) -> int:
        msg = self.message(user_id, text)
        msg["message_id"] = message_id
        msg["edit_date"] = int(time.time())
        return await self.push({"edited_message": msg})

    async def press(self, user_id: int, data: str, *, message_id: int | None = None) -> int:
        """A tap on an inline button of the bot's message ``message_id`` (default: its last)."""
        if message_id is None:
            mine = self.sent(user_id)
            message_id = mine[-1]["message_id"] if mine else 1
        query = {
            "id": f"cb{self.next_update_id()}",
            "from": self.user(user_id),
            "chat_instance": f"ci{user_id}",
            "data": data,
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": user_id, "type": "private", "first_name": "Alice"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Deskbot", "username": BOT_USERNAME},
                "text": "…",
            },
        }
        return await self.push({"callback_query": query})

    async def added_to_group(self, chat_id: int, title: str = "A group", *, by: int = 1,
                             status: str = "member") -> int:
        """Someone (``by``) added the bot to a group: Telegram's ``my_chat_member`` update."""
        chat = self._chat(chat_id)
        chat.type, chat.title = "supergroup", title
        bot = {"id": BOT_ID, "is_bot": True, "first_name": "Deskbot", "username": BOT_USERNAME}
        return await self.push({"my_chat_member": {
            "chat": {"id": chat_id, "type": "supergroup", "title": title}, "from": self.user(by),
            "date": int(time.time()), "old_chat_member": {"status": "left", "user": bot},
            "new_chat_member": {"status": status, "user": bot}}})

    def add_file(self, content: bytes, *, file_id: str | None = None, file_path: str | None = None,
                 file_size: int | None = None) -> FakeFile:
        file_id = file_id or f"FILE{self.next_update_id()}"
        fake = FakeFile(file_id, content, file_path or f"photos/{file_id}.jpg", file_size or len(content))
        self.files[file_id] = fake
        return fake

    async def photo(self, user_id: int, file: FakeFile, caption: str | None = None) -> int:
        sizes = [
            {"file_id": f"{file.file_id}-small", "file_unique_id": "us", "width": 90, "height": 90, "file_size": 100},
            {"file_id": file.file_id, "file_unique_id": "ub", "width": 800, "height": 800,
             "file_size": file.file_size},
        ]
        extra: dict[str, Any] = {"photo": sizes}
        if caption:
            extra["caption"] = caption
        return await self.push({"message": self.message(user_id, None, extra=extra)})

    async def document(self, user_id: int, file: FakeFile, file_name: str, mime_type: str) -> int:
        doc = {"file_id": file.file_id, "file_unique_id": "ud", "file_name": file_name, "mime_type": mime_type,
               "file_size": file.file_size}
        return await self.push({"message": self.message(user_id, None, extra={"document": doc})})

    async def sticker(self, user_id: int) -> int:
        sticker = {"file_id": "STK1", "file_unique_id": "us1", "type": "regular", "width": 512, "height": 512,
                   "is_animated": False, "is_video": False}
        return await self.push({"message": self.message(user_id, None, extra={"sticker": sticker})})

    async def contact(self, user_id: int, phone: str, *, own: bool = True) -> int:
        contact: dict[str, Any] = {"phone_number": phone, "first_name": "Alice"}
        if own:
            contact["user_id"] = user_id
        return await self.push({"message": self.message(user_id, None, extra={"contact": contact})})

    # -- faults -----------------------------------------------------------------------------
    def fault(self, method: str, status: int, *, times: int = 1, retry_after: int | None = None,
              chat_id: int | str | None = None, description: str | None = None) -> None:
        """The next ``times`` calls of ``method`` (for ``chat_id`` only, if given) fail."""
        self.faults.append(Fault(method, status, times, retry_after, None if chat_id is None else str(chat_id),
                                 description))

    def slow(self, method: str, seconds: float, *, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer after ``seconds`` (client timeouts)."""
        self.slows.append(Slow(method, seconds, times))

    def block(self, chat_id: int | str) -> None:
        """The user blocked the bot: every send to this chat answers 403."""
        self.blocked.add(str(chat_id))

    def make_forum(self, chat_id: int, title: str = "Agents") -> None:
        chat = self._chat(chat_id)
        chat.type, chat.is_forum, chat.title = "supergroup", True, title

    def set_member(self, chat_id: int, user_id: int, status: str = "member") -> None:
        self._chat(chat_id).members[user_id] = status

    # -- reading what happened ------------------------------------------------------------
    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def offsets(self) -> list[int | None]:
        """The ``offset`` of every ``getUpdates`` call, in order (None when it sent none)."""
        return [None if c.params.get("offset") in (None, "") else int(c.params["offset"])
                for c in self.calls_of("getUpdates")]

    def sent(self, chat_id: int | str) -> list[dict[str, Any]]:
        """Messages the bot sent successfully to ``chat_id`` (sendMessage), oldest first."""
        return [
            c.params | {"message_id": c.params.get("_message_id")}
            for c in self.calls
            if c.method == "sendMessage" and c.status == 200 and str(c.params.get("chat_id")) == str(chat_id)
        ]

    def texts(self, chat_id: int | str) -> list[str]:
        return [str(m["text"]) for m in self.sent(chat_id)]

    def pending_updates(self) -> list[int]:
        """Pushed update ids the bot has not finished with: in getUpdates mode not confirmed by
        an offset, in webhook mode not (yet) answered below 500 by its latest POST."""
        if not self.webhook_url:
            return [u for u in self.pushed if u >= self.confirmed_below]
        latest: dict[int, int] = {}
        for result in self.webhook_results:
            latest[result.update_id] = result.status
        return [u for u in self.pushed if latest.get(u, 599) >= 500]

    async def wait_until(self, condition: Callable[[], bool], within: float = 30.0) -> None:
        """Wait for something the bot does; a generous limit only so a broken test ends."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(condition), within)

    async def settled(self, update_id: int, within: float = 30.0) -> None:
        """The bot has finished with ``update_id``: confirmed by a later offset or webhook answered."""
        await self.wait_until(
            lambda: self.confirmed_below > update_id or any(
                r.update_id == update_id and r.status < 500 for r in self.webhook_results
            ),
            within,
        )

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- the HTTP side --------------------------------------------------------------------------
    def _chat(self, chat_id: int | str) -> _Chat:
        return self.chats.setdefault(str(chat_id), _Chat())

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body = await request.json() if request.can_read_body else {}
            params.update(body or {})
            return params
        if request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    params[key] = value.file.read()
                    continue
                params[key] = value
        # Form values are strings; nested objects and arrays are JSON strings.
        for key, value in list(params.items()):
            if isinstance(value, str) and value[:1] in "[{":
                with contextlib.suppress(ValueError):
                    params[key] = json.loads(value)
        return params

    @staticmethod
    def _error(status: int, description: str, retry_after: int | None = None) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        return web.json_response(body, status=status)

    def _take_fault(self, method: str, params: dict[str, Any]) -> Fault | None:
        for fault in self.faults:
            if fault.method != method or fault.times <= 0:
                continue
            if fault.chat_id is not None and str(params.get("chat_id")) != fault.chat_id:
                continue
            fault.times -= 1
            return fault
        return None

    def _take_slow(self, method: str) -> float:
        for slow in self.slows:
            if slow.method == method and slow.times > 0:
                slow.times -= 1
                return slow.seconds
        return 0.0

    async def _api(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await self._params(request)
        call = Call(method, params, via=request.match_info.get("via", ""))
        self.calls.append(call)
        for observe in self.observers:
            observe(call)
        counted = method != "getUpdates"
        self.in_flight += counted
        try:
            delay = self._take_slow(method)
            if delay:
                await asyncio.sleep(delay)
            fault = self._take_fault(method, params)
            if fault is not None:
                call.status = fault.status
                default = {429: "Too Many Requests: retry later", 403: "Forbidden",
                           502: "Bad Gateway"}.get(fault.status, "Internal Server Error")
                return self._error(fault.status, fault.description or default, fault.retry_after)
            handler = getattr(self, "_m_" + method.lower(), None)
            if handler is None:
                call.status = 404
                return self._error(404, "Not Found: method not found")
            result = await handler(params, call)
            if isinstance(result, web.Response):
                call.status = result.status
                return result
            return web.json_response({"ok": True, "result": result})
        finally:
            self.in_flight -= counted
            for hook in list(self.call_hooks):
                hook(call)  # before the answer is written: the bot has not read it yet
            await self._notify()

    async def _file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        for file in self.files.values():
            if file.file_path == path:
                return web.Response(body=file.content, content_type="application/octet-stream")
        return web.Response(status=404)

    def _bot_user(self) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "Deskbot", "username": BOT_USERNAME,
                "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}

    def _sent_message(self, chat_id: Any, text: str, thread_id: Any = None) -> dict[str, Any]:
        chat = self._chat(chat_id)
        message_id = chat.next_message_id
        chat.next_message_id += 1
        chat_obj: dict[str, Any] = {"id": int(chat_id), "type": chat.type}
        if chat.type == "private":
            chat_obj["first_name"] = "Alice"
        else:
            chat_obj["title"] = chat.title or "A group"
        msg: dict[str, Any] = {"message_id": message_id, "date": int(time.time()), "chat": chat_obj,
                               "from": {"id": BOT_ID, "is_bot": True, "first_name": "Deskbot"}, "text": text}
        if thread_id is not None:
            msg["message_thread_id"] = int(thread_id)
            msg["is_topic_message"] = True
        return msg

    # -- methods -------------------------------------------------------------------------------
    async def _m_getme(self, params: dict[str, Any], call: Call) -> Any:
        return self._bot_user()

    async def _m_getupdates(self, params: dict[str, Any], call: Call) -> Any:
        if self.webhook_url:
            return self._error(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        if offset:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
            self.confirmed_below = max(self.confirmed_below, offset)
            await self._notify()
        if not self.updates and timeout > 0:
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda: bool(self.updates) or self._closing), timeout
                    )
        return self.updates[:limit]

    async def _m_setwebhook(self, params: dict[str, Any], call: Call) -> Any:
        self.webhook_url = str(params.get("url") or "")
        self.webhook_secret = params.get("secret_token")
        if self.webhook_url:
            for update in self.updates:
                await self._webhook_queue.put(update)
            self.updates = []
        return True

    async def _m_deletewebhook(self, params: dict[str, Any], call: Call) -> Any:
        self.webhook_url, self.webhook_secret = "", None
        if str(params.get("drop_pending_updates", "")).lower() == "true":
            self.updates = []
        return True

    async def _m_getwebhookinfo(self, params: dict[str, Any], call: Call) -> Any:
        return {"url": self.webhook_url, "has_custom_certificate": False,
                "pending_update_count": len(self.updates) + self._webhook_queue.qsize()}

    async def _m_sendmessage(self, params: dict[str, Any], call: Call) -> Any:
        chat_id = params.get("chat_id")
        if str(chat_id) in self.blocked:
            call.status = 403
            return self._error(403, "Forbidden: bot was blocked by the user")
        text = str(params.get("text", ""))
        if not text.strip():
            return self._error(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return self._error(400, "Bad Request: message is too long")
        msg = self._sent_message(chat_id, text, params.get("message_thread_id"))
        params["_message_id"] = msg["message_id"]
        if params.get("reply_markup"):
            msg["reply_markup"] = params["reply_markup"]
        return msg

    async def _m_editmessagetext(self, params: dict[str, Any], call: Call) -> Any:
        return self._sent_message(params.get("chat_id"), str(params.get("text", "")))

    async def _m_answercallbackquery(self, params: dict[str, Any], call: Call) -> Any:
        self.answered_callbacks.append(params)
        return True

    async def _m_sendchataction(self, params: dict[str, Any], call: Call) -> Any:
        return True

    async def _m_setmycommands(self, params: dict[str, Any], call: Call) -> Any:
        self.commands.append(params)
        return True

    async def _m_deletemycommands(self, params: dict[str, Any], call: Call) -> Any:
        return True

    async def _m_getchat(self, params: dict[str, Any], call: Call) -> Any:
        chat_id = params.get("chat_id")
        chat = self._chat(chat_id)
        out: dict[str, Any] = {"id": int(chat_id), "type": chat.type, "accent_color_id": 0,
                               "max_reaction_count": 11, "accepted_gift_types": {
                                   "unlimited_gifts": False, "limited_gifts": False, "unique_gifts": False,
                                   "premium_subscription": False, "gifts_from_channels": False}}
        if chat.type == "private":
            out["first_name"] = "Alice"
        else:
            out["title"] = chat.title or "A group"
        if chat.is_forum:
            out["is_forum"] = True
        return out

    async def _m_getchatmember(self, params: dict[str, Any], call: Call) -> Any:
        user_id = int(params.get("user_id") or 0)
        status = self._chat(params.get("chat_id")).members.get(user_id, "left")
        member: dict[str, Any] = {"status": status, "user": self.user(user_id)}
        if status == "administrator":
            member |= {"can_be_edited": False, "is_anonymous": False, "can_manage_chat": True,
                       "can_delete_messages": True, "can_manage_video_chats": True, "can_restrict_members": True,
                       "can_promote_members": False, "can_change_info": True, "can_invite_users": True,
                       "can_post_stories": False, "can_edit_stories": False, "can_delete_stories": False,
                       "can_send_welcome_messages": False, "can_manage_topics": True}
        elif status == "creator":
            member["is_anonymous"] = False
        elif status == "restricted":  # its dozen permission fields are not modelled: shown as left
            return {"status": "left", "user": self.user(user_id)}
        elif status == "kicked":
            member["until_date"] = 0
        return member

    async def _m_createforumtopic(self, params: dict[str, Any], call: Call) -> Any:
        chat = self._chat(params.get("chat_id"))
        if not chat.is_forum:
            return self._error(400, "Bad Request: the chat is not a forum")
        thread_id = chat.next_thread_id
        chat.next_thread_id += 1
        return {"message_thread_id": thread_id, "name": str(params.get("name", "")), "icon_color": 7322096}

    async def _m_editforumtopic(self, params: dict[str, Any], call: Call) -> Any:
        return True

    async def _m_pinchatmessage(self, params: dict[str, Any], call: Call) -> Any:
        return True

    async def _m_getfile(self, params: dict[str, Any], call: Call) -> Any:
        file = self.files.get(str(params.get("file_id")))
        if file is None:
            return self._error(400, "Bad Request: invalid file_id")
        if file.file_size > 20 * 1024 * 1024:
            return self._error(400, "Bad Request: file is too big")
        return {"file_id": file.file_id, "file_unique_id": "u" + file.file_id, "file_size": file.file_size,
                "file_path": file.file_path}

    async def _m_close(self, params: dict[str, Any], call: Call) -> Any:
        return True

    async def _m_logout(self, params: dict[str, Any], call: Call) -> Any:
        return True

    # -- webhook delivery -----------------------------------------------------------------------
    async def _deliver_webhooks(self) -> None:
        """POST each queued update to the webhook in order, as Telegram does, retrying 5xx."""
        while True:
            update = await self._webhook_queue.get()
            attempt = 0
            while self.webhook_max_attempts is None or attempt < self.webhook_max_attempts:
                attempt += 1
                status = await self._post_update(update)
                self.webhook_results.append(WebhookResult(int(update["update_id"]), status))
                await self._notify()
                if status < 500:
                    break
                await asyncio.sleep(0.05 if self.webhook_max_attempts is not None else min(0.5, 0.05 * attempt))

    async def _post_update(self, update: dict[str, Any]) -> int:
        assert self._client is not None
        headers = {"Content-Type": "application/json"}
        if self.webhook_secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = str(self.webhook_secret)
        try:
            async with self._client.post(self.webhook_url, data=json.dumps(update), headers=headers) as response:
                await response.read()
                return response.status
        except Exception:  # noqa: BLE001 - Telegram counts any failure as "retry later"
            return 599
