"""The AI tools' model steps: ``ai.generate_code`` and ``ai.review_diff``, on the llm queue.

Both ask the conversation's own model (the model its row in the store names, on the server its
agent template names — Ollama or an OpenAI-compatible one, through ``providers.chat_model`` like
every model call — with the template's temperature, context and token cap) for one answer, and
keep everything large out of history: generated code is stored and returned as a reference (the
child workflow then writes it in the workspace with ``tools.run``); the diff to review arrives as
a reference and the review leaves capped and by reference like any tool output
(``tools/output.py``).

The token cap (``max_tokens`` of the template, else ``DAEMONFLOW_MAX_TOKENS``) bounds these calls
too: a file the model was cut off in the middle of is not written (a half file that looks whole is
worse than none), and a review cut off says so.
"""

from __future__ import annotations

import asyncio

from temporalio import activity

from activities.heartbeat import heartbeating
from activities.llm.chat_models import LlmProviders
from activities.llm.errors import LlmError
from activities.llm.provider import ChatOutcome, PromptMessage
from activities.prompt import prompt_budget_chars
from activities.tools.catalog import MAX_GENERATED_BYTES
from activities.tools.languages import language_of
from activities.tools.operands import InvalidArguments
from activities.tools.output import ToolOutputs
from config.settings import Settings
from config.templates import InvalidAgentError, UnknownAgentError, load_template
from models.agent import AgentTemplate
from models.excerpt import excerpt
from models.payloads import PayloadRef
from models.tools import ToolCallInput, ToolResult, ToolSpec
from store.payloads import PayloadStore
from store.transcript import TranscriptStore

GENERATE_SYSTEM = (
    "You write one complete source file. Answer with the file's content only: no explanation before "
    "or after it, no Markdown code fences."
)
REVIEW_SYSTEM = (
    "You are a meticulous code reviewer. Review the diff below for correctness, security, tests and "
    "readability. Be specific: name the file and the line, say what is wrong and what to change. "
    "If it is fine, say so in one sentence."
)
PROMPT_OVERHEAD_CHARS = 400
"""The review prompt's framing around the diff (headers, the focus line)."""
CUT_AT_CAP = "length"
"""``done_reason`` when the answer stopped at the token cap (Ollama and OpenAI-compatible servers)."""


class AiToolActivities:
    def __init__(
        self, store: TranscriptStore, payloads: PayloadStore, settings: Settings, providers: LlmProviders | None = None
    ) -> None:
        self._store = store
        self._payloads = payloads
        self._outputs = ToolOutputs(payloads)
        self._settings = settings
        self._providers = providers or LlmProviders(settings)

    @activity.defn(name="ai.generate_code")
    async def generate_code(self, spec: ToolSpec, call: ToolCallInput) -> PayloadRef:
        path = call.arguments.get("path", "")
        language = language_of(path, call.arguments.get("language"))
        prompt = f"File: {path}\nLanguage: {language}\n\nWhat it must do:\n{call.arguments.get('instructions', '')}"
        answer = await self._ask(call, GENERATE_SYSTEM, prompt)
        if answer.done_reason == CUT_AT_CAP:
            raise InvalidArguments(f"the model reached its token cap ({answer.completion_tokens} tokens) before {path} "
                                   "was complete; nothing was written: ask for a smaller file, or raise the agent's "
                                   "max_tokens (DAEMONFLOW_MAX_TOKENS)")
        code = strip_fences(answer.content)
        size = len(code.encode())
        if size > MAX_GENERATED_BYTES:
            raise InvalidArguments(f"the model generated {size} bytes for {path}, over generate_code's limit of "
                                   f"{MAX_GENERATED_BYTES} bytes; nothing was written: ask for a smaller file")
        if not code.strip():
            raise InvalidArguments(f"the model generated nothing for {path}; nothing was written")
        return await asyncio.to_thread(self._payloads.put, call.conversation_id, code)

    @activity.defn(name="ai.review_diff")
    async def review_diff(self, spec: ToolSpec, call: ToolCallInput, diff: PayloadRef) -> ToolResult:
        text = await asyncio.to_thread(self._payloads.read, call.conversation_id, diff)
        focus = call.arguments.get("focus")
        template = self._template(call)
        room = prompt_budget_chars(template) - len(REVIEW_SYSTEM) - len(focus or "") - PROMPT_OVERHEAD_CHARS
        shown = excerpt(text, max(room, 1_000), lambda omitted: (
            f"\n[... {omitted} characters of the diff are left out to fit the model's context ...]\n"))
        prompt = (f"Look most closely at: {focus}\n\n" if focus else "") + f"The diff:\n{shown}"
        review = await self._ask(call, REVIEW_SYSTEM, prompt)
        scope = "staged changes" if call.arguments.get("staged") else "uncommitted changes"
        part = f", of which the reviewer saw {len(shown)}" if len(shown) < len(text) else ""
        cut = (f"\n\n[the review stopped at the model's token cap ({review.completion_tokens} tokens)]"
               if review.done_reason == CUT_AT_CAP else "")
        result = ToolResult(success=True, output=f"Review of the {scope} ({diff.chars} characters of diff{part}):\n\n"
                                                 f"{review.content.strip()}{cut}")
        return await asyncio.to_thread(self._outputs.finish, call.conversation_id, result)

    async def _ask(self, call: ToolCallInput, system: str, prompt: str) -> ChatOutcome:
        """One answer of the conversation's chat model; a model failure is the activity's failure,
        retryable (server away or in trouble) or not (unknown model, refused request)."""
        template = self._template(call)
        name = await asyncio.to_thread(self._model, call, template)
        try:
            model = self._providers.chat_model(template, name)
            async with heartbeating():
                return await model.chat([PromptMessage("system", system), PromptMessage("user", prompt)])
        except LlmError as err:
            raise err.application_error() from None

    def _template(self, call: ToolCallInput) -> AgentTemplate:
        try:
            return load_template(call.agent, self._settings.agents_dir)
        except (UnknownAgentError, InvalidAgentError):
            return AgentTemplate(name=call.agent or "unknown", system_prompt="")

    def _model(self, call: ToolCallInput, template: AgentTemplate) -> str:
        """The conversation's model as it was opened (template, or the conversation's override)."""
        conversation = self._store.get_conversation(call.conversation_id)
        return (conversation.model if conversation else None) or template.model or self._settings.model

    def all(self) -> list:
        return [self.generate_code, self.review_diff]


def strip_fences(text: str) -> str:
    """The code inside a Markdown fence when a model wrapped the whole answer in one anyway."""
    lines = text.strip("\n").splitlines()
    if len(lines) >= 2 and lines[0].lstrip().startswith("```") and lines[-1].strip() == "```":
        return "\n".join(lines[1:-1]) + "\n"
    return text if text.endswith("\n") or not text else text + "\n"
