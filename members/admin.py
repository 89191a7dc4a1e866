"""Managing members: field validation (shared with the CSV import), add, list, unlock."""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.config import Config
from core.passwords import PIN_SCHEME, hash_pin, pin_key_id
from members.models import Member, MemberPhone
from members.phones import normalize_phone
from members.verification import UID_MAX_LENGTH, Rules, uid_format_ok

NAME_MAX = 100
PHONE_SEPARATORS = re.compile(r"[;|]")
_B64 = r"[A-Za-z0-9_-]"
_PIN_HASH = re.compile(rf"scrypt\$(\d+)\$(\d+)\$(\d+)\${_B64}{{16,64}}\${_B64}{{32,128}}")
_HMAC_PIN_HASH = re.compile(rf"{PIN_SCHEME}\$([0-9a-f]{{8}})\${_B64}{{22}}\${_B64}{{43}}")


class MemberError(ValueError):
    """A member could not be saved: every problem, each `field: reason`."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class MemberFields:
    """A member's validated fields (PIN not included)."""

    uid: str
    name: str
    tier: str
    phones: tuple[str, ...]


def member_tiers(config: Config) -> list[str]:
    """The tiers a member can have: every configured tier but guest."""
    return [t for t in config.tiers if t != "guest"]


def check_member(uid: str, name: str, tier: str, phones: str, config: Config) -> tuple[MemberFields | None, list[str]]:
    """Validate a member's fields; `phones` is one number or several separated by ';' or '|'."""
    errors = []
    uid, name, tier = (uid or "").strip(), (name or "").strip(), (tier or "").strip()
    if not uid_format_ok(uid):
        errors.append(f"uid: {uid!r} must be 1 to {UID_MAX_LENGTH} digits (it is keyed in on a phone)")
    if not name:
        errors.append("name: is empty")
    elif len(name) > NAME_MAX or not name.isprintable():
        errors.append(f"name: at most {NAME_MAX} printable characters")
    if tier not in member_tiers(config):
        errors.append(f"tier: {tier!r} must be one of {', '.join(member_tiers(config))}")
    region = config["hotline"]["phone_region"]
    clean: list[str] = []
    raw_phones = [p.strip() for p in PHONE_SEPARATORS.split(phones or "") if p.strip()]
    if not raw_phones:
        errors.append("phone: is empty")
    for raw in raw_phones:
        e164 = normalize_phone(raw, region)
        if e164 is None:
            errors.append(f"phone: {raw[:40]!r} is not a valid phone number (region {region})")
        elif e164 not in clean:
            clean.append(e164)
    if errors:
        return None, errors
    return MemberFields(uid, name, tier, tuple(clean)), []


def check_pin(pin: str, rules: Rules) -> str | None:
    """Why `pin` cannot be a PIN, or None."""
    if not rules.pin_format_ok(pin or ""):
        return f"pin: must be {rules.pin_min} to {rules.pin_max} digits"
    return None


def check_pin_hash(value: str, pin_key: bytes) -> str | None:
    """Why `value` is not a usable pre-hashed PIN, or None.

    Usable: `hmac-sha256$kid$salt$digest` made with `pin_key` (`core.passwords.hash_pin`), or an
    older `scrypt$n$r$p$salt$hash` (`hash_secret`; it verifies, and becomes HMAC at the first right PIN).
    """
    value = value or ""
    m = _HMAC_PIN_HASH.fullmatch(value)
    if m:
        if m[1] != pin_key_id(pin_key):
            return (f"pin_hash: made with another PIN key (kid {m[1]}; HOTLINE_PIN_KEY is kid {pin_key_id(pin_key)}): "
                    "it could never be verified")
        return None
    m = _PIN_HASH.fullmatch(value)
    if not m:
        return (
            "pin_hash: must be hmac-sha256$kid$salt$digest (as `core.passwords.hash_pin` writes with HOTLINE_PIN_KEY) "
            "or scrypt$n$r$p$salt$hash"
        )
    n, r, p = (int(x) for x in m.groups())
    if n & (n - 1) or not 2**13 <= n <= 2**16 or not 1 <= r <= 16 or not 1 <= p <= 4 or 128 * n * r > 64 * 1024 * 1024:
        return "pin_hash: scrypt parameters out of range (n a power of two 2^13..2^16, r 1..16, p 1..4, at most 64 MiB)"
    return None


def phone_owners(session: Session, phones: list[str] | tuple[str, ...]) -> dict[str, tuple[int, str]]:
    """For each of `phones` that belongs to a member: (member id, member uid)."""
    if not phones:
        return {}
    rows = session.execute(
        select(MemberPhone.e164, Member.id, Member.uid)
        .join(Member, Member.id == MemberPhone.member_id)
        .where(MemberPhone.e164.in_(phones))
    )
    return {e164: (mid, uid) for e164, mid, uid in rows}


def add_member(
    session: Session, fields: MemberFields, pin: str, config: Config, now: datetime, *, pin_key: bytes
) -> int:
    """Create a member (not an upsert: the member number must be new); return its id. Does not commit.

    The PIN is hashed with `pin_key` (the settings' `pin_key_bytes`)."""
    errors = []
    problem = check_pin(pin, Rules.from_config(config))
    if problem:
        errors.append(problem)
    if session.scalar(select(Member.id).where(Member.uid == fields.uid)) is not None:
        errors.append(f"uid: member {fields.uid} already exists")
    for e164, (_, uid) in phone_owners(session, fields.phones).items():
        errors.append(f"phone: {e164} already belongs to member {uid}")
    if errors:
        raise MemberError(errors)
    member = Member(uid=fields.uid, name=fields.name, tier=fields.tier, pin_hash=hash_pin(pin, pin_key), failed_pins=0,
                    locked_until=None, created_at=now, phones=[MemberPhone(e164=p) for p in fields.phones])
    session.add(member)
    session.flush()
    return member.id


def list_members(session: Session, tier: str | None = None, now: datetime | None = None) -> Iterator[dict[str, str]]:
    """Members as plain values, by member number (streamed: the table may be large)."""
    query = select(Member.id, Member.uid, Member.name, Member.tier, Member.locked_until).order_by(Member.uid)
    if tier:
        query = query.where(Member.tier == tier)
    phones: dict[int, list[str]] = {}
    for member_id, e164 in session.execute(select(MemberPhone.member_id, MemberPhone.e164).order_by(MemberPhone.id)):
        phones.setdefault(member_id, []).append(e164)
    for mid, uid, name, t, locked_until in session.execute(query).yield_per(1000):
        locked = locked_until.isoformat(timespec="seconds") if now and locked_until and locked_until > now else ""
        yield {"uid": uid, "name": name, "tier": t, "phones": " ".join(phones.get(mid, [])), "locked_until": locked}


def unlock_member(session: Session, uid: str) -> bool:
    """Clear a member's PIN failures and lock; False when there is no such member. Does not commit."""
    member = session.scalar(select(Member).where(Member.uid == uid))
    if member is None:
        return False
    member.failed_pins, member.locked_until = 0, None
    return True
