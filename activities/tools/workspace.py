"""Tools that run inside the conversation's sandbox: shell, files, code, git, network checks.

Each one is a command (argv where possible, so arguments are never re-parsed by a shell) or a tar
transfer through the Docker API. Every value a tool passes to a program is an operand
(``operands.py``): paths become absolute ``/workspace/…`` paths (no parser reads them as options)
and go after ``--``; numbers are bounded integers; URLs are checked http(s) URLs. Budgets come
from ``ToolContext`` (the call's ``timeout_s`` within the spec's maximum), output caps and
artifacts are the sandbox's and the runner's business.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from activities.sandbox import SandboxManager
from activities.tools.context import ToolContext
from activities.tools.languages import language_of
from activities.tools.operands import InvalidArguments, bounded_int, http_url, workspace_operand
from models.sandbox import ExecRequest, ExecResult, SandboxLimits
from models.tools import ToolCallInput, ToolResult

GIT_IDENTITY = ["-c", "user.name=Daemonflow agent", "-c", "user.email=agent@daemonflow.invalid"]
SYSTEM_INFO = "uname -srm; . /etc/os-release && echo \"$PRETTY_NAME\"; python3 --version; df -h /workspace; \
head -3 /proc/meminfo"
RUN_TESTS = 'if python3 -c "import pytest" 2>/dev/null; then exec python3 -m pytest -q -- "$1"; \
else exec python3 -m unittest discover -v -s "$1"; fi'
"""``$1`` is an absolute path under /workspace, after ``--`` for pytest: never an option."""
GIT_COMMIT = '(git rev-parse --git-dir >/dev/null 2>&1 || git init -q) && git add -A && \
git "$@" commit --message="$0"'
"""``$0`` is the message: glued to ``--message=`` it can only be the message, whatever it starts with."""
MAX_CODE_BYTES = 120_000
"""``python3 -c`` takes the program as one argv string; Linux refuses a single one over 128 KiB."""
MAX_DIFF_CHARS = 4_000_000
"""What ``review_diff`` keeps of a huge diff (the reviewer's context holds far less anyway)."""
QUIET_SHARE = 4
"""A long command may be silent for a quarter of its budget (at least the sandbox's no-output
timeout) before it is taken for hung: a one-hour migration may think for minutes."""
CHECK_URL = """
import sys, time, urllib.error, urllib.request
url = sys.argv[1]
opener = urllib.request.OpenerDirector()  # http(s) and redirects between them only: no file:, no ftp:
for handler in (urllib.request.HTTPHandler, urllib.request.HTTPSHandler, urllib.request.HTTPRedirectHandler,
                urllib.request.HTTPDefaultErrorHandler, urllib.request.HTTPErrorProcessor, urllib.request.UnknownHandler):
    opener.add_handler(handler())

def attempt(method):
    started = time.monotonic()
    request = urllib.request.Request(url, method=method, headers={"User-Agent": "daemonflow-check_url/1"})
    try:
        with opener.open(request, timeout=20) as response:
            status, reason, final = response.status, response.reason, response.geturl()
    except urllib.error.HTTPError as err:
        status, reason, final = err.code, err.reason, url  # a 3xx here is a redirect not followed
    return status, reason, final, (time.monotonic() - started) * 1000

try:
    method = "HEAD"
    status, reason, final, ms = attempt(method)
    if status in (405, 501):
        print(f"HEAD {url} -> {status} {reason}: the server refuses HEAD; trying GET")
        method = "GET"
        status, reason, final, ms = attempt(method)
except Exception as err:
    print(f"unreachable: {url}: {err}")
    sys.exit(1)
moved = f" (after redirects: {final})" if final != url else ""
print(f"{method} {url} -> {status} {reason} in {ms:.0f} ms{moved}")
sys.exit(0 if status < 300 else 1)
"""


def tools(sandbox: SandboxManager) -> dict:
    async def run(call: ToolCallInput, context: ToolContext, argv: list[str] | None = None,
                  command: str | None = None, network: bool = False) -> ToolResult:
        request = ExecRequest(
            conversation_id=call.conversation_id, argv=argv, command=command, network=network,
            timeout_s=context.timeout_s, no_output_timeout_s=quiet_timeout(sandbox.limits, context.timeout_s),
        )
        return _result(await sandbox.aexec(request, on_start=context.on_start), request, sandbox.limits)

    async def run_command(call: ToolCallInput, context: ToolContext) -> ToolResult:
        return await run(call, context, command=call.arguments["command"])

    async def system_info(call: ToolCallInput, context: ToolContext) -> ToolResult:
        return await run(call, context, command=SYSTEM_INFO)

    async def read_file(call: ToolCallInput, context: ToolContext) -> ToolResult:
        path = workspace_operand(call.arguments.get("path"))
        offset = bounded_int(call.arguments, "offset", 0, 0, 10_000_000_000)
        max_bytes = bounded_int(call.arguments, "max_bytes", 1_000_000, 1, 10_000_000)
        file = await asyncio.to_thread(sandbox.read_file, call.conversation_id, path, max_bytes, 0, offset)
        read = len(file.content.encode())
        note = (f"\n[bytes {file.offset}-{file.offset + read} of {file.size}; read on with offset="
                f"{file.offset + read}]" if file.truncated else "")
        return ToolResult(success=True, output=file.content + note)

    async def write_file(call: ToolCallInput, context: ToolContext) -> ToolResult:
        content = call.arguments["content"]
        path = workspace_operand(call.arguments.get("path"))
        path = await asyncio.to_thread(sandbox.write_file, call.conversation_id, path, content)
        return ToolResult(success=True, output=f"wrote {len(content.encode())} bytes to {path}")

    async def list_directory(call: ToolCallInput, context: ToolContext) -> ToolResult:
        return await run(call, context, argv=["ls", "-la", "--", workspace_operand(call.arguments.get("path", "."))])

    async def run_python(call: ToolCallInput, context: ToolContext) -> ToolResult:
        code = call.arguments["code"]
        if len(code.encode()) > MAX_CODE_BYTES:
            raise InvalidArguments(f"code is {len(code.encode())} bytes; run_python takes at most {MAX_CODE_BYTES}: "
                                   "write the program to a file with write_file and run it with run_command")
        return await run(call, context, argv=["python3", "-c", code])

    async def run_tests(call: ToolCallInput, context: ToolContext) -> ToolResult:
        path = workspace_operand(call.arguments.get("path", "."))
        return await run(call, context, argv=["sh", "-c", RUN_TESTS, "run_tests", path])

    async def git_status(call: ToolCallInput, context: ToolContext) -> ToolResult:
        return await run(call, context, argv=["git", "status", "--short", "--branch"])

    async def git_diff(call: ToolCallInput, context: ToolContext) -> ToolResult:
        return await run(call, context, argv=diff_argv(call.arguments))

    async def git_log(call: ToolCallInput, context: ToolContext) -> ToolResult:
        limit = bounded_int(call.arguments, "limit", 20, 1, 200)
        return await run(call, context, argv=["git", "log", "--oneline", f"--max-count={limit}", "--"])

    async def git_commit(call: ToolCallInput, context: ToolContext) -> ToolResult:
        message = call.arguments["message"]
        return await run(call, context, argv=["sh", "-c", GIT_COMMIT, message, *GIT_IDENTITY])

    async def check_url(call: ToolCallInput, context: ToolContext) -> ToolResult:
        url = http_url(call.arguments.get("url"))
        return await run(call, context, argv=["python3", "-c", CHECK_URL, url], network=True)

    async def generate_code(call: ToolCallInput, context: ToolContext) -> ToolResult:
        """The second half of ``generate_code``: the child workflow passes the generated code as
        ``content`` (by reference); it is written like ``write_file`` and shown to the model."""
        written = await write_file(call, context)
        language = language_of(call.arguments.get("path", ""), call.arguments.get("language"))
        header = f"{written.output} (generated {language}):\n"
        return ToolResult(success=True, output=header + call.arguments["content"])

    return {
        f.__name__: f
        for f in (run_command, system_info, read_file, write_file, list_directory, run_python, run_tests,
                  git_status, git_diff, git_log, git_commit, check_url, generate_code)
    }


async def full_diff(sandbox: SandboxManager, conversation_id: str, staged: bool, timeout_s: float) -> str:
    """The workspace's whole diff for ``review_diff`` (read back from the artifact when the sandbox
    capped it), at most ``MAX_DIFF_CHARS``; an error (no repository…) is raised for the model."""
    request = ExecRequest(conversation_id=conversation_id, argv=diff_argv({"staged": staged}), timeout_s=timeout_s)
    result = await sandbox.aexec(request)
    if not result.ok:
        raise InvalidArguments(f"git diff failed (exit {result.exit_code}): {result.output[-2000:]}")
    if result.truncated and result.artifact_path:
        data = await asyncio.to_thread(_read_head, Path(result.artifact_path), MAX_DIFF_CHARS * 4)
        return data.decode("utf-8", errors="replace")[:MAX_DIFF_CHARS]
    return result.output


def diff_argv(arguments: dict) -> list[str]:
    """``git diff`` without external diff programs or text conversion filters (which a workspace's
    git configuration could point at any program)."""
    staged = ["--staged"] if arguments.get("staged") is True else []
    return ["git", "diff", "--no-ext-diff", "--no-textconv", *staged, "--"]


def quiet_timeout(limits: SandboxLimits, timeout_s: float) -> float:
    """How long the command may print nothing: the sandbox's default, or a quarter of a long budget;
    never before the budget itself runs out (a command that is killed at its deadline is reported as
    timed out, not as silent)."""
    quiet = max(limits.no_output_timeout_s, timeout_s / QUIET_SHARE)
    return quiet if quiet < timeout_s else timeout_s + limits.no_output_timeout_s


def _read_head(path: Path, size: int) -> bytes:
    with path.open("rb") as file:
        return file.read(size)


KILLED = {
    "timeout": "timed out: killed after {timeout:g} s (ask for more with timeout_s, up to the tool's maximum)",
    "no_output": "killed: it printed nothing for {quiet:g} s (it looked hung)",
    "oom": "killed: out of memory (the sandbox has {memory})",
    "output_limit": "killed: it printed more than the sandbox keeps",
    "pids_limit": "killed: it kept the sandbox's process table full ({pids} processes) for {pids_full:g} s (a fork bomb?)",
    "cancelled": "cancelled before it finished",
}


def _result(result: ExecResult, request: ExecRequest, limits: SandboxLimits) -> ToolResult:
    error = None
    if result.killed_reason:
        error = KILLED.get(result.killed_reason, result.killed_reason).format(
            timeout=request.timeout_s or limits.command_timeout_s,
            quiet=request.no_output_timeout_s or limits.no_output_timeout_s, memory=limits.memory,
            pids=limits.pids, pids_full=limits.pids_full_s)
        error += "; it was not run again"
    return ToolResult(
        success=result.exit_code == 0 and not result.timed_out,
        output=result.output,
        exit_code=result.exit_code,
        error=error,
        duration_ms=result.duration_ms,
        truncated=result.truncated,
        artifact_id=result.artifact_id,
    )
