"""What the queue tests read straight from Redis (the product reads it inside its scripts)."""
from __future__ import annotations

from typing import Any

from core import keys


def available_in_order(r: Any) -> list[tuple[str, float]]:
    """Available agents, longest idle first, with the epoch second each became available."""
    return [(login, score / 1000) for login, score in r.zrange(keys.AVAILABLE, 0, -1, withscores=True)]


def foreign_keys(r: Any) -> list[str]:
    """Keys that are neither the hotline's (`hl:`, core/keys.py) nor rq's own (`rq:`)."""
    return sorted(k for k in (x.decode() if isinstance(x, bytes) else x for x in r.scan_iter(count=1000))
                  if not k.startswith((keys.PREFIX, "rq:")))
