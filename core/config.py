"""The configuration file: its schema, the shipped defaults merged with the operator's TOML, validated as a whole
(environment settings are core/settings.py's)."""
from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.schema import Bool, ConfigError, Custom, List, Num, Spec, Str, Table, deep_merge

_SPAN = r"([01]\d|2[0-3]):[0-5]\d-(([01]\d|2[0-3]):[0-5]\d|24:00)"
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _zone(name: str) -> str | None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "must be an IANA time zone such as Asia/Shanghai"
    return None


def _spans_ordered(spans: list[str]) -> str | None:
    for span in spans:
        if span is not None:
            start, end = span.split("-")
            if start >= end:
                return f"{span!r}: the end must come after the start"
    return None


def _holiday_calendar(code: str) -> str | None:
    if not code:
        return None
    import holidays  # imported here: loading every calendar is slow and rarely needed

    if code not in holidays.list_supported_countries():
        return "must be a country code of the holidays package (e.g. CN) or \"\""
    return None


HOURS = Table(
    fields={
        "timezone": Custom(Str(), _zone),
        "holiday_calendar": Custom(Str(), _holiday_calendar),
        "closed_dates": List(Str(pattern=r"\d{4}-\d{2}-\d{2}", hint="a date YYYY-MM-DD")),
        "weekly": Table(
            fields={
                d: Custom(List(Str(pattern=_SPAN, hint='a span "HH:MM-HH:MM"')), _spans_ordered)
                for d in _DAYS
            }
        ),
    }
)
def _networks(values: list[str]) -> str | None:
    for v in values:
        try:
            ipaddress.ip_network(v, strict=False)
        except ValueError:
            return f"{v!r} is not an IP network such as 127.0.0.1/32"
    return None


LABEL = Table(each=Str(nonempty=True))
TIER = Table(
    fields={
        "label": LABEL,
        "boost_s": Num(min=0),
        "max_wait_s": Num(min=0),
        "service_level_s": Num(min=0),
        "service_level_goal": Num(min=0, max=1),
        "hours": HOURS,
    },
    required=("label", "boost_s", "max_wait_s", "service_level_s", "service_level_goal"),
)

def root_spec(extra_sections: Mapping[str, Spec] | None = None) -> Table:
    """The schema of the whole configuration file; domain packages add their own sections."""
    return Table(
        fields={
            "hotline": Table(
                fields={
                    "name": Str(nonempty=True),
                    "timezone": Custom(Str(), _zone),
                    "phone_region": Str(pattern=r"[A-Z]{2}", hint="a two-letter region code"),
                    "default_language": Str(pattern=r"[a-z]{2}", hint="a language key"),
                }
            ),
            "languages": Table(
                each=Table(
                    fields={"voice": Str(nonempty=True), "code": Str(nonempty=True)}, required=("voice", "code")
                ),
                key_pattern=r"[a-z]{2}",
            ),
            "tiers": Table(each=TIER),
            "queue": Table(
                fields={
                    "guests_queued": Bool(),
                    "announce_every_s": Num(min=5, integer=True),
                    "wrap_up_s": Num(min=0),
                    "wrap_up_max_s": Num(min=0),
                    "on_no_answer": Str(choices=("away", "available")),
                    "ring_timeout_s": Num(min=5, max=600, integer=True),
                    "short_abandon_s": Num(min=0),
                    "twilio_queue_max_size": Num(min=1, max=5000, integer=True),
                    "twilio_queue_prefix": Str(pattern=r"[A-Za-z0-9_-]{1,40}", hint="1-40 letters, digits, _ or -"),
                    "hold_music_url": Str(
                        pattern=r"(https?://\S+)?", hint='an http(s) URL of hold audio, or "" for silence'
                    ),
                }
            ),
            "presence": Table(
                fields={
                    "heartbeat_timeout_s": Num(min=10, integer=True),
                    "max_missed_offers": Num(min=1, max=20, integer=True),
                }
            ),
            "verification": Table(
                fields={
                    "max_pin_failures": Num(min=1, integer=True),
                    "lock_minutes": Num(min=0),
                    "pin_min_length": Num(min=4, max=12, integer=True),
                    "pin_max_length": Num(min=4, max=12, integer=True),
                    "number_attempts_per_hour": Num(min=1, integer=True),
                }
            ),
            "hours": HOURS,
            "callbacks": Table(
                fields={
                    "max_attempts": Num(min=1, max=10, integer=True),
                    "retry_delay_s": Num(min=0),
                    "ring_timeout_s": Num(min=5, max=600, integer=True),
                    "stale_dialing_s": Num(min=30),
                    "overdue_after_s": Num(min=0),
                    "offer_in_queue": Bool(),
                    "allow_foreign_numbers": Bool(),
                    "allow_premium_rate": Bool(),
                    "sms_confirmation": Bool(),
                }
            ),
            "console": Table(
                fields={
                    "default_language": Str(choices=("zh", "en")),
                    "poll_ms": Num(min=250, max=2000, integer=True),
                    "at_risk_margin": Num(min=0, max=1),
                    "abandon_rate_target": Num(min=0, max=1),
                    "dispositions": Table(each=LABEL, key_pattern=r"[a-z][a-z0-9_]{0,39}"),
                }
            ),
            "metrics": Table(
                fields={
                    "enabled": Bool(),
                    "allow_networks": Custom(List(Str(nonempty=True)), _networks),
                }
            ),
            "prompts": Table(each=LABEL),
            **(extra_sections or {}),
        }
    )


@dataclass(frozen=True)
class Config:
    """The validated configuration: plain nested dicts, read through helpers."""

    data: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    @property
    def tiers(self) -> dict[str, dict[str, Any]]:
        """Tier name → its table, in the file's order (best first)."""
        tiers: dict[str, dict[str, Any]] = self.data["tiers"]
        return tiers

    def prompt(self, name: str, lang: str) -> str:
        """The text of prompt `name` in `lang` (falling back to the default language)."""
        texts: dict[str, str] = self.data["prompts"][name]
        return texts.get(lang) or texts[self.data["hotline"]["default_language"]]


def _cross_checks(data: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    langs = data.get("languages") or {}
    default = data.get("hotline", {}).get("default_language")
    if default not in langs:
        errors.append(f"hotline.default_language: {default!r} is not a key of [languages]")
    for name, texts in (data.get("prompts") or {}).items():
        for lang in langs:
            if not (texts or {}).get(lang):
                errors.append(f"prompts.{name}.{lang}: is missing (every prompt needs every language)")
    for name, tier in (data.get("tiers") or {}).items():
        for lang in langs:
            if not ((tier or {}).get("label") or {}).get(lang):
                errors.append(f"tiers.{name}.label.{lang}: is missing")
    if "guest" not in (data.get("tiers") or {}):
        errors.append("tiers.guest: is required (callers who are not verified)")
    q = data.get("queue") or {}
    if q.get("wrap_up_max_s") is not None and q.get("wrap_up_s") is not None and q["wrap_up_max_s"] < q["wrap_up_s"]:
        errors.append("queue.wrap_up_max_s: must be >= wrap_up_s (an extension adds to the wrap-up)")
    v = data.get("verification") or {}
    if v.get("pin_min_length") and v.get("pin_max_length") and v["pin_min_length"] > v["pin_max_length"]:
        errors.append("verification.pin_max_length: must be >= pin_min_length")
    return errors


def default_config_text() -> str:
    """The shipped defaults, as TOML text."""
    return (Path(__file__).parent / "defaults.toml").read_text(encoding="utf-8")


def load_config(
    path: str | os.PathLike[str] | None = None,
    extra_sections: Mapping[str, Spec] | None = None,
    extra_checks: tuple[Callable[[dict[str, Any]], list[str]], ...] = (),
) -> Config:
    """Read the shipped defaults, merge `path` on top, validate; raise ConfigError listing every problem."""
    data = tomllib.loads(default_config_text())
    if path:
        p = Path(path)
        try:
            over = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError([f"{p}: no such file"]) from None
        except UnicodeDecodeError:
            raise ConfigError([f"{p}: is not UTF-8 text"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{p}: not valid TOML: {exc}"]) from None
        data = deep_merge(data, over)
    errors: list[str] = []
    cleaned = root_spec(extra_sections).check(data, "", errors)
    if not errors:
        errors += _cross_checks(cleaned)
    if not errors:
        for check in extra_checks:
            errors += check(cleaned)
    if errors:
        raise ConfigError(errors)
    return Config(cleaned)
