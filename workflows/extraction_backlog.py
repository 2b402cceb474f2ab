"""The turns a conversation has answered but not yet read for memories, and the one extraction at
a time that reads them (``memory.store``, in the background).

A turn joins the backlog once its caller has the answer. The backlog is extracted once the
conversation has been quiet (no turn running, none queued) for ``delay_s``, as soon as it holds
``every`` turns, or when the run ends; then again for the turns answered meanwhile. A person
reading the reply leaves the model to it, and a busy conversation pays one extraction per few turns
(a quiet period is a timer, started and cancelled in workflow tasks the turns run anyway).

**Continue-as-new hands the backlog over** (``CARRY_PATCH``). Before it, the run extracted every
turn left before it could end: a hurried extraction that took about 10 ms with an instant model
(a whole model call with a real one). A client that sends its next message as soon as it has an
answer had always sent it by then, and a caller's message keeps the run going: every turn after
``turns_per_run`` paid an extraction before its own model step, until a pause let the run end
(turns 100 to ~150 of a 200-turn conversation went from 24 to 40 ms in ``bench.conversation``).
Now the run waits only for an extraction already running, carries the rest in ``CarriedState``
and ends in the workflow task that answered its last turn; the next run extracts it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.memory import UnextractedTurns

CARRY_PATCH = "carry-extraction-backlog"
"""Continue-as-new carries the turns not yet extracted instead of extracting them first; histories
recorded before it replay with the extraction before the run ends."""


class ExtractionBacklog:
    def __init__(self, extract: Callable[[UnextractedTurns], Awaitable[None]], quiet: Callable[[], bool],
                 every: int, delay_s: float) -> None:
        self._extract = extract
        self._quiet = quiet
        """No turn running and none queued (the conversation's)."""
        self._every = every
        self._delay = timedelta(seconds=delay_s)
        self._turns: UnextractedTurns | None = None
        self._task: asyncio.Task[None] | None = None
        self._running = False
        """An extraction activity is running."""
        self._hurry = False
        """Extract the backlog now: the run is about to end."""
        self._holding = False
        """The run is handing the backlog over: start no extraction."""

    def add(self, turn: int, first_seq: int, upto_seq: int) -> None:
        backlog = self._turns
        self._turns = (
            backlog.add(turn, first_seq, upto_seq) if backlog is not None
            else UnextractedTurns(first_turn=turn, last_turn=turn, turn_starts=[first_seq], upto_seq=upto_seq)
        )  # fmt: skip
        self._start()

    def take_over(self, carried: UnextractedTurns | None) -> None:
        """The backlog an earlier run handed over, extracted as if its turns were answered here."""
        if carried is not None:
            self._turns = carried
            self._start()

    async def finished(self) -> None:
        """Before the run ends: the backlog is extracted now, not carried."""
        if self._task is not None and not self._task.done():
            self._hurry = True
            await self._task
            self._hurry = False

    async def handed_over(self) -> UnextractedTurns | None:
        """What the next run extracts, once no extraction runs; until :meth:`resume`, none starts."""
        self._holding = True
        await workflow.wait_condition(lambda: not self._running)
        return self._turns

    def resume(self) -> None:
        """The run goes on after all (a message with a waiting caller came): extraction as before."""
        self._holding = False

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._extract_soon())

    async def _extract_soon(self) -> None:
        while self._turns is not None:
            await self._quiet_or_due()
            if self._holding:
                await workflow.wait_condition(lambda: not self._holding)
            backlog, self._turns = self._turns, None
            if backlog is not None:
                self._running = True
                try:
                    await self._extract(backlog)
                finally:
                    self._running = False

    async def _quiet_or_due(self) -> None:
        while not self._due():
            await workflow.wait_condition(lambda: self._due() or self._quiet_now())
            try:
                await workflow.wait_condition(lambda: self._due() or not self._quiet_now(), timeout=self._delay)
            except TimeoutError:
                return

    def _quiet_now(self) -> bool:
        return not self._holding and self._quiet()

    def _due(self) -> bool:
        backlog = self._turns
        return not self._holding and (backlog is None or self._hurry or backlog.turns >= self._every)
