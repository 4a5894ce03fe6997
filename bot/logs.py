"""Structured (JSON) logs with customer personal data masked.

Log records carry ids and intents, never message bodies; anything that might still
hold personal data (names, e-mails, phone numbers) goes through ``mask``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
PHONE = re.compile(r"(?<!\w)(\+?\d[\d \-()]{6,}\d)(?!\w)")
RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def mask(value: str) -> str:
    """Hide e-mail local parts and all but the last two digits of phone numbers."""
    value = EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", value)
    return PHONE.sub(lambda m: "***" + re.sub(r"\D", "", m.group(1))[-2:], value)


def mask_name(name: str | None) -> str | None:
    if not name:
        return name
    return name[0] + "***"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": mask(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in RESERVED and not key.startswith("_"):
                payload[key] = mask(value) if isinstance(value, str) else value
        if record.exc_info:
            payload["exc"] = mask(self.formatException(record.exc_info))
        return json.dumps(payload, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={mask(v) if isinstance(v, str) else v}"
            for k, v in record.__dict__.items()
            if k not in RESERVED and not k.startswith("_")
        )
        base = f"{record.levelname.lower():7} {record.name}: {mask(record.getMessage())}"
        if record.exc_info:
            base += "\n" + mask(self.formatException(record.exc_info))
        return f"{base} {extras}".rstrip()


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "httpx", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel("WARNING")
