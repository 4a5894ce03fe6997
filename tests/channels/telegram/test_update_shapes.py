"""``updates.py`` reads any JSON without raising: the webhook hands bodies over as they came.

Both intake modes pass Telegram's raw JSON straight to the channel (no library model in
between, see ``intake.py``), so a field of an unexpected type must give "ignored", never an
exception — on the webhook that would be a 503 and a redelivery of the same body for ever.
A seeded generator swaps each field of real updates for values of every JSON type.
"""

from __future__ import annotations

import random
from typing import Any

from bot.channels.telegram.updates import MediaPolicy, chat_command, chat_key, group_sighting, parse_update
from tests.fakes.telegram_server import FakeTelegram

ODD_VALUES: list[Any] = [None, True, 0, -1, 2**70, 1.5, "", "x", "/chatid", [], [1, "a"], [{}], {}, {"id": "7"},
                         {"id": 5, "type": "supergroup"}]


def _samples(fake: FakeTelegram) -> list[dict[str, Any]]:
    message = fake.message(7, "/status", extra={"photo": [{"file_id": "p", "width": 9, "height": 9}],
                                                "document": {"file_id": "d", "mime_type": "application/pdf"},
                                                "contact": {"phone_number": "123", "user_id": 7}})
    group = fake.message(8, "/chatid", chat_id=-1005, chat_type="supergroup")
    query = {"id": "q", "from": fake.user(7), "chat_instance": "c", "data": "/affirm",
             "message": {"message_id": 1, "date": 0, "chat": {"id": 7, "type": "private"}}}
    member = {"chat": {"id": -1005, "type": "supergroup", "title": "T"}, "from": fake.user(8), "date": 0,
              "new_chat_member": {"status": "member", "user": fake.user(1)}}
    return [{"update_id": 1, "message": message}, {"update_id": 2, "edited_message": group},
            {"update_id": 3, "callback_query": query}, {"update_id": 4, "my_chat_member": member}]


def _mutate(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        out = {k: _mutate(v, rng) for k, v in value.items()}
        if out and rng.random() < 0.3:
            out[rng.choice(list(out))] = rng.choice(ODD_VALUES)
        return out
    if isinstance(value, list):
        return [_mutate(v, rng) for v in value]
    return rng.choice(ODD_VALUES) if rng.random() < 0.2 else value


def test_any_shape_is_read_without_raising() -> None:
    rng = random.Random(11)
    samples = _samples(FakeTelegram())
    for _ in range(3000):
        raw = _mutate(rng.choice(samples), rng)
        parse_update(raw, media=MediaPolicy(), allow_groups=rng.random() < 0.5, bot_username="deskbot_test_bot")
        chat_key(raw)
        group_sighting(raw)
        chat_command(raw)
