"""What the typed client of each long-lived workflow kind shares (``Conversation``, ``Channel``):
its handle, ``describe``, ``ensure_running`` and revival of an archived run. Each subclass names
its workflow, its id prefix, its errors and the input that revives it; everything else — queries,
signals, updates — is its own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import BaseModel
from temporalio.client import Client

from control.errors import ControlError
from control.execution import Execution, described
from control.revival import revive


class WorkflowClient:
    RUN: ClassVar[Callable[..., Any]]
    """The workflow's ``run`` method (typed handle, starts)."""
    PREFIX: ClassVar[str]
    NOUN: ClassVar[str]
    """How messages name it: ``conversation``, ``channel``."""
    REVIVED_BY: ClassVar[str]
    """What revives it, for the error an archived one gives: ``a new message``."""
    ADVICE: ClassVar[str] = "start a new one"
    """What to do instead, when it runs no more."""
    NOT_FOUND: ClassVar[Callable[[str, list[str]], ControlError]]
    ENDED: ClassVar[type[ControlError]]

    def __init__(self, client: Client, workflow_id: str, timeout: timedelta, task_queue: str) -> None:
        self._handle = client.get_workflow_handle_for(type(self).RUN, workflow_id)
        self._client = client
        self._timeout = timeout
        self._task_queue = task_queue
        self.execution: Execution | None = None
        """Set by ``describe`` (``find`` calls it); None for one built from a listing."""

    @property
    def id(self) -> str:
        return self._handle.id.removeprefix(self.PREFIX)

    @property
    def workflow_id(self) -> str:
        return self._handle.id

    async def describe(self) -> Execution:
        not_found = type(self).NOT_FOUND
        self.execution = await described(self._handle, self._timeout, f"the {self.NOUN}",
                                         lambda: not_found(self.id, [self.workflow_id]))  # fmt: skip
        return self.execution

    def ensure_running(self, advice: str | None = None) -> None:
        """``ENDED`` when the workflow is known not to run any more."""
        if self.execution is not None and not self.execution.running:
            what = f"archived ({self.REVIVED_BY} revives it)" if self.execution.archived else self.execution.name
            raise type(self).ENDED(f"{self.NOUN} {self.id!r} is {what}; {advice or self.ADVICE}")

    async def revive_if_archived(self) -> bool:
        """An archived run gets a new one that reopens it from its archive record (``_revival_input``
        only stands in: the run takes its real input from the record); True if it was revived."""
        if self.execution is None:
            await self.describe()
        assert self.execution is not None
        if not self.execution.archived:
            return False
        await revive(self._client, type(self).RUN, self._revival_input(), self.workflow_id, self._task_queue,
                     self._timeout, f"{self.NOUN} {self.id}")  # fmt: skip
        await self.describe()
        return True

    def _revival_input(self) -> BaseModel:
        raise NotImplementedError
