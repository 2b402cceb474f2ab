"""The channel's store-side activities: open, append a message, compose an agent's turn, close.

Each is idempotent: ``channel.open`` refreshes the channel's row, ``channel.append`` writes a seq
once (a retry returns what is stored), ``channel.compose`` stores the same text under the same
digest, ``channel.close`` keeps the first end. Message bodies go in and out of the store here, so
the channel workflow only ever holds seqs, previews and a few names.
"""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.channels.texts import channel_note, system_prompt, turn_text
from config.policy import PolicyError, parse_rules
from config.relevance import RelevanceConfigError, load_relevance
from config.settings import Settings
from config.templates import InvalidAgentError, UnknownAgentError, load_template
from models.channel import PREVIEW_CHARS
from models.channel_activities import (
    AppendChannelMessage,
    AppendedChannelMessage,
    CloseChannel,
    ComposeTurn,
    OpenChannel,
    OpenedChannel,
)
from models.payloads import PayloadRef
from models.transcript import Routing
from relevance import apply_overrides, find_mentions
from store.channels import ChannelStore, StoredChannelMessage
from store.payloads import PayloadStore
from store.relevance_settings import RelevanceSettingsStore
from store.transcript import TranscriptStore

TURN_PREVIEW_CHARS = 200
"""What of a composed turn crosses history (in the ``request_turn`` signal); the rest is stored."""


class ChannelActivities:
    def __init__(self, store: TranscriptStore, settings: Settings) -> None:
        self._settings = settings
        self._transcripts = store
        self._channels = ChannelStore(store.engine)
        self._payloads = PayloadStore(store.engine)
        self._relevance_settings = RelevanceSettingsStore(store.engine)

    def all(self) -> list:
        return [self.open, self.append, self.compose, self.close]

    @activity.defn(name="channel.open")
    async def open(self, request: OpenChannel) -> OpenedChannel:
        """Check everything a channel needs before any agent starts: templates, policy overrides, the
        merged relevance configuration. A mistake fails the channel at once, saying what is wrong."""
        try:
            defaults = load_relevance(self._settings.relevance_file)
            apply_overrides(defaults, request.relevance, f"relevance overrides of channel {request.channel_id}")
            parse_rules(request.policy, f"policy overrides of channel {request.channel_id}")
            templates = {m.agent: load_template(m.agent, self._settings.agents_dir) for m in request.agents}
        except (UnknownAgentError, InvalidAgentError) as err:
            raise ApplicationError(str(err), type="UnknownAgent", non_retryable=True) from err
        except PolicyError as err:
            raise ApplicationError(str(err), type="InvalidPolicy", non_retryable=True) from err
        except RelevanceConfigError as err:
            raise ApplicationError(str(err), type="InvalidRelevance", non_retryable=True) from err
        prompts = {
            m.agent: system_prompt(m.system_prompt or templates[m.agent].system_prompt, channel_note(
                request.channel_id, request.title, request.topic, m.agent, request.agents, request.people))
            for m in request.agents
        }  # fmt: skip
        next_seq = await asyncio.to_thread(
            self._channels.open_channel, request.channel_id, request.title, request.topic, request.user_id,
            [m.agent for m in request.agents], request.people,
        )  # fmt: skip
        routing = Routing(llm_queue=self._settings.llm_task_queue or None,
                          sandbox_queue=self._settings.sandbox_task_queue or None)  # fmt: skip
        return OpenedChannel(next_seq=next_seq, defaults=defaults, routing=routing, prompts=prompts,
                             memory={name: template.memory for name, template in templates.items()},
                             archive_after_s=self._settings.archive_after_s)

    @activity.defn(name="channel.append")
    async def append(self, request: AppendChannelMessage) -> AppendedChannelMessage:
        return await asyncio.to_thread(self._append, request)

    def _append(self, request: AppendChannelMessage) -> AppendedChannelMessage:
        content = request.content
        if request.source is not None:
            reply = self._transcripts.get(request.source.conversation_id, request.source.seq)
            if reply is None:
                raise ApplicationError(f"{request.author}'s reply {request.source.conversation_id}#{request.source.seq} "
                                       "is not in the store", type="MessageNotFound", non_retryable=True)  # fmt: skip
            content = reply.content
        mentions = list(dict.fromkeys([*request.mentions, *find_mentions(content, request.members)]))
        stored = self._channels.append(StoredChannelMessage(
            channel_id=request.channel_id, seq=request.seq, author=request.author, kind=request.kind, content=content,
            reply_to=request.reply_to, answers=request.answers, mentions=mentions, created_at=request.at,
            source_conversation=request.source.conversation_id if request.source else None,
            source_seq=request.source.seq if request.source else None,
        ))  # fmt: skip
        set_at_run_time = self._relevance_settings.thresholds()
        return AppendedChannelMessage(
            seq=stored.seq, chars=len(stored.content), preview=stored.content[:PREVIEW_CHARS], mentions=stored.mentions,
            thresholds=set_at_run_time[0] if set_at_run_time else None,
        )  # fmt: skip

    @activity.defn(name="channel.compose")
    async def compose(self, request: ComposeTurn) -> PayloadRef:
        """Store the text of an agent's turn for its conversation (``request_turn``'s ``content_ref``)."""
        return await asyncio.to_thread(self._compose, request)

    def _compose(self, request: ComposeTurn) -> PayloadRef:
        messages = self._channels.latest(request.channel_id, request.after_seq, request.answering_seq, request.limit)
        left_out = max(request.answering_seq - request.after_seq - len(messages), 0)
        text = turn_text(request.channel_id, request.agent, messages, request.answering_seq, left_out)
        ref = self._payloads.put(request.conversation_id, text)
        return ref.model_copy(update={"preview": ref.preview[:TURN_PREVIEW_CHARS]})

    @activity.defn(name="channel.close")
    async def close(self, request: CloseChannel) -> None:
        await asyncio.to_thread(self._channels.close_channel, request.channel_id, request.reason)
