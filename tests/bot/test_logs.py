from __future__ import annotations

import io
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from bot.config import LoggingConfig, load_settings
from bot.logs import JsonFormatter, TextFormatter, configure_logging, is_terminal, mask, select_formatter
from common.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


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


# -- the format: text for a person at a terminal, JSON for a collector ------------------------
@pytest.fixture
def terminal() -> Iterator[TextIO]:
    """The writing end of a real pseudo-terminal: what stderr is under `make run` in a shell."""
    leader, follower = os.openpty()
    with open(follower, "w", encoding="utf-8") as stream:
        try:
            yield stream
        finally:
            os.close(leader)


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """configure_logging replaces the root handlers; give pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield root
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_auto_is_text_on_a_terminal_and_json_elsewhere(terminal: TextIO, tmp_path: Path) -> None:
    assert is_terminal(terminal)
    assert isinstance(select_formatter("auto", terminal), TextFormatter)
    assert isinstance(select_formatter("auto", io.StringIO()), JsonFormatter)
    with open(tmp_path / "deskbot.log", "w", encoding="utf-8") as file:  # redirected: `make run 2> log`
        assert isinstance(select_formatter("auto", file), JsonFormatter)
    closed = io.StringIO()
    closed.close()
    assert not is_terminal(closed) and not is_terminal(None)
    assert isinstance(select_formatter("auto", None), JsonFormatter)


def test_configured_formats_win_over_the_terminal(terminal: TextIO) -> None:
    assert isinstance(select_formatter("json", terminal), JsonFormatter)
    assert isinstance(select_formatter("text", io.StringIO()), TextFormatter)


def test_text_line_reads_like_a_sentence_with_masked_extras() -> None:
    record = logging.LogRecord("deskbot.app", logging.INFO, __file__, 1, "classifier ready", (), None)
    record.retrained = False
    record.model = "var/model/intents.npz"
    line = TextFormatter().format(record)
    expected = r"\d\d:\d\d:\d\d INFO  deskbot\.app classifier ready retrained=False model=var/model/intents\.npz"
    assert re.fullmatch(expected, line)
    assert line[:8] == time.strftime("%H:%M:%S", time.localtime(record.created))  # local time, as the wall clock

    record = logging.LogRecord(
        "deskbot.pipeline", logging.WARNING, __file__, 1, "no reply for %s", ("bob@example.com",), None
    )
    record.contact = "+86 138 0013 8000"
    record.reason = "order A10234 too old"
    line = TextFormatter().format(record)
    assert "bob@" not in line and "138 0013" not in line
    assert line.endswith(
        'WARNING deskbot.pipeline no reply for b***@example.com contact=***00 reason="order A10234 too old"'
    )


def test_text_line_masks_the_traceback() -> None:
    try:
        raise ValueError("cannot reach ann.lee@example.com")
    except ValueError:
        record = logging.LogRecord("deskbot", logging.ERROR, __file__, 1, "send failed", (), sys.exc_info())
    first, *rest = TextFormatter().format(record).splitlines()
    assert first.endswith("ERROR deskbot send failed")
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: cannot reach a***@example.com"


def test_a_library_that_sets_its_logger_to_debug_after_start_up_stays_quiet(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    chatty = logging.getLogger("deskbot.test.chatty-library")
    chatty.setLevel(logging.DEBUG)  # what bm25s does when it is imported
    try:
        chatty.debug("Building index from tokens")
        chatty.info("kept")
    finally:
        chatty.setLevel(logging.NOTSET)
    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == ["kept"]


def test_configure_logging_writes_the_chosen_format(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging("INFO", "auto", stream)
    logging.getLogger("deskbot.test").info("order for %s", "ann.lee@example.com", extra={"order_id": "X-1"})
    logging.getLogger("alembic.runtime.plugins").info("setup plugin alembic.autogenerate.schemas")
    logging.getLogger("deskbot.test").debug("below the level")
    [line] = stream.getvalue().splitlines()
    assert json.loads(line) | {"ts": None} == {
        "ts": None, "level": "info", "logger": "deskbot.test", "event": "order for a***@example.com", "order_id": "X-1",
    }


def test_the_format_key_is_validated_and_auto_by_default() -> None:
    config = ROOT / "config.yaml"
    assert load_settings(config, environ={}).logging.format == "auto"
    assert LoggingConfig().format == "auto"
    assert load_settings(config, environ={"DESKBOT_LOGGING__FORMAT": "text"}).logging.format == "text"
    with pytest.raises(ConfigError, match=r"logging\.format = 'xml': Input should be 'auto', 'json' or 'text'"):
        load_settings(config, environ={"DESKBOT_LOGGING__FORMAT": "xml"})


def test_uvicorns_coloured_copy_of_the_message_is_not_an_extra() -> None:
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "Started server process [%d]", (42,), None)
    record.color_message = "Started server process [\x1b[36m%d\x1b[0m]"
    assert TextFormatter().format(record).endswith("INFO  uvicorn.error Started server process [42]")
    assert "color_message" not in json.loads(JsonFormatter().format(record))
