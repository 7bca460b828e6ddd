"""Small threaded HTTP(S) servers on 127.0.0.1 for the tests' fake services: one that records every request
and answers through a callback, and the start-stop life of a fake that keeps its state across a stop."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


class RestartableServer:
    """A fake service's server on 127.0.0.1: ``start`` and ``stop`` keep its port and whatever the subclass
    stores, so a test can take the service down and bring it back. A subclass gives ``_handler()``, whose
    handlers call ``track(self.connection)`` in ``setup``; ``lock`` guards the subclass's state too."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def track(self, connection: socket.socket) -> None:
        """A connection the service has open, closed by ``stop`` even while kept alive."""
        with self.lock:
            self._connections.add(connection)

    def start(self) -> Self:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop answering, kept-alive connections included, as a stopped service does."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self.lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it; header names are lower-case."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any  # the JSON body, or None
    raw: bytes = b""  # the body's bytes as sent


# Answers (status, JSON body or None) for a recorded request, or (status, body, extra response headers),
# where a body given as bytes is sent as it is.
Responder = Callable[[RecordedRequest], tuple[int, Any] | tuple[int, Any, dict[str, str]]]


class RecordingServer:
    """Serves ``respond`` on a free port; ``delay_seconds`` holds answers back to provoke client timeouts."""

    def __init__(self, respond: Responder, ssl_context: ssl.SSLContext | None = None) -> None:
        self.requests: list[RecordedRequest] = []
        self.delay_seconds = 0.0
        self._respond = respond
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        scheme = "https" if ssl_context else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> RecordingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def received(self, path_prefix: str = "/") -> list[RecordedRequest]:
        """The requests whose path starts with ``path_prefix``, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def _serve(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                request = RecordedRequest(
                    method=self.command,
                    path=url.path,
                    query=parse_qs(url.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=_json_or_none(raw),
                    raw=raw,
                )
                with server._lock:
                    server.requests.append(request)
                if server.delay_seconds and server._stopping.wait(server.delay_seconds):
                    return
                status, payload, *extra = server._respond(request)
                if isinstance(payload, bytes):
                    data = payload
                else:
                    data = b"" if payload is None else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (extra[0] if extra else {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler


def _json_or_none(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:  # not JSON: the raw bytes say what was sent
        return None


def closed_port() -> int:
    """A local port with nothing listening on it: a server that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
