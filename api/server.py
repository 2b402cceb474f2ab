"""Running the API with uvicorn: on its own (``daemonflow api``) or beside the worker (``daemonflow dev``).

Both bind the socket themselves first, so a port in use is a clear message instead of uvicorn
exiting the whole process. Under ``daemonflow dev`` the server runs in the dev stack's event loop
and leaves signals to it (uvicorn would otherwise take over Ctrl-C); ``stop()`` ends live event
streams at once, so Ctrl-C is never held up by an open browser tab.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from types import FrameType

import httpx
import uvicorn
from temporalio.client import Client

from api.app import create_app
from api.auth import ApiKeyError, KeyRing, Principal, Role, digest, generate_key
from config.settings import Settings

GRACEFUL_S = 5

NO_KEYS_MESSAGE = (
    "no API keys configured, and the API never runs open. Set DAEMONFLOW_API_KEYS to comma-separated "
    "name:role:key entries (roles: viewer, operator, approver, admin; keys of 16+ characters, or "
    "sha256:<hex> of them), e.g.\n  DAEMONFLOW_API_KEYS='ops:admin:{key}'\n"
    "(`daemonflow api --new-key ops:admin` prints a fresh entry; `daemonflow dev` generates one per run)"
)


def load_keys(settings: Settings) -> KeyRing:
    """The configured keys; ``ApiKeyError`` when there are none or an entry is malformed."""
    keys = KeyRing.parse(settings.api_keys)
    if not len(keys):
        raise ApiKeyError(NO_KEYS_MESSAGE.format(key=generate_key()))
    return keys


def dev_keys(settings: Settings) -> tuple[KeyRing, str | None]:
    """The configured keys, or a generated admin key for this run (returned so it can be printed)."""
    keys = KeyRing.parse(settings.api_keys)
    if len(keys):
        return keys, None
    key = generate_key()
    return KeyRing([(Principal("dev-admin", Role.ADMIN), digest(key))]), key


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; ``OSError`` (e.g. address in use) for the caller to explain."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


class _Server(uvicorn.Server):
    """uvicorn, telling the app when a signal asks it to stop; or leaving signals to its owner."""

    def __init__(self, config: uvicorn.Config, own_signals: bool, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self.own_signals = own_signals
        self.on_exit = on_exit

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if not self.own_signals:
            yield
            return
        with super().capture_signals():
            yield

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.on_exit()
        super().handle_exit(sig, frame)


class ApiServer:
    """One uvicorn server for one app, on an already bound socket."""

    def __init__(self, settings: Settings, client: Client, keys: KeyRing, sock: socket.socket, own_signals: bool) -> None:
        self.app = create_app(settings, client, keys)
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=GRACEFUL_S,
            proxy_headers=False,
        )
        self.server = _Server(config, own_signals, self.app.state.daemonflow.stopping.set)
        self.sock = sock

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}"

    async def serve(self) -> None:
        try:
            await self.server.serve(sockets=[self.sock])
        finally:
            self.sock.close()

    def stop(self) -> None:
        self.app.state.daemonflow.stopping.set()
        self.server.should_exit = True


async def run_api(settings: Settings, client: Client, keys: KeyRing, say: Callable[[str], None] = print) -> int:
    """``daemonflow api``: bind, serve until SIGINT/SIGTERM (``OSError`` if the port is taken)."""
    sock = bind(settings.api_host, settings.api_port)
    server = ApiServer(settings, client, keys, sock, own_signals=True)
    say(f"Daemonflow API on {server.url} (OpenAPI {server.url}/docs, admin page {server.url}/ui/); "
        f"{len(keys)} key(s); task queue {settings.task_queue}; Ctrl-C stops")  # fmt: skip
    await server.serve()
    return 0


async def wait_listening(url: str, timeout_s: float = 10.0) -> None:
    """For callers that must not race the first request (dev banner, tests)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with httpx.AsyncClient() as http:
        while True:
            try:
                await http.get(f"{url}/metrics")
                return
            except httpx.TransportError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.05)
