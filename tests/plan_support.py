"""What the plan tests share: a fake model that answers as each task of a plan (the task id is in
the prompt the plan writes: ``[plan P] task T: …``), scripted per task, recording the order the
tasks were asked in; and the plan client on a test's worker."""

from __future__ import annotations

import re
import threading
import uuid
from typing import Any

from control.plans import Plans
from models.plan import PlanInput, TaskSpec
from tests.fakes.ollama import FakeOllama, Reply

TASK_MARK = re.compile(r"\] task ([A-Za-z0-9_.-]+):")


def last_user(body: dict[str, Any]) -> str:
    return next((m.get("content") or "" for m in reversed(body.get("messages") or []) if m.get("role") == "user"), "")


def last_tool(body: dict[str, Any]) -> str:
    return next((m.get("content") or "" for m in reversed(body.get("messages") or []) if m.get("role") == "tool"), "")


class TaskModel:
    """The fake's responder: task ``T`` answers ``"result of T"`` after ``delay_s``, unless
    ``script(T, …)`` queued other replies for it."""

    def __init__(self, fake: FakeOllama, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.asked: list[str] = []
        self.prompts: dict[str, list[str]] = {}
        self._scripts: dict[str, list[Reply]] = {}
        self._held: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        fake.responder = self

    def hold(self, task_id: str) -> threading.Event:
        """Task ``task_id``'s answers wait until the returned event is set (at most a minute)."""
        with self._lock:
            return self._held.setdefault(task_id, threading.Event())

    def script(self, task_id: str, *replies: Reply | str) -> None:
        with self._lock:
            self._scripts.setdefault(task_id, []).extend(Reply(content=r) if isinstance(r, str) else r for r in replies)

    def __call__(self, body: dict[str, Any]) -> Reply:
        text = last_user(body)
        found = TASK_MARK.search(text)
        task_id = found.group(1) if found else None
        if task_id is None:  # not a plan's task: the conversation that asked for the plan
            return Reply(content="done: " + last_tool(body)[:2_000])
        with self._lock:
            self.asked.append(task_id)
            self.prompts.setdefault(task_id, []).append(text)
            queued = self._scripts.get(task_id)
            reply = queued.pop(0) if queued else Reply(content=f"result of {task_id}", delay_s=self.delay_s)
            held = self._held.get(task_id)
        if held is not None:
            held.wait(60)  # in the fake's own request thread: other calls go on
        return reply


def plan_id() -> str:
    return f"p{uuid.uuid4().hex[:8]}"


def task(task_id: str, *depends_on: str, **fields) -> TaskSpec:
    fields.setdefault("prompt", f"do {task_id}")
    return TaskSpec(id=task_id, depends_on=list(depends_on), **fields)


def plans_of(daemon) -> Plans:
    return Plans(daemon.client, daemon.task_queue)


def plan_input(*tasks: TaskSpec, title: str = "", **settings) -> PlanInput:
    return PlanInput(plan_id=plan_id(), title=title, tasks=list(tasks), settings=settings)
