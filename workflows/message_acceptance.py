"""Whether an agent takes a private message, and what its answer means: pure, run in the workflow.

The accept rule, in order (the first that refuses decides, and says why):

1. ``hops``: the chain of agent→agent messages is longer than ``MAX_HOPS`` (3), or an agent writes
   to itself. The hop count is carried in the request, so no model text can lift it.
2. ``workload``: the recipient already has ``max_open`` (3) accepted messages it has not finished.
   Read from the store first (cheap: a busy recipient's model is not asked), and checked again
   when the message is accepted, atomically with writing it (``messages.admit``, one locked
   transaction): messages decided at the same moment never take more than ``max_open`` places.
3. ``expertise``: the request's similarity to the recipient's closest expertise entry (the
   relevance engine's ``relevance.similarities``, embeddings or keywords) is below ``min_expertise``
   (0.15: where the engine's ``expertise_match`` curve starts to count). A recipient whose
   template states no expertise skips this step.
4. ``model``: the recipient's model answers ``{"accept", "reason"}`` (``messages.consider``).

The first three cost nothing of the recipient's model; a refusal always carries its reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.private_messages import INPUT_MARKER, MAX_HOPS, PrivateMessageInput
    from models.relevance_scoring import Similarities
    from workflows import deepthink


@dataclass(frozen=True)
class Refusal:
    rule: str
    reason: str


def hops_refusal(request: PrivateMessageInput) -> Refusal | None:
    if request.sender_kind == "agent" and request.sender == request.recipient:
        return Refusal("hops", f"{request.sender} cannot send a private message to itself")
    if request.hops > MAX_HOPS:
        return Refusal("hops", f"this message is hop {request.hops} of a chain of agent messages; "
                               f"the limit is {MAX_HOPS}")  # fmt: skip
    return None


def workload_refusal(request: PrivateMessageInput, open_messages: int) -> Refusal | None:
    if open_messages >= request.max_open:
        return Refusal("workload", f"{request.recipient} is busy: {open_messages} accepted requests not finished "
                                   f"(the limit is {request.max_open})")  # fmt: skip
    return None


def expertise_refusal(request: PrivateMessageInput, similarities: Similarities) -> Refusal | None:
    match = similarities.expertise.get(request.recipient)
    if match is None:  # no expertise stated: the model decides
        return None
    if match.similarity < request.min_expertise:
        how = "" if similarities.method == "embedding" else f" ({similarities.method.value})"
        return Refusal("expertise", f"the request is outside {request.recipient}'s expertise: similarity "
                                    f"{match.similarity:.2f}{how} to its closest entry, below {request.min_expertise:.2f}")  # fmt: skip
    return None


def input_question(reply: str) -> str | None:
    """The recipient's question when its reply asks the sender for more (starts with
    ``NEED INPUT:``), else None."""
    text = reply.strip()
    if not text.upper().startswith(INPUT_MARKER):
        return None
    return text[len(INPUT_MARKER):].strip() or "the recipient needs more information"


def request_text(request: PrivateMessageInput) -> str:
    """What the recipient's conversation receives for the message."""
    return (f"Private message {request.message_id} from {request.sender} ({request.sender_kind}):\n{request.content}\n\n"
            f"Answer it. If you cannot without more information from {request.sender}, reply only "
            f"'{INPUT_MARKER} <your question>'.")  # fmt: skip


def input_text(request: PrivateMessageInput, answer: str, author: str | None) -> str:
    return f"{author or request.sender} answers your question about private message {request.message_id}:\n{answer}"


def deepthink_step_text(request: PrivateMessageInput, step: int, steps: int) -> str:
    text = deepthink.step_text(step, steps, f"this request from {request.sender}")
    return f"{text}\n\n{request.content}" if step == 1 else text
