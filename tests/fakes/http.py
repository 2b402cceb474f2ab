"""The HTTP plumbing of the protocol-level fakes (``ollama.py``, ``openai.py``): a real socket on
127.0.0.1, HTTP/1.1 with keep-alive and chunked streaming, a request log, scripted failures, and a
server that can go down (connections refused, not hung) and come back on the same port.

A fake subclasses :class:`FakeHTTPServer` and implements ``_handle(handler, method, path, body)``.
Stdlib only; one instance owns one listening socket and its threads, nothing is global.
"""

from __future__ import annotations

import http.server
import json
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it; ``body`` is the parsed JSON (``None`` if empty)."""

    method: str
    path: str
    body: Any
    headers: dict[str, str]
    time: float


@dataclass
class Failure:
    status: int
    error: str
    paths: tuple[str, ...]


class Cut(Exception):
    """The server is closing (or a reply hangs up): drop the connection without a response."""


class _Server(http.server.ThreadingHTTPServer):
    """One listening socket plus the connection threads it spawned.

    Connections are tracked so :meth:`close` can cut them (idle keep-alive ones
    too, else a pooled client would keep talking to a "down" server) and join
    their threads: no leaked threads, no hang on slow streams.
    """

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeHTTPServer) -> None:
        self.fake = fake
        self.closing = threading.Event()
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._conns_lock = threading.Lock()
        super().__init__(address, Handler)

    def process_request(self, request: socket.socket, client_address: Any) -> None:  # type: ignore[override]
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"{self.fake.thread_name}-conn:{self.server_address[1]}",
            daemon=True,
        )
        with self._conns_lock:
            self._conns[request] = thread
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._conns_lock:  # last, so close() still joins a thread that is just finishing
                self._conns.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Cut connections are expected (``down()``, ``hang_up_after``); anything else is a fake bug."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def close(self, timeout: float = 1.0) -> None:
        """Refuse new connections, cut live ones, and join their threads."""
        self.closing.set()
        self.shutdown()  # serve_forever returns: no more accepts
        self.server_close()  # listening socket gone: connects are refused
        with self._conns_lock:
            conns = dict(self._conns)
        for sock in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for thread in conns.values():
            thread.join(max(0.0, deadline - time.monotonic()))


class Handler(http.server.BaseHTTPRequestHandler):
    """Speaks HTTP/1.1 with keep-alive and chunked streaming, like the Go and C++ servers it fakes."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls
    sys_version = ""
    server: _Server

    @property
    def server_version(self) -> str:  # type: ignore[override]
        return self.server.fake.server_header

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch()

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    def _dispatch(self) -> None:
        self.responded = False
        fake = self.server.fake
        try:
            fake._receive(self, self.command, self.path.split("?", 1)[0], self._read_body())
        except Cut:
            self._hang_up()
        except OSError:
            self.close_connection = True
        except Exception as exc:
            # A bug in a test's responder: say so to the client rather than just hanging up.
            traceback.print_exc()
            if self.responded:
                self._hang_up()
            else:
                fake.send_error(self, 500, f"{type(fake).__name__}: {type(exc).__name__}: {exc}")

    def _hang_up(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def send_response(self, code: int, message: str | None = None) -> None:
        self.responded = True
        super().send_response(code, message)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # -- responses

    def wait(self, seconds: float) -> None:
        """Sleep, but give up at once when the server closes."""
        if seconds > 0 and self.server.closing.wait(seconds):
            raise Cut

    def send_json(self, status: int, payload: Any) -> None:
        self.send_bytes(status, json.dumps(payload).encode(), "application/json; charset=utf-8")

    def send_bytes(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def send_chunked(self, content_type: str, pieces: Iterable[bytes]) -> None:
        """Stream 200 with each piece in its own HTTP chunk, flushed as it goes."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        for data in pieces:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class FakeHTTPServer:
    """Lifecycle, request log and scripted failures shared by the fakes.

    Subclasses set ``thread_name`` / ``server_header``, implement :meth:`_handle` and
    :meth:`send_error` (their API's error body), and list in ``inference_paths`` the endpoints
    that run the model (``delay_s`` and ``fail_next`` apply to those only, so a health probe stays
    fast and honest).
    """

    thread_name = "fake-http"
    server_header = "FakeHTTP"
    inference_paths: tuple[str, ...] = ()

    def __init__(self, *, port: int = 0, host: str = "127.0.0.1") -> None:
        self.delay_s = 0.0
        """Seconds before the first byte of every inference response (a slow or loading model)."""
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._failures: deque[Failure] = deque()
        self._requests: list[RecordedRequest] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self):  # noqa: ANN201 - returns the subclass
        """Bind (an ephemeral port unless one was given) and serve from a background thread."""
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._bind()
        return self

    def stop(self) -> None:
        """Close the socket, cut in-flight requests and join every thread (~1 s at worst). Idempotent."""
        self._unbind()

    def down(self) -> None:
        """Simulate the server being stopped: connections are refused (not hung) until :meth:`up`."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not up")
        self._unbind()

    def up(self) -> None:
        """Listen again on the same port after :meth:`down`."""
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} is already up")
        if not self._port:
            raise RuntimeError(f"{type(self).__name__} was never started")
        self._bind()

    def __enter__(self):  # noqa: ANN204 - returns the subclass
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _bind(self) -> None:
        server = _Server((self._host, self._port), self)
        self._port = server.server_address[1]
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},  # how long stop()/down() wait for the accept loop
            name=f"{self.thread_name}:{self._port}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread

    def _unbind(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.close()
        if thread is not None:
            thread.join(1.0)

    @property
    def port(self) -> int:
        return self._port

    @property
    def is_up(self) -> bool:
        return self._server is not None

    # -- failures and the request log

    def fail_next(self, n: int = 1, status: int = 500, error: str = "server error", paths: Iterable[str] | None = None) -> None:
        """Make the next ``n`` requests to ``paths`` (default: the inference endpoints) fail with
        ``status``/``error``, before any scripted reply is taken (a retry gets that reply)."""
        paths = tuple(self.inference_paths if paths is None else paths)
        with self._lock:
            self._failures.extend(Failure(status, error, paths) for _ in range(n))

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[dict[str, Any]]:
        """Bodies of the requests to ``path``."""
        return [r.body for r in self.requests if r.path == path]

    def _clear_log(self) -> None:
        with self._lock:
            self._failures.clear()
            self._requests.clear()

    # -- request handling (runs on connection threads)

    def _receive(self, h: Handler, method: str, path: str, raw: bytes) -> None:
        try:
            body = json.loads(raw) if raw else None
        except ValueError as exc:
            self._record(method, path, raw.decode(errors="replace"), h)
            self.send_error(h, 400, f"invalid JSON: {exc}")
            return
        self._record(method, path, body, h)
        if path in self.inference_paths:
            h.wait(self.delay_s)
        failure = self._take_failure(path)
        if failure is not None:
            self.send_error(h, failure.status, failure.error)
            return
        self._handle(h, method, path, body)

    def _record(self, method: str, path: str, body: Any, h: Handler) -> None:
        entry = RecordedRequest(method, path, body, {k.lower(): v for k, v in h.headers.items()}, time.time())
        with self._lock:
            self._requests.append(entry)

    def _take_failure(self, path: str) -> Failure | None:
        with self._lock:
            for failure in self._failures:
                if path in failure.paths:
                    self._failures.remove(failure)
                    return failure
        return None

    def _handle(self, h: Handler, method: str, path: str, body: Any) -> None:
        raise NotImplementedError

    def send_error(self, h: Handler, status: int, error: str) -> None:
        raise NotImplementedError
