"""Members and PIN verification on the real database, with a fixed `now`."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core import keys
from core.db import make_engine, make_session_factory
from core.passwords import hash_pin, hash_secret, pin_key_id, pin_needs_rehash, verify_pin_hash
from members.admin import MemberError, add_member, check_member, check_pin_hash, list_members, unlock_member
from members.models import Member
from members.verification import Outcome, Rules, find_by_phone, find_by_uid, record_number_failure, verify_pin

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
KEY = b"k" * 32  # the hash format's own tests; members below use the services' key


@pytest.fixture
def rules(services):
    return Rules.from_config(services.config)


@pytest.fixture
def key(services):
    return services.settings.pin_key_bytes


def check(db, member_id, pin, rules, key, failures=0, now=NOW):
    return verify_pin(db, member_id, pin, failures, now, rules, pin_key=key)


@pytest.fixture
def premium(services, db):
    fields, errors = check_member("10001", "王小明", "premium", "138 0000 0001;+1 415 555 0100", services.config)
    assert not errors
    member_id = add_member(db, fields, "2468", services.config, NOW, pin_key=services.settings.pin_key_bytes)
    db.commit()
    return member_id


def test_add_member_normalises_phones_and_hashes_the_pin(services, db, premium):
    member = db.get(Member, premium, populate_existing=True)
    assert sorted(p.e164 for p in member.phones) == ["+14155550100", "+8613800000001"]
    assert (
        member.pin_hash.startswith(f"hmac-sha256${pin_key_id(services.settings.pin_key_bytes)}$")
        and "2468" not in member.pin_hash
    )
    assert find_by_phone(db, "+8613800000001").uid == "10001" and find_by_uid(db, "10001").tier == "premium"
    assert find_by_phone(db, "+8613800000009") is None and find_by_uid(db, "999") is None


@pytest.mark.parametrize(
    "uid,name,tier,phone,expected",
    [
        ("10a", "n", "premium", "13800000002", "uid: '10a' must be 1 to 20 digits"),
        ("1" * 21, "n", "premium", "13800000002", "uid:"),
        ("10002", "", "premium", "13800000002", "name: is empty"),
        ("10002", "n", "guest", "13800000002", "tier: 'guest' must be one of annual_premium, premium, standard"),
        ("10002", "n", "gold", "13800000002", "tier: 'gold'"),
        ("10002", "n", "premium", "12345", "phone: '12345' is not a valid phone number (region CN)"),
        ("10002", "n", "premium", "", "phone: is empty"),
    ],
)
def test_member_fields_are_checked(services, uid, name, tier, phone, expected):
    fields, errors = check_member(uid, name, tier, phone, services.config)
    assert fields is None and any(e.startswith(expected) for e in errors), errors


def test_add_refuses_a_taken_uid_or_phone_and_a_bad_pin(services, db, premium):
    fields, _ = check_member("10001", "again", "standard", "+8613800000001", services.config)
    with pytest.raises(MemberError) as exc:
        add_member(db, fields, "12", services.config, NOW, pin_key=services.settings.pin_key_bytes)
    assert exc.value.errors == ["pin: must be 4 to 8 digits", "uid: member 10001 already exists",
                                "phone: +8613800000001 already belongs to member 10001"]


def test_right_pin_verifies_and_clears_failures(services, db, premium, rules, key):
    assert check(db, premium, "1111", rules, key).outcome is Outcome.WRONG
    assert db.get(Member, premium, populate_existing=True).failed_pins == 1
    v = check(db, premium, "2468", rules, key)
    assert (v.outcome, v.tier, v.count_failure) == (Outcome.OK, "premium", False)
    assert db.get(Member, premium, populate_existing=True).failed_pins == 0


def test_three_wrong_pins_lock_for_the_configured_minutes_then_it_opens_again(services, db, premium, rules, key):
    assert [check(db, premium, "0000", rules, key).left for _ in range(2)] == [2, 1]
    v = check(db, premium, "0000", rules, key)
    assert (v.outcome, v.minutes, v.count_failure) == (Outcome.LOCKED, 15, True)
    db.commit()
    assert db.get(Member, premium, populate_existing=True).locked_until == NOW + timedelta(minutes=15)
    during = check(db, premium, "2468", rules, key, now=NOW + timedelta(minutes=14, seconds=1))
    assert (during.outcome, during.minutes) == (Outcome.LOCKED, 1)  # even the right PIN is not checked
    after = check(db, premium, "2468", rules, key, now=NOW + timedelta(minutes=15))
    assert after.outcome is Outcome.OK and db.get(Member, premium, populate_existing=True).locked_until is None


def test_the_lock_survives_a_restart(services, db, premium, rules, key):
    for _ in range(3):
        check(db, premium, "0000", rules, key)
    db.commit()
    engine = make_engine(services.settings.database_url)  # a new process: new engine, new sessions
    try:
        with make_session_factory(engine)() as fresh:
            assert check(fresh, premium, "2468", rules, key, now=NOW + timedelta(minutes=1)).outcome is Outcome.LOCKED
    finally:
        engine.dispose()


def test_a_blocked_number_is_refused_before_the_member_is_touched(services, db, premium, rules, key):
    v = check(db, premium, "2468", rules, key, failures=rules.number_failures_per_hour)
    assert v.outcome is Outcome.NUMBER_BLOCKED and db.get(Member, premium, populate_existing=True).failed_pins == 0


def test_number_failures_count_in_a_one_hour_window(redis):
    for _ in range(3):
        pipe = redis.pipeline()
        record_number_failure(pipe, "+8613800000001")
        pipe.execute()
    assert (
        redis.get(keys.pin_failures("+8613800000001")) == "3"
        and 3590 < redis.ttl(keys.pin_failures("+8613800000001")) <= 3600
    )
    assert keys.pin_failures("") == "hl:pinfail:withheld"


def test_unlock_and_list(services, db, premium, rules, key):
    for _ in range(3):
        check(db, premium, "0000", rules, key)
    db.commit()
    rows = list(list_members(db, now=NOW))
    assert rows == [{"uid": "10001", "name": "王小明", "tier": "premium", "phones": "+8613800000001 +14155550100",
                     "locked_until": (NOW + timedelta(minutes=15)).isoformat(timespec="seconds")}]
    assert list(list_members(db, tier="standard", now=NOW)) == []
    assert unlock_member(db, "10001") and not unlock_member(db, "404")
    db.commit()
    assert db.get(Member, premium, populate_existing=True).locked_until is None


def test_pre_hashed_pins_are_checked_for_shape_and_key(services):
    assert check_pin_hash(hash_pin("1234", KEY), KEY) is None
    assert check_pin_hash(hash_secret("1234"), KEY) is None  # older scrypt hashes still verify
    assert check_pin_hash("1234", KEY).startswith("pin_hash: must be hmac-sha256$kid$salt$digest")
    assert check_pin_hash(hash_secret("1234", n=2**10), KEY).startswith("pin_hash: scrypt parameters out of range")
    other = hash_pin("1234", b"another key")
    assert check_pin_hash(other, KEY).startswith(
        f"pin_hash: made with another PIN key (kid {pin_key_id(b'another key')};"
    )


# --- the PIN hash format --------------------------------------------------------------------------

def test_hmac_pin_hash_round_trip():
    stored = hash_pin("2468", KEY)
    scheme, kid, salt, digest = stored.split("$")
    assert (scheme, kid, len(salt), len(digest)) == (
        "hmac-sha256",
        pin_key_id(KEY),
        22,
        43,
    )  # 16 and 32 bytes, unpadded
    assert "=" not in stored and "2468" not in stored and KEY.decode() not in stored
    assert verify_pin_hash("2468", stored, KEY)
    assert not verify_pin_hash("2469", stored, KEY) and not verify_pin_hash("02468", stored, KEY)
    assert hash_pin("2468", KEY) != stored  # salted
    assert not pin_needs_rehash(stored, KEY)


def test_a_pin_hash_needs_its_own_key():
    stored = hash_pin("2468", KEY)
    assert pin_key_id(KEY) != pin_key_id(b"another key") and len(pin_key_id(KEY)) == 8
    assert not verify_pin_hash("2468", stored, b"another key")
    assert not verify_pin_hash("2468", stored, b"")
    forged = stored.replace(pin_key_id(KEY), pin_key_id(b"another key"))  # a kid that lies does not help
    assert not verify_pin_hash("2468", forged, b"another key")
    assert not pin_needs_rehash(hash_pin("2468", b"another key"), KEY)  # not verifiable, so never rehashed
    with pytest.raises(ValueError):
        hash_pin("2468", b"")


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "2468",
        "hmac-sha256",
        "hmac-sha256$$$",
        "hmac-sha256$x$y",
        "md5$abc$def$ghi",
        "hmac-sha256$00000000$!!!$???",
        "scrypt$x$8$1$c2FsdA$ZGlnZXN0",
        "scrypt$8192$8$1$%%$%%",
    ],
)
def test_malformed_pin_hashes_never_verify(stored):
    assert not verify_pin_hash("2468", stored, KEY)


def test_scrypt_pin_hashes_still_verify_and_need_a_rehash():
    old = hash_secret("2468")
    assert verify_pin_hash("2468", old, KEY) and not verify_pin_hash("1111", old, KEY)
    assert pin_needs_rehash(old, KEY)


def test_a_right_pin_upgrades_a_scrypt_hash_once_and_a_wrong_one_does_not(services, db, premium, rules, key):
    old = hash_secret("2468")
    db.get(Member, premium).pin_hash = old
    db.commit()
    assert check(db, premium, "1111", rules, key).outcome is Outcome.WRONG
    db.commit()
    assert db.get(Member, premium, populate_existing=True).pin_hash == old  # a wrong PIN changes nothing but the count
    assert check(db, premium, "2468", rules, key).outcome is Outcome.OK
    db.commit()
    upgraded = db.get(Member, premium, populate_existing=True).pin_hash
    assert upgraded.startswith(f"hmac-sha256${pin_key_id(key)}$") and verify_pin_hash("2468", upgraded, key)
    assert check(db, premium, "2468", rules, key).outcome is Outcome.OK
    db.commit()
    assert db.get(Member, premium, populate_existing=True).pin_hash == upgraded  # once


def test_a_pin_hashed_with_another_key_is_a_wrong_pin(services, db, premium, rules, key):
    db.get(Member, premium).pin_hash = hash_pin("2468", b"another key")
    db.commit()
    v = check(db, premium, "2468", rules, key)
    assert (v.outcome, v.count_failure) == (Outcome.WRONG, True)
