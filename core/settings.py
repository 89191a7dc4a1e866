"""Settings from the environment: where the stores are, the secrets, the Twilio account; `resolve` fills the blanks
of the offline set-up (the embedded stores, local secrets in the data directory)."""
from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.config import Config
from core.schema import ConfigError

OFFLINE_ACCOUNT_SID = "AC" + "0" * 32


@dataclass(frozen=True)
class Settings:
    """Everything the process needs to start: from env vars, overridable by `create_app(overrides)`."""

    data_dir: Path = Path("var")
    database_url: str = ""
    redis_url: str = ""
    config_path: str = ""
    public_url: str = ""
    trusted_proxies: int = 0
    secret_key: str = ""
    pin_key: str = field(
        default="", repr=False
    )  # HOTLINE_PIN_KEY: the secret in every PIN hash (env only, never the TOML file)
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_api_url: str = "https://api.twilio.com"
    twilio_number: str = ""
    # The agents' softphone (Twilio's Voice JavaScript SDK) with a real account: an API key to sign access tokens,
    # and the TwiML App its grant names (https://www.twilio.com/docs/iam/access-tokens#create-an-access-token-for-voice).
    twilio_api_key_sid: str = ""
    twilio_api_key_secret: str = field(default="", repr=False)
    twilio_twiml_app_sid: str = ""
    redis_timeout_s: float = 2.0
    testing: bool = False
    bench: bool = False  # HOTLINE_BENCH=1: `hotline bench` counts store round trips per request (hotline/benchmode.py)
    config: Config | None = field(default=None, compare=False)

    @property
    def offline(self) -> bool:
        """True when no real Twilio account is configured: the simulator plays Twilio."""
        return self.twilio_account_sid in ("", OFFLINE_ACCOUNT_SID)

    @property
    def pin_key_bytes(self) -> bytes:
        """The PIN key as `core.passwords.hash_pin` takes it (filled by `resolve`)."""
        return self.pin_key.encode("utf-8")

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> Settings:
        """A copy with the given fields replaced (unknown names are an error)."""
        if not overrides:
            return self
        unknown = set(overrides) - set(self.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        return replace(self, **overrides)


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Read HOTLINE_* and TWILIO_* variables; defaults give the offline, embedded set-up."""
    env = os.environ if env is None else env
    trusted = env.get("HOTLINE_TRUSTED_PROXIES", "0")
    if not trusted.isdigit():
        raise ConfigError([f"HOTLINE_TRUSTED_PROXIES: must be a whole number >= 0, not {trusted!r}"])
    timeout = env.get("HOTLINE_REDIS_TIMEOUT_S", "2")
    try:
        redis_timeout = float(timeout)
    except ValueError:
        raise ConfigError([f"HOTLINE_REDIS_TIMEOUT_S: must be a number, not {timeout!r}"]) from None
    return Settings(
        data_dir=Path(env.get("HOTLINE_DATA_DIR", "var")),
        database_url=env.get("HOTLINE_DATABASE_URL", ""),
        redis_url=env.get("HOTLINE_REDIS_URL", ""),
        config_path=env.get("HOTLINE_CONFIG", ""),
        public_url=env.get("HOTLINE_PUBLIC_URL", "").rstrip("/"),
        trusted_proxies=int(trusted),
        secret_key=env.get("HOTLINE_SECRET_KEY", ""),
        pin_key=env.get("HOTLINE_PIN_KEY", ""),
        twilio_account_sid=env.get("TWILIO_ACCOUNT_SID", ""),
        twilio_auth_token=env.get("TWILIO_AUTH_TOKEN", ""),
        twilio_api_url=env.get("TWILIO_API_URL", "https://api.twilio.com").rstrip("/"),
        twilio_number=env.get("TWILIO_NUMBER", ""),
        twilio_api_key_sid=env.get("TWILIO_API_KEY_SID", ""),
        twilio_api_key_secret=env.get("TWILIO_API_KEY_SECRET", ""),
        twilio_twiml_app_sid=env.get("TWILIO_TWIML_APP_SID", ""),
        redis_timeout_s=redis_timeout,
        bench=env.get("HOTLINE_BENCH", "") == "1",
    )


def local_secret(data_dir: Path, name: str) -> str:
    """A random secret kept in the data directory, made on first use (offline mode only)."""
    path = data_dir / name
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(16)
    tmp = path.with_suffix(f".{os.getpid()}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(value)
    os.chmod(tmp, 0o600)
    try:
        os.link(tmp, path)  # never replaces: processes starting together all keep the first one's secret
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()


MIN_PIN_KEY_CHARS = 32
SOFTPHONE_SETTINGS = (("TWILIO_API_KEY_SID", "twilio_api_key_sid", "SK"),
                      ("TWILIO_API_KEY_SECRET", "twilio_api_key_secret", ""),
                      ("TWILIO_TWIML_APP_SID", "twilio_twiml_app_sid", "AP"))


def softphone_problems(settings: Settings) -> None:
    """With a real account, agents answer in the browser: the token's key and TwiML App must be set (ConfigError)."""
    errors = []
    for env_name, attr, prefix in SOFTPHONE_SETTINGS:
        value = getattr(settings, attr)
        if not value:
            errors.append(f"{env_name}: is required with a real Twilio account (the agents' softphone signs its "
                          "access tokens with it)")
        elif prefix and not (value.startswith(prefix) and len(value) == 34):
            errors.append(f"{env_name}: must be {prefix} followed by 32 characters")
    if errors:
        raise ConfigError(errors)


def resolve(settings: Settings) -> Settings:
    """Fill the blanks: database in the data dir, offline Twilio credentials, secret key, PIN key."""
    data_dir = settings.data_dir.resolve()
    changes: dict[str, Any] = {"data_dir": data_dir}
    if not settings.database_url:
        changes["database_url"] = f"sqlite:///{data_dir / 'hotline.db'}"
    if settings.offline:
        changes["twilio_account_sid"] = OFFLINE_ACCOUNT_SID
        if not settings.twilio_auth_token:
            changes["twilio_auth_token"] = local_secret(data_dir, "offline_auth_token")
        if not settings.twilio_number:
            changes["twilio_number"] = "+864001234567"
    elif not settings.twilio_auth_token:
        raise ConfigError(["TWILIO_AUTH_TOKEN: is required when TWILIO_ACCOUNT_SID is set"])
    elif not settings.public_url:
        raise ConfigError(
            ["HOTLINE_PUBLIC_URL: is required with a real Twilio account (Twilio must reach us and signs that URL)"]
        )
    if not settings.secret_key:
        if not settings.offline:
            raise ConfigError(["HOTLINE_SECRET_KEY: is required with a real Twilio account"])
        changes["secret_key"] = local_secret(data_dir, "secret_key")
    if not settings.pin_key:
        if not settings.offline:
            raise ConfigError(["HOTLINE_PIN_KEY: is required with a real Twilio account"])
        changes["pin_key"] = local_secret(data_dir, "pin_key")
    elif len(settings.pin_key) < MIN_PIN_KEY_CHARS:
        # The key is all that protects 4-8 digit PINs in a leaked database: a short one could be guessed.
        raise ConfigError([f"HOTLINE_PIN_KEY: must be at least {MIN_PIN_KEY_CHARS} characters "
                           "(e.g. python -c 'import secrets; print(secrets.token_hex(32))')"])
    if not settings.offline:
        softphone_problems(settings)
    return replace(settings, **changes)
