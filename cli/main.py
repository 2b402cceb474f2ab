"""The ``daemonflow`` command: argument parsing and dispatch only.

Each subcommand lives in a small module and is imported when used, so ``daemonflow status`` does
not pay for loading the worker's activities. Errors the user can fix are ``CliError``s, printed as
one clear message (exit code 1, or 2 for bad usage) instead of a traceback; so are the control
client's domain errors (unknown or ended conversation, a refused decision, no worker…).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from pydantic import ValidationError

from cli import agents, channel, memory, message, monitoring_args, payload, plan, policy, streaming
from cli.common import EXIT_ERROR, EXIT_USAGE, CliError
from config.settings import Settings
from control.errors import ControlError
from workers.process_exit import exit_without_finalization


def limit(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 200:
        raise argparse.ArgumentTypeError("must be between 1 and 200")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="daemonflow",
        description="Durable AI agents on Temporal, for local Ollama models.",
        epilog="Settings come from DAEMONFLOW_* environment variables (and OLLAMA_HOST); see the README.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("dev", help="run Temporal, the worker and checks on this machine (Ctrl-C stops)")
    api = sub.add_parser("api", help="serve the HTTP API and the admin page (/ui) on DAEMONFLOW_API_HOST:PORT")
    api.add_argument("--host", help="listen address (default DAEMONFLOW_API_HOST, 127.0.0.1)")
    api.add_argument("--port", type=int, help="listen port (default DAEMONFLOW_API_PORT, 8000)")
    api.add_argument("--new-key", metavar="NAME:ROLE",
                     help="print a fresh DAEMONFLOW_API_KEYS entry (and its hashed form) and exit")
    worker = sub.add_parser("worker", help="run a worker on the configured Temporal server and task queue")
    worker.add_argument(
        "--queues",
        metavar="LIST",
        help="comma-separated roles or queue names this worker serves: main (workflows, store), "
        "llm (model and memory), sandbox (tools; also this host's queue); default: all",
    )
    worker.add_argument("--processes", type=int, metavar="N",
                        help="processes of this worker: the first does everything, the others take workflow "
                        "tasks and their local steps (default DAEMONFLOW_WORKER_PROCESSES, 1; one per core at most)")

    chat = sub.add_parser("chat", help="talk to an agent (a new conversation, or --conversation ID)")
    chat.add_argument("--agent", help="agent template for a new conversation (default: assistant)")
    chat.add_argument("--conversation", metavar="ID", help="continue this conversation instead")
    chat.add_argument("--model", help="Ollama model for a new conversation (overrides the template)")
    chat.add_argument("--user", help="user id recorded with a new conversation")
    chat.add_argument("--no-stream", action="store_true", help="print each reply once stored, not as it is written")
    chat.add_argument("--double-texting", choices=["enqueue", "reject", "interrupt"], default=None,
                      help="for a new conversation: what a message sent while a turn runs does (default enqueue)")

    def conversation_command(name: str, help: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help)
        command.add_argument("conversation", metavar="CONVERSATION", help="conversation id or workflow id")
        return command

    status = conversation_command("status", "show a conversation's state")
    status.add_argument("--json", action="store_true", help="print the raw status as JSON")
    conversation_command("pause", "pause a conversation between steps").add_argument("--reason", default="")
    conversation_command("resume", "resume a paused conversation")
    inject = conversation_command("inject", "add a message without waiting for an answer")
    inject.add_argument("text", metavar="TEXT")
    inject.add_argument("--role", choices=["user", "system"], default="user")
    inject.add_argument(
        "--priority",
        choices=["next", "queue"],
        default="next",
        help="next: seen by the model's next step; queue: answered as a turn of its own",
    )
    conversation_command("end", "end a conversation for good").add_argument("--reason", default="")
    approve = conversation_command("approve", "approve a tool call waiting for a person")
    approve.add_argument("call", metavar="CALL_ID", help="the tool call id shown by `daemonflow status`")
    approve.add_argument("--always", action="store_true", help="also allow this exact call for the rest of the conversation")
    approve.add_argument("--edit", metavar="JSON", help="run these arguments instead (judged again by the policy)")
    approve.add_argument("--reason", default=None)
    approve.add_argument("--approver", default=None, help="who decides (default: $USER)")
    deny = conversation_command("deny", "deny a tool call waiting for a person")
    deny.add_argument("call", metavar="CALL_ID")
    deny.add_argument("--reason", default=None, help="told to the model")
    deny.add_argument("--approver", default=None, help="who decides (default: $USER)")
    sandbox = sub.add_parser("sandbox", help="manage the sandbox image")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", required=True, metavar="ACTION")
    build = sandbox_sub.add_parser("build", help="build the sandbox image (DAEMONFLOW_SANDBOX_IMAGE)")
    build.add_argument("--offline", action="store_true",
                       help="no registry needed: debootstrap a minimal Debian and `docker import` it (root)")
    build.add_argument("--force", action="store_true", help="with --offline: rebuild even if the image exists")
    history = conversation_command("history", "show a conversation's recent messages")
    history.add_argument("--limit", type=limit, default=20, metavar="N", help="1-200 (default 20)")
    history.add_argument("--json", action="store_true", help="print the messages as JSON")
    monitoring_args.add_parsers(sub)
    memory.add_parser(sub)
    payload.add_parser(sub)
    policy.add_parser(sub)
    channel.add_parser(sub)
    streaming.add_parser(sub)  # issue 16: double-texting
    message.add_parsers(sub)
    agents.add_parser(sub)  # per-agent control and archives (issue 14)
    plan.add_parser(sub)  # task plans (issue 15)
    return parser


def _async(name: str) -> Callable[[argparse.Namespace, Settings], int]:
    """A one-shot command from ``cli.control``, run on its own event loop."""

    def run(args: argparse.Namespace, settings: Settings) -> int:
        from cli import control

        return asyncio.run(getattr(control, name)(args, settings))

    return run


def _dev(args: argparse.Namespace, settings: Settings) -> int:
    from workers import dev

    return dev.main(settings)


def _api(args: argparse.Namespace, settings: Settings) -> int:
    from cli.api import run

    return run(args, settings)


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from workers.logs import configure_logging
    from workers.main import run_worker
    from workers.queues import QueueError, parse_roles
    from workers.worker_group import GroupError

    try:
        roles = parse_roles(args.queues, settings)
    except QueueError as err:
        raise CliError(str(err), code=EXIT_USAGE) from err
    configure_logging(settings)
    try:
        asyncio.run(run_worker(settings, roles=roles, processes=args.processes))
    except GroupError as err:  # checked before anything starts
        raise CliError(str(err), code=EXIT_USAGE) from err
    except RuntimeError as err:  # connecting or registering search attributes failed
        raise CliError(f"{err}\n  (Temporal at {settings.temporal_address}; `daemonflow dev` runs one locally)") from err
    return 0


def _sandbox(args: argparse.Namespace, settings: Settings) -> int:
    from cli.sandbox import build

    return build(args, settings)


def _chat(args: argparse.Namespace, settings: Settings) -> int:
    from cli.chat import run_chat

    return run_chat(args, settings)


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "dev": _dev,
    "api": _api,
    "worker": _worker,
    "chat": _chat,
    "sandbox": _sandbox,
    "memory": memory.run,
    "payload": payload.run,
    "policy": policy.run,
    "channel": channel.run,
    "double-texting": streaming.run,
    "message": message.run,
    "collaboration": message.run_collaboration,
    "agents": agents.run,
    "plan": plan.run,  # task plans (issue 15)
    **monitoring_args.COMMANDS,
    **{name: _async(name) for name in ("status", "pause", "resume", "inject", "end", "history", "approve", "deny")},
}


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the command, return its exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as err:
        print(f"daemonflow: invalid settings (check the DAEMONFLOW_* variables):\n{err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args, settings)
    except CliError as err:
        print(f"daemonflow {args.command}: {err}", file=sys.stderr)
        return err.code
    except ControlError as err:  # the conversation said no, or nothing answered: the message says which
        print(f"daemonflow {args.command}: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The console entry point: run, then leave without interpreter finalization
    (``workers/process_exit.py``: temporalio's threads can abort it with exit code 134)."""
    exit_without_finalization(run(argv))


if __name__ == "__main__":
    main()
