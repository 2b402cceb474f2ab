"""What ``llm.chat`` does before it asks the model, so that a turn costs one round trip.

A turn used to be four activities in a row — store the user's message, recall memories, ask the
model, extract memories — each a workflow task, an activity task and another workflow task: 151 ms
against 50 ms for a bare update and activity (``bench.conversation``). The request now carries
what the workflow decided since its last activity, and this prelude does it first:

1. resolves the template and tool definitions from their digest (``prompt_configs.py``);
2. returns the reply if an earlier attempt wrote it; otherwise writes the turn's pending messages
   and audit rows in one transaction (``store/turn_writes.py``) and, at the same time, recalls the
   memories closest to the user's message (the text is in the request, so recall does not wait);
3. hands ``_chat`` the request with ``memory_ids`` set, as if the workflow had sent them.

Memory trouble never stops a turn: an unreachable embedding server or a missing model leaves the
prompt without memories and the result says why (``ChatResult.recalled.error``); an embedded store
another process holds for a moment (``StoreLocked``) is waited for: the attempt fails
``MemoryLocked`` before the model is asked, and the retry recalls. The writes are keyed, so a
retried attempt writes nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from temporalio.exceptions import ApplicationError

from activities.memory import EmbeddingUnavailable, MemoryService
from activities.memory.store import StoreLocked
from activities.memory.turn_recall import TurnRecall, recall_with_texts
from activities.prompt_configs import PromptConfigs
from config.settings import Settings
from models.llm import ChatRequest
from models.memory import RecallRequest, RecallResult
from store.tables import Message
from store.transcript import TranscriptStore
from store.turn_writes import TurnWriter

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    request: ChatRequest
    recalled: RecallResult | None
    stored: Message | None
    """The reply, when an earlier attempt of this call wrote it."""
    memory_texts: list[str] | None = None
    """The recalled memories' texts (order of ``request.memory_ids``) when this attempt recalled:
    the prompt takes them as they are instead of loading the records again."""


class TurnPrelude:
    def __init__(self, store: TranscriptStore, writer: TurnWriter, prompts: PromptConfigs,
                 memory: MemoryService | None, settings: Settings) -> None:
        self._store = store
        self._writer = writer
        self._prompts = prompts
        self._memory = memory
        self._settings = settings

    async def prepare(self, request: ChatRequest) -> Prepared:
        """The reply if an earlier attempt wrote it; else the request as ``_chat`` expects it
        (template inline, memory ids set) once the turn's writes are in, and what the recall found
        when the request asked for one."""
        request = await self._prompts.resolve(request)
        stored, recalled = await asyncio.gather(
            asyncio.to_thread(self._written, request),
            self._recall(request.recall, request) if request.recall else _nothing(),
        )
        if recalled is None:
            return Prepared(request, None, stored)
        request = request.model_copy(update={"memory_ids": recalled.result.memory_ids})
        return Prepared(request, recalled.result, stored, recalled.texts)

    def _written(self, request: ChatRequest) -> Message | None:
        """The reply an earlier attempt stored (a retry never asks the model twice), or None after
        writing what the workflow decided since its last activity."""
        return self._writer.stored_reply_or_write(request.conversation_id, request.reply_seq, request.writes)

    async def _recall(self, recall: RecallRequest, request: ChatRequest) -> TurnRecall:
        if self._memory is None:
            return TurnRecall(RecallResult(error="no memory store on this worker"))
        pending = request.writes.message(recall.seq) if request.writes else None
        if pending is not None and not pending.content_ref:
            text = pending.content
        else:
            stored = await asyncio.to_thread(self._store.get, recall.conversation_id, recall.seq)
            text = stored.content if stored is not None else ""
        try:
            return await recall_with_texts(self._memory, self._settings, text, recall.agent, recall.user_id,
                                         recall.conversation_id)
        except EmbeddingUnavailable as err:
            log.warning("memory recall skipped, the embedding server is unreachable: %s", err)
            return TurnRecall(RecallResult(error=str(err)))
        except StoreLocked as err:  # `daemonflow memory` holds the embedded store for a moment: wait
            raise ApplicationError(str(err), type="MemoryLocked") from None
        except Exception as err:  # noqa: BLE001 - the store in trouble costs the prompt its memories, never the turn
            log.warning("memory recall failed; answering without memories", exc_info=True)
            return TurnRecall(RecallResult(error=f"memory recall failed: {type(err).__name__}: {err}"[:500]))


async def _nothing() -> None:
    return None
