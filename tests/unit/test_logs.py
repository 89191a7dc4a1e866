"""Log lines: structured JSON, phone numbers and PINs never whole."""
from __future__ import annotations

import io
import json
import logging

from core.logs import JsonFormatter, log_event, mask_phone, scrub


def test_mask_phone_keeps_country_prefix_and_last_four() -> None:
    assert mask_phone("+8613800000001") == "+86138****0001"
    assert mask_phone("+14158675309") == "+141****5309"
    assert mask_phone("") == ""
    assert "1234" not in mask_phone("1234")


def test_scrub_masks_numbers_in_free_text_but_not_call_sids() -> None:
    sid = "CA" + "4" * 32
    text = scrub(f"from +8613812345678 via 400-123-4567 sid {sid}")
    assert "+8613812345678" not in text and "4001234567" not in text
    assert sid in text


def test_pins_and_digits_never_logged() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("hotline.test-logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        log_event(logger, "verify", pin="4321", Digits="987654", caller="+8613800000001", password="hunter22")
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["pin"] == line["Digits"] == line["password"] == "***"
    assert line["caller"] == "+86138****0001"
    assert "4321" not in stream.getvalue() and "hunter22" not in stream.getvalue()
