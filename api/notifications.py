"""The notification centre (``GET /notifications``): what wants a person's attention, newest
first — tool calls waiting for approval (asked of the conversations visibility lists as awaiting),
open monitoring alerts, channel budgets that ended a chain (the channels' budget notices), private
messages refused, and their agents' questions waiting for the person who sent them. The admin page shows the count as a badge and the items as a list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.conversations import Ctx, Reader
from api.openapi import problems
from models.agent_control import Notification, Notifications
from models.private_messages import MessageState
from store.agent_records import budget_notices
from store.monitoring import MonitoringStore
from store.private_messages import PrivateMessageStore

router = APIRouter(tags=["notifications"])


@router.get("/notifications", response_model=Notifications, responses=problems(401, 403, 422, 503),
            summary="What waits for a person: approvals, open alerts, budgets hit in channels, refused messages, agents' questions; newest first")  # fmt: skip
async def notifications(ctx: Ctx, _: Reader, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Notifications:
    items = await _approvals(ctx) + await ctx.in_thread(lambda: _alerts(ctx, limit) + _budgets(ctx, limit) + _messages(ctx, limit))
    items.sort(key=lambda n: (n.at is None, -(n.at.timestamp() if n.at else 0)))
    return Notifications(count=len(items), items=items[:limit])


async def _approvals(ctx: Ctx) -> list[Notification]:
    waiting = await ctx.conversations.awaiting_approval()
    return [
        Notification(kind="approval", at=p.requested_at, title=f"{w.conversation.agent or 'agent'} asks to run {p.tool}",
                     detail=p.reason or "", link=f"/conversations/{w.conversation.conversation_id}",
                     data={"conversation_id": w.conversation.conversation_id, "channel": w.conversation.channel,
                           "tool_call_id": p.tool_call_id, "args_hash": p.args_hash})  # fmt: skip
        for w in waiting for p in w.pending
    ]


def _alerts(ctx: Ctx, limit: int) -> list[Notification]:
    return [
        Notification(kind="alert", at=a.last_seen, title=f"{a.severity} alert: {a.kind}", detail=a.message,
                     data={"alert_id": a.id, "key": a.key, "occurrences": a.occurrences})  # fmt: skip
        for a in MonitoringStore(ctx.engine).alerts(active_only=True, limit=limit)
    ]


def _budgets(ctx: Ctx, limit: int) -> list[Notification]:
    return [
        Notification(kind="budget", at=row.created_at, title=f"budget hit in #{row.channel_id}", detail=text,
                     link=f"/channels/{row.channel_id}", data={"channel_id": row.channel_id, "seq": row.seq})  # fmt: skip
        for row, text in budget_notices(ctx.engine, limit)
    ]


def _messages(ctx: Ctx, limit: int) -> list[Notification]:
    return [
        Notification(kind="refused", at=m.decided_at or m.created_at, title=f"{m.recipient} refused a message from {m.sender}",
                     detail=f"{m.decided_by or 'rule'}: {m.reason or ''}", link=f"/messages/{m.message_id}",
                     data={"message_id": m.message_id, "decided_by": m.decided_by})
        if m.state == MessageState.REFUSED else
        Notification(kind="question", at=m.decided_at or m.created_at, title=f"{m.recipient} asks {m.sender} a question",
                     detail=m.question or "", link=f"/messages/{m.message_id}", data={"message_id": m.message_id})
        for m in PrivateMessageStore(ctx.engine).for_people(limit)
    ]  # fmt: skip
