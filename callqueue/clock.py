"""Time as the queue counts it: whole epoch milliseconds, so Redis and SQL compute identical waits."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from core import keys

Now = datetime | float | int
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def to_ms(now: Now) -> int:
    """Epoch milliseconds of an aware datetime (truncated) or of epoch seconds (rounded)."""
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("naive datetime: the queue needs aware datetimes")
        # Integer arithmetic: dt.timestamp() is a float and can land one millisecond low.
        return (now - EPOCH) // _MS
    return round(float(now) * 1000)


def from_ms(ms: int | float | str) -> datetime:
    """The aware UTC datetime of epoch milliseconds."""
    return EPOCH + timedelta(milliseconds=int(float(ms)))


def to_epoch(now: Now) -> float:
    """Epoch seconds (float) of `now`, at millisecond precision."""
    return to_ms(now) / 1000


def canonical(now: Now) -> datetime:
    """`now` truncated to the millisecond as an aware UTC datetime: what SQL records store."""
    return from_ms(to_ms(now))


def local_day(ms: int, tz: tzinfo) -> str:
    """The hotline-local date (`YYYY-MM-DD`) of an instant."""
    return from_ms(ms).astimezone(tz).date().isoformat()


def day_start_ms(ms: int, tz: tzinfo) -> int:
    """Epoch ms of local midnight starting the hotline day that holds `ms`."""
    local = from_ms(ms).astimezone(tz)
    midnight = datetime(local.year, local.month, local.day, tzinfo=tz)
    return to_ms(midnight)


WINDOW_MINUTES = 15


def window_start_ms(ms: int, window: str, tz: tzinfo) -> int:
    """Start of a statistics window ending at `ms`: local midnight (`today`) or 15 whole minutes back (`15m`).

    The 15-minute window is the current minute and the 14 before it, so that it is exactly the
    sum of 15 minute buckets; SQL recomputation uses the same boundary.
    """
    if window == "today":
        return day_start_ms(ms, tz)
    if window == "15m":
        return (ms // 60000 - (WINDOW_MINUTES - 1)) * 60000
    raise ValueError(f"window: must be 'today' or '15m', not {window!r}")


def bucket_keys(ms: int, tz: tzinfo) -> tuple[str, str]:
    """The day and minute counter hashes an event at `ms` is counted in."""
    return keys.stats_day(local_day(ms, tz)), keys.stats_minute(ms // 60000)
