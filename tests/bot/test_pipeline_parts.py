from __future__ import annotations

from bot.pipeline import clean_text, parse_payload


def test_payloads_follow_rasa_conventions() -> None:
    plain = parse_payload("/affirm")
    assert plain is not None and plain.intent == "affirm" and plain.entities == ()
    slots = parse_payload('/choose{"resolution": "refund"}')
    assert slots is not None and slots.intent == "choose" and slots.entity("resolution") == "refund"
    assert parse_payload("/choose{not json}") is None
    assert parse_payload('/choose["list"]') is None
    assert parse_payload("hello") is None


def test_clean_text_strips_control_characters_but_keeps_lines() -> None:
    assert clean_text("\x00he\x07llo\u200b\nworld\x7f ") == "hello\nworld"
    assert clean_text("😀 ok") == "😀 ok"
