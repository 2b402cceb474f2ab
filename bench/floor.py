"""The floor: the least a Temporal-backed chat turn can cost on this machine.

One update, one trivial activity, its result returned. Whatever ``ConversationWorkflow`` costs on
top of this is Daemonflow's own overhead (store writes, the model call over HTTP, search attribute
upserts, bigger payloads), which is what the benchmark wants to show. It lives in an importable
module, not in the script's ``__main__``, so the workflow sandbox can re-import it.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="floor.echo")
async def echo(text: str) -> str:
    return f"echo: {text}"


@workflow.defn(name="FloorWorkflow")
class FloorWorkflow:
    """Stays open until ``end``; every ``send_message`` is one activity round trip."""

    def __init__(self) -> None:
        self._ended = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._ended)

    @workflow.update
    async def send_message(self, text: str) -> str:
        return await workflow.execute_activity(echo, text, start_to_close_timeout=timedelta(seconds=30))

    @workflow.signal
    def end(self) -> None:
        self._ended = True
