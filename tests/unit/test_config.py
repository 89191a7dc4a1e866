"""Configuration: shipped defaults are valid; every bad key or value is named by its path."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from core.schema import ConfigError
from core.settings import resolve, settings_from_env
from hotline.cli.main import main
from hotline.configuration import full_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hotline.toml"
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        full_config(path)
    return info.value.errors


def test_shipped_defaults_are_valid() -> None:
    cfg = full_config(None)
    assert list(cfg.tiers)[:3] == ["annual_premium", "premium", "standard"]
    assert cfg.tiers["premium"]["boost_s"] == 600
    assert cfg.prompt("greeting", "en").startswith("Hello")


def test_override_merges_table_by_table(tmp_path: Path) -> None:
    cfg = full_config(write(tmp_path, "[tiers.premium]\nboost_s = 300\n"))
    assert cfg.tiers["premium"]["boost_s"] == 300
    assert cfg.tiers["premium"]["max_wait_s"] == 420  # untouched keys keep their defaults


@pytest.mark.parametrize(
    "toml, expected",
    [
        ("[tiers.premium]\nboost_s = -5\n", "tiers.premium.boost_s: must be a number >= 0"),
        ('[tiers.premium]\nboost_s = "ten"\n', "tiers.premium.boost_s: must be a number >= 0"),
        ("[tiers.premium]\nboots_s = 5\n", "tiers.premium.boots_s: unknown key"),
        ("[queue]\nwrap_up = 5\n", "queue.wrap_up: unknown key"),
        ('[queue]\non_no_answer = "sleep"\n', "queue.on_no_answer: must be one of away, available"),
        (
            "[queue]\ntwilio_queue_max_size = 6000\n",
            "queue.twilio_queue_max_size: must be a whole number >= 1 and <= 5000",
        ),
        ('[hours]\ntimezone = "Mars/Olympus"\n', "hours.timezone: must be an IANA time zone such as Asia/Shanghai"),
        (
            '[hours.weekly]\nmon = ["21:00-09:00"]\n',
            "hours.weekly.mon: '21:00-09:00': the end must come after the start",
        ),
        ('[hours.weekly]\nmon = ["9-5"]\n', 'hours.weekly.mon[0]: must be a span "HH:MM-HH:MM"'),
        (
            '[hours]\nholiday_calendar = "XX"\n',
            'hours.holiday_calendar: must be a country code of the holidays package (e.g. CN) or ""',
        ),
        ('[prompts.greeting]\nen = ""\n', "prompts.greeting.en: must not be empty"),
        ("[tiers.gold]\nboost_s = 5\n", "tiers.gold.label: is required"),
        ('[hotline]\ndefault_language = "fr"\n', "hotline.default_language: 'fr' is not a key of [languages]"),
        (
            "[verification]\npin_min_length = 8\npin_max_length = 6\n",
            "verification.pin_max_length: must be >= pin_min_length",
        ),
    ],
)
def test_bad_values_are_named_by_key_path(tmp_path: Path, toml: str, expected: str) -> None:
    assert expected in errors_of(write(tmp_path, toml))


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    errors = errors_of(write(tmp_path, "[queue]\nwrap_up_s = -1\nannounce_every_s = 1\nbogus = 1\n"))
    assert len(errors) == 3


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    assert "not valid TOML" in errors_of(write(tmp_path, "[tiers\n"))[0]
    assert "no such file" in errors_of(tmp_path / "absent.toml")[0]


def test_config_check_command(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(main, ["config", "check", str(write(tmp_path, "[tiers.premium]\nboost_s = -1\n"))])
    assert bad.exit_code == 1
    assert "tiers.premium.boost_s: must be a number >= 0" in bad.output
    good = runner.invoke(main, ["config", "check"], env={"HOTLINE_CONFIG": ""})
    assert good.exit_code == 0 and "ok" in good.output


def test_env_settings_and_offline_defaults(tmp_path: Path) -> None:
    s = resolve(settings_from_env({"HOTLINE_DATA_DIR": str(tmp_path)}))
    assert s.offline and s.database_url == f"sqlite:///{tmp_path / 'hotline.db'}"
    assert (
        s.twilio_auth_token
        and s.twilio_auth_token == resolve(settings_from_env({"HOTLINE_DATA_DIR": str(tmp_path)})).twilio_auth_token
    )
    assert (tmp_path / "offline_auth_token").stat().st_mode & 0o777 == 0o600


def test_real_twilio_needs_token_and_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TWILIO_AUTH_TOKEN"):
        resolve(settings_from_env({"HOTLINE_DATA_DIR": str(tmp_path), "TWILIO_ACCOUNT_SID": "AC" + "1" * 32}))
    real = {"HOTLINE_DATA_DIR": str(tmp_path), "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "x"}
    with pytest.raises(ConfigError, match="HOTLINE_PUBLIC_URL"):
        resolve(settings_from_env(real))
    with pytest.raises(ConfigError, match="HOTLINE_SECRET_KEY"):
        resolve(settings_from_env({**real, "HOTLINE_PUBLIC_URL": "https://h.example.com"}))
    with pytest.raises(ConfigError, match="HOTLINE_PIN_KEY: is required with a real Twilio account"):
        resolve(settings_from_env({**real, "HOTLINE_PUBLIC_URL": "https://h.example.com", "HOTLINE_SECRET_KEY": "s"}))
    with pytest.raises(ConfigError, match="HOTLINE_PIN_KEY: must be at least 32 characters"):
        resolve(settings_from_env({**real, "HOTLINE_PUBLIC_URL": "https://h.example.com", "HOTLINE_SECRET_KEY": "s",
                                   "HOTLINE_PIN_KEY": "pepper"}))
    pepper = "pepper-" + "p" * 25
    keys = {**real, "HOTLINE_PUBLIC_URL": "https://h.example.com", "HOTLINE_SECRET_KEY": "s", "HOTLINE_PIN_KEY": pepper}
    # The agents' softphone: an API key signs their access tokens, which name the TwiML App.
    with pytest.raises(ConfigError, match="TWILIO_API_KEY_SID: is required") as missing:
        resolve(settings_from_env(keys))
    assert "TWILIO_API_KEY_SECRET" in str(missing.value) and "TWILIO_TWIML_APP_SID" in str(missing.value)
    softphone = {"TWILIO_API_KEY_SID": "SK" + "2" * 32, "TWILIO_API_KEY_SECRET": "key-secret",
                 "TWILIO_TWIML_APP_SID": "AP" + "3" * 32}
    with pytest.raises(ConfigError, match="TWILIO_TWIML_APP_SID: must be AP followed by 32 characters"):
        resolve(settings_from_env({**keys, **softphone, "TWILIO_TWIML_APP_SID": "AP123"}))
    s = resolve(settings_from_env({**keys, **softphone}))
    assert s.pin_key_bytes == pepper.encode() and pepper not in repr(s) and not (tmp_path / "pin_key").exists()
    assert "key-secret" not in repr(s) and s.twilio_twiml_app_sid == "AP" + "3" * 32


def test_offline_pin_key_is_a_local_secret_kept_in_the_data_dir(tmp_path: Path) -> None:
    s = resolve(settings_from_env({"HOTLINE_DATA_DIR": str(tmp_path)}))
    assert s.pin_key and s.pin_key != s.secret_key and s.pin_key_bytes == (tmp_path / "pin_key").read_text().encode()
    assert (tmp_path / "pin_key").stat().st_mode & 0o777 == 0o600
    assert (
        resolve(settings_from_env({"HOTLINE_DATA_DIR": str(tmp_path)})).pin_key == s.pin_key
    )  # every process gets the same
    given = "g" * 32
    assert resolve(settings_from_env({"HOTLINE_DATA_DIR": str(tmp_path), "HOTLINE_PIN_KEY": given})).pin_key == given
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_bad_env_numbers_are_named() -> None:
    with pytest.raises(ConfigError, match="HOTLINE_TRUSTED_PROXIES"):
        settings_from_env({"HOTLINE_TRUSTED_PROXIES": "yes"})
