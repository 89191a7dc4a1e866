"""The queue's view of the configuration: tiers' boosts and targets, the [queue] and [presence] sections."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from core.config import Config


@dataclass(frozen=True)
class QueueSettings:
    """Everything the queue functions read from the configuration, as plain values."""

    boost_s: dict[str, float]
    max_wait_s: dict[str, float]
    service_level_s: dict[str, float]
    timezone: str = "Asia/Shanghai"
    wrap_up_s: float = 15
    wrap_up_max_s: float = 300
    on_no_answer: str = "away"
    max_missed_offers: int = 2
    heartbeat_timeout_s: float = 60
    ring_timeout_s: float = 20
    short_abandon_s: float = 5
    twilio_queue_max_size: int = 1000
    twilio_queue_prefix: str = "hotline"
    tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tz", ZoneInfo(self.timezone))

    @property
    def tiers(self) -> list[str]:
        """Tier names, best first (the configuration's order)."""
        return list(self.boost_s)

    def boost(self, tier: str) -> float:
        """Seconds the tier is served earlier than its arrival; an unknown tier is an error."""
        try:
            return float(self.boost_s[tier])
        except KeyError:
            raise ValueError(f"tier: {tier!r} is not one of {', '.join(self.boost_s)}") from None

    def service_level_ms(self, tier: str) -> int:
        """The tier's service-level threshold T in milliseconds."""
        return round(float(self.service_level_s.get(tier, 0)) * 1000)

    @property
    def short_abandon_ms(self) -> int:
        """Abandons shorter than this are counted apart and left out of rates."""
        return round(float(self.short_abandon_s) * 1000)


def queue_settings(config: Config | QueueSettings) -> QueueSettings:
    """The queue settings of a validated Config (a QueueSettings is returned as it is)."""
    if isinstance(config, QueueSettings):
        return config
    cached = _CACHE.get(id(config))
    if cached is not None and cached[0] is config:
        return cached[1]
    tiers: dict[str, dict[str, Any]] = config.tiers
    q: dict[str, Any] = config["queue"]
    qs = QueueSettings(
        boost_s={name: t["boost_s"] for name, t in tiers.items()},
        max_wait_s={name: t["max_wait_s"] for name, t in tiers.items()},
        service_level_s={name: t["service_level_s"] for name, t in tiers.items()},
        timezone=config["hotline"]["timezone"],
        wrap_up_s=q["wrap_up_s"],
        wrap_up_max_s=q["wrap_up_max_s"],
        on_no_answer=q["on_no_answer"],
        max_missed_offers=config["presence"]["max_missed_offers"],
        heartbeat_timeout_s=config["presence"]["heartbeat_timeout_s"],
        ring_timeout_s=q["ring_timeout_s"],
        short_abandon_s=q["short_abandon_s"],
        twilio_queue_max_size=q["twilio_queue_max_size"],
        twilio_queue_prefix=q["twilio_queue_prefix"],
    )
    _CACHE[id(config)] = (config, qs)  # Config is frozen: derive once per process
    return qs


_CACHE: dict[int, tuple[Config, QueueSettings]] = {}
