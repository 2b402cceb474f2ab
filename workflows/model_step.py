"""Where a conversation's model step (``llm.chat``) runs: an activity, or a local activity inside
the conversation's workflow task.

Why local: an activity costs a turn three history events, an activity task through matching and a
second workflow task, which the server schedules through its transfer queue. A local activity runs
on the worker that holds the workflow task, and the turn's reply goes back in that same task.
Measured with the instant fake model, 200 memories, SQLite, one dev server: sequential p50 25.0 →
18.8 ms (the bare update + activity floor: 12.9), and at 50 conversations at once the dev server's
CPU per turn 13.3 → 7.4 ms, the worker's 18.0 → 15.7, turns/s +21 % (``bench.interleaved``).

When (``local_step``): the worker serves the llm role itself (no llm queue of its own), nobody
watches the conversation's stream (a local step cannot publish tokens), the model answered the
conversation's previous step in under ``QUICK_MODEL_S``, and the run does not end after this turn.

- While a local step runs, the workflow task stays open: signals, updates and queries wait for its
  end (or for the SDK's workflow-task heartbeat, every 8 s with the default 10 s task timeout). A
  quick model keeps that wait under a second; a model that was slow once goes back to an ordinary
  activity for its next step.
- Not the run's last turn: a signal that arrives during a local step is history the open task has
  not seen, and the server refuses to let that task close the run (``UnhandledCommand``). The task
  fails, its replay takes the signal before the step, and the step runs again.

A worker that dies during a local step takes the workflow task with it: the next worker replays
and runs the step again, and ``llm.chat`` returns the reply an earlier attempt stored instead of
asking the model twice (it is keyed on the reply's seq).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, FailureError
from temporalio.workflow import ActivityCancellationType, ActivityHandle

with workflow.unsafe.imports_passed_through():
    from activities.llm import LlmActivities
    from models.llm import ChatRequest, ChatResult
    from workflows.activity_config import MODEL_CALL, MODEL_LOCAL

LOCAL_MODEL_STEP_PATCH = "local-model-steps"
"""Quick model steps run as local activities; histories recorded before it replay with activities."""
QUICK_MODEL_S = 1.0
"""A model that answered its last call faster is quick: its next step may run locally, and the
conversation does not flip ``DaemonflowState`` to thinking for it (the flip would be visible for
less than that)."""


def quick(last_model_s: float | None) -> bool:
    """Whether the model answered the conversation's last call in under ``QUICK_MODEL_S``."""
    return last_model_s is not None and last_model_s < QUICK_MODEL_S


def local_step(request: ChatRequest, llm_queue: str | None, last_model_s: float | None, run_ends: bool) -> bool:
    """Whether this step runs as a local activity (see the module's docstring), from history alone,
    so replay decides the same. The patch is asked last, only when the rest agrees."""
    timed = bool(last_model_s)  # 0: a reply an earlier attempt stored, no timing
    if not (timed and quick(last_model_s)) or run_ends or llm_queue is not None or request.watched:
        return False
    return workflow.patched(LOCAL_MODEL_STEP_PATCH)


def start_model_step(request: ChatRequest, summary: str, llm_queue: str | None, *, local: bool,
                     cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
                     ) -> ActivityHandle[ChatResult]:
    if local:
        return workflow.start_local_activity_method(LlmActivities.chat, request, summary=summary,
                                                    cancellation_type=cancellation_type, **MODEL_LOCAL)  # fmt: skip
    return workflow.start_activity_method(LlmActivities.chat, request, summary=summary, task_queue=llm_queue,
                                          cancellation_type=cancellation_type, **MODEL_CALL)  # fmt: skip


async def step_result(step: ActivityHandle[ChatResult], local: bool) -> ChatResult:
    """The step's result; its failure always as an ``ActivityError`` whose cause says why. An
    activity's failure reaches the workflow in one, a local activity's bare (the ``ApplicationError``
    ``llm.chat`` raised, a cancellation, a timeout): the conversation reads both the same way."""
    try:
        return await step
    except ActivityError:
        raise
    except FailureError as err:
        if not local:
            raise
        raise ActivityError("the local model step failed", scheduled_event_id=0, started_event_id=0, identity="",
                            activity_type="", activity_id="", retry_state=None) from err
