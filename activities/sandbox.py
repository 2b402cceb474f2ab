"""Hardened Docker sandboxes: one container per conversation, commands run through exec.

Why it is built this way:

- **One container per conversation, created on first use, reused through exec.** Starting a
  container costs far more than an exec, and state outside the workspace (a started server, /tmp)
  survives between calls of one conversation. Idle containers are reaped (``reap_idle``); the
  workspace lives in a named volume (``daemonflow-ws-<id>``) so reaping loses no files.
- **Everything needed to find a sandbox is in Docker itself**: the container is named
  ``daemonflow-<id>`` and labelled ``daemonflow.conversation`` / ``daemonflow.created-by``, and
  "last used" is the mtime of a marker file each exec touches inside the container. Workers keep
  no registry, so any worker on the host finds, reuses and reaps containers another (or a
  crashed) worker created.
- **Hardening is applied at creation, not baked into the image**: uid 1000, no capabilities,
  no-new-privileges, read-only root with a noexec tmpfs /tmp, ``network_mode=none``, memory (no
  swap beyond it), CPU and pids limits, Docker's init as PID 1 (reaps zombies, so killed process
  trees give their pids back), an optional runtime such as ``runsc``. Never a host bind mount, never
  the Docker socket.
- **Egress is a second container** (``daemonflow-<id>-egress``, bridge network) on the same
  workspace volume, used only for calls whose policy allows the network. The offline container
  never gains a network, so a call that was not allowed egress cannot inherit one.
- **Two clocks for a command.** Inside the container ``timeout -s KILL`` kills the command's whole
  process group at the deadline even if this worker dies; here, a no-output timeout and a backstop
  deadline kill every process carrying the exec's token (an env var), and if that cannot even start
  (pids exhausted) the container is restarted, which ends everything but the volume. A command
  that keeps the process table full for ``pids_full_s`` (a fork bomb) is killed the same way,
  long before its timeout (``_ProcessTable``).
- **Output**: stdout and stderr interleaved as produced; the model gets at most
  ``output_cap_chars`` (head and tail), the full output is streamed to an artifact file.
- **Files** move as tar streams through the Docker API (``put_archive``/``get_archive``), confined
  to /workspace; nothing is copied through a shell.

``SandboxManager`` is synchronous (the Docker SDK is); async code calls ``aexec`` or wraps the other
methods in ``asyncio.to_thread``. ``SandboxActivities`` exposes it to Temporal.
"""

from __future__ import annotations

import asyncio
import codecs
import collections
import concurrent.futures
import contextlib
import contextvars
import io
import logging
import posixpath
import queue
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container
from docker.types import Mount
from temporalio import activity
from temporalio.exceptions import ApplicationError

from config.settings import Settings
from models.sandbox import (
    EGRESS_SUFFIX,
    WORKSPACE,
    ExecRequest,
    ExecResult,
    FileContent,
    ReadFileRequest,
    RemoveRequest,
    SandboxLimits,
    WriteFileRequest,
    check_conversation_id,
)

log = logging.getLogger("daemonflow.sandbox")

LABEL_CONVERSATION = "daemonflow.conversation"
LABEL_CREATED_BY = "daemonflow.created-by"
LABEL_NETWORK = "daemonflow.network"
LABEL_TASK_QUEUE = "daemonflow.task-queue"
"""The task queue of the stack whose worker made it: tells apart several stacks (or test sessions)
sharing one Docker engine."""
CREATED_BY = "daemonflow"
SANDBOX_USER = "1000:1000"
LAST_USE_MARKER = "/tmp/.daemonflow-last-use"
EXEC_TOKEN_ENV = "DAEMONFLOW_EXEC"
HEARTBEAT_EVERY_S = 2.0
POLL_S = 0.2
"""Granularity of the timeouts; output is handled as soon as it arrives, not on this tick."""
BACKSTOP_SLACK_S = 2.0
"""The in-container ``timeout`` fires at the deadline; this side steps in only this much later."""
PIDS_CHECK_EVERY_S = 1.0
"""How often a running command's process table is looked at (``_ProcessTable``)."""
PIDS_FULL_SHARE = 0.95
"""Processes die and respawn in a bomb, so "full" is this share of the pids limit, not all of it."""
REAP_PARALLELISM = 8
BUILD_HINT = "run deploy/provision-docker.sh or `docker build -t daemonflow-sandbox:latest deploy/sandbox`"

_WRAPPER = 'touch {marker} 2>/dev/null; cd -- "$1" || exit 126; shift; exec timeout -s KILL "$@"'.format(
    marker=LAST_USE_MARKER
)
"""argv: workdir, timeout seconds, program... ``timeout`` makes its own process group and kills it."""

_KILLER = f"""
import os, signal, sys
token = b"{EXEC_TOKEN_ENV}=" + sys.argv[1].encode()
for _ in range(5):
    hits = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) in (1, os.getpid()):
            continue
        try:
            with open(f"/proc/{{pid}}/environ", "rb") as f:
                env = f.read().split(b"\\0")
        except OSError:
            continue
        if token in env:
            hits += 1
            for kill in (os.killpg, os.kill):
                try:
                    kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
    if not hits:
        break
"""
"""Kills every process carrying the exec's token, and their process groups, in one process."""


# --- errors -------------------------------------------------------------------------------------
# ApplicationError subclasses, so they mean the right thing whether raised inside our activities or
# inside another activity that calls the manager directly (the tool runner).


class SandboxViolation(ApplicationError):
    """The request tried to leave /workspace (or otherwise the sandbox's rules): never retried."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="SandboxViolation", non_retryable=True)


class SandboxUnavailable(ApplicationError):
    """The Docker engine does not answer: retried, it may come back."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="SandboxUnavailable")


class SandboxImageMissing(ApplicationError):
    """Retrying cannot help until someone builds the image."""

    def __init__(self, image: str) -> None:
        super().__init__(
            f"sandbox image {image!r} is missing: {BUILD_HINT}", type="SandboxImageMissing", non_retryable=True
        )


class SandboxFileError(ApplicationError):
    """A file that does not exist, is a directory...: the model is told, retrying does not help."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="SandboxFileError", non_retryable=True)


class SandboxError(ApplicationError):
    """Anything else the engine refused; retried."""

    def __init__(self, message: str, *, non_retryable: bool = False) -> None:
        super().__init__(message, type="SandboxError", non_retryable=non_retryable)


@contextlib.contextmanager
def _docker_errors(what: str) -> Iterator[None]:
    """Turn SDK and transport errors into the errors above, with what we were doing."""
    try:
        yield
    except ApplicationError:
        raise
    except docker.errors.ImageNotFound as err:
        raise SandboxError(f"{what}: {err.explanation or err}; {BUILD_HINT}", non_retryable=True) from err
    except docker.errors.APIError as err:
        raise SandboxError(f"{what}: {err.explanation or err}") from err
    except (requests.exceptions.ConnectionError, docker.errors.DockerException) as err:
        raise SandboxUnavailable(f"{what}: cannot reach the Docker engine ({err}); is dockerd running?") from err


def connect_docker(timeout_s: float = 60.0) -> docker.DockerClient:
    """A client for the engine in the environment (DOCKER_HOST or the local socket), pinged once."""
    with _docker_errors("connecting to Docker"):
        client = docker.from_env(timeout=int(timeout_s))
        client.ping()
        return client


# --- names and paths ----------------------------------------------------------------------------


def _valid(conversation_id: str) -> str:
    try:
        return check_conversation_id(conversation_id)
    except ValueError as err:
        raise SandboxError(str(err), non_retryable=True) from None


def container_name(conversation_id: str, network: bool = False) -> str:
    return f"daemonflow-{_valid(conversation_id)}{EGRESS_SUFFIX if network else ''}"


def volume_name(conversation_id: str) -> str:
    return f"daemonflow-ws-{_valid(conversation_id)}"


def workspace_path(path: str) -> str:
    """The normalised absolute path of ``path`` inside /workspace; anything escaping it is refused."""
    if not path or "\x00" in path:
        raise SandboxViolation(f"invalid path {path!r}")
    absolute = path if path.startswith("/") else f"{WORKSPACE}/{path}"
    normal = posixpath.normpath("/" + absolute.lstrip("/"))
    if normal != WORKSPACE and not normal.startswith(WORKSPACE + "/"):
        raise SandboxViolation(f"path {path!r} resolves to {normal!r}, outside {WORKSPACE}")
    return normal


# --- output -------------------------------------------------------------------------------------


class _Output:
    """Collects a command's output: all of it while small, head + tail + artifact file once large."""

    MARKER_RESERVE = 200

    def __init__(self, cap_chars: int, artifact_cap_bytes: int, artifact_path: Path) -> None:
        self._cap = cap_chars
        self._head_budget = (cap_chars - self.MARKER_RESERVE) * 2 // 3
        self._tail_budget = cap_chars - self.MARKER_RESERVE - self._head_budget
        self._artifact_cap = artifact_cap_bytes
        self.artifact_path = artifact_path
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._raw = bytearray()  # kept only until the output overflows the cap
        self._text: list[str] = []
        self._head: list[str] = []
        self._head_chars = 0
        self._tail: collections.deque[str] = collections.deque()
        self._tail_chars = 0
        self._file: io.BufferedWriter | None = None
        self.chars = 0
        self.bytes = 0
        self.over_artifact_cap = False

    @property
    def truncated(self) -> bool:
        return self.chars > self._cap

    def write(self, data: bytes) -> None:
        self.bytes += len(data)
        text = self._decoder.decode(data)
        self._add(text, data)

    def _add(self, text: str, data: bytes) -> None:
        was_truncated = self.truncated
        self.chars += len(text)
        if not was_truncated:
            self._raw += data
            self._text.append(text)
            if self.truncated:
                self._overflow()
            return
        self._keep_tail(text)
        self._to_file(data)

    def _overflow(self) -> None:
        """Crossed the cap: start the artifact with everything so far, keep only head and tail."""
        self.artifact_path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.artifact_path, "wb")  # noqa: SIM115 - closed in close()
        everything = "".join(self._text)
        self._head = [everything[: self._head_budget]]
        self._head_chars = len(self._head[0])
        self._keep_tail(everything[self._head_budget :])
        raw, self._raw, self._text = bytes(self._raw), bytearray(), []
        self._to_file(raw)

    def _keep_tail(self, text: str) -> None:
        self._tail.append(text)
        self._tail_chars += len(text)
        while self._tail_chars - len(self._tail[0]) >= self._tail_budget:
            self._tail_chars -= len(self._tail.popleft())
        if self._tail_chars > self._tail_budget:
            extra = self._tail_chars - self._tail_budget
            self._tail[0] = self._tail[0][extra:]
            self._tail_chars -= extra

    def _to_file(self, data: bytes) -> None:
        if self._file is None or self.over_artifact_cap:
            return
        room = self._artifact_cap - self._file.tell()
        if len(data) > room:
            self._file.write(data[: max(room, 0)])
            self._file.write(b"\n[daemonflow: artifact capped here; the command was killed]\n")
            self.over_artifact_cap = True
        else:
            self._file.write(data)

    def close(self) -> None:
        rest = self._decoder.decode(b"", final=True)
        if rest:
            self._add(rest, b"")
        if self._file is not None:
            self._file.close()

    def for_model(self, artifact_id: str | None) -> str:
        if not self.truncated:
            return "".join(self._text)
        omitted = self.chars - self._head_chars - self._tail_chars
        marker = (
            f"\n\n[... {omitted} characters omitted; the full output ({self.chars} characters) "
            f"is kept as artifact {artifact_id} ...]\n\n"
        )
        return "".join(self._head) + marker + "".join(self._tail)


_EOF = object()


def _pump(stream: Any, into: queue.Queue) -> None:
    """Reader thread: Docker's exec stream is blocking; the manager waits on the queue with timeouts."""
    try:
        for chunk in stream:
            into.put(chunk)
    except Exception as err:  # noqa: BLE001 - handed to the waiting side
        into.put(err)
    finally:
        into.put(_EOF)


class _ProcessTable:
    """Whether a command keeps the container's process table full, from the engine's one-shot
    stats once a second. The pids limit contains a fork bomb, but bash retries a failed fork for
    ever and a bomb that catches the error never stops forking, so without this the table stayed
    full, the machine's CPU spent on failing forks, until the command's timeout (120 s by default).
    """

    def __init__(self, api: Any, container_id: str, limits: SandboxLimits, now: float) -> None:
        self._api = api
        self._container_id = container_id
        self._full_at = limits.pids * PIDS_FULL_SHARE
        self._full_for_s = limits.pids_full_s
        self._checked = now
        self._full_since: float | None = None

    def full_too_long(self, now: float) -> bool:
        if now - self._checked < PIDS_CHECK_EVERY_S:
            return False
        self._checked = now
        current = self._current()
        if current is None or current < self._full_at:
            self._full_since = None
            return False
        if self._full_since is None:
            self._full_since = now
        return now - self._full_since >= self._full_for_s

    def _current(self) -> int | None:
        try:
            stats = self._api.stats(self._container_id, stream=False, one_shot=True)
        except Exception as err:  # noqa: BLE001 - unknown is "not full": the timeouts still apply
            log.debug("cannot read the process count of %s: %s", self._container_id[:12], err)
            return None
        return (stats.get("pids_stats") or {}).get("current")


def _parse_docker_time(value: str | None) -> float | None:
    """Docker's RFC 3339 times carry nanoseconds, which ``fromisoformat`` does not accept."""
    if not value or value.startswith("0001-"):
        return None
    head, _, frac = value.rstrip("Z").partition(".")
    zone = ""
    for sign in ("+", "-"):
        if sign in frac:
            frac, zone = frac.split(sign, 1)[0], sign + frac.split(sign, 1)[1]
    text = f"{head}.{(frac or '0')[:6]}{zone or '+00:00'}"
    return datetime.fromisoformat(text).timestamp()


def _last_state_change(container: Container) -> float:
    """Epoch seconds of the container's last creation, start or stop, from the engine's records."""
    state = container.attrs.get("State", {})
    times = [_parse_docker_time(state.get(key)) for key in ("StartedAt", "FinishedAt")]
    times.append(_parse_docker_time(container.attrs.get("Created")))
    return max((t for t in times if t is not None), default=0.0)


def _default_heartbeat() -> Callable[[], None] | None:
    """``activity.heartbeat`` when running in an activity; harmless outside one.

    Only safe where the activity's heartbeat can be called from this thread (sync activities, or the
    event loop thread); async code should use ``SandboxManager.aexec``, which heartbeats safely.
    """
    if not activity.in_activity():
        return None
    warned = threading.Event()

    def beat() -> None:
        try:
            activity.heartbeat()
        except RuntimeError as err:
            if not warned.is_set():
                warned.set()
                log.warning("cannot heartbeat from this thread (%s); async code should use aexec", err)

    return beat


# --- the manager --------------------------------------------------------------------------------


class SandboxManager:
    """Creates, finds, runs commands in, and removes the conversations' sandbox containers."""

    def __init__(
        self,
        client: docker.DockerClient,
        settings: Settings,
        artifacts_dir: Path,
        limits: SandboxLimits | None = None,
        runtime: str | None = None,
        observer: Callable[..., contextlib.AbstractContextManager[dict[str, Any]]] | None = None,
    ) -> None:
        # ``observer(what, **attributes)`` times "start" and "exec" (the worker passes
        # ``workers.metrics.SandboxObserver``: histograms and spans); notes put in its dict are kept.
        self._observe = observer or (lambda what, **attributes: contextlib.nullcontext({}))
        self._client = client
        self._api = client.api
        self.image = settings.sandbox_image
        self.task_queue = settings.task_queue
        self.limits = limits or SandboxLimits()
        self.runtime = runtime if runtime is not None else settings.sandbox_runtime
        self.artifacts_dir = Path(artifacts_dir)

    @property
    def client(self) -> docker.DockerClient:
        """The engine this manager talks to (host Docker tools use the same one)."""
        return self._client

    # -- containers --

    def find(self, conversation_id: str | None = None) -> list[Container]:
        """Daemonflow's sandbox containers (of one conversation), running or not, by label."""
        labels = [f"{LABEL_CREATED_BY}={CREATED_BY}"]
        if conversation_id is not None:
            labels.append(f"{LABEL_CONVERSATION}={conversation_id}")
        with _docker_errors("listing sandbox containers"):
            return self._client.containers.list(all=True, filters={"label": labels})

    def ensure(self, conversation_id: str, network: bool = False) -> Container:
        """The conversation's running container, created (with its volume) on first use."""
        name = container_name(conversation_id, network)
        with _docker_errors(f"preparing sandbox {name}"):
            try:
                container: Container | None = self._client.containers.get(name)
            except docker.errors.NotFound:
                container = None
            if container is not None and container.status == "running":
                self._check_owner(container, conversation_id)
                return container
            with self._observe("start", network=network, created=container is None):
                if container is None:
                    container = self._create(conversation_id, network)
                self._check_owner(container, conversation_id)
                if container.status == "paused":
                    container.unpause()
                elif container.status != "running":
                    container.start()
                return container

    def _check_owner(self, container: Container, conversation_id: str) -> None:
        labels = container.labels
        if labels.get(LABEL_CREATED_BY) != CREATED_BY or labels.get(LABEL_CONVERSATION) != conversation_id:
            raise SandboxError(
                f"a container named {container.name!r} exists but is not conversation {conversation_id!r}'s "
                "sandbox; remove or rename it",
                non_retryable=True,
            )

    def _labels(self, conversation_id: str, network: bool | None = None) -> dict[str, str]:
        labels = {LABEL_CONVERSATION: conversation_id, LABEL_CREATED_BY: CREATED_BY, LABEL_TASK_QUEUE: self.task_queue}
        if network is not None:
            labels[LABEL_NETWORK] = "bridge" if network else "none"
        return labels

    def _create(self, conversation_id: str, network: bool) -> Container:
        try:
            self._client.images.get(self.image)
        except docker.errors.ImageNotFound:
            raise SandboxImageMissing(self.image) from None
        volume = self._volume(conversation_id)
        name = container_name(conversation_id, network)
        limits = self.limits
        options: dict[str, Any] = dict(
            image=self.image,
            name=name,
            labels=self._labels(conversation_id, network),
            detach=True,
            user=SANDBOX_USER,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            read_only=True,
            tmpfs={"/tmp": f"rw,noexec,nosuid,nodev,size={limits.tmp_size}"},
            network_mode="bridge" if network else "none",
            mem_limit=limits.memory,
            memswap_limit=limits.memory,
            nano_cpus=int(limits.cpus * 1e9),
            pids_limit=limits.pids,
            init=True,
            mounts=[Mount(target=WORKSPACE, source=volume, type="volume")],
            working_dir=WORKSPACE,
            # The root filesystem (and so /home/sandbox) is read-only; tools that write to $HOME
            # (git config, pip caches) get the tmpfs.
            environment={"HOME": "/tmp"},
            hostname="sandbox",
        )
        if self.runtime:
            options["runtime"] = self.runtime
        try:
            container = self._client.containers.create(**options)
        except docker.errors.APIError as err:
            if self.runtime and "runtime" in str(err.explanation or ""):
                raise SandboxError(
                    f"the engine has no runtime {self.runtime!r} ({err.explanation}); install it or unset "
                    "DAEMONFLOW_SANDBOX_RUNTIME",
                    non_retryable=True,
                ) from err
            if err.status_code != 409:  # 409: another worker created it first; use theirs
                raise
            container = self._client.containers.get(name)
        log.info("created sandbox %s (%s)", name, container.short_id)
        return container

    def _volume(self, conversation_id: str) -> str:
        name = volume_name(conversation_id)
        try:
            self._client.volumes.get(name)
        except docker.errors.NotFound:
            self._client.volumes.create(name=name, labels=self._labels(conversation_id))
        return name

    # -- exec --

    async def aexec(self, request: ExecRequest, on_start: Callable[[], None] | None = None) -> ExecResult:
        """``exec`` for async code: runs in a thread, heartbeats the current activity from the event
        loop, and kills the command if the activity is cancelled."""
        loop = asyncio.get_running_loop()
        cancelled = threading.Event()
        heartbeat = _loop_heartbeat(loop) if activity.in_activity() else None
        task = asyncio.ensure_future(
            asyncio.to_thread(self.exec, request, heartbeat=heartbeat, cancelled=cancelled, on_start=on_start)
        )
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled.set()
            with contextlib.suppress(Exception):
                await task  # the command is killed within the kill grace
            raise

    def exec(
        self,
        request: ExecRequest,
        *,
        heartbeat: Callable[[], None] | None = None,
        cancelled: threading.Event | None = None,
        on_start: Callable[[], None] | None = None,
    ) -> ExecResult:
        """Run one command in the conversation's sandbox and wait for it, within its budgets.

        ``on_start`` is called once the container is ready, just before the command is created:
        from then on the command may have run (the at-most-once marker of ``tools.run``)."""
        heartbeat = heartbeat or _default_heartbeat() or (lambda: None)
        workdir = workspace_path(request.workdir)
        for attempt in (1, 2):
            container = self.ensure(request.conversation_id, request.network)
            with _docker_errors(f"running a command in {container.name}"), self._observe("exec") as notes:
                try:
                    result = self._exec(container, request, workdir, heartbeat, cancelled, on_start)
                    notes.update(outcome=result.killed_reason or "ok", exit_code=result.exit_code)
                    return result
                except docker.errors.APIError as err:
                    # Reaped or stopped by another worker between ensure() and exec_create: once more.
                    if attempt == 1 and err.status_code in (404, 409):
                        log.info("sandbox %s went away under us (%s); recreating it", container.name, err)
                        continue
                    raise
        raise AssertionError("unreachable")

    def _exec(
        self,
        container: Container,
        request: ExecRequest,
        workdir: str,
        heartbeat: Callable[[], None],
        cancelled: threading.Event | None,
        on_start: Callable[[], None] | None = None,
    ) -> ExecResult:
        limits = self.limits
        timeout_s = request.timeout_s or limits.command_timeout_s
        quiet_s = request.no_output_timeout_s or limits.no_output_timeout_s
        token = uuid.uuid4().hex
        artifact_id = f"exec-{token}"
        output = _Output(
            limits.output_cap_chars,
            limits.artifact_cap_bytes,
            self.artifacts_dir / request.conversation_id / f"{artifact_id}.log",
        )
        argv = ["/bin/sh", "-c", _WRAPPER, "daemonflow-exec", workdir, f"{timeout_s:.3f}", *request.program()]
        if on_start is not None:
            on_start()
        started_wall = time.time()
        started = time.monotonic()
        exec_id = self._api.exec_create(
            container.id,
            argv,
            stdout=True,
            stderr=True,
            stdin=False,
            tty=False,
            user=SANDBOX_USER,
            environment={**request.env, EXEC_TOKEN_ENV: token},
        )["Id"]
        stream = self._api.exec_start(exec_id, stream=True, demux=False)
        chunks: queue.Queue = queue.Queue()
        threading.Thread(target=_pump, args=(stream, chunks), name=f"sandbox-{token[:8]}", daemon=True).start()

        killed_reason: str | None = None
        killed_at = 0.0
        restarted = False
        table = _ProcessTable(self._api, container.id, limits, started)
        last_output = last_beat = started
        stream_error: Exception | None = None
        try:
            while True:
                now = time.monotonic()
                if killed_reason is None:
                    if cancelled is not None and cancelled.is_set():
                        killed_reason = "cancelled"
                    elif now - started > timeout_s + BACKSTOP_SLACK_S:
                        killed_reason = "timeout"
                    elif now - last_output > quiet_s:
                        killed_reason = "no_output"
                    elif output.over_artifact_cap:
                        killed_reason = "output_limit"
                    elif table.full_too_long(now):
                        killed_reason = "pids_limit"
                    if killed_reason is not None:
                        killed_at = now
                        self._kill(container, token)
                elif not restarted and now - killed_at > limits.kill_grace_s:
                    log.warning("command in %s survived its kill; restarting the container", container.name)
                    self._restart(container)
                    restarted = True
                elif restarted and now - killed_at > 3 * limits.kill_grace_s + 10:
                    log.error("exec stream of %s did not end after a restart; giving up on it", container.name)
                    stream.close()
                    break
                if now - last_beat >= HEARTBEAT_EVERY_S:
                    heartbeat()
                    last_beat = now
                try:
                    item = chunks.get(timeout=POLL_S)
                except queue.Empty:
                    continue
                if item is _EOF:
                    break
                if isinstance(item, Exception):
                    stream_error = item
                    continue
                output.write(item)
                last_output = time.monotonic()
        finally:
            output.close()
        duration_s = time.monotonic() - started
        exit_code = self._exit_code(exec_id)
        if stream_error is not None and killed_reason is None and exit_code is None:
            raise SandboxUnavailable(f"lost the output stream of a command in {container.name}: {stream_error}")
        if killed_reason is None and exit_code == 137 and duration_s >= timeout_s:
            killed_reason = "timeout"  # the in-container deadline fired (SIGKILL to the group)
        elif killed_reason is None and exit_code not in (0, None) and self._oom_since(container, started_wall):
            killed_reason = "oom"  # some process of the command hit the memory limit
        truncated = output.truncated
        return ExecResult(
            exit_code=exit_code,
            output=output.for_model(artifact_id if truncated else None),
            truncated=truncated,
            timed_out=killed_reason in ("timeout", "no_output"),
            killed_reason=killed_reason,
            duration_ms=duration_s * 1000,
            container_restarted=restarted,
            output_chars=output.chars,
            artifact_id=artifact_id if truncated else None,
            artifact_path=str(output.artifact_path) if truncated else None,
            container_id=container.id,
        )

    def _kill(self, container: Container, token: str) -> None:
        """Start the killer inside, detached (needs one free pid); if it fails or is too slow, the
        restart after the kill grace ends the command anyway."""
        try:
            kill = self._api.exec_create(container.id, ["python3", "-c", _KILLER, token], user=SANDBOX_USER)
            self._api.exec_start(kill["Id"], detach=True)
        except Exception as err:  # noqa: BLE001 - the restart after the grace period still ends it
            log.warning("could not start the killer in %s: %s", container.name, err)

    def _restart(self, container: Container) -> None:
        with contextlib.suppress(Exception):
            container.restart(timeout=0)

    def _exit_code(self, exec_id: str) -> int | None:
        deadline = time.monotonic() + 2.0
        while True:
            try:
                info = self._api.exec_inspect(exec_id)
            except docker.errors.APIError:
                return None
            if not info.get("Running") or time.monotonic() > deadline:
                return info.get("ExitCode")
            time.sleep(0.02)

    def _oom_since(self, container: Container, since_wall: float) -> bool:
        """Whether the engine reported an OOM kill in this container since the command started."""
        try:
            # The engine keeps its recent events in memory; asked right away, the OOM kill is there.
            # The window starts exactly at this command, so an earlier command's OOM is not counted.
            events = self._client.events(
                since=f"{since_wall:.6f}",
                until=f"{time.time():.6f}",
                filters={"container": container.id, "event": "oom"},
                decode=True,
            )
            return any(True for _ in events)
        except Exception as err:  # noqa: BLE001 - unknown cause is reported as a plain exit code
            log.debug("cannot read OOM events: %s", err)
            return False

    # -- files --

    def write_file(self, conversation_id: str, path: str, content: str | bytes, mode: int = 0o644) -> str:
        """Write (create or replace) a file under /workspace, creating parent directories.

        The path is confined lexically; the engine resolves symlinks inside the container's own
        root, so a link planted in the workspace can reach no further than a command could.
        """
        target = workspace_path(path)
        if target == WORKSPACE:
            raise SandboxViolation(f"{path!r} is the workspace itself, not a file")
        data = content.encode() if isinstance(content, str) else content
        relative = posixpath.relpath(target, WORKSPACE)
        buffer = io.BytesIO()
        now = time.time()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            parts = relative.split("/")
            for depth in range(1, len(parts)):
                directory = tarfile.TarInfo("/".join(parts[:depth]))
                directory.type, directory.mode, directory.mtime = tarfile.DIRTYPE, 0o755, now
                directory.uid = directory.gid = 1000
                tar.addfile(directory)
            entry = tarfile.TarInfo(relative)
            entry.size, entry.mode, entry.mtime = len(data), mode & 0o777, now
            entry.uid = entry.gid = 1000
            tar.addfile(entry, io.BytesIO(data))
        container = self.ensure(conversation_id)
        with _docker_errors(f"writing {target} in {container.name}"):
            try:
                self._api.put_archive(container.id, WORKSPACE, buffer.getvalue())
            except docker.errors.APIError as err:
                if err.status_code in (400, 403, 404, 500) and err.explanation:
                    raise SandboxFileError(f"cannot write {target}: {err.explanation}") from err
                raise
        return target

    def read_file(
        self, conversation_id: str, path: str, max_bytes: int = 1_000_000, _depth: int = 0, offset: int = 0
    ) -> FileContent:
        """Read up to ``max_bytes`` of a file under /workspace from byte ``offset`` (a symlink is
        followed if it stays inside)."""
        target = workspace_path(path)
        container = self.ensure(conversation_id)
        with _docker_errors(f"reading {target} in {container.name}"):
            try:
                stream, stat = self._api.get_archive(container.id, target)
            except docker.errors.NotFound:
                raise SandboxFileError(f"no such file: {target}") from None
            try:
                with tarfile.open(fileobj=_ChunkReader(stream), mode="r|") as tar:
                    member = tar.next()
                    if member is None:
                        raise SandboxFileError(f"cannot read {target}: empty archive")
                    if member.issym():
                        if _depth >= 5:
                            raise SandboxViolation(f"too many levels of symbolic links at {target}")
                        link = posixpath.join(posixpath.dirname(target), member.linkname)
                        return self.read_file(conversation_id, workspace_path(link), max_bytes, _depth + 1, offset)
                    if member.isdir():
                        raise SandboxFileError(f"{target} is a directory")
                    if not member.isfile():
                        raise SandboxFileError(f"{target} is not a regular file")
                    handle = tar.extractfile(member)
                    if handle is not None and offset:
                        handle.seek(offset)  # a streamed member seeks forward by reading
                    data = handle.read(max_bytes) if handle else b""
            finally:
                stream.close()  # a generator; stops reading what max_bytes did not need
        size = int(stat.get("size", len(data)))
        return FileContent(
            path=target, content=data.decode("utf-8", errors="replace"), size=size,
            truncated=size > min(offset, size) + len(data), offset=min(offset, size),
        )

    # -- lifecycle --

    def last_used(self, container: Container) -> float:
        """Epoch seconds of the last exec (the marker's mtime), else when the container started or stopped.

        The marker is on the container's tmpfs, which the engine's archive API cannot see, so it is
        read with one small exec; reaping is rare, an exec costs tens of milliseconds.
        """
        if container.status == "running":
            with contextlib.suppress(Exception):
                probe = self._api.exec_create(container.id, ["stat", "-c", "%Y", LAST_USE_MARKER], user=SANDBOX_USER)
                out = self._api.exec_start(probe["Id"]).decode().strip()
                if out.isdigit():
                    return float(out)
        return _last_state_change(container)

    def busy(self, container: Container) -> bool:
        """Whether an exec is running in the container right now."""
        for exec_id in container.attrs.get("ExecIDs") or []:
            with contextlib.suppress(docker.errors.APIError):
                if self._api.exec_inspect(exec_id).get("Running"):
                    return True
        return False

    def reap_idle(self, max_idle_s: float) -> list[str]:
        """Remove sandbox containers unused for ``max_idle_s`` (any worker's); volumes are kept.

        Containers are probed a few at a time (each probe is an exec). One the engine refuses to
        remove (removal already in progress...) is skipped and logged, so one odd container cannot
        stop the reaper; an unreachable engine still raises.
        """
        now = time.time()
        with concurrent.futures.ThreadPoolExecutor(max_workers=REAP_PARALLELISM) as pool:
            reaped = pool.map(lambda container: self._reap_if_idle(container, now, max_idle_s), self.find())
            return [name for name in reaped if name]

    def _reap_if_idle(self, container: Container, now: float, max_idle_s: float) -> str | None:
        with _docker_errors(f"reaping {container.name}"):
            try:
                if self.busy(container) or now - self.last_used(container) <= max_idle_s:
                    return None
                container.remove(force=True)
            except docker.errors.NotFound:
                return None  # another worker reaped it
            except docker.errors.APIError as err:
                log.warning("could not reap %s: %s", container.name, err.explanation or err)
                return None
        log.info("reaped idle sandbox %s", container.name)
        return container.name

    def remove(self, conversation_id: str, volumes: bool = False) -> list[str]:
        """Remove the conversation's containers, and with ``volumes`` its workspace too."""
        removed = []
        with _docker_errors(f"removing the sandbox of {conversation_id}"):
            for container in self.find(conversation_id):
                with contextlib.suppress(docker.errors.NotFound):
                    container.remove(force=True)
                    removed.append(container.name)
            if volumes:
                with contextlib.suppress(docker.errors.NotFound):
                    self._client.volumes.get(volume_name(conversation_id)).remove(force=True)
                    removed.append(volume_name(conversation_id))
        return removed


class _ChunkReader(io.RawIOBase):
    """A file-like view of the chunk iterator ``get_archive`` returns, for streaming tarfile."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def _loop_heartbeat(loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """A heartbeat callable for a worker thread: async activities may only heartbeat on their loop."""
    context = contextvars.copy_context()

    def on_loop() -> None:
        with contextlib.suppress(Exception):
            activity.heartbeat()

    def beat() -> None:
        with contextlib.suppress(RuntimeError):  # loop closed: the activity is over anyway
            loop.call_soon_threadsafe(on_loop, context=context)

    return beat


# --- activities ---------------------------------------------------------------------------------


class SandboxActivities:
    """The manager as Temporal activities; register ``all()`` on a worker that can reach Docker.

    ``sandbox.exec`` heartbeats while the command runs: give it a heartbeat timeout (e.g. 10 s) so a
    dead worker is noticed, and a start-to-close timeout above the command timeout.
    """

    def __init__(self, manager: SandboxManager) -> None:
        self._manager = manager

    @activity.defn(name="sandbox.exec")
    async def exec(self, request: ExecRequest) -> ExecResult:
        return await self._manager.aexec(request)

    @activity.defn(name="sandbox.write_file")
    async def write_file(self, request: WriteFileRequest) -> str:
        return await asyncio.to_thread(
            self._manager.write_file, request.conversation_id, request.path, request.content, request.mode
        )

    @activity.defn(name="sandbox.read_file")
    async def read_file(self, request: ReadFileRequest) -> FileContent:
        return await asyncio.to_thread(
            self._manager.read_file, request.conversation_id, request.path, request.max_bytes
        )

    @activity.defn(name="sandbox.reap_idle")
    async def reap_idle(self, max_idle_s: float) -> list[str]:
        return await asyncio.to_thread(self._manager.reap_idle, max_idle_s)

    @activity.defn(name="sandbox.remove")
    async def remove(self, request: RemoveRequest) -> list[str]:
        return await asyncio.to_thread(self._manager.remove, request.conversation_id, request.volumes)

    def all(self) -> list[Callable[..., Any]]:
        return [self.exec, self.write_file, self.read_file, self.reap_idle, self.remove]
