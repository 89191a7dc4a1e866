"""Structured JSON log lines, with phone numbers and PINs masked before they are written."""
from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

_PHONE = re.compile(r"(?<![\w+])\+?\d[\d\- ]{6,}\d(?!\w)")
_SECRET_KEYS = {"pin", "digits", "password", "speechresult", "secret", "token", "auth_token"}


def mask_phone(number: str | None) -> str:
    """`+8613800000001` → `+86138****0001`: enough to recognise, not enough to dial."""
    if not number:
        return ""
    n = str(number)
    if len(n) <= 6:
        return "*" * len(n)
    keep_tail = 4
    keep_head = min(6, max(0, len(n) - keep_tail - 4))
    return n[:keep_head] + "*" * (len(n) - keep_head - keep_tail) + n[-keep_tail:]


def scrub(text: str) -> str:
    """Mask anything in free text that looks like a phone number."""
    return _PHONE.sub(lambda m: mask_phone(re.sub(r"[\- ]", "", m.group(0))), text)


def _clean(key: str, value: Any) -> Any:
    if key.lower() in _SECRET_KEYS:
        return "***" if value not in (None, "") else value
    if isinstance(value, str):
        return scrub(value)
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        for key, value in (getattr(record, "fields", None) or {}).items():
            out[key] = _clean(key, value)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            out["error"] = scrub(f"{type(exc).__name__}: {exc}")
        return json.dumps(out, ensure_ascii=False, default=str)


def log_event(logger: logging.Logger, msg: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log `msg` with structured `fields` (masked by the formatter)."""
    logger.log(level, msg, extra={"fields": fields})


def configure(level: str = "INFO", stream: Any = None) -> None:
    """Send every `hotline` logger's lines, as JSON, to stderr (or `stream`)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for chatty in ("rq.worker", "rq.scheduler", "rq.cron", "twilio.http_client"):
        logging.getLogger(chatty).setLevel(logging.WARNING)  # a line per job every few seconds drowns ours
