"""The front's side of the queued intake: which conversation a Telegram update belongs to."""

from __future__ import annotations

from bot.intake import telegram_chat


def test_a_telegram_update_is_keyed_by_its_chat() -> None:
    message = {"update_id": 1, "message": {"chat": {"id": 42}, "from": {"id": 7}}}
    edited = {"update_id": 2, "edited_message": {"chat": {"id": -100}, "from": {"id": 7}}}
    tap = {"update_id": 3, "callback_query": {"from": {"id": 7}, "message": {"chat": {"id": 42}}}}
    inline_tap = {"update_id": 4, "callback_query": {"from": {"id": 7}, "inline_message_id": "x"}}
    member = {"update_id": 5, "my_chat_member": {"chat": {"id": 42}, "from": {"id": 7}}}
    assert [telegram_chat(u) for u in (message, edited, tap, inline_tap, member)] == ["42", "-100", "42", "7", "42"]
    assert telegram_chat({"update_id": 9, "poll": {"id": "p"}}) == "9"  # no chat at all: its own key
