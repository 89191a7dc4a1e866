"""Members for the IVR tests (a premium and a standard one, each with a phone and a PIN), and `Call`: one caller
following the TwiML of signed webhooks step by step, as Twilio does."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import pytest

from core import keys
from core.config import Config
from ivr import session as ivr_session
from members.admin import add_member, check_member

PREMIUM_UID, PREMIUM_PIN, PREMIUM_PHONE = "10001", "2468", "+8613800000001"  # the voice fixture's default From
STANDARD_UID, STANDARD_PIN, STANDARD_PHONE = "20002", "1357", "+8613900000002"
UNKNOWN_PHONE = "+8613700000003"


def make_member(
    db: Any, config: Config, uid: str, tier: str, phone: str, pin: str, name: str = "测试会员", *, pin_key: bytes
) -> int:
    fields, errors = check_member(uid, name, tier, phone, config)
    assert not errors, errors
    member_id = add_member(db, fields, pin, config, datetime.now(UTC), pin_key=pin_key)
    db.commit()
    return member_id


@pytest.fixture
def members(services: Any, db: Any) -> dict[str, int]:
    """A premium and a standard member, each with a phone and a PIN."""
    key = services.settings.pin_key_bytes
    return {
        "premium": make_member(db, services.config, PREMIUM_UID, "premium", PREMIUM_PHONE, PREMIUM_PIN, pin_key=key),
        "standard": make_member(
            db, services.config, STANDARD_UID, "standard", STANDARD_PHONE, STANDARD_PIN, pin_key=key
        ),
    }


class Call:
    """One caller, following the TwiML like Twilio: answer the Gather, or go on to the Redirect after it."""

    def __init__(self, voice: Any, redis: Any, sid: str = "CA" + "a" * 32, caller: str = PREMIUM_PHONE) -> None:
        self.voice, self.redis, self.sid, self.caller = voice, redis, sid, caller
        self.doc: ET.Element | None = None
        self.body = ""

    def post(self, path: str, **params: str) -> str:
        resp = self.voice(path, {"CallSid": self.sid, "From": self.caller, **params})
        assert resp.status_code == 200, resp.data
        self.body = resp.get_data(as_text=True)
        self.doc = ET.fromstring(self.body)
        return self.body

    def start(self) -> str:
        return self.post("/voice/incoming")

    @property
    def gather(self) -> ET.Element:
        assert self.doc is not None
        found = self.doc.find("Gather")
        assert found is not None, f"no <Gather> in {self.body}"
        return found

    def press(self, digits: str) -> str:
        return self.post(self.gather.get("action", ""), Digits=digits)

    def speak(self, words: str) -> str:
        assert "speech" in self.gather.get("input", "")
        return self.post(self.gather.get("action", ""), SpeechResult=words, Confidence="0.9")

    def silence(self) -> str:
        """No input: Twilio goes on to the verb after <Gather>."""
        assert self.doc is not None
        redirect = self.doc.find("Redirect")
        assert redirect is not None, f"no <Redirect> after the Gather in {self.body}"
        return self.post(redirect.text or "")

    @property
    def said(self) -> str:
        assert self.doc is not None
        return " ".join(e.text or "" for e in self.doc.iter("Say"))

    @property
    def voices(self) -> set[str]:
        """The voices of every <Say> but the offer to switch language (said in the language it offers)."""
        assert self.doc is not None
        return {
            e.get("voice", "")
            for e in self.doc.iter("Say")
            if "请按9" not in (e.text or "") and "press 9" not in (e.text or "")
        }

    @property
    def state(self) -> ivr_session.CallState:
        found = ivr_session.parse(self.redis.hgetall(keys.ivr_session(self.sid)))
        assert found is not None
        return found

    @property
    def ended(self) -> bool:
        assert self.doc is not None
        return self.doc.find("Hangup") is not None

    @property
    def queued(self) -> bool:
        assert self.doc is not None
        enqueue = self.doc.find("Enqueue")
        return self.doc.find("Gather") is None and enqueue is not None and enqueue.get("waitUrl") == "/voice/wait"


def prompt(services: Any, name: str, lang: str = "zh") -> str:
    return services.config.prompt(name, lang)
