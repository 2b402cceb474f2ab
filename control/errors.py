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


class QueueFull(ControlError):
    """As many messages wait in the conversation (or posts in the channel) as it takes
    (``workflows/queue_bound.py``): send again once some are answered."""


class RunEnding(ControlError):
    """The conversation (or channel) kept refusing new messages while its run handed over to the
    next one (the client sent again for ``NOT_READY_WITHIN_S``): send again in a moment."""


class TurnRunning(ControlError):
    """The conversation rejects messages sent while a turn runs (double-texting ``reject``);
    ``running`` is that turn (``models.streaming.TurnRunningDetails`` as a dict)."""

    def __init__(self, message: str, running: dict) -> None:
        super().__init__(message)
        self.running = running


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


class ChannelNotFound(ControlError):
    def __init__(self, ref: str, looked_for: list[str]) -> None:
        super().__init__(f"no channel {ref!r} (looked for workflow id {' or '.join(map(repr, looked_for))})")
        self.ref = ref


class ChannelEnded(ControlError):
    """The channel's workflow is not running (or it ended under a waiting post)."""


class ChannelExists(ControlError):
    def __init__(self, channel_id: str) -> None:
        super().__init__(f"channel id {channel_id!r} is already used; choose another")
        self.channel_id = channel_id


class PostRejected(ControlError):
    """The channel's ``post`` validator refused the post; the message says why."""


class PostFailed(ControlError):
    """The post was accepted and its handling failed (the relevance activity gave up, say)."""


class PostNotFound(ControlError):
    def __init__(self, channel_id: str, post_id: str) -> None:
        super().__init__(f"channel {channel_id!r} has no post {post_id!r}")
        self.post_id = post_id


class CalculationFailed(ControlError):
    """A hypothetical message could not be scored (an unknown agent, a broken configuration…)."""


class PrivateMessageNotFound(ControlError):
    def __init__(self, message_id: str) -> None:
        super().__init__(f"no private message {message_id!r}")
        self.message_id = message_id


class PrivateMessageExists(ControlError):
    def __init__(self, message_id: str) -> None:
        super().__init__(f"private message id {message_id!r} is already used; choose another or leave it out")
        self.message_id = message_id


class NotWaitingForInput(ControlError):
    """The private message is not waiting for its sender's answer (not input_required, or answered)."""
