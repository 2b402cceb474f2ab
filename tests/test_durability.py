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


async def test_worker_killed_mid_turn_a_new_worker_completes_it_once(
    temporal_env, temporal_address, fake_ollama, tmp_path
):
    daemon = await _daemon_without_worker(temporal_env, temporal_address, fake_ollama, tmp_path)
    fake_ollama.script(Reply(content="the first attempt never finishes", delay_s=30))
    first = WorkerProcess(daemon.env(), tmp_path / "worker-1.log")
    second = None
    try:
        handle = await daemon.start()
        turn = asyncio.create_task(daemon.send(handle, "survive this"))
        await wait_for(lambda: _true(len(fake_ollama.chat_requests()) == 1), timeout=30)
        first.kill()
        second = WorkerProcess(daemon.env(), tmp_path / "worker-2.log")
        result = await asyncio.wait_for(turn, timeout=90)
    finally:
        first.close()
        if second:
            second.close()
    assert result.reply == "echo: survive this"
    conversation_id = handle.id.removeprefix("conversation-")
    messages = daemon.store.list_messages(conversation_id)
    assert [(m.role, m.content) for m in messages] == [("user", "survive this"), ("assistant", "echo: survive this")]
    assert len(fake_ollama.chat_requests()) == 2
    assert len(daemon.store.usage(conversation_id)) == 1


async def test_sigterm_lets_the_running_model_call_finish(temporal_env, temporal_address, fake_ollama, tmp_path):
    daemon = await _daemon_without_worker(temporal_env, temporal_address, fake_ollama, tmp_path)
    fake_ollama.script(Reply(content="finished during shutdown", delay_s=2))
    first = WorkerProcess(daemon.env(), tmp_path / "worker-1.log")
    second = None
    try:
        handle = await daemon.start()
        turn = asyncio.create_task(daemon.send(handle, "take your time"))
        await wait_for(lambda: _true(len(fake_ollama.chat_requests()) == 1), timeout=30)
        exit_code = await asyncio.to_thread(first.terminate)
        second = WorkerProcess(daemon.env(), tmp_path / "worker-2.log")
        result = await asyncio.wait_for(turn, timeout=60)
    finally:
        first.close()
        if second:
            second.close()
    assert exit_code == 0
    assert result.reply == "finished during shutdown"
    assert len(fake_ollama.chat_requests()) == 1


async def _true(value: bool) -> bool:
    return value
