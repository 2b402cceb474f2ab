"""Request size limits, applied before any handler reads a byte.

A body announced larger than the limit is refused from its ``Content-Length``; a body without one
(chunked) is counted as it arrives and refused as soon as it passes the limit. Either way nothing
over the limit is kept: the rest of the upload is read and dropped so the client gets the 413. The
body is then handed on unchanged, so handlers and validation see exactly what the client sent.
Also: security headers on every response (the admin page handles an admin key; no inline script
may run there).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem_response

DRAIN_CAP_BYTES = 64 * 1024 * 1024
"""A client sending more than this after being refused is cut off instead of drained."""
UI_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'"


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            try:
                announced = int(length)
            except ValueError:
                await self._refuse(scope, receive, send, 400, "Bad Request", "Content-Length is not a number")
                return
            if announced > self.max_bytes:
                await self._drain(receive, announced)
                await self._refuse(scope, receive, send, 413, "Content Too Large",
                                   f"the body is {announced} bytes; the limit is {self.max_bytes}")  # fmt: skip
                return
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE") and length is None:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                if message.get("more_body", False):
                    await self._drain(receive, DRAIN_CAP_BYTES)
                await self._refuse(scope, receive, send, 413, "Content Too Large",
                                   f"the body is over the limit of {self.max_bytes} bytes")  # fmt: skip
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _drain(receive: Receive, up_to: int) -> None:
        """Read and drop what the client is still sending (up to a cap), so it can read our 413
        instead of having its connection reset mid-upload. Nothing is kept."""
        dropped = 0
        while dropped < min(up_to, DRAIN_CAP_BYTES):
            message = await receive()
            if message["type"] != "http.request":
                return
            dropped += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, title: str, detail: str) -> None:
        response = problem_response(Request(scope), status, title, detail, "payload-too-large" if status == 413 else None)
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


class SecurityHeadersMiddleware:
    """``nosniff`` and ``no-referrer`` everywhere, ``no-store`` on API answers, a strict CSP on /ui."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                if path == "/ui" or path.startswith("/ui/"):
                    headers.setdefault("Content-Security-Policy", UI_CSP)
                    headers.setdefault("Cache-Control", "no-cache")
                elif not path.startswith("/docs") and path != "/openapi.json":
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
