"""`hotline members add|import|list|unlock`, run with the test services as the click context object."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select

from core.passwords import hash_pin, pin_key_id, verify_pin_hash
from hotline.cli.members import members
from members.models import Member


def cli(services, *args: str, stdin: str | None = None):
    return CliRunner().invoke(members, list(args), obj=services, input=stdin)


def test_add_then_list(services, db):
    result = cli(
        services,
        "add",
        "--uid",
        "10001",
        "--name",
        "王小明",
        "--tier",
        "premium",
        "--phone",
        "138 0000 0001",
        "--pin",
        "2468",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "added member 10001 (premium) 王小明: +8613800000001\n"
    listed = cli(services, "list")
    assert listed.exit_code == 0 and listed.stdout.split() == ["10001", "premium", "王小明", "+8613800000001"]
    assert "1 member" in listed.stderr
    assert cli(services, "list", "--tier", "standard").stdout == ""
    assert cli(services, "list", "--tier", "gold").exit_code == 2


def test_add_asks_for_the_pin_when_not_given(services, db):
    result = cli(
        services,
        "add",
        "--uid",
        "10002",
        "--name",
        "n",
        "--tier",
        "standard",
        "--phone",
        "+14155550100",
        stdin="1234\n1234\n",
    )
    assert result.exit_code == 0, result.output
    stored, key = db.scalar(select(Member.pin_hash).where(Member.uid == "10002")), services.settings.pin_key_bytes
    assert stored.startswith(f"hmac-sha256${pin_key_id(key)}$") and verify_pin_hash("1234", stored, key)


def test_add_reports_every_problem_and_changes_nothing(services, db):
    result = cli(services, "add", "--uid", "x1", "--name", "n", "--tier", "gold", "--phone", "12345", "--pin", "1")
    assert result.exit_code == 2
    assert "hotline members add: uid: 'x1' must be 1 to 20 digits" in result.stderr
    assert "tier: 'gold'" in result.stderr and "phone: '12345'" in result.stderr
    assert db.scalar(select(func.count(Member.id))) == 0


def test_unlock(services, db):
    cli(
        services, "add", "--uid", "10001", "--name", "n", "--tier", "premium", "--phone", "13800000001", "--pin", "2468"
    )
    assert cli(services, "unlock", "10001").stdout == "unlocked member 10001\n"
    missing = cli(services, "unlock", "404")
    assert missing.exit_code == 1 and "no member 404" in missing.stderr


def test_import_reports_progress_summary_and_rejected_rows(services, db, tmp_path: Path):
    path = tmp_path / "members.csv"
    path.write_text("uid,name,tier,phone,pin\n1,a,premium,13800000001,2468\n2,b,gold,13800000002,1357\n3,c,standard,999,1357\n",
                    encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    result = cli(services, "import", str(path), "--rejects", str(rejects))
    assert result.exit_code == 3, result.output
    assert "importing 3 rows" in result.stderr
    assert (
        f"imported {path}: 3 rows in" in result.stdout
        and "1 created, 0 updated, 0 unchanged, 2 rejected" in result.stdout
    )
    assert "  line 3: tier: 'gold' must be one of annual_premium, premium, standard" in result.stderr
    assert "  line 4: phone: '999' is not a valid phone number (region CN)" in result.stderr
    assert (
        rejects.read_text(encoding="utf-8").splitlines()[0] == "line,reason"
        and len(rejects.read_text().splitlines()) == 3
    )
    again = cli(services, "import", str(path))
    assert "0 created, 0 updated, 1 unchanged, 2 rejected" in again.stdout


def test_import_of_an_unusable_file_changes_nothing(services, db, tmp_path: Path):
    path = tmp_path / "bad.csv"
    path.write_bytes("uid,name,tier,phone,pin\n1,张三,premium,13800000001,2468\n".encode("gbk"))
    result = cli(services, "import", str(path))
    assert result.exit_code == 1
    assert "line 2: is not valid utf-8" in result.stderr and "nothing was imported" in result.stderr
    assert db.scalar(select(func.count(Member.id))) == 0
    assert cli(services, "import", str(path), "--encoding", "gbk").exit_code == 0


def test_import_of_100000_rows(services, db, tmp_path: Path):
    """The size the issue names, with pre-hashed PINs (made with the hotline's PIN key)."""
    pin_hashes = [hash_pin(f"{i:04d}", services.settings.pin_key_bytes) for i in range(4)]
    lines = ["uid,name,tier,phone,pin_hash"]
    tiers = ("annual_premium", "premium", "standard", "standard")
    for i in range(100_000):
        lines.append(f"{1_000_000 + i},会员{i},{tiers[i % 4]},+86139{i:08d},{pin_hashes[i % 4]}")
    lines[5001] = "bad,row,premium,+8613900000000,x"  # one rejected row, on line 5002
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = cli(services, "import", str(path))
    assert result.exit_code == 3, result.output
    assert "importing 100000 rows" in result.stderr and "line 5002: uid: 'bad' must be 1 to 20 digits" in result.stderr
    assert "99999 created, 0 updated, 0 unchanged, 1 rejected" in result.stdout
    assert db.scalar(select(func.count(Member.id))) == 99_999
