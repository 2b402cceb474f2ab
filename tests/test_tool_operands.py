"""Tool arguments never reach a program's option parser: hostile values, the real sandbox.

Each tool that hands a model-supplied value to a program gets the values an attacker (or a
confused model) would try: a leading ``-``, a ``--option=…``, a non-http scheme, a path walking the
engine's URLs. Each is refused with a non-retryable ``InvalidArguments`` error the model reads, or
reaches the program as a plain operand; and the workspace (``.git``, ``src``) is untouched.
The run_tests cases use a real pytest, copied into the workspace (the sandbox image has none), so
the original bug — ``path="--basetemp=."`` read as a pytest option, which empties the folder — is
tried against the program that had it.
"""

from __future__ import annotations

import http.server
import io
import tarfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import _pytest
import iniconfig
import packaging
import pluggy
import pygments
from activities.sandbox import SandboxManager, container_name
from activities.tools.catalog import BY_NAME
from activities.tools.runner import ToolActivities
from config.settings import Settings
from models.tools import ToolCallInput, ToolResult
from store.actions import ActionStore
from store.engine import make_engine
from store.payloads import PayloadStore

PYTEST_PACKAGES = [Path(m.__file__).parent for m in (_pytest, pluggy, iniconfig, packaging, pygments)]
PYTEST_PACKAGES.append(Path(_pytest.__file__).parent.parent / "pytest")
PYTEST_PACKAGES.append(Path(_pytest.__file__).parent.parent / "py.py")


class Workspace:
    def __init__(self, tools: ToolActivities, sandbox: SandboxManager, conversation_id: str) -> None:
        self.tools, self.sandbox, self.conversation_id = tools, sandbox, conversation_id

    async def call(self, name: str, **arguments) -> ToolResult:
        request = ToolCallInput(conversation_id=self.conversation_id, tool_call_id=uuid.uuid4().hex, tool=name,
                                arguments=arguments)
        return await ActivityEnvironment().run(self.tools.run, BY_NAME[name], request)

    async def refused(self, name: str, **arguments) -> str:
        with pytest.raises(ApplicationError) as caught:
            await self.call(name, **arguments)
        assert caught.value.type == "InvalidArguments" and caught.value.non_retryable
        return caught.value.message

    def sh(self, command: str) -> str:
        container = self.sandbox.ensure(self.conversation_id)
        return container.exec_run(["sh", "-c", command], workdir="/workspace", user="1000:1000").output.decode()

    def intact(self) -> None:
        listing = self.sh("ls -a; cat src/app.py; git log --oneline | wc -l")
        assert ".git" in listing.split() and "src" in listing.split(), listing
        assert "print('app')" in listing


@pytest.fixture
def workspace(tmp_path, docker_client) -> Iterator[Workspace]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    sandbox = SandboxManager(docker_client, Settings(database_url="sqlite://", var_dir=tmp_path), tmp_path / "artifacts")
    tools = ToolActivities(sandbox, docker_client, ActionStore(engine), PayloadStore(engine))
    space = Workspace(tools, sandbox, f"ops{uuid.uuid4().hex[:10]}")
    sandbox.write_file(space.conversation_id, "src/app.py", "print('app')\n")
    sandbox.write_file(space.conversation_id, "tests/test_ok.py", "def test_ok():\n    assert 1 + 1 == 2\n")
    space.sh("git init -q && git add -A && git -c user.name=t -c user.email=t@t commit -qm init")
    yield space
    sandbox.remove(space.conversation_id, volumes=True)


def _vendor_pytest(space: Workspace) -> None:
    """A real pytest importable from /workspace (python3 puts the working directory on sys.path)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in PYTEST_PACKAGES:
            tar.add(path, arcname=path.name, filter=lambda info: None if "__pycache__" in info.name else _owned(info))
    container = space.sandbox.ensure(space.conversation_id)
    space.sandbox.client.api.put_archive(container.id, "/workspace", buffer.getvalue())


def _owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 1000
    return info


async def test_run_tests_never_reads_a_path_as_a_pytest_option(workspace: Workspace):
    _vendor_pytest(workspace)
    ok = await workspace.call("run_tests", path="tests")
    assert ok.success and "1 passed" in ok.output, ok.output
    for hostile in ("--basetemp=.", "--basetemp=/workspace", "-p", "-c/dev/null", "--rootdir=/"):
        message = await workspace.refused("run_tests", path=hostile)
        assert "starts with '-'" in message and "option" in message
        workspace.intact()
    plain = await workspace.call("run_tests", path="./--basetemp=.")
    assert not plain.success and "--basetemp=." in plain.output and "not found" in plain.output, plain.output
    workspace.intact()


async def test_file_tools_refuse_option_like_paths_and_take_dash_files_as_operands(workspace: Workspace):
    for tool, extra in (("list_directory", {}), ("read_file", {}), ("write_file", {"content": "x"})):
        for hostile in ("-R", "--help", "-"):
            assert "starts with '-'" in await workspace.refused(tool, path=hostile, **extra)
    assert (await workspace.call("write_file", path="./-R", content="dash\n")).success
    listed = await workspace.call("list_directory", path="./-R")
    assert listed.success and listed.output.strip().endswith("/workspace/-R")  # one file, not a recursive listing
    assert (await workspace.call("read_file", path="./-R")).output == "dash\n"
    assert "outside" in await workspace.refused("list_directory", path="../etc")
    workspace.intact()


async def test_git_tools_take_numbers_and_messages_only_as_values(workspace: Workspace):
    for hostile in ("5; rm -rf .", -5, 0, 201, True, "--all"):
        assert "must be an integer" in await workspace.refused("git_log", limit=hostile)
    assert len((await workspace.call("git_log", limit=1)).output.strip().splitlines()) == 1
    workspace.sh("echo more >> src/app.py")
    for message in ("--amend", "-m", "--no-verify --allow-empty", "--author=mallory <m@x>"):
        committed = await workspace.call("git_commit", message=message)
        assert committed.success, committed.output
        workspace.sh("echo more >> src/app.py")
    log = workspace.sh("git log --format=%s%x09%an")
    assert log.splitlines()[:4] == [f"{m}\tDaemonflow agent" for m in
                                    ("--author=mallory <m@x>", "--no-verify --allow-empty", "-m", "--amend")]
    assert log.splitlines()[4] == "init\tt"  # nothing amended: every message made a new commit
    diff = await workspace.call("git_diff", staged=False)
    assert diff.success and "+more" in diff.output
    workspace.intact()


async def test_run_python_refuses_a_program_too_long_for_one_argument(workspace: Workspace):
    message = await workspace.refused("run_python", code="x = 1\n" * 30_000)
    assert "write the program to a file" in message
    assert (await workspace.call("run_python", code="import sys; print(sys.argv)")).output.strip() == "['-c']"


class _Site(http.server.BaseHTTPRequestHandler):
    """/ok answers HEAD; /no-head refuses it (405) and answers GET; /to-file redirects to file:."""

    seen: list[tuple[str, str]] = []

    def log_message(self, *args) -> None:
        pass

    def _answer(self) -> None:
        self.seen.append((self.command, self.path))
        if self.path == "/no-head" and self.command == "HEAD":
            self.send_response(405)
        elif self.path == "/to-file":
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
        elif self.path in ("/ok", "/no-head"):
            self.send_response(200)
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET = _answer


@pytest.fixture
def site() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), _Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Site.seen = []
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


async def test_check_url_checks_http_urls_only_with_head_then_get(workspace: Workspace, site: int, docker_client):
    for hostile in ("-o/tmp/x", "--version", "file:///etc/passwd", "ftp://example.com/x", "http://",
                    "http://exa mple.com/", "gopher://x", "http://x:99999/"):
        await workspace.refused("check_url", url=hostile)
    workspace.sandbox.ensure(workspace.conversation_id, network=True)
    egress = docker_client.containers.get(container_name(workspace.conversation_id, network=True))
    gateway = egress.attrs["NetworkSettings"]["Networks"]["bridge"]["Gateway"]
    base = f"http://{gateway}:{site}"
    ok = await workspace.call("check_url", url=f"{base}/ok")
    assert ok.success and f"HEAD {base}/ok -> 200" in ok.output, ok.output
    fallback = await workspace.call("check_url", url=f"{base}/no-head")
    assert fallback.success and "refuses HEAD" in fallback.output and f"GET {base}/no-head -> 200" in fallback.output
    missing = await workspace.call("check_url", url=f"{base}/missing")
    assert not missing.success and "-> 404" in missing.output
    to_file = await workspace.call("check_url", url=f"{base}/to-file")
    assert not to_file.success and "root:" not in to_file.output, to_file.output
    assert _Site.seen == [("HEAD", "/ok"), ("HEAD", "/no-head"), ("GET", "/no-head"), ("HEAD", "/missing"),
                          ("HEAD", "/to-file")]


async def test_docker_tools_refuse_names_that_are_not_container_names(workspace: Workspace):
    for tool in ("docker_logs", "docker_restart"):
        for hostile in ("../../info", "-f", "a/b", "x?all=1", "", "name with space"):
            assert "not a container name" in await workspace.refused(tool, container=hostile)
    assert "no container named" in await workspace.refused("docker_logs", container=f"nope-{uuid.uuid4().hex}")
    for hostile in (0, 5001, "200"):
        assert "must be an integer" in await workspace.refused(
            "docker_logs", container=container_name(workspace.conversation_id), tail=hostile)
    logs = await workspace.call("docker_logs", container=container_name(workspace.conversation_id), tail=5)
    assert logs.success
