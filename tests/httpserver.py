"""A local HTTP file server for download tests (127.0.0.1, random port, no internet).

Serves byte strings registered under URL paths, honours ``Range: bytes=N-`` and
``bytes=N-M`` like a real static server (206 + Content-Range, 416 past the end), and can
be told to misbehave: drop the connection after K bytes for the first few requests,
ignore Range, answer with a fixed status, or claim a content type. Every request's path
and headers are recorded for the tests to inspect.
"""

from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_RANGE_RE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass
class Behaviour:
    """How the server answers; tests change the fields between or before requests."""

    ignore_range: bool = False
    # Close the socket after this many body bytes, for the first `drop_requests` requests.
    drop_after: int | None = None
    drop_requests: int = 1
    # Answer every request with this status and an empty body (e.g. 404, 503).
    status: int | None = None
    # Answer this many requests with `status`, then serve normally (None: all of them).
    status_requests: int | None = None
    content_type: str = "application/octet-stream"
    # Omit Content-Range on 416 answers (some servers do).
    bare_416: bool = False
    # Sent as Content-Encoding whatever the client accepts (misconfigured servers do this).
    content_encoding: str | None = None
    # Send no Content-Length: the body ends when the connection closes (HTTP/1.0 style).
    no_length: bool = False


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]


@dataclass
class FileServer:
    """Handle on a running server; use ``url(path)`` and ``files[path] = data``."""

    files: dict[str, bytes] = field(default_factory=dict)
    # path -> path: answered with 302 to the target (like a link shortener).
    redirects: dict[str, str] = field(default_factory=dict)
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[RecordedRequest] = field(default_factory=list)
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def range_headers(self) -> list[str | None]:
        """The Range header of every request so far (None where absent)."""
        return [request.headers.get("range") for request in self.requests]


def _make_handler(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # keep pytest output clean

        def do_GET(self) -> None:  # noqa: N802
            with server._lock:
                server.requests.append(RecordedRequest(
                    self.path, {key.lower(): value for key, value in self.headers.items()}))
                number = len(server.requests)
            behaviour = server.behaviour
            if behaviour.status is not None and (
                    behaviour.status_requests is None or number <= behaviour.status_requests):
                self._send_empty(behaviour.status)
                return
            path = self.path.lstrip("/").split("?")[0]
            if path in server.redirects:
                self._send_empty(302, {"Location": server.url(server.redirects[path])})
                return
            data = server.files.get(path)
            if data is None:
                self._send_empty(404)
                return

            start, end = 0, len(data) - 1
            status = 200
            match = _RANGE_RE.match(self.headers.get("Range", ""))
            if match and not behaviour.ignore_range:
                start = int(match.group(1))
                if match.group(2):
                    end = min(int(match.group(2)), len(data) - 1)
                if start >= len(data):
                    extra = {} if behaviour.bare_416 else {"Content-Range": f"bytes */{len(data)}"}
                    self._send_empty(416, extra)
                    return
                status = 206
            body = data[start:end + 1]

            self.send_response(status)
            self.send_header("Content-Type", behaviour.content_type)
            if not behaviour.no_length:
                self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            if behaviour.content_encoding:
                self.send_header("Content-Encoding", behaviour.content_encoding)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            self.end_headers()
            if behaviour.drop_after is not None and number <= behaviour.drop_requests:
                self.wfile.write(body[:behaviour.drop_after])
                self.wfile.flush()
                # A hard close mid-body, as when a connection drops.
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(body)

        def _send_empty(self, status: int, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


class serve:  # noqa: N801 - used as a context manager like open()
    """``with serve() as server:`` runs a FileServer on 127.0.0.1 for the block."""

    def __enter__(self) -> FileServer:
        self.state = FileServer()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self.state))
        self.httpd.daemon_threads = True
        self.state.port = self.httpd.server_address[1]
        # A short poll interval: shutdown() waits up to one interval, once per test.
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()
        return self.state

    def __exit__(self, *exc_info: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
