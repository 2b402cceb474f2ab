"""How long each kind of activity may take and how it is retried: one typed config per kind.

Workflows call activities by reference (``workflow.execute_activity_method(Class.method, …)``)
and splat one of these ``workflow.ActivityConfig`` typed dicts into the call, so a timeout or a
retry policy is written once per kind and a misspelt option is a type error, not a silent no-op.
The values are what recorded histories were made with; changing one changes new commands only
(timeouts and retry policies are not compared on replay).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models.tools import ToolSpec

STORE_CALL = workflow.ActivityConfig(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=500), maximum_interval=timedelta(seconds=10)),
)
"""Transcript and audit writes: small, idempotent (keyed on sequence numbers and call ids)."""

STORE_LOCAL = workflow.LocalActivityConfig(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=500), maximum_interval=timedelta(seconds=10)),
)
"""The channel's small store writes (a message, an agent's turn text, the records), run as local
activities inside the workflow task: each one saved is a workflow task saved, and a workflow task
costs the most of a post (measured in bench/README.md). Idempotent like ``STORE_CALL``'s."""

MODEL_CALL = workflow.ActivityConfig(
    start_to_close_timeout=timedelta(minutes=15),
    heartbeat_timeout=timedelta(seconds=10),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_attempts=3),
)
"""``llm.chat``: heartbeats every 2 s while it streams, so a dead worker is noticed in 10 s; three
attempts, then the conversation's own durable back-off takes over (``status.last_error``)."""

MODEL_LOCAL = workflow.LocalActivityConfig(
    start_to_close_timeout=MODEL_CALL["start_to_close_timeout"], retry_policy=MODEL_CALL["retry_policy"]
)
"""``MODEL_CALL`` as a local activity: a quick model's step run inside the conversation's workflow
task (``workflows/model_step.py``). No heartbeat timeout: a local activity has none; a worker that
dies takes the workflow task with it, and the next worker runs the step again."""

MEMORY_CALL = workflow.ActivityConfig(
    start_to_close_timeout=timedelta(minutes=5),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3),
)
"""Recall before a turn and extraction after it: memory trouble never stops a turn."""

SIMILARITY_CALL = workflow.ActivityConfig(
    start_to_close_timeout=timedelta(minutes=2),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                             maximum_interval=timedelta(seconds=10), maximum_attempts=5),
)
"""``relevance.similarities`` for a channel's message: while Ollama is unreachable it fails its
first attempts (``fallback_after_attempts``, 3) and then answers by keywords, so five attempts
always reach an answer; a post is never lost to an embedding outage."""

SIMILARITY_LOCAL = workflow.LocalActivityConfig(
    start_to_close_timeout=timedelta(minutes=2),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                             maximum_interval=timedelta(seconds=10), maximum_attempts=5),
)
"""``SIMILARITY_CALL`` as a local activity, for a channel whose worker serves the llm role itself
(no split queues): one workflow task less per scored message."""

MONITORING_STEP = workflow.ActivityConfig(
    start_to_close_timeout=timedelta(seconds=60),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10), maximum_attempts=3
    ),
)
"""Each step of a monitoring round (probe, gather, record)."""

CLEANUP_STEP = workflow.ActivityConfig(
    start_to_close_timeout=timedelta(minutes=5),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30), maximum_attempts=3
    ),
)
"""Each step of a cache cleanup (index, plan, delete, reap)."""

ANALYTICS_STEP = CLEANUP_STEP
"""Each step of a pattern analysis or an optimisation review (store reads and writes, idempotent):
bounded like a cleanup step."""

MEMORY_ADMIN_CALL = workflow.ActivityConfig(
    start_to_close_timeout=timedelta(minutes=2),
    retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=["MemoryUnavailable"]),
)
"""An operator's ``daemonflow memory`` request run on the worker that holds the store."""


def memory_tool_call(spec: ToolSpec, task_queue: str | None) -> workflow.ActivityConfig:
    """The model's own memory tools (``memory.tool``): the tool's timeout and attempts; invalid
    arguments are the model's to fix, never retried."""
    return workflow.ActivityConfig(
        task_queue=task_queue,
        start_to_close_timeout=timedelta(seconds=spec.timeout_s),
        retry_policy=RetryPolicy(maximum_attempts=spec.max_attempts, non_retryable_error_types=["InvalidArguments"]),
    )
