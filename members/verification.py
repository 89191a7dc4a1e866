"""Who is calling, and PIN verification with lockout (member in SQL, calling number in Redis)."""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, lazyload

from core import keys
from core.config import Config
from core.passwords import hash_pin, pin_needs_rehash, verify_pin_hash
from members.models import Member, MemberPhone

NUMBER_WINDOW_S = 3600
UID_MAX_LENGTH = 20  # member numbers are keyed in on a phone: digits only


def uid_format_ok(uid: str) -> bool:
    """True for a member number as it can be keyed in: 1 to UID_MAX_LENGTH ASCII digits."""
    return uid.isascii() and uid.isdigit() and 1 <= len(uid) <= UID_MAX_LENGTH


@dataclass(frozen=True)
class Rules:
    """The [verification] settings."""

    max_failures: int
    lock_minutes: float
    number_failures_per_hour: int
    pin_min: int
    pin_max: int

    @classmethod
    def from_config(cls, config: Config) -> Rules:
        v = config["verification"]
        return cls(
            v["max_pin_failures"],
            v["lock_minutes"],
            v["number_attempts_per_hour"],
            v["pin_min_length"],
            v["pin_max_length"],
        )

    def pin_format_ok(self, pin: str) -> bool:
        """True for digits only, of an allowed length (anything else cannot be a PIN and is not counted as a try)."""
        return pin.isascii() and pin.isdigit() and self.pin_min <= len(pin) <= self.pin_max


@dataclass(frozen=True)
class MemberRef:
    """What the call flow needs to know of a member before verification."""

    id: int
    uid: str
    tier: str
    locked_until: datetime | None

    def minutes_locked(self, now: datetime) -> int:
        """Whole minutes (rounded up) the member stays locked; 0 when not locked."""
        if self.locked_until is None or self.locked_until <= now:
            return 0
        return max(1, math.ceil((self.locked_until - now).total_seconds() / 60))


def _ref_query() -> Any:
    return select(Member.id, Member.uid, Member.tier, Member.locked_until)


def find_by_phone(session: Session, e164: str) -> MemberRef | None:
    """The member whose registered number is `e164` (one query)."""
    if not e164:
        return None
    row = session.execute(
        _ref_query().join(MemberPhone, MemberPhone.member_id == Member.id).where(MemberPhone.e164 == e164)
    ).first()
    return MemberRef(*row) if row else None


def find_by_uid(session: Session, uid: str) -> MemberRef | None:
    """The member with member number `uid` (one query)."""
    row = session.execute(_ref_query().where(Member.uid == uid)).first()
    return MemberRef(*row) if row else None


class Outcome(enum.Enum):
    OK = "ok"
    WRONG = "wrong"
    LOCKED = "locked"                  # the member is (now) locked
    NUMBER_BLOCKED = "number_blocked"  # too many wrong PINs from this calling number
    UNKNOWN = "unknown"                # no such member (deleted during the call)


@dataclass(frozen=True)
class Verification:
    outcome: Outcome
    tier: str = ""
    left: int = 0           # tries left before the lock (WRONG)
    minutes: int = 0        # minutes locked (LOCKED)
    count_failure: bool = False  # count a wrong PIN against the calling number (record_number_failure)


def number_blocked(failures: int | str | None, rules: Rules) -> bool:
    """True when the calling number has used up its wrong PINs for the hour."""
    return int(failures or 0) >= rules.number_failures_per_hour


def record_number_failure(pipe: Any, e164: str) -> None:
    """Queue on `pipe` one more wrong PIN for `e164` (a window of an hour from the first; works on Redis 6)."""
    k = keys.pin_failures(e164)
    pipe.set(k, 0, ex=NUMBER_WINDOW_S, nx=True)
    pipe.incr(k)


def verify_pin(session: Session, member_id: int, pin: str, number_failures: int, now: datetime, rules: Rules, *,
               pin_key: bytes) -> Verification:
    """Check `pin` for the member, counting failures and locking after `rules.max_failures` (does not commit).

    `pin_key` is the settings' PIN key; a right PIN against an older scrypt hash replaces it by `hash_pin`
    (one slow check per member, then microseconds), in the same UPDATE as the failure count.
    """
    if number_blocked(number_failures, rules):
        return Verification(Outcome.NUMBER_BLOCKED)
    member = session.execute(
        select(Member).where(Member.id == member_id).options(lazyload(Member.phones)).with_for_update()
    ).scalar_one_or_none()
    if member is None:
        return Verification(Outcome.UNKNOWN)
    ref = MemberRef(member.id, member.uid, member.tier, member.locked_until)
    if ref.minutes_locked(now):
        return Verification(Outcome.LOCKED, minutes=ref.minutes_locked(now))
    if verify_pin_hash(pin, member.pin_hash, pin_key):
        if member.failed_pins or member.locked_until is not None:
            member.failed_pins, member.locked_until = 0, None
        if pin_needs_rehash(member.pin_hash, pin_key):
            member.pin_hash = hash_pin(pin, pin_key)
        return Verification(Outcome.OK, tier=member.tier)
    member.failed_pins = (member.failed_pins or 0) + 1
    if member.failed_pins >= rules.max_failures:
        member.failed_pins = 0  # after the lock the member gets a fresh set of tries
        if rules.lock_minutes > 0:  # lock_minutes = 0: no member lock, only the per-number limit
            member.locked_until = now + timedelta(minutes=rules.lock_minutes)
            return Verification(Outcome.LOCKED, minutes=max(1, math.ceil(rules.lock_minutes)), count_failure=True)
    return Verification(Outcome.WRONG, left=rules.max_failures - member.failed_pins, count_failure=True)
