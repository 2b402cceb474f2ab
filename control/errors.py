"""What can go wrong when talking to a conversation, as domain errors with a message a person can act on.

The ``control`` client raises only these (never a Temporal exception), so its callers decide how
each reads: the API maps them to problem documents (``api/errors.py``), the CLI to messages and
exit codes (``cli/common.py``). A turn that waits for a person, is paused or is slow is not an
error: ``Conversation.send`` returns ``TurnWaiting`` for it.
"""

from __future__ import annotations

from models.conversation import DecisionRejection


class ControlError(Exception):
    """Base of every error the control client raises; ``str()`` is the message for a person."""


class ConversationNotFound(ControlError):
    def __init__(self, ref: str, looked_for: list[str]) -> None:
        super().__init__(f"no conversation {ref!r} (looked for workflow id {' or '.join(map(repr, looked_for))})")
        self.ref = ref


class ConversationEnded(ControlError):
    """The conversation's workflow is not running (or the conversation ended under a waiting caller)."""


class ConversationExists(ControlError):
    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"conversation id {conversation_id!r} is already used; choose another or leave it out")
        self.conversation_id = conversation_id


class NoWorker(ControlError):
    """Temporal answered but no worker did in time: queries, updates and tool calls need one."""


class TemporalUnavailable(ControlError):
    """Temporal itself did not answer, or refused the call."""


class InvalidRequest(ControlError):
    """Temporal refused the request as malformed (a bad page token, say)."""


class QueryFailed(ControlError):
    """A worker answered the query with a failure."""


class MessageRejected(ControlError):
    """The workflow's ``send_message`` validator refused the message; the message says why."""


class TurnFailed(ControlError):
    """The turn ran and failed (not the model: see ``ModelFailed``)."""


class ModelFailed(TurnFailed):
    """The model refused (unknown model, bad request) or stayed unreachable past its retry budget."""


class TurnNotFound(ControlError):
    def __init__(self, conversation_id: str, turn_id: str) -> None:
        super().__init__(f"conversation {conversation_id!r} has no turn {turn_id!r}")
        self.turn_id = turn_id


class DecisionRejected(ControlError):
    """The workflow refused a decision; ``rejection`` says why, typed (unknown call, already
    decided — by whom, what —, arguments changed, …)."""

    def __init__(self, rejection: DecisionRejection) -> None:
        super().__init__(f"decision on tool call {rejection.tool_call_id!r} refused: {rejection.detail}")
        self.rejection = rejection
