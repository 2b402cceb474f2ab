"""Deepthink: an agent reasons in a few private turns before it answers — what the steps say, and
where they happen. Pure.

The reasoning runs in a conversation of its own (``deepthink-…``): an ordinary
``ConversationWorkflow`` of the agent, with its tools, policy and approvals, whose transcript
operators read like any conversation's (API, CLI, Web UI). It is started by whoever asked — a
private message (``workflows/private_message.py``, ``deepthink-<message>-<agent>``) or a channel
whose relevance decision for the agent is ``reflect`` (``workflows/channel.py``,
``deepthink-<channel>-<agent>-<n>`` for message n) — asked for ``steps`` turns and then a summary,
and ended. Only the summary leaves it: as the message's answer, or as the agent's post in the
channel. Other agents never see the steps: they are in no channel message and no other transcript.
The number of steps comes from the requester's input (``deepthink_steps``, at most
``MAX_DEEPTHINK_STEPS``), never from what a model writes.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.private_messages import DEEPTHINK_PREFIX


def channel_deepthink_id(channel_id: str, agent: str, seq: int) -> str:
    return f"{DEEPTHINK_PREFIX}{channel_id}-{agent}-{seq}"


def step_text(step: int, steps: int, about: str) -> str:
    """Step ``step`` of ``steps``; the first carries what to think about (``about``: who asks)."""
    if step == 1:
        return (f"Deepthink, step 1 of {steps}. Think privately, step by step, about {about}; nobody "
                "else reads this. Use your tools if they help.")  # fmt: skip
    return f"Deepthink, step {step} of {steps}: go further — check your reasoning, correct it, fill what is missing."


def summary_text(audience: str) -> str:
    return (f"Now write the answer {audience} will read: a short summary of your conclusion, without the "
            "private reasoning.")
