"""A worker killed while the model streams: the turn completes on another worker, and a client
following the API's live stream sees the first attempt's text reset, then the reply once.

Real processes: ``daemonflow api`` and two ``workers.main`` (the first killed with SIGKILL), the
shared Temporal dev server, the fake Ollama streaming with a delay.
"""

from __future__ import annotations

import asyncio

import httpx

from store.engine import make_engine
from store.transcript import TranscriptStore
from tests.fakes.ollama import Reply
from tests.fixtures.api import api_env, free_port, launch, role_keys, stop, wait_for_http
from tests.fixtures.temporal import daemon_settings
from tests.streaming_support import read_frames, replies, reply_stored
from tests.test_durability import WorkerProcess
from tests.test_streaming import LONG, tokens


async def _reconnect(http: httpx.AsyncClient, last_event_id: int) -> list:
    """As an SSE client does: until the stream opens (503 while no worker can read it), then read."""
    while True:
        try:
            return await read_frames(http, "crash-stream", reply_stored(), last_event_id)
        except AssertionError as refused:
            assert "\"status\":503" in str(refused), refused
            await asyncio.sleep(1)


async def test_a_worker_killed_mid_stream_the_client_sees_a_reset_then_the_reply_once(
    temporal_address, fake_ollama, tmp_path
) -> None:
    settings = daemon_settings(tmp_path, temporal_address, fake_ollama.url)
    keys, port = role_keys(), free_port()
    env = api_env(settings, keys, port)
    worker_env = {**env, "DAEMONFLOW_SCHEDULES": "off", "DAEMONFLOW_METRICS_PORT": str(free_port()),
                  "DAEMONFLOW_TEMPORAL_METRICS_PORT": str(free_port())}  # never the default ports
    api = launch(env, tmp_path / "api.log")
    first = WorkerProcess(worker_env, tmp_path / "worker-1.log")
    second = None
    fake_ollama.chunk_delay_s = 0.1
    fake_ollama.script(Reply(content=LONG), Reply(content=LONG))
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_for_http(url, api, tmp_path / "api.log")
        http = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {keys['operator']}"}, timeout=60)
        created = await http.post("/conversations", params={"wait": "false"},
                                  json={"conversation_id": "crash-stream", "message": "go"})  # fmt: skip
        assert created.status_code in (201, 202), created.text
        before = await asyncio.wait_for(read_frames(http, "crash-stream", lambda f: len(tokens(f)) >= 2), 60)
        await asyncio.to_thread(first.kill)  # mid-stream: 40 chunks at 0.1 s, two batches seen
        second = WorkerProcess(worker_env, tmp_path / "worker-2.log")
        after = await asyncio.wait_for(_reconnect(http, before[-1].id), 120)
        await http.aclose()
    finally:
        for worker in (first, second):
            if worker:
                worker.close()
        await asyncio.to_thread(stop, api)

    frames = before + after
    resets = [f for f in frames if f.event == "token_reset"]
    assert [r.data["attempt"] for r in resets] == [2]
    assert {f.data["attempt"] for f in tokens(before)} == {1}
    shown = replies(frames)
    seq = resets[0].data["seq"]
    assert shown.text[seq] == shown.stored[seq] == LONG  # the partial text replaced, not doubled
    assert [f.data["data"]["seq"] for f in frames if f.event == "message" and f.data["data"]["role"] == "assistant"] == [seq]
    stored = TranscriptStore(make_engine(settings.effective_database_url)).list_messages("crash-stream")
    assert [(m.role, m.content) for m in stored] == [("user", "go"), ("assistant", LONG)]
