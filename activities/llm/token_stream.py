"""What the model writes, published to the conversation's Workflow Stream while it writes.

The provider calls ``on_delta`` for every chunk; this publisher gathers the text and publishes one
``TokenDelta`` per ``TOKEN_BATCH_S`` (the first text of a step at once, so the first token is
not held back), the pause growing every ``TOKEN_BATCH_SLOWDOWN_EVERY`` batches, and no more than
``MAX_STREAMED_CHARS`` of a step: the workflow's history grows by one signal per batch, never per
token, and by a bounded amount per step however long the model writes. A retried
attempt first publishes ``TokenReset`` so clients drop what the failed attempt showed; the stored
reply stays the truth (its ``message`` event follows the step).

Only while someone watches (``models/streaming.py``): a step scheduled unwatched
(``ChatRequest.watched`` false) publishes nothing at first; once the model writes, it asks the
workflow (``WATCHED_QUERY``) every ``TOKEN_BATCH_S`` for 2 s, then every ``WATCH_CHECK_MAX_S``, and
from a yes on publishes as a watched step does, starting with everything written so far. A reply
written faster than the first check (the benchmark's model, a cached answer) costs no query, no
signal and no workflow task.

Publishing never fails the model call: a stream in trouble costs the viewers their live tokens,
not the turn its answer (the ``message`` event and the transcript still carry the reply).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from temporalio import activity
from temporalio.contrib.workflow_streams import WorkflowStreamClient

from models.streaming import (
    MAX_STREAMED_CHARS,
    TOKEN_BATCH_S,
    TOKEN_BATCH_SLOWDOWN_EVERY,
    TOKENS_TOPIC,
    WATCH_CHECK_MAX_S,
    WATCH_CHECKS_FAST,
    WATCHED_QUERY,
    TokenDelta,
    TokenReset,
)

log = logging.getLogger(__name__)

WATCH_QUERY_TIMEOUT = timedelta(seconds=5)


class TokenPublisher:
    """For one attempt of one model step; ``async with`` it around the model call."""

    def __init__(self, seq: int, watched: bool = True, batch_s: float = TOKEN_BATCH_S) -> None:
        self.seq = seq
        self.attempt = activity.info().attempt
        self._publishing = watched
        """False until someone watches: then the text so far goes at once, and batches follow."""
        self._asks = not activity.info().is_local
        """Whether an unwatched step asks if a viewer came: a local step (``llm.chat`` run inside the
        conversation's workflow task) never does, the query would wait for the step itself."""
        self._batch_s = batch_s
        self._client = WorkflowStreamClient.from_within_activity()
        """Used without its background flusher (``async with``): cancelling that flusher right after
        waking it can be lost in Python 3.11's ``asyncio.wait_for``, and the exit then waits for
        ever. The pacer here flushes itself."""
        self._topic = self._client.topic(TOKENS_TOPIC)
        self._text: list[str] = []
        self._published = 0
        """Characters of ``text`` already published."""
        self._batches = 0
        self._wake = asyncio.Event()
        self._pacer: asyncio.Task[None] | None = None

    @property
    def text(self) -> str:
        """Everything the model wrote in this attempt so far."""
        return "".join(self._text)

    def on_delta(self, text: str) -> None:
        if text:
            self._text.append(text)
            self._wake.set()

    async def __aenter__(self) -> TokenPublisher:
        if self._publishing:
            self._reset_earlier_attempts()
        self._pacer = asyncio.create_task(self._pace())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._pacer is not None:
            self._pacer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pacer
        if not self._publishing:
            return  # nobody watched: the step's message event carries the reply
        self._publish_pending()
        try:
            await asyncio.shield(self._client.flush())  # the last batch, even when cancelled
        except Exception as err:  # noqa: BLE001 - the stream is best effort, the reply is stored anyway
            log.warning("token stream for seq %s: last batch not published (%s)", self.seq, err)

    async def _pace(self) -> None:
        """Publish at once when text comes after a quiet spell, then at most once per batch (once
        someone watches)."""
        if not self._publishing:
            if not self._asks:
                return
            await self._wake.wait()
            await self._until_watched()
            self._publishing = True
            self._reset_earlier_attempts()
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._publish_pending()
            try:
                await self._client.flush()
            except Exception as err:  # noqa: BLE001 - kept pending; the next flush sends it again
                log.warning("token stream for seq %s: batch not published yet (%s)", self.seq, err)
            await asyncio.sleep(self._batch_s * (1 + self._batches // TOKEN_BATCH_SLOWDOWN_EVERY))

    async def _until_watched(self) -> None:
        checks = 0
        while True:
            await asyncio.sleep(self._batch_s if checks < WATCH_CHECKS_FAST else WATCH_CHECK_MAX_S)
            checks += 1
            if await _watched():
                return

    def _reset_earlier_attempts(self) -> None:
        if self.attempt > 1:
            self._topic.publish(TokenReset(seq=self.seq, attempt=self.attempt).model_dump())
            self._wake.set()

    def _publish_pending(self) -> None:
        text = self.text[:MAX_STREAMED_CHARS]
        if len(text) > self._published:
            delta = TokenDelta(seq=self.seq, attempt=self.attempt, offset=self._published, text=text[self._published :])
            self._topic.publish(delta.model_dump())
            self._published = len(text)
            self._batches += 1


async def _watched() -> bool:
    """The conversation's answer to ``WATCHED_QUERY``; no answer counts as no (asked again later)."""
    handle = activity.client().get_workflow_handle(activity.info().workflow_id)
    try:
        return bool(await handle.query(WATCHED_QUERY, result_type=bool, rpc_timeout=WATCH_QUERY_TIMEOUT))
    except Exception as err:  # noqa: BLE001 - a busy or restarting worker: the step goes on unwatched
        log.debug("watched? no answer from %s (%s)", activity.info().workflow_id, err)
        return False
