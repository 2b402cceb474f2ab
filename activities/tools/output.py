"""What a tool's output becomes: at most 30 000 characters for the model, by reference in history.

Reading a 3 MB file used to put a megabyte into the tool workflow's result and again into the
conversation's history (payload warnings, then a model call over the context). Now:

1. an output over ``TOOL_OUTPUT_CAP_CHARS`` is stored whole (the artifact, by SHA-256, once per
   conversation: the 3 MB a model wrote and then read back is one row) and the model gets its head
   and tail with a note naming the artifact;
2. whatever the model gets, if longer than ``OUTPUT_INLINE_CHARS``, is stored too and the result
   carries its digest and a preview; the conversation writes the tool message from the store.

Exec output arrives already capped by the sandbox (with its artifact file on the worker); the same
steps apply to every other tool, the AI tools' reviews and generated code included.
"""

from __future__ import annotations

from models.excerpt import excerpt
from models.payloads import OUTPUT_INLINE_CHARS, PREVIEW_CHARS, TOOL_OUTPUT_CAP_CHARS
from models.tools import ToolResult
from store.payloads import PayloadStore


class ToolOutputs:
    def __init__(self, payloads: PayloadStore, cap_chars: int = TOOL_OUTPUT_CAP_CHARS,
                 inline_chars: int = OUTPUT_INLINE_CHARS) -> None:
        self._payloads = payloads
        self._cap = cap_chars
        self._inline = inline_chars

    def finish(self, conversation_id: str, result: ToolResult) -> ToolResult:
        """``result`` with its output capped for the model and moved out of history when long."""
        text = result.output
        if len(text) > self._cap:
            artifact = f"sha256:{self._payloads.put(conversation_id, text).digest}"
            text = excerpt(text, self._cap, lambda omitted: (
                f"\n\n[... {omitted} characters omitted; the full output ({len(result.output)} characters) "
                f"is kept as artifact {artifact}; ask for a smaller part (read_file offset/max_bytes, head, "
                "grep) to see the rest ...]\n\n"))
            result = result.model_copy(update={"truncated": True, "artifact_id": result.artifact_id or artifact})
        if len(text) <= self._inline:
            return result.model_copy(update={"output": text})
        ref = self._payloads.put(conversation_id, text)
        return result.model_copy(update={"output": text[:PREVIEW_CHARS], "output_ref": ref.digest})
