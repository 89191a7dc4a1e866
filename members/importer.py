"""Bulk import of members from CSV: every row validated, upserted by member number, PINs hashed with the PIN key.

Columns (header row, any order, case-insensitive; other columns are ignored):
  uid, name, tier, phone   required; phone holds one number or several separated by ';' or '|'
  pin                      plaintext PIN (hashed here with `core.passwords.hash_pin`: microseconds a row)
  pin_hash                 or a PIN already hashed: `hash_pin` with the same HOTLINE_PIN_KEY (one made with another
                           key is rejected: it could never verify), or an older scrypt hash (`hash_secret`)
Neither pin nor pin_hash on a row: an existing member keeps their PIN; a new member is rejected.

Rows are applied in chunks; the caller commits after each chunk (domain code does not commit),
so an interrupted import is finished by running it again (an upsert by uid changes nothing twice).
"""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from core.config import Config
from core.passwords import hash_pin, pin_needs_rehash, verify_pin_hash
from members.admin import MemberFields, check_member, check_pin, check_pin_hash, phone_owners
from members.models import Member, MemberPhone
from members.verification import Rules

REQUIRED = ("uid", "name", "tier", "phone")
CHUNK_ROWS = 1000


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (encoding, header, CSV syntax): nothing was changed."""


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str


@dataclass(frozen=True)
class CsvFile:
    """A readable CSV: its columns (name → index), width, and records with their line numbers."""

    index: dict[str, int]
    width: int
    records: list[tuple[int, list[str]]]


@dataclass(frozen=True)
class Row:
    line: int
    fields: MemberFields
    pin: str = ""
    pin_hash: str = ""


@dataclass
class ChunkResult:
    """What one chunk did (the caller commits, then counts)."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)


def read_csv(data: bytes, encoding: str = "utf-8") -> CsvFile:
    """The header and every record with its line number; ImportFileError (nothing changed) if the file is unusable."""
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        text = data.decode(codec)
    except LookupError:
        raise ImportFileError(f"--encoding: {encoding!r} is not a known text encoding") from None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(
            f"line {line}: is not valid {encoding} (byte 0x{data[exc.start]:02x}); save the file as UTF-8, "
            "or name its encoding with --encoding (e.g. gbk)") from None
    if "\x00" in text:
        raise ImportFileError("the file holds NUL bytes: is it a spreadsheet (.xlsx) rather than CSV text?")
    reader = csv.reader(io.StringIO(text, newline=""))
    records: list[tuple[int, list[str]]] = []
    header: list[str] | None = None
    start = 1
    try:
        for values in reader:
            line, start = start, reader.line_num + 1
            if not any(v.strip() for v in values):
                continue
            if header is None:
                header = [v.strip().lower() for v in values]
                continue
            records.append((line, values))
    except csv.Error as exc:
        raise ImportFileError(f"line {reader.line_num}: not valid CSV ({exc})") from None
    if header is None:
        raise ImportFileError("the file is empty: expected a header row (uid,name,tier,phone,pin)")
    index = {name: i for i, name in enumerate(header) if name}
    dupes = sorted({n for n in header if n and header.count(n) > 1})
    missing = [c for c in REQUIRED if c not in index]
    if dupes:
        raise ImportFileError(f"line 1: column {', '.join(dupes)} appears twice in the header")
    if missing:
        raise ImportFileError(f"line 1: the header lacks column {', '.join(missing)} (it has: {', '.join(header)})")
    if "pin" not in index and "pin_hash" not in index:
        raise ImportFileError("line 1: the header needs a pin or a pin_hash column")
    return CsvFile(index, len(header), records)


def parse_row(
    line: int, values: list[str], csv_file: CsvFile, config: Config, rules: Rules, pin_key: bytes
) -> Row | Rejected:
    """One record checked on its own (references to other rows and the database are checked later)."""
    if len(values) != csv_file.width:
        return Rejected(line, f"has {len(values)} fields, the header has {csv_file.width}")
    index = csv_file.index

    def get(name: str) -> str:
        return values[index[name]].strip() if name in index else ""

    fields, errors = check_member(get("uid"), get("name"), get("tier"), get("phone"), config)
    pin, pin_hash = get("pin"), get("pin_hash")
    if pin and pin_hash:
        errors.append("pin: give pin or pin_hash, not both")
    elif pin:
        errors += [e for e in [check_pin(pin, rules)] if e]
    elif pin_hash:
        errors += [e for e in [check_pin_hash(pin_hash, pin_key)] if e]
    if errors or fields is None:
        return Rejected(line, "; ".join(errors))
    return Row(line, fields, pin, pin_hash)


def _pin_work(task: tuple[str, str | None, bytes]) -> str | None:
    """A new hash for the PIN, or None when the stored hash already matches it under the key.

    An older scrypt hash is replaced without being checked (that would cost ~15 ms; the new hash is right either way).
    """
    pin, old, key = task
    if old and not pin_needs_rehash(old, key) and verify_pin_hash(pin, old, key):
        return None
    return hash_pin(pin, key)


class PinHasher:
    """Hashes (or re-checks) plaintext PINs over `workers` processes, started on first need."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.pool: ProcessPoolExecutor | None = None

    def run(self, tasks: list[tuple[str, str | None, bytes]]) -> list[str | None]:
        if self.workers == 1 or len(tasks) < 4:
            return [_pin_work(t) for t in tasks]
        if self.pool is None:
            self.pool = ProcessPoolExecutor(self.workers)
        return list(self.pool.map(_pin_work, tasks, chunksize=max(1, len(tasks) // (self.workers * 4))))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None

    def __enter__(self) -> PinHasher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def import_members(
    session: Session, csv_file: CsvFile, *, config: Config, now: datetime, hasher: PinHasher, pin_key: bytes,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[ChunkResult]:
    """Upsert the records by uid, a chunk at a time; yields after each chunk is written (the caller commits).

    `pin_key` is the settings' `pin_key_bytes`: plaintext PINs are hashed with it, pre-hashed ones must match it.
    """
    rules = Rules.from_config(config)
    seen_uid: dict[str, int] = {}
    seen_phone: dict[str, tuple[str, int]] = {}
    records = csv_file.records
    for start in range(0, len(records), chunk_rows):
        result = ChunkResult(rows=len(records[start:start + chunk_rows]))
        rows: list[Row] = []
        for line, values in records[start:start + chunk_rows]:
            row = parse_row(line, values, csv_file, config, rules, pin_key)
            if isinstance(row, Row):
                row = _check_against_file(row, seen_uid, seen_phone)
            if isinstance(row, Row):
                rows.append(row)
            else:
                result.rejected.append(row)
        _apply(session, rows, result, hasher, now, pin_key)
        yield result


def _check_against_file(row: Row, seen_uid: dict[str, int], seen_phone: dict[str, tuple[str, int]]) -> Row | Rejected:
    uid = row.fields.uid
    if uid in seen_uid:
        return Rejected(row.line, f"uid: {uid} was already given on line {seen_uid[uid]}")
    for p in row.fields.phones:
        if p in seen_phone:
            return Rejected(
                row.line, f"phone: {p} was already given for member {seen_phone[p][0]} on line {seen_phone[p][1]}"
            )
    seen_uid[uid] = row.line
    for p in row.fields.phones:
        seen_phone[p] = (uid, row.line)
    return row


def _apply(
    session: Session, rows: list[Row], result: ChunkResult, hasher: PinHasher, now: datetime, pin_key: bytes
) -> None:
    """Write one chunk's valid rows: a few set-based statements, whatever the chunk's size."""
    existing = {
        uid: (mid, name, tier, pin_hash)
        for mid, uid, name, tier, pin_hash in session.execute(
            select(Member.id, Member.uid, Member.name, Member.tier, Member.pin_hash).where(
                Member.uid.in_([r.fields.uid for r in rows])
            )
        )
    }
    old_phones: dict[int, dict[str, int]] = {}
    for pid, mid, e164 in session.execute(select(MemberPhone.id, MemberPhone.member_id, MemberPhone.e164).where(
            MemberPhone.member_id.in_([v[0] for v in existing.values()]))):
        old_phones.setdefault(mid, {})[e164] = pid
    owners = phone_owners(session, sorted({p for r in rows for p in r.fields.phones}))
    released: set[str] = set()
    accepted: list[Row] = []
    for row in rows:
        ex = existing.get(row.fields.uid)
        taken = [p for p in row.fields.phones if p in owners and owners[p][1] != row.fields.uid and p not in released]
        if taken:
            result.rejected.append(Rejected(row.line, f"phone: {taken[0]} belongs to member {owners[taken[0]][1]}"))
            continue
        if ex is None and not (row.pin or row.pin_hash):
            result.rejected.append(Rejected(row.line, "pin: a new member needs a pin or a pin_hash"))
            continue
        if ex is not None:
            released |= set(old_phones.get(ex[0], {})) - set(row.fields.phones)
        accepted.append(row)
    hashed = iter(hasher.run([(r.pin, existing[r.fields.uid][3] if r.fields.uid in existing else None, pin_key)
                              for r in accepted if r.pin]))

    drop_ids: list[int] = []
    new_members: list[dict[str, object]] = []
    changed: list[dict[str, object]] = []
    new_phones: list[tuple[str, str]] = []  # (uid, e164)
    for row in accepted:
        f, ex = row.fields, existing.get(row.fields.uid)
        pin_hash = next(hashed) if row.pin else (row.pin_hash or None)
        if ex is None:
            new_members.append(
                {
                    "uid": f.uid,
                    "name": f.name,
                    "tier": f.tier,
                    "pin_hash": pin_hash,
                    "failed_pins": 0,
                    "created_at": now,
                }
            )
            new_phones += [(f.uid, p) for p in f.phones]
            result.created += 1
            continue
        mid, name, tier, old_hash = ex
        have = old_phones.get(mid, {})
        drop_ids += [pid for p, pid in have.items() if p not in f.phones]
        new_phones += [(f.uid, p) for p in f.phones if p not in have]
        new_hash = pin_hash if pin_hash and pin_hash != old_hash else old_hash
        if (name, tier, old_hash) != (f.name, f.tier, new_hash):
            changed.append({"id": mid, "name": f.name, "tier": f.tier, "pin_hash": new_hash})
        if (name, tier, old_hash) != (f.name, f.tier, new_hash) or set(have) != set(f.phones):
            result.updated += 1
        else:
            result.unchanged += 1
    if drop_ids:
        session.execute(delete(MemberPhone).where(MemberPhone.id.in_(drop_ids)))
    ids = {uid: mid for uid, (mid, *_rest) in existing.items()}
    if new_members:
        for mid, uid in session.execute(insert(Member).returning(Member.id, Member.uid), new_members):
            ids[uid] = mid
    if changed:
        session.execute(update(Member), changed)
    if new_phones:
        session.execute(insert(MemberPhone), [{"member_id": ids[uid], "e164": p} for uid, p in new_phones])
