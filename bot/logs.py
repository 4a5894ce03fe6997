"""Logs with customer personal data masked: JSON lines for machines, text lines for people.

Log records carry ids and intents, never message bodies; anything that might still
hold personal data (names, e-mails, phone numbers) goes through ``mask``, in both formats.
``logging.format: auto`` writes text when stderr is a terminal (someone is watching
``make run``) and JSON otherwise (a service manager, a container, a pipe collect it).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

LogFormat = Literal["auto", "json", "text"]

EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
PHONE = re.compile(r"(?<!\w)(\+?\d[\d \-()]{6,}\d)(?!\w)")
RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def mask(value: str) -> str:
    """Hide e-mail local parts and all but the last two digits of phone numbers."""
    value = EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", value)
    return PHONE.sub(lambda m: "***" + re.sub(r"\D", "", m.group(1))[-2:], value)


# uvicorn adds an ANSI-coloured copy of each message as an extra; the message says it already.
NOT_EXTRAS = RESERVED | {"color_message"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra={...}`` fields of a record, masked like the message."""
    return {
        key: mask(value) if isinstance(value, str) else value
        for key, value in record.__dict__.items()
        if key not in NOT_EXTRAS and not key.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """One JSON object a line: UTC timestamp, level, logger, event and the extras."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": mask(record.getMessage()),
        }
        payload.update(_extras(record))
        if record.exc_info:
            payload["exc"] = mask(self.formatException(record.exc_info))
        return json.dumps(payload, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``12:04:31 INFO  deskbot.app classifier ready retrained=False``: local time, for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        parts = [f"{clock} {record.levelname:<5} {record.name} {mask(record.getMessage())}"]
        parts += [f"{key}={_text_value(value)}" for key, value in _extras(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + mask(self.formatException(record.exc_info))
        return line


def _text_value(value: Any) -> str:
    """A value as ``key=value`` shows it: quoted only when a space would make it ambiguous."""
    text = value if isinstance(value, str) else str(value)
    if not text or any(char.isspace() or char in "\"=" for char in text):
        return json.dumps(text, ensure_ascii=False)
    return text


def is_terminal(stream: TextIO | None) -> bool:
    """Whether ``stream`` is an interactive terminal (False for a closed or missing stream)."""
    if stream is None:
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed file
        return False


def select_formatter(fmt: LogFormat, stream: TextIO | None) -> logging.Formatter:
    """The formatter for ``logging.format``: ``auto`` is text on a terminal, JSON elsewhere."""
    if fmt == "text" or (fmt == "auto" and is_terminal(stream)):
        return TextFormatter()
    return JsonFormatter()


# Libraries whose INFO lines say nothing an operator acts on (alembic.runtime.plugins: one
# "setup plugin" line per built-in plugin whenever alembic is imported; bm25s: a line per index built).
QUIET_LOGGERS = ("uvicorn.access", "httpx", "aiosqlite", "asyncio", "alembic.runtime.plugins", "bm25s")


def configure_logging(level: str = "INFO", fmt: LogFormat = "auto", stream: TextIO | None = None) -> None:
    """Send every log record to ``stream`` (default: stderr) in the chosen format."""
    stream = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(stream)
    handler.setFormatter(select_formatter(fmt, stream))
    # The handler filters too: a library may set its own logger to DEBUG when imported
    # (bm25s does), after this ran, and its records must still stop at the configured level.
    handler.setLevel(level)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel("WARNING")
