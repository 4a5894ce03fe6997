from __future__ import annotations

import json
import logging

from bot.logs import JsonFormatter, mask


def test_mask_hides_emails_and_phone_numbers() -> None:
    text = mask("write to alice.smith@example.com or call +44 7700 900123 about A10234")
    assert "alice.smith" not in text and "900123" not in text
    assert "a***@example.com" in text and "***23" in text
    assert "A10234" in text  # order ids are not personal data


def test_json_formatter_masks_extras() -> None:
    record = logging.LogRecord("deskbot", logging.INFO, __file__, 1, "customer %s", ("bob@example.com",), None)
    record.contact = "+86 138 0013 8000"
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "customer b***@example.com"
    assert line["contact"] == "***00" and line["level"] == "info"
