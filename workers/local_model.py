"""The tiny local model: find what ``make local-model`` provisioned and run it as two
``llama-server`` processes — one for chat, one for embeddings (``--embeddings --pooling mean``,
576-d vectors; a second process because embedding requests would otherwise wait behind chat
generation).

The model is SmolLM2-135M-Instruct (Q4_1): it answers short questions sensibly at ~100 tokens/s on
a laptop CPU, which makes it a smoke test that the whole stack works with a real model — not a
capable agent (it does not choose tools, and forced to, it rambles until the token cap).

Used by the real-model tests (``tests/fixtures/local_model.py``), by ``bench/real_model.py`` and by
``daemonflow dev`` (:func:`dev_model`): when no Ollama answers and no other server is configured,
dev starts the two servers on free loopback ports and points the settings at them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx

from activities.llm.probe import probe_server
from config.settings import Settings

CHAT_ALIAS = "smollm2-135m"
EMBED_ALIAS = "smollm2-135m-embed"
EMBED_DIMENSION = 576
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_TOKENS = 8192
"""SmolLM2's training context; the templates' default ``context_size`` too."""
MAX_TOKENS = 512
"""Generation cap of the local model (setting and server default): enough for a short answer, and
a 135M model forced to call a tool would otherwise run until the context is full."""
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


class LocalModelError(RuntimeError):
    """The local model is not provisioned, or a server did not start."""


def cache_dir(settings: Settings | None = None) -> Path:
    """Where ``deploy/provision-local-model.sh`` puts the binary and the model."""
    if settings is not None and settings.local_model_dir is not None:
        return settings.local_model_dir
    if os.environ.get("DAEMONFLOW_LOCAL_MODEL_DIR"):
        return Path(os.environ["DAEMONFLOW_LOCAL_MODEL_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "daemonflow" / "local-model"


@dataclass(frozen=True)
class LocalModel:
    """A provisioned ``llama-server`` and GGUF."""

    server: Path
    model: Path

    @classmethod
    def find(cls, directory: Path | None = None) -> LocalModel | None:
        directory = directory or cache_dir()
        found = cls(directory / "bin" / "llama-server", directory / "models" / GGUF)
        if os.access(found.server, os.X_OK) and found.model.is_file():
            return found
        return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LlamaServer:
    """One ``llama-server`` process on 127.0.0.1 (``role`` chat or embeddings), logging to a file.

    It runs in a session of its own, so Ctrl-C in a terminal reaches ``daemonflow dev``, which then
    stops it; :meth:`stop` and :meth:`start` again keep the port (the tests stop it mid-turn).
    """

    def __init__(
        self, local: LocalModel, role: Literal["chat", "embeddings"], log_path: Path, *, port: int | None = None,
        threads: int | None = None,
    ) -> None:
        self.local = local
        self.role = role
        self.log_path = log_path
        self.port = port or free_port()
        self.threads = threads or max(1, min(4, os.cpu_count() or 1))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The OpenAI base URL (``…/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        common = [
            str(self.local.server), "--model", str(self.local.model), "--host", "127.0.0.1", "--port", str(self.port),
            "--threads", str(self.threads), "--parallel", "1", "--no-webui", "--offline",
        ]
        if self.role == "embeddings":
            return [*common, "--alias", EMBED_ALIAS, "--embeddings", "--pooling", "mean",
                    "--ctx-size", "2048", "--batch-size", "2048", "--ubatch-size", "2048"]
        return [*common, "--alias", CHAT_ALIAS, "--ctx-size", str(CONTEXT_TOKENS), "--n-predict", str(MAX_TOKENS)]

    async def start(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Start and wait until ``/health`` says the model is loaded (0.4 s here)."""
        if self.running:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        await self._wait_ready(timeout_s)

    async def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2.0) as http:
            while time.monotonic() < deadline:
                if not self.running:
                    raise LocalModelError(f"llama-server ({self.role}) exited at start:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"http://127.0.0.1:{self.port}/health")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        self.stop()
        raise LocalModelError(f"llama-server ({self.role}) not ready after {timeout_s:g}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT_S`."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return f"(no log at {self.log_path})"


@dataclass
class LocalModelServers:
    chat: LlamaServer
    embeddings: LlamaServer

    def settings_for(self, settings: Settings) -> Settings:
        """``settings`` pointed at these servers: the OpenAI provider for chat and embeddings, the
        local aliases as models, a generation cap, and — unless a collection was chosen — a memory
        collection of its own, since 576-d vectors cannot join another model's."""
        collection = settings.memory_collection
        if collection == Settings.model_fields["memory_collection"].default:
            collection = f"{collection}_smollm2_{EMBED_DIMENSION}"
        return settings.model_copy(update={
            "llm_provider": "openai", "openai_base_url": self.chat.url,
            "embed_provider": "openai", "embed_base_url": self.embeddings.url,
            "model": CHAT_ALIAS, "embed_model": EMBED_ALIAS, "max_tokens": min(settings.max_tokens, MAX_TOKENS),
            "memory_collection": collection,
        })

    async def start(self) -> None:
        """Both at once; when one cannot start, neither is left running."""
        try:
            started = await asyncio.gather(self.chat.start(), self.embeddings.start(), return_exceptions=True)
        except BaseException:  # cancelled (Ctrl-C while loading)
            self.stop()
            raise
        failed = [outcome for outcome in started if isinstance(outcome, BaseException)]
        if failed:
            self.stop()
            raise failed[0]

    def stop(self) -> None:
        self.chat.stop()
        self.embeddings.stop()


def local_servers(local: LocalModel, log_dir: Path) -> LocalModelServers:
    """The two servers of ``local``, not started, logging into ``log_dir``."""
    return LocalModelServers(
        LlamaServer(local, "chat", log_dir / "llama-server-chat.log"),
        LlamaServer(local, "embeddings", log_dir / "llama-server-embeddings.log", threads=1),
    )


@contextlib.asynccontextmanager
async def run_local_model(local: LocalModel, log_dir: Path) -> AsyncIterator[LocalModelServers]:
    """Both servers, started together and stopped on exit."""
    servers = local_servers(local, log_dir)
    try:
        await servers.start()
        yield servers
    finally:
        servers.stop()


Say = Callable[[str], None]


async def wants_local_model(settings: Settings, say: Say) -> bool:
    """``local_model``: ``on``; ``auto`` when the chat provider is Ollama (the default) and no
    Ollama answers at ``OLLAMA_HOST``; ``off`` never."""
    if settings.local_model != "auto":
        return settings.local_model == "on"
    if settings.llm_provider != "ollama":
        return False
    probe = await probe_server("ollama", settings.ollama_host)
    if probe.reachable:
        return False
    say(f"no Ollama at {settings.ollama_host}")
    return True


@contextlib.asynccontextmanager
async def dev_model(settings: Settings, say: Say) -> AsyncIterator[Settings]:
    """For ``daemonflow dev``: the settings to run with, and the local model running when they
    need it (stopped on exit). Without the model provisioned, or when it cannot start, it says so
    and how to get a model, and changes nothing — conversations then wait for a model server."""
    if not await wants_local_model(settings, say):
        yield settings
        return
    local = LocalModel.find(cache_dir(settings))
    if local is None:
        say("  for a tiny local model instead (a smoke test, not a capable agent): `make local-model` "
            f"(one-time, about 7 minutes), then `make dev` again; it goes to {cache_dir(settings)}")
        yield settings
        return
    servers = local_servers(local, settings.var_dir)
    try:
        await servers.start()
    except LocalModelError as err:
        say(f"the tiny local model did not start: {err}")
        yield settings
        return
    try:
        say(f"using the tiny local model {CHAT_ALIAS} (SmolLM2-135M: a smoke test, not a capable agent)")
        say(f"  chat        {servers.chat.url}   (log {servers.chat.log_path})")
        say(f"  embeddings  {servers.embeddings.url}   (log {servers.embeddings.log_path})")
        say("  for a real model: install Ollama, or set DAEMONFLOW_LLM_PROVIDER=openai and "
            "DAEMONFLOW_OPENAI_BASE_URL (llama.cpp, vLLM, LM Studio)")
        yield servers.settings_for(settings)
    finally:
        servers.stop()
