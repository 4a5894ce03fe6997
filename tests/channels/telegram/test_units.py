"""Parsing, rendering and the delivery policy, without a network."""

from __future__ import annotations

import html

import pytest

from bot.channels.port import Outcome
from bot.channels.telegram.api import BadRequest, Forbidden, NetworkError, RetryAfter, ServerError
from bot.channels.telegram.delivery import RetryPolicy, Sender, send_parts
from bot.channels.telegram.render import MAX_CALLBACK_BYTES, ButtonCodec, Chunk, escape, keyboard, render, split_html
from bot.channels.telegram.updates import MediaPolicy, parse_update
from common.messages import Button, Outgoing
from tests.fakes.recording_api import RecordingTelegramApi

MEDIA = MediaPolicy()


def _message(**fields: object) -> dict[str, object]:
    return {"message_id": 1, "date": 0, "chat": {"id": 42, "type": "private"},
            "from": {"id": 42, "is_bot": False, "first_name": "Ann", "language_code": "zh-hans"}} | fields


# -- updates.py ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "payload"),
    [("/start", "/greet"), ("/help", "/greet"), ("/cancel", "/cancel"), ("/status", "/ticket_status"),
     ("/human", "/human_handoff"), ("/status@deskbot_test_bot", "/ticket_status"), ("/start ref-123", "/greet")],
)
def test_commands_become_payloads(text: str, payload: str) -> None:
    parsed = parse_update({"update_id": 3, "message": _message(text=text)}, media=MEDIA, bot_username="deskbot_test_bot")
    assert parsed.incoming is not None
    assert parsed.incoming.payload == payload and parsed.incoming.text == ""
    assert parsed.incoming.delivery_key == "3" and parsed.incoming.language == "zh-hans"


def test_unknown_commands_and_other_bots_commands_stay_text() -> None:
    for text in ("/frobnicate", "/status@other_bot"):
        parsed = parse_update({"update_id": 1, "message": _message(text=text)}, media=MEDIA,
                              bot_username="deskbot_test_bot")
        assert parsed.incoming is not None and parsed.incoming.payload is None and parsed.incoming.text == text


def test_photo_keeps_the_largest_size_and_the_caption() -> None:
    photo = [{"file_id": "small", "width": 90, "height": 90, "file_size": 900},
             {"file_id": "big", "width": 1280, "height": 960, "file_size": 500}]
    parsed = parse_update({"update_id": 1, "message": _message(photo=photo, caption="broken zip")}, media=MEDIA)
    assert parsed.incoming is not None
    (item,) = parsed.incoming.attachments
    assert (item.kind, item.file_id, item.refused) == ("photo", "big", None)
    assert parsed.incoming.text == "broken zip"


def test_media_policy_refuses_big_and_unaccepted_files() -> None:
    policy = MediaPolicy(accepted=("photo", "application/pdf"), max_bytes=20 * 1024 * 1024)
    assert policy.refusal("document", "application/pdf", 1000) is None
    assert policy.refusal("document", "application/zip", 1000) == "not_accepted"
    assert policy.refusal("document", "application/pdf", 21 * 1024 * 1024) == "too_large:20"
    assert policy.refusal("photo", "image/jpeg", None) is None


def test_stickers_voice_location_carry_no_text() -> None:
    for field in ({"sticker": {"file_id": "s"}}, {"voice": {"file_id": "v"}}, {"location": {"latitude": 1.0}}):
        parsed = parse_update({"update_id": 1, "message": _message(**field)}, media=MEDIA)
        assert parsed.incoming is not None and parsed.incoming.text == ""
        assert parsed.incoming.attachments[0].kind == next(iter(field))


def test_contact_becomes_the_phone_number() -> None:
    contact = {"phone_number": "447700900123", "first_name": "Ann", "user_id": 42}
    parsed = parse_update({"update_id": 1, "message": _message(contact=contact)}, media=MEDIA)
    assert parsed.incoming is not None and parsed.incoming.text == "+447700900123"
    assert parsed.incoming.attachments[0].own is True


def test_edited_message_is_marked() -> None:
    parsed = parse_update({"update_id": 9, "edited_message": _message(text="A20001")}, media=MEDIA)
    assert parsed.incoming is not None and parsed.incoming.edited and parsed.incoming.text == "A20001"


def test_groups_channels_and_unknown_updates_are_ignored() -> None:
    group = _message(text="hi", chat={"id": -5, "type": "supergroup", "title": "x"})
    assert parse_update({"update_id": 1, "message": group}, media=MEDIA).ignored == "group chat"
    allowed = parse_update({"update_id": 1, "message": group}, media=MEDIA, allow_groups=True)
    assert allowed.incoming is not None and allowed.incoming.chat_id == "-5" and allowed.incoming.user_id == "42"
    assert parse_update({"update_id": 2, "poll": {}}, media=MEDIA).incoming is None


def test_callback_query_is_a_button_payload_and_must_be_answered() -> None:
    query = {"id": "q1", "from": {"id": 42, "is_bot": False, "first_name": "Ann"}, "chat_instance": "c",
             "data": '/rate{"ticket":"T-1001","score":5}', "message": _message(text="rate us")}
    parsed = parse_update({"update_id": 4, "callback_query": query}, media=MEDIA)
    assert parsed.callback_query_id == "q1"
    assert parsed.incoming is not None and parsed.incoming.payload == '/rate{"ticket":"T-1001","score":5}'
    expired = parse_update({"update_id": 5, "callback_query": query | {"data": "#unknown"}}, media=MEDIA,
                           decode_button=ButtonCodec().decode)
    assert expired.incoming is None and expired.callback_query_id == "q1"


# -- render.py ---------------------------------------------------------------------------------
def test_escape_and_split_keep_every_word_and_entity() -> None:
    text = " ".join(f"R&D<{i}>" for i in range(2000))
    chunks = split_html(escape(text))
    assert len(chunks) > 1 and all(len(c) <= 4096 for c in chunks)
    assert " ".join(html.unescape(c) for c in chunks).split() == text.split()


def test_split_closes_and_reopens_tags() -> None:
    markup = "<b>" + " ".join(["bold"] * 60) + "</b> and <i>end</i>"
    chunks = split_html(markup, limit=100)
    assert all(len(c) <= 100 for c in chunks)
    assert all(c.count("<b>") == c.count("</b>") for c in chunks)
    assert chunks[1].startswith("<b>")


def test_a_word_longer_than_a_message_is_cut_not_lost() -> None:
    chunks = split_html("&amp;" * 3000)
    assert all(len(c) <= 4096 for c in chunks)
    assert "".join(chunks) == "&amp;" * 3000  # never inside an entity


def test_buttons_fit_callback_data() -> None:
    codec = ButtonCodec()
    long_payload = '/choose{"item": "' + "x" * 100 + '"}'
    buttons = (Button("1 ★", '/rate{"ticket": "T-1001", "score": 1}'), Button("Long", long_payload))
    rows = keyboard(buttons, codec)
    assert rows is not None
    data = [b.callback_data for row in rows for b in row]
    assert data[0] == '/rate{"ticket":"T-1001","score":1}'
    assert all(len(d.encode()) <= MAX_CALLBACK_BYTES for d in data)
    assert codec.decode(data[1]) == long_payload


def test_keyboard_rides_on_the_last_chunk() -> None:
    reply = Outgoing("telegram", "1", "word " * 2000, (Button("Yes", "/affirm"),))
    chunks = render(reply, ButtonCodec())
    assert len(chunks) == 3 and [c.keyboard is not None for c in chunks] == [False, False, True]


# -- delivery.py -------------------------------------------------------------------------------
def _sender(api: RecordingTelegramApi, waits: list[float]) -> Sender:
    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    return Sender(api, RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=1.0), sleep)


async def test_other_calls_wait_out_a_429_and_back_off_on_5xx() -> None:
    api, waits = RecordingTelegramApi(), []
    api.fail("getMe", RetryAfter(7), times=2)
    api.fail("getMe", ServerError("Bad Gateway"), times=1)
    assert (await _sender(api, waits).call(api.get_me, "getMe")).id == api.bot.id
    assert waits == [7, 7, 0.5]


def _parts(text: str) -> list[Chunk]:
    return render(Outgoing("telegram", "1", text), ButtonCodec())


async def test_a_send_is_one_attempt_classified_for_the_outbox() -> None:
    api = RecordingTelegramApi()
    api.fail("sendMessage", RetryAfter(7))
    held = await send_parts(api, 1, _parts("hi"))
    assert held.outcome is Outcome.RETRY_AFTER and held.retry_after == 7 and api.posted == []
    api.fail("sendMessage", ServerError("Bad Gateway"))
    assert (await send_parts(api, 1, _parts("hi"))).outcome is Outcome.TRANSIENT
    api.fail("sendMessage", NetworkError("timeout"))
    assert (await send_parts(api, 1, _parts("hi"))).outcome is Outcome.TRANSIENT
    api.fail("sendMessage", Forbidden("Forbidden: bot was blocked by the user"))
    blocked = await send_parts(api, 1, _parts("hi"))
    assert blocked.outcome is Outcome.UNREACHABLE and blocked.forbidden
    api.fail("sendMessage", BadRequest("chat not found"))
    assert (await send_parts(api, 1, _parts("hi"))).outcome is Outcome.PERMANENT
    assert api.count("sendMessage") == 5 and api.posted == []  # never retried in place
    done = await send_parts(api, 1, _parts("hi"))
    assert done.ok and done.parts_sent == 1 and [p.text for p in api.posted] == ["hi"]


async def test_a_failed_part_is_named_and_the_next_attempt_starts_after_the_accepted_ones() -> None:
    api = RecordingTelegramApi()
    chunks = _parts("word " * 2000)
    first = await send_parts(api, 1, chunks[:1])
    api.fail("sendMessage", Forbidden("blocked"))
    rest = await send_parts(api, 1, chunks, start=first.parts_sent)
    assert first.ok and not rest.ok and "part 2 of 3" in (rest.error or "") and rest.parts_sent == 1
    resumed = await send_parts(api, 1, chunks, start=rest.parts_sent)
    assert resumed.ok and resumed.parts_sent == 3
    assert [p.text for p in api.posted] == [c.text for c in chunks]  # each part once, in order


# -- the adapters' error translation --------------------------------------------------------------
def test_aiogram_errors_translate() -> None:
    from aiogram.exceptions import (
        TelegramBadRequest,
        TelegramForbiddenError,
        TelegramNetworkError,
        TelegramRetryAfter,
        TelegramServerError,
    )
    from aiogram.methods import SendMessage

    from bot.channels.telegram.aiogram_api import translate

    method = SendMessage(chat_id=1, text="x")
    assert translate(TelegramRetryAfter(method, "Too Many Requests", 5)).retry_after == 5
    assert isinstance(translate(TelegramForbiddenError(method, "blocked")), Forbidden)
    assert isinstance(translate(TelegramBadRequest(method, "bad")), BadRequest)
    assert isinstance(translate(TelegramServerError(method, "Bad Gateway")), ServerError)
    assert isinstance(translate(TelegramNetworkError(method, "timeout")), NetworkError)


def test_ptb_errors_translate() -> None:
    from telegram import error as ptb

    from bot.channels.telegram.api import ClientOptions
    from bot.channels.telegram.ptb_api import open_ptb, translate

    open_ptb(ClientOptions("1:x", "http://127.0.0.1:9"))  # opts into timedelta retry_after (no warning)
    assert translate(ptb.RetryAfter(4)).retry_after == 4
    assert isinstance(translate(ptb.Forbidden("blocked")), Forbidden)
    assert isinstance(translate(ptb.BadRequest("bad")), BadRequest)  # a NetworkError subclass in PTB
    assert isinstance(translate(ptb.TimedOut()), NetworkError)
    assert isinstance(translate(ptb.NetworkError("Bad Gateway")), NetworkError)
