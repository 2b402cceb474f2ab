"""Operator access to memories (``daemonflow memory list|search|forget``).

The same function serves both ways in: the CLI calls it directly when it can open the memory
store, and through the worker (activity ``memory.admin``, run by ``MemoryAdminWorkflow``) when it
cannot — the embedded store admits one process at a time, and that process is the running worker.
"""

from __future__ import annotations

from activities.memory import MemoryService
from models.memory import MemoryAdminRequest, MemoryAdminResult, ScoredMemory

FORGET_PAGE = 500


async def administer(memory: MemoryService, request: MemoryAdminRequest) -> MemoryAdminResult:
    if request.action == "list":
        records = await memory.list(request.scope, request.scope_id, request.kind, limit=request.limit)
        total = await memory.count(request.scope, request.scope_id, request.kind)
        return MemoryAdminResult(
            memories=[ScoredMemory(record=r, similarity=0.0, score=0.0) for r in records], total=total
        )
    if request.action == "search":
        assert request.query is not None
        scopes = [(request.scope, request.scope_id)] if request.scope and request.scope_id else None
        found = await memory.search(request.query, scopes=scopes, kinds=[request.kind] if request.kind else None,
                                    k=min(request.limit, 100))
        if request.scope and not request.scope_id:  # a whole scope kind: filter after ranking
            found = [m for m in found if m.record.scope == request.scope]
        return MemoryAdminResult(memories=found, total=len(found))
    if request.ids:
        return MemoryAdminResult(forgotten=await memory.forget(request.ids))
    forgotten = 0
    while records := await memory.list(request.scope, request.scope_id, request.kind, limit=FORGET_PAGE):
        forgotten += await memory.forget([r.id for r in records])
    return MemoryAdminResult(forgotten=forgotten)
