"""Stored payloads over HTTP: the whole content behind a marker, for the person who must judge it.

A ``write_file`` of 3 MB waits for approval with a marker (``[daemonflow-payload sha256=…]``) in
its arguments and a preview; this endpoint serves the exact content that marker names (what the
approval's hash binds), as ``text/plain``, with its digest in ``X-Content-SHA256``. It also serves
the full outputs behind capped tool results (``artifact sha256:…``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import PlainTextResponse

from api.conversations import ConversationId, Ctx, Reader
from api.errors import ApiError
from api.openapi import problems
from store.payloads import PayloadStore

router = APIRouter(tags=["conversations"])

Digest = Annotated[str, Path(pattern=r"^(sha256:)?[0-9a-f]{64}$",
                             description="the payload's SHA-256 (64 hex digits), optionally prefixed `sha256:`")]


@router.get(
    "/conversations/{conversation_id}/payloads/{digest}",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "the content"},
               **problems(401, 403, 404, 422)},
    summary="A stored payload (a long tool-call argument, or a tool's full output), exactly as stored",
)
async def get_payload(conversation_id: ConversationId, digest: Digest, ctx: Ctx, _: Reader) -> PlainTextResponse:
    digest = digest.removeprefix("sha256:")
    text = await ctx.in_thread(PayloadStore(ctx.engine).get, conversation_id, digest)
    if text is None:
        raise ApiError(404, "payload-not-found", "Payload not found",
                       f"conversation {conversation_id!r} has no stored payload sha256={digest}; take the digest "
                       "from a pending approval's `payloads` or a tool result's `artifact sha256:…`")
    return PlainTextResponse(text, headers={"X-Content-SHA256": digest})
