"""What a Temporal failure says, in words: the one place that unwraps a failure's causes.

A workflow meets a failure as an ``ActivityError`` (or ``ChildWorkflowError``) wrapping the real
cause; a client meets the same chain inside ``WorkflowUpdateFailedError.cause`` or
``WorkflowFailureError.cause``. The words a person can act on are in the first
``ApplicationError`` of the chain (the activity's or the handler's own message, with its ``type``)
or in a timeout (which one fired). Pure and import-light, so workflows, the ``control`` client and
the CLI share it.
"""

from __future__ import annotations

from temporalio.exceptions import ApplicationError, FailureError
from temporalio.exceptions import TimeoutError as TemporalTimeout


def failure_cause(failure: BaseException | None) -> BaseException | None:
    """The first ``ApplicationError`` or timeout in ``failure``'s chain, else its innermost cause.

    Pass the failure itself: an ``ActivityError`` in a workflow, ``err.cause`` of a client error.
    """
    cause = failure
    while isinstance(cause, FailureError) and not isinstance(cause, (ApplicationError, TemporalTimeout)):
        if cause.cause is None:
            break
        cause = cause.cause
    return cause


def failure_type(failure: BaseException | None) -> str | None:
    """The ``type`` of the first ``ApplicationError`` in the chain (``ModelError``, …), if any."""
    cause = failure_cause(failure)
    return cause.type if isinstance(cause, ApplicationError) else None


def failure_message(failure: BaseException | None, what: str = "the call") -> str:
    """The chain's message for a person; a timeout reads ``<what> timed out (<which timeout>)``."""
    cause = failure_cause(failure)
    if isinstance(cause, TemporalTimeout):
        return f"{what} timed out ({cause.type.name.lower() if cause.type else 'timeout'})"
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or failure)
