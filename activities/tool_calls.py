"""The tool calls a model wrote, as the workflow receives them: ids, names, and arguments whose long
strings travel by reference.

A model that writes a 3 MB ``write_file`` would otherwise put 3 MB into the ``llm.chat`` result,
then into the tool workflow's input, then into the stored assistant message every later prompt
repeats. Long strings (and marker look-alikes: ``store/payloads``) are stored here, in the model
activity, and replaced by markers; the refs, with a preview each, ride along for approvers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from models.llm import ToolCallRequest
from store.payloads import PayloadStore


def tool_call_requests(
    payloads: PayloadStore, conversation_id: str, reply_seq: int, calls: list[tuple[str, Mapping[str, Any]]]
) -> list[ToolCallRequest]:
    """One request per call, id ``<reply seq>-<index>`` (stable across retries of the model call)."""
    requests = []
    for index, (name, arguments) in enumerate(calls):
        stored, refs = payloads.externalize(conversation_id, dict(arguments or {}))
        requests.append(ToolCallRequest(id=f"{reply_seq}-{index}", name=name, arguments=stored, payloads=refs))
    return requests
