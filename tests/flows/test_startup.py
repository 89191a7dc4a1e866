"""Start-up: clear one-line failures, and an embedded Redis that stops with its owner."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.redisconn import EmbeddedRedis


def hotline(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hotline.cli", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout)


def test_serve_refuses_invalid_config_with_the_key_path(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[tiers.premium]\nboost_s = -1\n")
    result = hotline("serve", env={"HOTLINE_DATA_DIR": str(tmp_path), "HOTLINE_CONFIG": str(cfg)})
    assert result.returncode != 0
    assert "tiers.premium.boost_s: must be a number >= 0" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_unreachable_database_in_one_line(tmp_path: Path, redis_url: str) -> None:
    env = {"HOTLINE_DATA_DIR": str(tmp_path), "HOTLINE_REDIS_URL": redis_url,
           "HOTLINE_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    result = hotline("serve", env=env)
    assert result.returncode != 0
    assert "cannot start: database: OperationalError" in result.stderr
    assert "Traceback" not in result.stderr


def test_embedded_redis_is_shared_per_data_dir_and_stopped_by_its_owner(tmp_path: Path) -> None:
    first = EmbeddedRedis(tmp_path)
    url = first.start()
    assert first.process is not None
    second = EmbeddedRedis(tmp_path)
    assert second.start() == url and second.process is None  # found the running server, did not start another
    pid = first.process.pid
    first.stop()
    assert not second.running()
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
