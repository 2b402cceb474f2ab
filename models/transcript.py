"""Inputs of the transcript activities (the store side of a conversation)."""

from __future__ import annotations

from pydantic import BaseModel

from models.agent import AgentTemplate


class OpenConversation(BaseModel):
    conversation_id: str
    agent: str
    model: str | None = None
    system_prompt: str | None = None
    user_id: str | None = None


class OpenedConversation(BaseModel):
    template: AgentTemplate
    """The resolved template, with the model and prompt overrides applied."""
    next_seq: int


class AppendMessage(BaseModel):
    conversation_id: str
    seq: int
    role: str
    content: str


class CloseConversation(BaseModel):
    conversation_id: str
    reason: str
