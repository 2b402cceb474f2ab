"""The conversation's template and tool definitions, named by digest in ``llm.chat`` requests.

The workflow sends a ``PromptConfig``'s JSON text with the first model call of each run and only
its SHA-256 afterwards (``models/prompt_config.py``). Here the text is stored as a payload of the
conversation (so any worker finds it, after a restart too) and the parsed config is kept in a
small in-process LRU keyed by digest (content-addressed: every ``assistant`` conversation shares
one entry). A digest this worker cannot find anywhere is a non-retryable ``PromptConfigMissing``:
the workflow then sends the text again.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from temporalio.exceptions import ApplicationError

from models.llm import ChatRequest
from models.prompt_config import PromptConfig, prompt_ref
from store.payloads import PayloadStore

CACHE_SIZE = 256
"""Distinct configs kept per worker: one per template and model in use, so a few dozen at most."""


class PromptConfigs:
    def __init__(self, payloads: PayloadStore, size: int = CACHE_SIZE) -> None:
        self._payloads = payloads
        self._size = size
        self._cache: OrderedDict[str, PromptConfig] = OrderedDict()

    async def resolve(self, request: ChatRequest) -> ChatRequest:
        """``request`` with ``template`` and ``tools`` filled in from its ``prompt_ref``."""
        if request.template is not None or request.prompt_ref is None:
            return request
        config = await self._config(request)
        return request.model_copy(update={"template": config.template, "tools": config.tools})

    async def _config(self, request: ChatRequest) -> PromptConfig:
        ref = request.prompt_ref
        assert ref is not None
        if request.prompt is not None:
            if prompt_ref(request.prompt) != ref:
                raise ApplicationError(f"prompt config text does not match its digest {ref}", type="PromptConfigMismatch",
                                       non_retryable=True)
            await asyncio.to_thread(self._payloads.put, request.conversation_id, request.prompt)
            return self._keep(ref, PromptConfig.parse(request.prompt))
        cached = self._cache.get(ref)
        if cached is not None:
            self._cache.move_to_end(ref)
            return cached
        text = await asyncio.to_thread(self._payloads.get, request.conversation_id, ref)
        if text is None or prompt_ref(text) != ref:
            raise ApplicationError(f"prompt config sha256={ref} is not stored for conversation "
                                   f"{request.conversation_id}; send it again", type="PromptConfigMissing",
                                   non_retryable=True)  # fmt: skip
        return self._keep(ref, PromptConfig.parse(text))

    def _keep(self, ref: str, config: PromptConfig) -> PromptConfig:
        self._cache[ref] = config
        self._cache.move_to_end(ref)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return config
