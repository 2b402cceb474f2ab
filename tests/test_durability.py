"""Workers die and stop; conversations go on. Workers here are real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.fakes.ollama import Reply
from tests.fixtures.temporal import Daemon, daemon_settings
from tests.test_conversation import wait_for
from tests.test_turn_overhead import scheduled
from store.engine import make_engine
from store.transcript import TranscriptStore


class WorkerProcess:
    """``python -m workers.main`` in its own process, logging to a file for post-mortems."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workers.main"],
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        self._log.close()


async def _daemon_without_worker(temporal_env, temporal_address, fake_ollama, tmp_path) -> Daemon:
    settings = daemon_settings(tmp_path, temporal_address, fake_ollama.url)
    store = TranscriptStore(make_engine(settings.effective_database_url))
    return Daemon(client=temporal_env.client, settings=settings, store=store, worker=None)


async def _interrupt_a_turn(daemon, fake_ollama, tmp_path, content, stop_first_worker, before=()):
    """Start a turn on one worker process (after the turns ``before``), stop it with
    ``stop_first_worker`` while the model call runs, start a second worker, and return (turn
    result, what stopping returned, handle)."""
    first = WorkerProcess(daemon.env(), tmp_path / "worker-1.log")
    second = None
    try:
        handle = await daemon.start()
        for earlier in before:
            await daemon.send(handle, earlier)
        turn = asyncio.create_task(daemon.send(handle, content))
        await wait_for(lambda: _true(len(fake_ollama.chat_requests()) == len(before) + 1), timeout=30)
        stopped = await asyncio.to_thread(stop_first_worker, first)
        second = WorkerProcess(daemon.env(), tmp_path / "worker-2.log")
        return await asyncio.wait_for(turn, timeout=90), stopped, handle
    finally:
        for worker in (first, second):
            if worker:
                worker.close()


async def test_worker_killed_mid_turn_a_new_worker_completes_it_once(
    temporal_env, temporal_address, fake_ollama, tmp_path
):
    daemon = await _daemon_without_worker(temporal_env, temporal_address, fake_ollama, tmp_path)
    fake_ollama.script(Reply(content="the first attempt never finishes", delay_s=30))
    result, _, handle = await _interrupt_a_turn(daemon, fake_ollama, tmp_path, "survive this", WorkerProcess.kill)
    assert result.reply == "echo: survive this"
    conversation_id = handle.id.removeprefix("conversation-")
    messages = daemon.store.list_messages(conversation_id)
    assert [(m.role, m.content) for m in messages] == [("user", "survive this"), ("assistant", "echo: survive this")]
    assert len(fake_ollama.chat_requests()) == 2
    assert len(daemon.store.usage(conversation_id)) == 1


async def test_sigterm_lets_the_running_model_call_finish(temporal_env, temporal_address, fake_ollama, tmp_path):
    daemon = await _daemon_without_worker(temporal_env, temporal_address, fake_ollama, tmp_path)
    fake_ollama.script(Reply(content="finished during shutdown", delay_s=2))
    result, exit_code, _ = await _interrupt_a_turn(
        daemon, fake_ollama, tmp_path, "take your time", WorkerProcess.terminate
    )
    assert exit_code == 0
    assert result.reply == "finished during shutdown"
    assert len(fake_ollama.chat_requests()) == 1


async def _true(value: bool) -> bool:
    return value


async def test_worker_killed_during_a_local_model_step_a_new_worker_completes_it_once(
    temporal_env, temporal_address, fake_ollama, tmp_path
):
    """A quick model's step runs inside the workflow task (``workflows/model_step.py``): the task
    dies with its worker, and the next worker replays and runs the step again."""
    daemon = await _daemon_without_worker(temporal_env, temporal_address, fake_ollama, tmp_path)
    fake_ollama.script(Reply(content="echo: a quick first turn"),  # answered at once: the next step is local
                       Reply(content="the first attempt never finishes", delay_s=30))
    result, _, handle = await _interrupt_a_turn(daemon, fake_ollama, tmp_path, "survive this", WorkerProcess.kill,
                                                before=["a quick first turn"])  # fmt: skip
    assert result.reply == "echo: survive this"
    assert [kind for kind, *_ in await scheduled(handle)] == ["transcript.open", "llm.chat"]  # the 2nd step: local
    conversation_id = handle.id.removeprefix("conversation-")
    assert [(m.role, m.content) for m in daemon.store.list_messages(conversation_id)][2:] == [
        ("user", "survive this"), ("assistant", "echo: survive this")]
    assert len(fake_ollama.chat_requests()) == 3
    assert len(daemon.store.usage(conversation_id)) == 2
