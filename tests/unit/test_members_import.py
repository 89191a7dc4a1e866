"""CSV import: upsert by uid, rejected rows with line numbers and reasons, unusable files change nothing."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from core.passwords import hash_pin, hash_secret, pin_key_id, verify_pin_hash
from members.importer import ImportFileError, PinHasher, import_members, read_csv
from members.models import Member, MemberPhone

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
GOOD = (
    "uid,name,tier,phone,pin\n"
    "10001,王小明,annual_premium,13800000001,2468\n"
    "10002,Li Lei,premium,+86 139 0000 0002;13700000003,1357\n"
    "10003,Han Meimei,standard,+14155550100,0000\n"
)


def key(services) -> bytes:
    return services.settings.pin_key_bytes


def verifies(services, pin: str, stored: str) -> bool:
    """`pin` matches `stored`, which is an HMAC hash made with the services' PIN key."""
    return stored.startswith(f"hmac-sha256${pin_key_id(key(services))}$") and verify_pin_hash(
        pin, stored, key(services)
    )


def run(services, db, text: str | bytes, encoding: str = "utf-8", workers: int = 1, chunk_rows: int = 1000):
    data = text.encode("utf-8") if isinstance(text, str) else text
    totals = {"created": 0, "updated": 0, "unchanged": 0}
    rejected = []
    with PinHasher(workers) as hasher:
        for chunk in import_members(db, read_csv(data, encoding), config=services.config, now=NOW, hasher=hasher,
                                    pin_key=key(services), chunk_rows=chunk_rows):
            db.commit()
            for k in totals:
                totals[k] += getattr(chunk, k)
            rejected += [(r.line, r.reason) for r in chunk.rejected]
    return totals, rejected


def member(db, uid: str) -> Member:
    found = db.scalar(select(Member).where(Member.uid == uid))
    assert found is not None
    db.refresh(found)
    return found


def count(db) -> tuple[int, int]:
    return db.scalar(select(func.count(Member.id))), db.scalar(select(func.count(MemberPhone.id)))


def test_import_creates_members_with_hashed_pins_and_normalised_phones(services, db):
    assert run(services, db, GOOD) == ({"created": 3, "updated": 0, "unchanged": 0}, [])
    m = member(db, "10002")
    assert (m.name, m.tier, sorted(p.e164 for p in m.phones)) == (
        "Li Lei",
        "premium",
        ["+8613700000003", "+8613900000002"],
    )
    assert verifies(services, "1357", m.pin_hash) and m.created_at == NOW


def test_reimporting_the_same_file_changes_nothing(services, db):
    run(services, db, GOOD)
    before = {m.uid: m.pin_hash for m in db.scalars(select(Member))}
    assert run(services, db, GOOD, workers=2) == ({"created": 0, "updated": 0, "unchanged": 3}, [])
    assert {m.uid: m.pin_hash for m in db.scalars(select(Member))} == before and count(db) == (3, 4)


def test_reimport_updates_changed_rows_and_keeps_lock_state(services, db):
    run(services, db, GOOD)
    locked = member(db, "10001")
    locked.failed_pins, locked.locked_until = 2, datetime(2999, 1, 1, tzinfo=UTC)
    db.commit()
    changed = (
        "uid,name,tier,phone,pin\n"
        "10001,王小明,premium,13800000001,2468\n"        # tier down
        "10002,Li Lei,premium,13700000003,9999\n"         # a phone dropped, a new PIN
        "10003,Han Meimei,standard,+14155550100,\n"       # no PIN: keeps the old one
    )
    assert run(services, db, changed) == ({"created": 0, "updated": 2, "unchanged": 1}, [])
    m1, m2 = member(db, "10001"), member(db, "10002")
    assert m1.tier == "premium" and m1.failed_pins == 2 and m1.locked_until is not None
    assert [p.e164 for p in m2.phones] == ["+8613700000003"] and verifies(services, "9999", m2.pin_hash)
    assert verifies(services, "0000", member(db, "10003").pin_hash)


def test_a_phone_can_move_to_another_member_when_its_owner_drops_it_first(services, db):
    run(services, db, GOOD)
    moved = "uid,name,tier,phone,pin\n10002,Li Lei,premium,13700000003,\n10004,New,standard,13900000002,4321\n"
    assert run(services, db, moved) == ({"created": 1, "updated": 1, "unchanged": 0}, [])
    assert [p.e164 for p in member(db, "10004").phones] == ["+8613900000002"]


def test_rejected_rows_are_reported_with_line_numbers_and_change_nothing(services, db):
    run(services, db, GOOD)
    text = (
        "uid,name,tier,phone,pin\n"
        "20001,Ok,standard,13800000011,1111\n"               # 2: fine
        "2000x,Bad Uid,standard,13800000012,1111\n"           # 3
        "20003,Bad Phone,standard,12345,1111\n"               # 4
        "20004,Bad Tier,gold,13800000014,1111\n"              # 5
        "20005,Bad Pin,standard,13800000015,12\n"             # 6
        "20001,Twice,standard,13800000016,1111\n"             # 7: uid already on line 2
        "20007,Taken,standard,13800000001,1111\n"             # 8: phone of member 10001
        "20008,Same Phone,standard,13800000011,1111\n"        # 9: phone already on line 2
        "20009,Short,standard\n"                              # 10
        "20010,No Pin,standard,13800000020,\n"                # 11: new member without PIN
        '"20011","Two\nLines",standard,13800000021,1111\n'     # 12-13: name not printable
        "20012,Both,standard,13800000022,1111\n"              # 14: fine, after a multi-line record
    )
    totals, rejected = run(services, db, text)
    assert totals == {"created": 2, "updated": 0, "unchanged": 0}
    reasons = dict(rejected)
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert reasons[3].startswith("uid: '2000x' must be 1 to 20 digits")
    assert reasons[4] == "phone: '12345' is not a valid phone number (region CN)"
    assert reasons[5].startswith("tier: 'gold' must be one of")
    assert reasons[6] == "pin: must be 4 to 8 digits"
    assert reasons[7] == "uid: 20001 was already given on line 2"
    assert reasons[8] == "phone: +8613800000001 belongs to member 10001"
    assert reasons[9] == "phone: +8613800000011 was already given for member 20001 on line 2"
    assert reasons[10] == "has 3 fields, the header has 5"
    assert reasons[11] == "pin: a new member needs a pin or a pin_hash"
    assert reasons[12].startswith("name: at most 100 printable characters")
    assert count(db) == (5, 6) and member(db, "10001").name == "王小明"


def test_pre_hashed_pins_are_stored_as_given(services, db):
    h, old = hash_pin("8642", key(services)), hash_secret("8642")
    text = (f"uid,name,tier,phone,pin_hash\n30001,Pre,premium,13800000031,{h}\n30002,Bad,premium,13800000032,md5$abc\n"
            f"30003,Old,premium,13800000033,{old}\n")
    totals, rejected = run(services, db, text)
    assert totals["created"] == 2 and rejected == [
        (
            3,
            "pin_hash: must be hmac-sha256$kid$salt$digest (as `core.passwords.hash_pin` "
            "writes with HOTLINE_PIN_KEY) or scrypt$n$r$p$salt$hash",
        )
    ]
    assert member(db, "30001").pin_hash == h and member(db, "30003").pin_hash == old


def test_a_pin_hash_made_with_another_key_is_rejected(services, db):
    other = hash_pin("8642", b"another key")
    totals, rejected = run(services, db, f"uid,name,tier,phone,pin_hash\n30001,Pre,premium,13800000031,{other}\n")
    assert totals["created"] == 0 and len(rejected) == 1
    line, reason = rejected[0]
    assert line == 2 and reason.startswith(f"pin_hash: made with another PIN key (kid {pin_key_id(b'another key')};")
    assert pin_key_id(key(services)) in reason and count(db) == (0, 0)


def test_reimporting_a_pin_replaces_an_older_scrypt_hash(services, db):
    run(services, db, "uid,name,tier,phone,pin_hash\n30001,Pre,premium,13800000031,{}\n".format(hash_secret("8642")))
    assert run(services, db, "uid,name,tier,phone,pin\n30001,Pre,premium,13800000031,8642\n")[0]["updated"] == 1
    upgraded = member(db, "30001").pin_hash
    assert verifies(services, "8642", upgraded)
    assert run(services, db, "uid,name,tier,phone,pin\n30001,Pre,premium,13800000031,8642\n")[0]["unchanged"] == 1
    assert member(db, "30001").pin_hash == upgraded


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "the file is empty"),
        (
            b"uid,name,phone,pin\n1,a,13800000001,1234\n",
            "line 1: the header lacks column tier (it has: uid, name, phone, pin)",
        ),
        (b"uid,name,tier,phone\n1,a,premium,13800000001\n", "line 1: the header needs a pin or a pin_hash column"),
        (b"uid,uid,name,tier,phone,pin\n", "line 1: column uid appears twice"),
        (
            "uid,name,tier,phone,pin\n1,a,premium,13800000001,1234\n2,张三,premium,13800000002,1234\n".encode("gbk"),
            "line 3: is not valid utf-8 (byte 0xd5)",
        ),
        (b"PK\x03\x04\x00\x00junk", "the file holds NUL bytes"),
    ],
)
def test_an_unusable_file_is_refused_whole(services, db, data, message):
    with pytest.raises(ImportFileError) as exc:
        read_csv(data)
    assert str(exc.value).startswith(message)
    assert count(db) == (0, 0)


def test_a_gbk_file_imports_with_its_encoding_and_a_bom_is_ignored(services, db):
    gbk = "uid,name,tier,phone,pin\n40001,张三,premium,13800000041,1234\n".encode("gbk")
    assert run(services, db, gbk, encoding="gbk")[0]["created"] == 1 and member(db, "40001").name == "张三"
    bom = "\ufeffUID, Name ,Tier,Phone,PIN\n40002,李四,standard,13800000042,1234\n".encode("utf-8")
    assert run(services, db, bom)[0]["created"] == 1
    with pytest.raises(ImportFileError, match="not a known text encoding"):
        read_csv(gbk, "klingon")


def test_chunks_are_independent_of_size(services, db):
    rows = "".join(f"5{i:04d},M{i},standard,1380001{i:04d},1234\n" for i in range(25))
    assert (
        run(services, db, "uid,name,tier,phone,pin\n" + rows, workers=2, chunk_rows=7)[0]["created"] == 25
    )  # pool path
    assert count(db) == (25, 25)
