"""API keys and roles: who may call what.

Keys come from ``DAEMONFLOW_API_KEYS``: comma- or newline-separated ``name:role:key`` entries.
``key`` is either the secret itself (at least 16 characters) or ``sha256:<64 hex digits>`` of it,
so a deployment can keep only hashes in its environment. Either way only the sha256 digest is
kept in memory, and a presented key is compared with every stored digest with
``hmac.compare_digest``: no plaintext key is held, logged, or compared in variable time.

Roles are not a ladder. An ``approver`` decides approvals but cannot chat, so the person who lets
a command run need not be the one who asked for it; an ``operator`` chats and steers but cannot
approve; ``admin`` does everything, including per-conversation policy overrides (an allow rule in
an override could otherwise let an operator skip the approver).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError

MIN_KEY_CHARS = 16
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
HASHED_PREFIX = "sha256:"


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    APPROVER = "approver"
    ADMIN = "admin"


class Permission(StrEnum):
    READ = "read"
    """Conversations, messages, events, approvals, agents, health."""
    OPERATE = "operate"
    """Start conversations, send messages, pause, resume, inject, end, auto-accept."""
    DECIDE = "decide"
    """Approve, approve always, deny or edit a waiting tool call."""
    CONFIGURE = "configure"
    """Per-conversation (and per-channel) policy overrides; the relevance thresholds of every channel."""
    FEEDBACK = "feedback"
    """Give feedback on a relevance decision (useful, ignored, conflict, inappropriate)."""


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.OPERATOR: frozenset({Permission.READ, Permission.OPERATE, Permission.FEEDBACK}),
    Role.APPROVER: frozenset({Permission.READ, Permission.DECIDE, Permission.FEEDBACK}),
    Role.ADMIN: frozenset(Permission),
}


class ApiKeyError(ValueError):
    """``DAEMONFLOW_API_KEYS`` cannot be used; the message says which entry and why (never the key)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name is what decisions are recorded under."""

    name: str
    role: Role

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]


@dataclass(frozen=True)
class _StoredKey:
    principal: Principal
    digest: bytes


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class KeyRing:
    """The configured keys, as digests."""

    def __init__(self, keys: list[tuple[Principal, bytes]]) -> None:
        self._keys = [_StoredKey(principal, key_digest) for principal, key_digest in keys]

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        entries = [e.strip() for e in re.split(r"[,\n]", text) if e.strip()]
        keys: list[tuple[Principal, bytes]] = []
        names: set[str] = set()
        for number, entry in enumerate(entries, start=1):
            parts = entry.split(":", 2)
            if len(parts) != 3:
                raise ApiKeyError(f"DAEMONFLOW_API_KEYS entry {number} is not name:role:key")
            name, role_text, secret = (p.strip() for p in parts)
            where = f"DAEMONFLOW_API_KEYS entry {number} ({name!r})"
            if not NAME_PATTERN.match(name):
                raise ApiKeyError(f"{where}: the name must be 1-64 letters, digits, _ . @ -")
            if name in names:
                raise ApiKeyError(f"{where}: the name is used twice")
            try:
                role = Role(role_text)
            except ValueError:
                raise ApiKeyError(f"{where}: role {role_text!r} is not one of {', '.join(Role)}") from None
            if secret.startswith(HASHED_PREFIX):
                hex_digest = secret.removeprefix(HASHED_PREFIX).lower()
                if not re.fullmatch(r"[0-9a-f]{64}", hex_digest):
                    raise ApiKeyError(f"{where}: a hashed key is sha256: followed by 64 hex digits")
                key_digest = bytes.fromhex(hex_digest)
            elif len(secret) < MIN_KEY_CHARS:
                raise ApiKeyError(f"{where}: the key must be at least {MIN_KEY_CHARS} characters")
            else:
                key_digest = digest(secret)
            if any(hmac.compare_digest(key_digest, other) for _, other in keys):
                raise ApiKeyError(f"{where}: the same key is given to two names")
            names.add(name)
            keys.append((Principal(name, role), key_digest))
        return cls(keys)

    def __len__(self) -> int:
        return len(self._keys)

    def authenticate(self, presented: str) -> Principal | None:
        """The key's principal, or None; every stored digest is compared, whatever matches first."""
        presented_digest = digest(presented)
        found: Principal | None = None
        for stored in self._keys:
            if hmac.compare_digest(presented_digest, stored.digest):
                found = stored.principal
        return found


def generate_key() -> str:
    """A new random key (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(32)


def hashed_entry(name: str, role: Role, key: str) -> str:
    """The ``name:role:sha256:…`` form of an entry, for environments that should hold no secret."""
    return f"{name}:{role.value}:{HASHED_PREFIX}{digest(key).hex()}"


_bearer = HTTPBearer(auto_error=False, description="An API key from DAEMONFLOW_API_KEYS (name:role:key).")


def require(permission: Permission) -> Callable[..., Principal]:
    """A dependency: the caller's principal if its key grants ``permission``; 401 or 403 otherwise."""

    async def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Principal:
        if credentials is None:
            raise ApiError(
                401, "unauthorized", "An API key is required",
                "send the key as `Authorization: Bearer <key>`",
                headers={"WWW-Authenticate": 'Bearer realm="daemonflow"'},
            )  # fmt: skip
        principal = request.app.state.daemonflow.keys.authenticate(credentials.credentials)
        if principal is None:
            raise ApiError(
                401, "unauthorized", "Unknown API key", "the key is not one of DAEMONFLOW_API_KEYS",
                headers={"WWW-Authenticate": 'Bearer realm="daemonflow", error="invalid_token"'},
            )  # fmt: skip
        if not principal.can(permission):
            allowed = ", ".join(r.value for r in Role if permission in ROLE_PERMISSIONS[r])
            raise ApiError(
                403, "forbidden", "Role not allowed",
                f"key {principal.name!r} has role {principal.role.value}; {permission.value} needs one of: {allowed}",
            )  # fmt: skip
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{permission.value}"
    return dependency
