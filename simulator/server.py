"""A WSGI app served over HTTP on a background thread (the REST API; also a hotline in tests)."""
from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request: tests and the simulator record requests themselves."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log nothing."""


class BackgroundServer:
    """Serves `app` on host:port (0: any free port) from a daemon thread, one thread per request."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app, self.host, self.port = app, host, port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:50123 (only once started)."""
        if self._server is None:
            raise RuntimeError("the server is not running")
        return f"http://{self.host}:{self._server.server_port}"

    def start(self) -> str:
        """Start serving and return the base URL."""
        if self._server is None:
            self._server = make_server(self.host, self.port, self.app, threaded=True, request_handler=_QuietHandler)
            # A short poll interval makes stop() quick: shutdown() waits for the next poll.
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.02,), name=f"serve:{self.url}", daemon=True
            )
            self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and wait for the serving thread."""
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
        self._server = self._thread = None
