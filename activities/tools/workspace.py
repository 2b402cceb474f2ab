"""Tools that run inside the conversation's sandbox: shell, files, code, git, network checks.

Each one is a command (argv where possible, so arguments are never re-parsed by a shell) or a tar
transfer through the Docker API. Budgets, output caps and artifacts are the sandbox's business.
"""

from __future__ import annotations

import asyncio
import shlex

from activities.sandbox import SandboxManager
from models.sandbox import ExecRequest, ExecResult
from models.tools import ToolCallInput, ToolResult

GIT_IDENTITY = ["-c", "user.name=Daemonflow agent", "-c", "user.email=agent@daemonflow.invalid"]
SYSTEM_INFO = "uname -srm; . /etc/os-release && echo \"$PRETTY_NAME\"; python3 --version; df -h /workspace; \
head -3 /proc/meminfo"
RUN_TESTS = 'if python3 -c "import pytest" 2>/dev/null; then python3 -m pytest -q "$1"; \
else python3 -m unittest discover -v -s "$1"; fi'
CHECK_URL = """
import sys, time, urllib.request
url = sys.argv[1]
started = time.monotonic()
try:
    with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=20) as response:
        print(f"{response.status} {response.reason} in {(time.monotonic() - started) * 1000:.0f} ms")
except Exception as err:
    print(f"unreachable: {err}")
    sys.exit(1)
"""


def tools(sandbox: SandboxManager) -> dict:
    async def run(call: ToolCallInput, argv: list[str] | None = None, command: str | None = None,
                  network: bool = False) -> ToolResult:
        request = ExecRequest(
            conversation_id=call.conversation_id, argv=argv, command=command, network=network,
            timeout_s=call.arguments.get("timeout_s"),
        )
        return _result(await sandbox.aexec(request))

    async def run_command(call: ToolCallInput) -> ToolResult:
        return await run(call, command=call.arguments["command"])

    async def system_info(call: ToolCallInput) -> ToolResult:
        return await run(call, command=SYSTEM_INFO)

    async def read_file(call: ToolCallInput) -> ToolResult:
        file = await asyncio.to_thread(
            sandbox.read_file, call.conversation_id, call.arguments["path"], call.arguments.get("max_bytes", 1_000_000)
        )
        note = f"\n[showing the first part of {file.size} bytes]" if file.truncated else ""
        return ToolResult(success=True, output=file.content + note, truncated=file.truncated)

    async def write_file(call: ToolCallInput) -> ToolResult:
        content = call.arguments["content"]
        path = await asyncio.to_thread(sandbox.write_file, call.conversation_id, call.arguments["path"], content)
        return ToolResult(success=True, output=f"wrote {len(content.encode())} bytes to {path}")

    async def list_directory(call: ToolCallInput) -> ToolResult:
        return await run(call, argv=["ls", "-la", "--", call.arguments.get("path", ".")])

    async def run_python(call: ToolCallInput) -> ToolResult:
        return await run(call, argv=["python3", "-c", call.arguments["code"]])

    async def run_tests(call: ToolCallInput) -> ToolResult:
        return await run(call, argv=["sh", "-c", RUN_TESTS, "run_tests", call.arguments.get("path", ".")])

    async def git_status(call: ToolCallInput) -> ToolResult:
        return await run(call, argv=["git", "status", "--short", "--branch"])

    async def git_diff(call: ToolCallInput) -> ToolResult:
        return await run(call, argv=["git", "diff", *(["--staged"] if call.arguments.get("staged") else [])])

    async def git_log(call: ToolCallInput) -> ToolResult:
        return await run(call, argv=["git", "log", "--oneline", f"-{call.arguments.get('limit', 20)}"])

    async def git_commit(call: ToolCallInput) -> ToolResult:
        message = shlex.quote(call.arguments["message"])
        identity = " ".join(shlex.quote(part) for part in GIT_IDENTITY)
        script = f"(git rev-parse --git-dir >/dev/null 2>&1 || git init -q) && git add -A && git {identity} commit -m {message}"
        return await run(call, command=script)

    async def check_url(call: ToolCallInput) -> ToolResult:
        return await run(call, argv=["python3", "-c", CHECK_URL, call.arguments["url"]], network=True)

    return {
        f.__name__: f
        for f in (run_command, system_info, read_file, write_file, list_directory, run_python, run_tests,
                  git_status, git_diff, git_log, git_commit, check_url)
    }


def _result(result: ExecResult) -> ToolResult:
    return ToolResult(
        success=result.exit_code == 0 and not result.timed_out,
        output=result.output,
        exit_code=result.exit_code,
        error=result.killed_reason,
        duration_ms=result.duration_ms,
        truncated=result.truncated,
        artifact_id=result.artifact_id,
    )
