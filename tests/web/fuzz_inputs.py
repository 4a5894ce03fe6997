"""A seeded generator of hostile HTTP requests for ``tests/web/test_fuzz.py``.

Each request starts from a valid one (the shapes real clients send: a Rasa widget, the web
chat, a dashboard, Telegram) and is then bent: fields dropped, retyped or swapped for
values that broke similar services (integers past Python's 4,300-digit limit, NUL bytes,
lone surrogates, deep nesting, far dates, crafted button payloads, path tricks). Most
requests stay valid enough to reach the pipeline, so conversations really move through
forms, hand-offs and ratings while the junk arrives.

Seeded ``random.Random``, no shrinking: a failure names its request index and input, and the
same seed replays it exactly. Bodies are built as text by :func:`dump`, so they can hold
JSON that Python's ``json.dumps`` would refuse to write (``Raw`` fragments).
"""

from __future__ import annotations

import base64
import json
import random
import string
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

REST_WEBHOOK = "/webhooks/rest/webhook"
REST_POLL = "/webhooks/rest/messages"


@dataclass(frozen=True)
class Raw:
    """A JSON fragment written as is (a 5,000-digit integer, NaN, a lone-surrogate escape)."""

    text: str


@dataclass
class FuzzRequest:
    kind: str
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    # What the runner needs to check the outcome: REST sender and message id, visitor slot.
    sender: str | None = None
    message_id: str | None = None
    visitor: int | None = None

    def describe(self, limit: int = 300) -> str:
        body = (self.content or b"")[:limit]
        return f"{self.method} {self.url[:limit]} {body!r}"


def dump(value: Any) -> str:
    """JSON text of ``value``; ``Raw`` parts are inserted verbatim."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)


# -- atoms ------------------------------------------------------------------------------
TEXTS = [
    "hi", "hello", "where is my order A10231", "where is my order?", "I want to return my hoodie",
    "I want to return something", "emma.clarke@example.com", "wang.fang@example.com", "+44 7700 900123",
    "A10231", "A10232", "A10233", "refund", "exchange", "it is too small", "talk to a human", "agent please",
    "how much is the hoodie?", "do you ship to Canada?", "status of my ticket", "yes", "no", "cancel", "T-1001",
    "thanks", "this is terrible, I want to complain", "你好", "我要退货", "我的订单在哪里", "5", "size M in blue",
]
WEIRD_TEXTS = [
    "", " ", "\x00", "a\x00b", "\x00" * 50, "\u202e\u202d", "\ufeff", "\u200b", "😀" * 500, "A" * 5000,
    "%", "_", "%_%", "\\", "'", "' OR 1=1 --", "\"; DROP TABLE messages; --", "<script>alert(1)</script>",
    "{{7*7}}", "${jndi:ldap://127.0.0.1/a}", "\r\n\r\n", "../../etc/passwd", "T-" + "9" * 40,
    "A" + "9" * 400, "\x1b[31mred", "x" * 64_001, "/", "//", "/ ", "null", "[]", "{}", "𝕳𝖊𝖑𝖑𝖔", "\u0301" * 100,
    "ﬁ", "İ", "\t", "²", "T-²", "١٢٣", "½", "A1023²", "0" * 200, "-1", "1e309", "NaN", "@", "@" * 300 + ".com", "a@b", "x@" + "y" * 300 + ".com",
]
PAYLOADS = [
    "/", "/x", "/a" + "a" * 70, "/" + "b" * 64, "/" + "c" * 65, "/choose", '/choose{"resolution": "bogus"}',
    '/choose{"resolution": "refund"}', '/choose{"resolution": "exchange"}', '/choose{"reason": "bogus"}',
    '/choose{"reason": "too_small"}', '/choose{"item": "bogus"}', '/choose{"item": "HD-001"}',
    '/choose{"resolution": null}', '/choose{"resolution": ["a"]}', '/choose{"resolution": {"a": 1}}',
    '/choose{"resolution": 1e999}', '/choose{"resolution": ' + "9" * 5000 + "}",
    '/rate{"ticket": "T-1001", "score": 99}', '/rate{"ticket": "T-1001", "score": 0}',
    '/rate{"ticket": "T-1001", "score": -3}', '/rate{"ticket": "T-1001", "score": 3.5}',
    '/rate{"ticket": "T-1001", "score": "x"}', '/rate{"ticket": "T-1001", "score": true}', '/rate{}',
    '/rate{"ticket": "T-99999999999999999999999", "score": 3}', '/rate{"ticket": null, "score": 3}',
    '/rate{"ticket": "T-1001", "score": 3}', '/rate{"ticket": "T-1001", "score": 1e400}',
    "/affirm", "/deny", "/human_handoff", "/request_return", "/ticket_status", "/ask_product", "/cancel",
    "/out_of_scope", "/nlu_fallback", "/greet", "/goodbye", "/order_status", "/complaint", "/restart",
    '/choose{"order_id": "A10231"}', '/choose{"order_id": "' + "Z" * 300 + '"}', '/choose{"contact": "x"}',
    '/choose{"email": "emma.clarke@example.com"}', '/choose{"size": "M", "colour": "\\u0000"}',
    "/choose{", "/choose[]", '/choose{"a":1}{"b":2}', "/Choose", '/choose{"a": "' + "x" * 3000 + '"}',
    '/choose{"resolution": "\\ud800"}', '/choose{"\\u0000": "\\u0000"}', '/order_status{"order_id": 12}',
    '/ticket_status{"ticket": "T-1001"}', '/human_handoff{"reason": "' + "r" * 600 + '"}',
]
DATES = [
    "2026-11-01", "2026-12-01", "9999-12-31", "0001-01-01", "2026-02-30", "2026-13-01", "", " ", "today",
    "10000-01-01", "-1", "2026-1-1", "2026-11-01T00:00:00", "1970-01-01", "2027-01-01", "\x00", "9999-12-30",
    "0000-00-00", "2026-11-01\x00", "２０２６-１１-０１", "2026/11/01", "20261101", "9" * 40,
]
def cursor_of(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


CURSORS = [
    "x", "", "eyJ9", "a" * 1001, "\x00", "e30", "WzFd", "bnVsbA", "%%%",
    cursor_of({"s": "sla", "p": 0, "k": ["2026-11-01T00:00:00+00:00", 2**40]}),
    cursor_of({"s": "sla", "p": 0, "k": ["2026-11-01T00:00:00", 5]}),
    cursor_of({"s": "sla", "p": 0, "k": ["9999-12-31T23:59:59+00:00", 5]}),
    cursor_of({"s": "sla", "p": 0, "k": ["0001-01-01T00:00:00-23:59", 5]}),
    cursor_of({"s": "newest", "p": 0, "k": [-(2**63)]}),
    cursor_of({"s": "newest", "p": 0, "k": [1.5]}),
    cursor_of({"s": "newest", "p": 1, "k": ["7"]}),
    cursor_of({"s": "updated", "p": 0, "k": [None, None]}),
    cursor_of({"s": "sla", "p": 1, "k": [True]}),
    cursor_of([1, 2]),
]
CHANNELS = ["rest", "web", "telegram", "console", "", "\x00", "rest\x00", "%", "_", "x" * 33, "тест", "' OR 1=1"]
LANGUAGES = ["en", "zh", "en-GB", "zh_CN", "EN", "xx", "", "e\x00n", "x" * 40, "de", "en-" + "a" * 30]


class Fuzzer:
    """Hostile requests, one at a time, from a seed."""

    def __init__(self, seed: int, *, senders: int = 30, visitors: int = 12, telegram_users: int = 20) -> None:
        self.rng = random.Random(seed)
        self.senders = [f"fuzz-{seed}-{i}" for i in range(senders)]
        self.telegram_users = [5_000_000 + i for i in range(telegram_users)]
        self.visitor_slots = visitors
        self.next_id = 0
        self.next_update_id = 10_000
        self.sent_ids: list[tuple[str, str]] = []  # (sender, message_id): some are replayed
        self.harvested: list[str] = []  # button payloads the bot offered
        self.callback_data: list[str] = []  # Telegram callback data the bot offered
        self.cursors: list[str] = []
        self.tickets: list[str] = ["T-1001", "T-1002"]
        self.customers: list[int] = [1, 2, 3]

    # -- building blocks -------------------------------------------------------------
    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick(self, items: list[Any]) -> Any:
        return items[self.rng.randrange(len(items))]

    def text(self) -> str:
        roll = self.rng.random()
        if roll < 0.55:
            return str(self.pick(TEXTS))
        if roll < 0.75:
            return str(self.pick(WEIRD_TEXTS))
        if roll < 0.9:
            return self.payload()
        return "".join(self.rng.choice(string.printable + "中文€\x00\u2028") for _ in range(self.rng.randrange(1, 40)))

    def payload(self) -> str:
        if self.harvested and self.chance(0.5):
            return self.mutate_payload(self.pick(self.harvested))
        return str(self.pick(PAYLOADS))

    def mutate_payload(self, payload: str) -> str:
        """A button the bot offered, often with one value changed."""
        intent, brace, rest = payload.partition("{")
        if not brace or self.chance(0.4):
            return payload
        try:
            data = json.loads(brace + rest)
        except ValueError:
            return payload
        if isinstance(data, dict) and data and self.chance(0.8):
            key = self.pick(sorted(data))
            data[key] = self.value(depth=1)
        elif isinstance(data, dict):
            data[self.pick(["resolution", "reason", "item", "ticket", "score", "x"])] = self.value(depth=1)
        return intent + dump(data)

    def value(self, depth: int = 0) -> Any:
        """Any JSON value, biased towards the ones that break parsers and databases."""
        roll = self.rng.randrange(24)
        if roll == 0:
            return None
        if roll == 1:
            return self.chance(0.5)
        if roll == 2:
            return self.pick([0, -1, 1, 2**31, 2**63, 2**64, -(2**63) - 1, 10**100])
        if roll == 3:
            return self.pick([0.5, -0.0, 1e308, 1e-320, 3.14])
        if roll == 4:
            return Raw(self.pick(["9" * 4301, "-" + "9" * 5000, "1" * 100_000, "1e999", "-1e999", "NaN",
                                  "Infinity", "-Infinity", "1E400", "0." + "0" * 5000 + "1"]))
        if roll == 5:
            return Raw(self.pick(['"\\ud800"', '"a\\udfffb"', '"\\u0000"', '"x\\u0000y"', '"\\uDBFF\\uDFFF"']))
        if roll == 6:
            n = self.pick([10, 100, 3000])
            return Raw("[" * n + "]" * n)
        if roll == 7 and depth < 3:
            return [self.value(depth + 1) for _ in range(self.rng.randrange(4))]
        if roll == 8 and depth < 3:
            return {self.pick(["a", "text", "message", "", "\x00", "sender"]): self.value(depth + 1)
                    for _ in range(self.rng.randrange(4))}
        if roll < 16:
            return self.text()
        return str(self.pick(WEIRD_TEXTS))

    def message_id(self) -> Any:
        roll = self.rng.randrange(12)
        if roll == 0 and self.sent_ids:
            return None  # decided by the caller: a replay
        if roll == 1:
            return self.value()
        if roll == 2:
            return Raw("9" * self.pick([4300, 4301, 5000, 20_000]))
        self.next_id += 1
        return self.next_id if roll < 6 else f"m-{self.next_id}"

    # -- requests --------------------------------------------------------------------
    def next(self) -> FuzzRequest:
        roll = self.rng.random()
        if roll < 0.34:
            return self.rest_webhook()
        if roll < 0.38:
            return self.rest_poll()
        if roll < 0.56:
            return self.webchat()
        if roll < 0.76:
            return self.api()
        return self.telegram()

    def _body(self, data: Any) -> bytes:
        roll = self.rng.randrange(40)
        text = dump(data)
        if roll == 0:
            return text.encode("utf-8", "surrogatepass")[: self.rng.randrange(1, max(2, len(text)))]
        if roll == 1:
            return b"\xff\xfe" + text.encode("utf-8", "surrogatepass")
        if roll == 2:
            return bytes(self.pick([b"", b" ", b"null", b"[]", b"1", b'"x"', b"{", b"{]", b"\x00", b"{}"]))
        if roll == 3:
            return ("\ufeff" + text).encode()
        return text.encode("utf-8", "surrogatepass")

    def _mutate_fields(self, data: dict[str, Any], fields: list[str]) -> None:
        for _ in range(self.rng.choice([0, 0, 0, 1, 1, 2])):
            what = self.rng.randrange(4)
            name = self.pick(fields)
            if what == 0:
                data.pop(name, None)
            elif what == 1:
                data[name] = self.value()
            elif what == 2:
                data[self.pick(["extra", "", "\x00", "__proto__", "buttons"])] = self.value()
            else:
                data[name] = str(self.pick(WEIRD_TEXTS))

    def rest_webhook(self) -> FuzzRequest:
        replay = self.sent_ids and self.chance(0.05)
        if replay:
            sender, message_id = self.pick(self.sent_ids)
            mid: Any = int(message_id) if message_id.isascii() and message_id.isdigit() else message_id
        else:
            sender = self.pick(self.senders) if self.chance(0.9) else str(self.value())
            mid = self.message_id()
        data: dict[str, Any] = {"sender": sender, "message": self.text()}
        if mid is not None:
            if self.chance(0.85):
                data["message_id"] = mid
            else:
                data["metadata"] = {"message_id": mid}
        if self.chance(0.3):
            data.setdefault("metadata", {})["language"] = self.pick(LANGUAGES)
        self._mutate_fields(data, ["sender", "message", "message_id", "metadata"])
        if self.chance(0.02):
            body: Any = self.value()
        else:
            body = data
        content = self._body(body)
        headers = {"content-type": "application/json"} if self.chance(0.95) else {"content-type": "text/plain"}
        plain_id = data.get("message_id", (data.get("metadata") or {}).get("message_id")
                            if isinstance(data.get("metadata"), dict) else None)
        recorded = str(plain_id) if isinstance(plain_id, (str, int)) and not isinstance(plain_id, bool) else None
        return FuzzRequest("rest", "POST", REST_WEBHOOK, headers, content,
                           sender=data.get("sender") if isinstance(data.get("sender"), str) else None,
                           message_id=recorded)

    def query_value(self, pool: list[str]) -> str:
        """A query-string value, percent-encoded, sometimes with bytes no UTF-8 text has."""
        roll = self.rng.randrange(10)
        if roll == 0:
            return str(self.pick(["%ff", "%00", "%ed%a0%80", "%", "%zz", "a%00b", "%c0%80", "+", "%2B"]))
        if roll == 1:
            return quote(str(self.pick(WEIRD_TEXTS))[:300], safe="")
        return quote(str(self.pick(pool)), safe="")

    def rest_poll(self) -> FuzzRequest:
        plain = self.pick(self.senders)
        sender = quote(plain) if self.chance(0.8) else self.query_value(self.senders)
        url = f"{REST_POLL}?sender={sender}" if self.chance(0.95) else f"{REST_POLL}?"
        if self.chance(0.1):
            url += f"&sender={self.query_value(self.senders)}"
        if self.chance(0.3):
            url += f"&after={self.query_value(['1', '0', '-1', '2147483648', '9' * 30, 'x', str(self.next_id)])}"
        return FuzzRequest("rest-poll", "GET", url, sender=plain)

    def webchat(self) -> FuzzRequest:
        visitor = self.rng.randrange(self.visitor_slots + 2)  # the last two: no or a forged cookie
        roll = self.rng.random()
        if roll < 0.15:
            return FuzzRequest("web-poll", "GET", "/chat/api/messages", visitor=visitor)
        if roll < 0.22:
            return FuzzRequest("web-history", "GET", "/chat/api/history", visitor=visitor)
        data: dict[str, Any] = {"payload": self.payload()} if self.chance(0.3) else {"text": self.text()}
        if self.chance(0.6):
            self.next_id += 1
            data["message_id"] = self.next_id
        if self.chance(0.2):
            data["language"] = self.pick(LANGUAGES)
        self._mutate_fields(data, ["text", "payload", "message_id", "language"])
        headers = {"content-type": "application/json", "x-requested-with": "deskbot"}
        if self.chance(0.03):
            headers.pop(self.pick(sorted(headers)))
        return FuzzRequest("web", "POST", "/chat/api/messages", headers, self._body(data), visitor=visitor)

    def api_action(self) -> FuzzRequest:
        """An agent's unsafe request with a bent JSON body (an API token needs no CSRF header)."""
        number = self.pick(self.tickets)
        path, data = self.pick([
            (f"/api/v1/tickets/{number}/assign", {"agent_id": 1}),
            (f"/api/v1/tickets/{number}/notes", {"text": "checked the parcel"}),
            (f"/api/v1/tickets/{number}/priority", {"priority": "high"}),
            (f"/api/v1/tickets/{number}/render-canned", {"id": 1}),
            (f"/api/v1/tickets/{number}/merge", {"into": "T-1001"}),
            ("/api/v1/missed/dismiss", {"ids": [1, 2]}),
            ("/api/v1/customers/1", {"tags": ["vip"], "notes": "calls often"}),
        ])
        self._mutate_fields(data, sorted(data))
        if data and self.chance(0.5):
            data[self.pick(sorted(data))] = self.value()
        method = "PATCH" if path.startswith("/api/v1/customers/") else "POST"
        return FuzzRequest("api-action", method, path, {"content-type": "application/json"}, self._body(data))

    def api(self) -> FuzzRequest:
        if self.chance(0.12):
            return self.api_action()
        roll = self.rng.randrange(10)
        if roll < 4:
            params = []
            options = {
                "status": ["new", "open", "pending", "resolved", "closed", "bogus", "", "\x00"],
                "kind": ["return", "handoff", "complaint", "bogus", "RETURN"],
                "priority": ["low", "normal", "high", "urgent", "bogus"],
                "assignee": ["mine", "unassigned", "1", "0", "-1", "99999999999999999999", "x", "\x00", "a" * 21],
                "channel": CHANNELS,
                "q": ["hoodie", "T-1001", "1001", "emma", "%", "_", "\\", "\x00", "a\x00b", "' OR 1=1 --",
                      "x" * 201, "T-", "T-99999999999999999999", "中", "\u202e", " ", "A10231"],
                "sort": ["sla", "newest", "updated", "bogus", ""],
                "cursor": [*self.cursors[-5:], *CURSORS],
                "limit": ["1", "50", "200", "201", "0", "-1", "99999999999999999999", "abc", "1.5", ""],
            }
            for name, pool in options.items():
                if self.chance(0.35):
                    params.append(f"{name}={self.query_value(pool)}")
            return FuzzRequest("api-tickets", "GET", "/api/v1/tickets?" + "&".join(params))
        if roll < 6:
            params = [f"{n}={self.query_value(DATES)}" for n in ("since", "until") if self.chance(0.7)]
            path = "/api/v1/analytics"
            if self.chance(0.3):
                path += ".csv"
                if self.chance(0.7):
                    params.append(f"table={self.query_value(['days', 'intents', 'agents', 'bogus', '', '..'])}")
            return FuzzRequest("api-analytics", "GET", path + "?" + "&".join(params))
        if roll < 7:
            ident = self.query_value([*map(str, self.customers), "0", "-1", "99999999999999999999", "abc",
                                      "1.0", "1e3", " 1", str(2**63)])
            suffix = "/export" if self.chance(0.2) else ""
            return FuzzRequest("api-customers", "GET", f"/api/v1/customers/{ident}{suffix}")
        if roll < 9:
            number = self.query_value([*self.tickets, "T-0", "T-1", "T-99999999999999999999999", "1001",
                                       "T-1001x", "..", "T-%", "t-1001", "T-" + "9" * 38, "T--1"])
            return FuzzRequest("api-ticket", "GET", f"/api/v1/tickets/{number}")
        params = []
        for name, pool in {"days": ["1", "30", "365", "0", "366", "x", "-5"],
                           "language": ["en", "zh", "xx", "EN", "", "\x00", "e"],
                           "limit": ["1", "100", "500", "501", "0"]}.items():
            if self.chance(0.5):
                params.append(f"{name}={self.query_value(pool)}")
        return FuzzRequest("api-missed", "GET", "/api/v1/missed?" + "&".join(params))

    # -- Telegram ---------------------------------------------------------------------
    def _tg_user(self, user_id: int) -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": "Fuzz", "language_code": self.pick(["en", "zh", "de"])}

    def _tg_message(self, user_id: int, text: str | None) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {
            "message_id": self.next_id,
            "date": 1_790_000_000,
            "chat": {"id": user_id, "type": "private", "first_name": "Fuzz"},
            "from": self._tg_user(user_id),
        }
        if text is not None:
            message["text"] = text
        return message

    def telegram_update(self) -> dict[str, Any]:
        user = self.pick(self.telegram_users)
        roll = self.rng.randrange(12)
        self.next_update_id += 1
        update: dict[str, Any] = {"update_id": self.next_update_id}
        if roll < 6:
            update["message"] = self._tg_message(user, self.text())
        elif roll < 8:
            data = self.pick(self.callback_data) if self.callback_data and self.chance(0.6) else self.text()[:64]
            update["callback_query"] = {
                "id": f"cb{self.next_update_id}", "from": self._tg_user(user), "chat_instance": f"ci{user}",
                "data": data, "message": self._tg_message(user, "…") | {"from": {"id": 1, "is_bot": True,
                                                                                 "first_name": "Deskbot"}},
            }
        elif roll == 8:
            update["edited_message"] = self._tg_message(user, self.text()) | {"edit_date": 1_790_000_100}
        else:
            message = self._tg_message(user, None)
            extra = self.pick([
                {"photo": [{"file_id": "P1", "file_unique_id": "u", "width": 9, "height": 9, "file_size": 10}],
                 "caption": self.text()},
                {"document": {"file_id": "D1", "file_unique_id": "u", "file_name": self.pick(
                    ["../../etc/passwd", "a.pdf", "\x00.exe", "x" * 300]), "mime_type": "application/pdf",
                    "file_size": self.pick([1, 10**12, -1])}},
                {"sticker": {"file_id": "S1", "file_unique_id": "u", "type": "regular", "width": 1, "height": 1,
                             "is_animated": False, "is_video": False}},
                {"contact": {"phone_number": self.pick(["+44 7700 900123", "", "\x00", "x" * 100]),
                             "first_name": "F", "user_id": user}},
                {"location": {"latitude": 91.0, "longitude": -181.0}},
                {"voice": {"file_id": "V1", "file_unique_id": "u", "duration": 1}},
            ])
            message.update(extra)
            if self.chance(0.2):
                message["chat"] = {"id": -100123, "type": self.pick(["group", "supergroup", "channel"]), "title": "G"}
            update["message"] = message
        return update

    def mutate_tree(self, tree: Any, depth: int = 0) -> Any:
        """Replace, drop or add one value somewhere inside a JSON tree."""
        if isinstance(tree, dict) and tree and depth < 4 and self.chance(0.7):
            key = self.pick(sorted(tree))
            what = self.rng.randrange(4)
            if what == 0:
                tree.pop(key)
            elif what == 1:
                tree[key] = self.value()
            else:
                tree[key] = self.mutate_tree(tree[key], depth + 1)
            return tree
        if isinstance(tree, list) and tree and self.chance(0.7):
            index = self.rng.randrange(len(tree))
            tree[index] = self.mutate_tree(tree[index], depth + 1)
            return tree
        return self.value()

    def telegram(self) -> FuzzRequest:
        update: Any = self.telegram_update()
        for _ in range(self.rng.choice([0, 0, 1, 1, 2, 3])):
            update = self.mutate_tree(update)
        if self.chance(0.03):
            update = {"update_id": Raw("9" * 5000), "message": {}}
        if isinstance(update, dict) and self.chance(0.02):
            update["update_id"] = self.pick([10_001, -1, 0, 2**63, 2**31])  # a replay or an odd id
        headers = {"content-type": "application/json", "x-telegram-bot-api-secret-token": "SECRET"}
        return FuzzRequest("telegram", "POST", "/telegram/webhook", headers, self._body(update))
