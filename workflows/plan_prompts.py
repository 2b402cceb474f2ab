"""What a plan's task asks its agent, pure: the task, its tool call if it is one, and what its
dependencies answered (bounded previews: a dependent reads the start of each result, and where
the whole reply is stored). Runs in ``TaskPlanWorkflow``; the text crosses history once per
attempt, so it is bounded: ``MAX_PROMPT_CHARS`` for the task, ``RESULT_PREVIEW_CHARS`` per
dependency, at most ``DEPENDENCIES_SHOWN`` of them."""

from __future__ import annotations

import json
from collections.abc import Sequence

from models.plan import TaskSpec, TaskStatus, task_conversation_id

DEPENDENCIES_SHOWN = 20


def task_prompt(plan_id: str, plan_title: str, task: TaskSpec, done: Sequence[TaskStatus]) -> str:
    """``done``: the task's dependencies (all succeeded), in its ``depends_on`` order."""
    lines = [f"[plan {plan_id}{f' — {plan_title}' if plan_title else ''}] task {task.id}: {task.label}"]
    if task.prompt.strip():
        lines += ["", task.prompt.strip()]
    if task.tool is not None:
        arguments = json.dumps(task.tool.arguments, ensure_ascii=False, sort_keys=True)
        lines += ["", f"Call the tool `{task.tool.name}` exactly once, with exactly these arguments: {arguments}",
                  "Call no other tool first. Then answer with what it returned (or why it did not run)."]  # fmt: skip
    if done:
        lines += ["", "Results of the tasks this one depends on:"]
        for dep in done[:DEPENDENCIES_SHOWN]:
            cut = " …" if dep.result_chars > len(dep.result) else ""
            where = f" (whole reply: conversation {task_conversation_id(plan_id, dep.spec.id)}, message {dep.reply_seq})"
            lines.append(f"- {dep.spec.id} ({dep.spec.label}): {dep.result}{cut}{where if cut else ''}")
        if len(done) > DEPENDENCIES_SHOWN:
            lines.append(f"- … and {len(done) - DEPENDENCIES_SHOWN} more, all succeeded")
    return "\n".join(lines)
