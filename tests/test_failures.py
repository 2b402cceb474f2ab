"""``workflows/failures.py``: the one reading of a Temporal failure chain, for workflows and clients."""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError, RetryState, TimeoutError, TimeoutType

from workflows.failures import failure_cause, failure_message, failure_type


def activity_error(cause: BaseException) -> ActivityError:
    error = ActivityError("activity failed", scheduled_event_id=5, started_event_id=6, identity="w",
                          activity_type="llm.chat", activity_id="1", retry_state=RetryState.MAXIMUM_ATTEMPTS_REACHED)  # fmt: skip
    error.__cause__ = cause
    return error


def test_the_first_application_error_speaks() -> None:
    inner = ApplicationError("model 'x' not found; ollama pull x", type="ModelNotFound", non_retryable=True)
    outer = ApplicationError("the turn failed", type="ModelError")
    outer.__cause__ = activity_error(inner)
    assert failure_type(outer) == "ModelError" and failure_message(outer) == "the turn failed"
    assert failure_cause(activity_error(inner)) is inner
    assert failure_message(activity_error(inner)) == "model 'x' not found; ollama pull x"


def test_a_timeout_says_which_one() -> None:
    timeout = TimeoutError("timed out", type=TimeoutType.START_TO_CLOSE, last_heartbeat_details=[])
    assert failure_message(activity_error(timeout), "model call") == "model call timed out (start_to_close)"
    assert failure_type(activity_error(timeout)) is None


def test_anything_else_is_its_own_words() -> None:
    assert failure_message(None) == "None"
    assert failure_message(RuntimeError("boom")) == "boom"
