"""Which task queues a worker polls: roles, their queue names, and the sandbox host queue.

Three roles, each a set of activities (``workers/main.py``):

- ``main``: the workflows and the store-side activities (transcript, audit) — ``DAEMONFLOW_TASK_QUEUE``;
- ``llm``: ``llm.chat``, memory, relevance and the AI tools, beside the model servers —
  ``DAEMONFLOW_LLM_TASK_QUEUE`` (empty: main);
- ``sandbox``: ``tools.run``, on Docker hosts — ``DAEMONFLOW_SANDBOX_TASK_QUEUE`` (empty: main).

Roles whose queues have the same name share one ``Worker`` (two workers of one process on one
queue would each receive tasks the other registered). A worker that runs sandboxes also polls
its *host queue*, which no other host polls: ``tools.run`` returns it, and the conversation sends
its later calls there, to the Docker engine holding its workspace volume.
"""

from __future__ import annotations

import socket

from config.settings import Settings

ROLES = ("main", "llm", "sandbox")


class QueueError(ValueError):
    """A ``--queues`` value that names neither a role nor a configured queue."""


def queue_of(role: str, settings: Settings) -> str:
    if role == "llm":
        return settings.llm_task_queue or settings.task_queue
    if role == "sandbox":
        return settings.sandbox_task_queue or settings.task_queue
    return settings.task_queue


def host_queue(settings: Settings) -> str:
    """``daemonflow-sandbox-<host>`` by default; unique per Docker host, stable across restarts."""
    if settings.sandbox_host_queue:
        return settings.sandbox_host_queue
    base = settings.sandbox_task_queue or f"{settings.task_queue}-sandbox"
    return f"{base}-{settings.sandbox_host or socket.gethostname()}"


def parse_roles(text: str | None, settings: Settings) -> tuple[str, ...]:
    """``main,llm`` or queue names (``daemonflow-llm``) or ``all`` → roles, in ``ROLES`` order."""
    if not text or not text.strip():
        return ROLES
    wanted: set[str] = set()
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if item == "all":
            wanted.update(ROLES)
        elif item in ROLES:
            wanted.add(item)
        else:
            matches = {role for role in ROLES if queue_of(role, settings) == item}
            if not matches:
                known = ", ".join(f"{role}={queue_of(role, settings)}" for role in ROLES)
                raise QueueError(f"unknown queue {item!r}: use a role or a configured queue name ({known})")
            wanted.update(matches)
    return tuple(role for role in ROLES if role in wanted)


def plan(settings: Settings, roles: tuple[str, ...], host: str | None = None) -> dict[str, list[str]]:
    """Queue name → the roles served on it (the host queue serves ``sandbox``)."""
    queues: dict[str, list[str]] = {}
    for role in roles:
        queues.setdefault(queue_of(role, settings), []).append(role)
    if host and "sandbox" in roles:
        queues.setdefault(host, [])
        if "sandbox" not in queues[host]:
            queues[host].append("sandbox")
    return queues
