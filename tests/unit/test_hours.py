"""Opening hours: weekly spans, CN holidays and make-up days, tiers, midnight, DST. Fixed dates only."""
from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callqueue.hours import Calendar, check_hours
from core.config import Config, ConfigError
from hotline.configuration import full_config
from tests.support.common import ROOT

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
BER = ZoneInfo("Europe/Berlin")
UTC = UTC


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


def closes_at(cal: Calendar, now: datetime, tier: str | None = None) -> datetime | None:
    """When the line, open at `now` (a whole minute), closes, in `now`'s zone: found with `is_open`, what the calls
    use, a minute at a time (spans start and end on whole minutes); None when it is closed at `now`."""
    assert now.second == 0 and now.microsecond == 0, now
    if not cal.is_open(now, tier):
        return None
    for minutes in range(1, 3 * 24 * 60):
        # In UTC: adding to an aware local time is wall-clock arithmetic, which a DST change would skew.
        t = (now.astimezone(UTC) + timedelta(minutes=minutes)).astimezone(now.tzinfo)
        if not cal.is_open(t, tier):
            return t
    raise AssertionError(f"open for three days from {now}")


def calendar(tmp_path: Path | None = None, toml: str = "") -> Calendar:
    if not toml:
        return Calendar.from_config(full_config(None))
    assert tmp_path is not None
    path = tmp_path / "hotline.toml"
    path.write_text(toml, encoding="utf-8")
    return Calendar.from_config(full_config(path))


@pytest.fixture(scope="module")
def cn() -> Calendar:
    return calendar()


def test_weekday_open_and_close_edges(cn: Calendar) -> None:
    # 2026-11-25 is an ordinary Wednesday: 09:00-21:00, open at the start, closed at the end.
    assert not cn.is_open(sh(2026, 11, 25, 8, 59, 59))
    assert cn.is_open(sh(2026, 11, 25, 9, 0))
    assert cn.is_open(sh(2026, 11, 25, 20, 59, 59))
    assert not cn.is_open(sh(2026, 11, 25, 21, 0))
    assert cn.next_opening(sh(2026, 11, 25, 7, 0)) == sh(2026, 11, 25, 9, 0)
    assert cn.next_opening(sh(2026, 11, 25, 12, 0)) == sh(2026, 11, 25, 12, 0)  # open: now itself
    assert closes_at(cn, sh(2026, 11, 25, 12, 0)) == sh(2026, 11, 25, 21, 0)
    assert closes_at(cn, sh(2026, 11, 25, 21, 0)) is None
    assert cn.next_opening(sh(2026, 11, 25, 21, 0)) == sh(2026, 11, 26, 9, 0)


def test_results_are_in_the_schedule_zone_and_other_zones_are_accepted(cn: Calendar) -> None:
    opening = cn.next_opening(datetime(2026, 11, 24, 23, 0, tzinfo=UTC))  # 07:00 in Shanghai
    assert opening == sh(2026, 11, 25, 9, 0)
    assert opening is not None and opening.tzinfo == SH and opening.utcoffset().total_seconds() == 8 * 3600
    assert cn.is_open(datetime(2026, 11, 25, 1, 0, tzinfo=UTC))  # 09:00 in Shanghai


def test_ordinary_saturday_uses_weekend_hours(cn: Calendar) -> None:
    assert not cn.is_open(sh(2026, 11, 28, 9, 59))
    assert cn.is_open(sh(2026, 11, 28, 10, 0))
    assert not cn.is_open(sh(2026, 11, 28, 18, 0))
    assert cn.next_opening(sh(2026, 11, 27, 21, 30)) == sh(2026, 11, 28, 10, 0)  # Friday night


def test_public_holidays_are_closed(cn: Calendar) -> None:
    assert not cn.is_open(sh(2026, 10, 1, 10, 0))  # National Day, a Thursday
    # Spring Festival 2026 is announced as Sun 15 .. Mon 23 February: the package lists the weekdays;
    # the Sunday before and the weekend inside are joined to them, and the block is closed throughout.
    for day in range(15, 24):
        assert not cn.is_open(sh(2026, 2, day, 12, 0)), day
    assert cn.next_opening(sh(2026, 2, 14, 21, 0)) == sh(2026, 2, 24, 9, 0)


def test_an_ordinary_weekend_next_to_a_holiday_stays_open_where_no_days_are_moved(tmp_path: Path) -> None:
    us = calendar(tmp_path, '[hours]\ntimezone = "America/New_York"\nholiday_calendar = "US"\n')
    ny = ZoneInfo("America/New_York")
    assert not us.is_open(datetime(2026, 5, 25, 12, 0, tzinfo=ny))  # Memorial Day, a Monday
    assert us.is_open(datetime(2026, 5, 24, 12, 0, tzinfo=ny))  # the Sunday before: an ordinary Sunday


def test_make_up_working_days_get_weekday_hours(cn: Calendar) -> None:
    # Saturday 2026-10-10 is a working day: Monday's 09:00-21:00, not Saturday's 10:00-18:00.
    assert not cn.is_open(sh(2026, 10, 10, 8, 59))
    assert cn.is_open(sh(2026, 10, 10, 9, 0))
    assert cn.is_open(sh(2026, 10, 10, 20, 0))
    assert closes_at(cn, sh(2026, 10, 10, 9, 0)) == sh(2026, 10, 10, 21, 0)
    assert cn.next_opening(sh(2026, 2, 13, 22, 0)) == sh(2026, 2, 14, 9, 0)  # Sat 2026-02-14 too
    assert cn.is_open(sh(2026, 2, 14, 20, 30))


def test_next_opening_across_the_national_day_block(cn: Calendar) -> None:
    # holidays 0.109 lists Oct 1-3 and 5-7; Sunday Oct 4 lies inside the announced block (Oct 1-7) and
    # is closed with it; Thursday Oct 8 is a working day.
    assert not cn.is_open(sh(2026, 10, 4, 12, 0))
    assert cn.next_opening(sh(2026, 9, 30, 22, 0)) == sh(2026, 10, 8, 9, 0)


def test_year_end(cn: Calendar) -> None:
    # 2027-01-01 (Friday) is New Year's Day; the weekend after it joins the block, so Monday opens.
    assert cn.next_opening(sh(2026, 12, 31, 22, 0)) == sh(2027, 1, 4, 9, 0)
    assert cn.is_open(sh(2026, 12, 31, 20, 0))


def test_closed_dates(tmp_path: Path) -> None:
    cal = calendar(tmp_path, '[hours]\nclosed_dates = ["2026-11-25"]\n')
    assert not cal.is_open(sh(2026, 11, 25, 12, 0))
    assert cal.next_opening(sh(2026, 11, 24, 22, 0)) == sh(2026, 11, 26, 9, 0)


def test_without_a_holiday_calendar(tmp_path: Path) -> None:
    cal = calendar(tmp_path, '[hours]\nholiday_calendar = ""\n')
    assert cal.is_open(sh(2026, 10, 1, 9, 0))  # National Day is an ordinary Thursday
    assert not cal.is_open(sh(2026, 10, 10, 9, 30))  # no make-up day: Saturday hours
    assert cal.next_opening(sh(2026, 10, 10, 9, 30)) == sh(2026, 10, 10, 10, 0)


def test_per_tier_override(tmp_path: Path) -> None:
    days = "\n".join(f'{d} = ["08:00-22:00"]' for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    toml = f'[tiers.annual_premium.hours.weekly]\n{days}\n[tiers.premium.hours]\ntimezone = "Europe/Berlin"\n'
    cal = calendar(tmp_path, toml)
    at = sh(2026, 11, 25, 8, 30)  # Wednesday
    assert cal.is_open(at, "annual_premium")
    for tier in ("premium", "standard", "guest", None, "no_such_tier"):
        assert not cal.is_open(at, tier)
    assert closes_at(cal, at, "annual_premium") == sh(2026, 11, 25, 22, 0)
    assert cal.next_opening(sh(2026, 11, 28, 7, 0), "annual_premium") == sh(2026, 11, 28, 8, 0)
    assert not cal.is_open(sh(2026, 10, 1, 12, 0), "annual_premium")  # holidays are inherited
    # premium overrides only the zone: 09:00 Berlin on Wednesday = 16:00 Shanghai.
    opening = cal.next_opening(sh(2026, 11, 25, 12, 0), "premium")
    assert opening == datetime(2026, 11, 25, 9, 0, tzinfo=BER) == sh(2026, 11, 25, 16, 0)
    assert opening is not None and opening.tzinfo == BER


def test_all_day_and_spans_across_midnight(tmp_path: Path) -> None:
    cal = calendar(tmp_path, """
[hours]
holiday_calendar = ""
[hours.weekly]
mon = ["00:00-24:00"]
tue = ["00:00-24:00"]
wed = []
thu = ["09:00-12:00", "12:00-13:00"]
fri = ["09:00-12:00", "21:00-24:00"]
sat = ["00:00-03:00", "10:00-18:00"]
sun = []
""")
    # Monday 2026-11-23 and Tuesday all day: one period from Monday 00:00 to Wednesday 00:00.
    assert cal.is_open(sh(2026, 11, 23, 0, 0))
    assert cal.is_open(sh(2026, 11, 24, 23, 59, 59))
    assert closes_at(cal, sh(2026, 11, 23, 12, 0)) == sh(2026, 11, 25, 0, 0)
    assert not cal.is_open(sh(2026, 11, 25, 0, 0))
    assert cal.next_opening(sh(2026, 11, 22, 12, 0)) == sh(2026, 11, 23, 0, 0)
    # Touching spans in one day form one period.
    assert closes_at(cal, sh(2026, 11, 26, 10, 0)) == sh(2026, 11, 26, 13, 0)
    # Friday 21:00-24:00 continues into Saturday 00:00-03:00.
    assert closes_at(cal, sh(2026, 11, 27, 22, 0)) == sh(2026, 11, 28, 3, 0)
    assert closes_at(cal, sh(2026, 11, 28, 1, 0)) == sh(2026, 11, 28, 3, 0)
    assert cal.is_open(sh(2026, 11, 28, 2, 59))
    assert not cal.is_open(sh(2026, 11, 28, 3, 0))
    assert cal.next_opening(sh(2026, 11, 28, 3, 0)) == sh(2026, 11, 28, 10, 0)
    assert closes_at(cal, sh(2026, 11, 27, 13, 0)) is None
    # Saturday evening: closed Sunday, so Monday midnight.
    assert cal.next_opening(sh(2026, 11, 28, 18, 0)) == sh(2026, 11, 30, 0, 0)


def dst(tmp_path: Path, zone: str, sun: str) -> Calendar:
    return calendar(tmp_path, f'[hours]\ntimezone = "{zone}"\nholiday_calendar = ""\n[hours.weekly]\n'
                    + "\n".join(f"{d} = []" for d in ("mon", "tue", "wed", "thu", "fri", "sat"))
                    + f"\nsun = {sun}\n")


def test_new_york_spring_forward_gap(tmp_path: Path) -> None:
    # 2026-03-08 02:00 EST jumps to 03:00 EDT (07:00 UTC); 02:30 does not exist: opens at 03:00 EDT.
    cal = dst(tmp_path, "America/New_York", '["02:30-05:00"]')
    assert cal.next_opening(datetime(2026, 3, 8, 1, 0, tzinfo=NY)) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    opening = cal.next_opening(datetime(2026, 3, 8, 1, 0, tzinfo=NY))
    assert opening is not None and (opening.hour, opening.minute, opening.tzinfo) == (3, 0, NY)
    assert not cal.is_open(datetime(2026, 3, 8, 6, 59, 59, tzinfo=UTC))  # 01:59:59 EST
    assert cal.is_open(datetime(2026, 3, 8, 7, 0, tzinfo=UTC))
    assert closes_at(cal, datetime(2026, 3, 8, 7, 0, tzinfo=UTC)) == datetime(2026, 3, 8, 9, 0, tzinfo=UTC)
    # A span wholly inside the gap never opens that day.
    assert dst(tmp_path, "America/New_York", '["02:10-02:40"]').next_opening(
        datetime(2026, 3, 8, 0, 0, tzinfo=NY)) == datetime(2026, 3, 15, 2, 10, tzinfo=NY)


def test_new_york_fall_back_overlap(tmp_path: Path) -> None:
    # 2026-11-01 02:00 EDT falls back to 01:00 EST: 01:00-02:00 happens twice (05:00-06:00 and
    # 06:00-07:00 UTC). A repeated wall time means its first occurrence.
    # Results in a repeated hour are compared in UTC: by PEP 495, == across zones is False there.
    cal = dst(tmp_path, "America/New_York", '["01:30-03:00"]')
    opening = cal.next_opening(datetime(2026, 11, 1, 0, 0, tzinfo=NY))
    assert opening is not None and opening.astimezone(UTC) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert (opening.hour, opening.minute, opening.fold, opening.tzname()) == (1, 30, 0, "EDT")
    assert cal.is_open(datetime(2026, 11, 1, 6, 15, tzinfo=UTC))  # 01:15 EST, the second time round
    assert closes_at(cal, datetime(2026, 11, 1, 6, 15, tzinfo=UTC)) == datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    early = dst(tmp_path, "America/New_York", '["00:00-01:30"]')
    closes = closes_at(early, datetime(2026, 11, 1, 0, 0, tzinfo=NY))
    assert closes is not None and closes.astimezone(UTC) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert not early.is_open(datetime(2026, 11, 1, 6, 15, tzinfo=UTC))  # 01:15 EST: already closed


def test_berlin_transitions(tmp_path: Path) -> None:
    # 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC); 2026-10-25 03:00 CEST -> 02:00 CET (01:00 UTC).
    cal = dst(tmp_path, "Europe/Berlin", '["02:30-04:00"]')
    assert cal.next_opening(datetime(2026, 3, 29, 0, 0, tzinfo=BER)) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert closes_at(cal, datetime(2026, 3, 29, 1, 30, tzinfo=UTC)) == datetime(2026, 3, 29, 2, 0, tzinfo=UTC)
    opening = cal.next_opening(datetime(2026, 10, 25, 0, 0, tzinfo=BER))  # 02:30 CEST, the first 02:30
    assert opening is not None and opening.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert closes_at(cal, datetime(2026, 10, 25, 0, 30, tzinfo=UTC)) == datetime(2026, 10, 25, 3, 0, tzinfo=UTC)
    assert cal.is_open(datetime(2026, 10, 25, 1, 15, tzinfo=UTC))  # 02:15 CET, the second time round


def test_naive_datetimes_are_refused(cn: Calendar) -> None:
    naive = datetime(2026, 11, 25, 12, 0)
    for call in (cn.is_open, cn.next_opening):
        with pytest.raises(ValueError):
            call(naive)


def test_never_open_schedule_is_a_config_error(tmp_path: Path) -> None:
    empty = "\n".join(f"{d} = []" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    for toml, expected in (
        (f"[hours.weekly]\n{empty}\n", "hours.weekly: the hotline is never open"),
        (f"[tiers.premium.hours.weekly]\n{empty}\n", "tiers.premium.hours.weekly: the hotline is never open"),
        ('[hours]\nclosed_dates = ["2026-02-30"]\n', "hours.closed_dates[0]: '2026-02-30' is not a real date"),
    ):
        path = tmp_path / "hotline.toml"
        path.write_text(toml, encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            full_config(path)
        assert info.value.errors == [expected]
    assert check_hours(full_config(None).data) == []


def test_a_schedule_never_open_in_practice_has_no_next_opening() -> None:
    data = dict(full_config(None).data)
    data["hours"] = {**data["hours"], "weekly": {"sun": []}}  # bypasses the config check
    cal = Calendar.from_config(Config(data))
    assert cal.next_opening(sh(2026, 11, 25, 12, 0)) is None
    assert closes_at(cal, sh(2026, 11, 25, 12, 0)) is None
    assert not cal.is_open(sh(2026, 11, 25, 12, 0))


def test_pure_domain_module() -> None:
    code = "import sys, callqueue.hours; print(sorted({'sqlalchemy', 'flask', 'twilio', 'rq'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
