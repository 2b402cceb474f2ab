"""What live token streaming costs: time to first token through the API, history per turn, and
worker/API CPU per viewer.

Run ``python -m bench.streaming [--quick]``. It starts its own Temporal dev server, a fake Ollama
that streams its reply a word at a time (``--chunk-ms`` apart), a worker process
(``python -m workers.main``) and an API process (``python -m cli.main api``) on a temporary SQLite
file, then measures, in one run:

- **time to first token**: the ``ollama`` client streaming straight from the fake (first chunk with
  text), against a message sent through the API (``POST /conversations/{id}/messages``) until the
  first ``token`` frame reaches an SSE viewer already connected — the difference is what Daemonflow
  adds (workflow task, activity, publish signal, the stream's long poll, the API hub, SSE);
- **history per turn**: bytes of workflow history a turn adds with ``stream_tokens`` on and off
  (one viewer connected in both cases);
- **CPU per viewer**: CPU seconds the worker process and the API process spend per turn with 1, 10
  and 50 viewers on one conversation (one subscription, fanned out).

It prints figures and the load average; it never judges them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import ollama
from temporalio.testing import WorkflowEnvironment

from bench.conversation import load_average, machine_info, profiled_args, progress, start_dev_server, temporal_binary
from tests.fakes.ollama import FakeOllama, Reply
from tests.fixtures.api import api_env, free_port, role_keys, wait_for_http
from tests.fixtures.temporal import daemon_settings
from workers.process_exit import exit_without_finalization

PROFILES = {"default": dict(turns=20, cpu_turns=5), "quick": dict(turns=6, cpu_turns=2)}
TURN_TIMEOUT_S = 120
REPLY = " ".join(f"word{i}" for i in range(20))


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def direct_first_token(url: str, n: int) -> list[float]:
    client = ollama.AsyncClient(host=url)
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        async for chunk in await client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}], stream=True):
            if chunk.message.content:
                samples.append(time.perf_counter() - began)
                break
    return samples


class Viewer:
    """One SSE client of a conversation; ``first_token`` is set at each turn's first token."""

    def __init__(self, http: httpx.AsyncClient, cid: str) -> None:
        self.first_token = asyncio.Event()
        self.stored = asyncio.Event()
        self.ready = asyncio.Event()
        self.task = asyncio.create_task(self._read(http, cid))

    async def _read(self, http: httpx.AsyncClient, cid: str) -> None:
        async with http.stream("GET", f"/conversations/{cid}/events") as stream:
            self.ready.set()
            event = ""
            async for line in stream.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "token":
                    self.first_token.set()
                elif line.startswith("data: ") and event == "message" and '"role": "assistant"' in line:
                    self.stored.set()

    def next_turn(self) -> None:
        self.first_token.clear()
        self.stored.clear()


async def turn(http: httpx.AsyncClient, cid: str, viewers: list[Viewer], ollama_fake: FakeOllama,
               streaming: bool = True) -> float:  # fmt: skip
    """One turn; seconds from sending the message to the first viewer's first token (or, without
    streaming, to the stored reply)."""
    for viewer in viewers:
        viewer.next_turn()
    ollama_fake.script(Reply(content=REPLY))
    began = time.perf_counter()
    sent = await http.post(f"/conversations/{cid}/messages", params={"wait": "false"}, json={"content": "hi"})
    sent.raise_for_status()
    await asyncio.wait_for((viewers[0].first_token if streaming else viewers[0].stored).wait(), TURN_TIMEOUT_S)
    first = time.perf_counter() - began
    await asyncio.wait_for(asyncio.gather(*(v.stored.wait() for v in viewers)), TURN_TIMEOUT_S)
    await asyncio.sleep(0.3)  # the turn's last events (turn_completed, idle)
    return first


async def conversation(http: httpx.AsyncClient, count: int, **options) -> tuple[str, list[Viewer]]:
    cid = f"bench-{uuid.uuid4().hex[:8]}"
    (await http.post("/conversations", json={"conversation_id": cid, **options})).raise_for_status()
    viewers = [Viewer(http, cid) for _ in range(count)]
    await asyncio.gather(*(v.ready.wait() for v in viewers))
    await asyncio.sleep(0.5)
    return cid, viewers


async def history_bytes(env: WorkflowEnvironment, cid: str) -> int:
    return len((await env.client.get_workflow_handle(f"conversation-{cid}").fetch_history()).to_json())


async def close(viewers: list[Viewer]) -> None:
    for viewer in viewers:
        viewer.task.cancel()
    await asyncio.gather(*(v.task for v in viewers), return_exceptions=True)


async def measure(args: argparse.Namespace, env: WorkflowEnvironment, fake: FakeOllama, http: httpx.AsyncClient,
                  worker: subprocess.Popen, api: subprocess.Popen) -> dict:  # fmt: skip
    figures: dict = {"direct": await direct_first_token(fake.url, args.turns)}
    progress(f"  time to first token: {args.turns} turns through the API")
    cid, viewers = await conversation(http, 1)
    figures["api"] = [await turn(http, cid, viewers, fake) for _ in range(args.turns)]
    await close(viewers)
    for label, on in (("streaming", True), ("no streaming", False)):
        cid, viewers = await conversation(http, 1, stream_tokens=on)
        before = await history_bytes(env, cid)
        for _ in range(args.cpu_turns):
            await turn(http, cid, viewers, fake, streaming=on)
        figures[f"history {label}"] = (await history_bytes(env, cid) - before) / args.cpu_turns
        await close(viewers)
    for count in (1, 10, 50):
        progress(f"  CPU with {count} viewers: {args.cpu_turns} turns")
        cid, viewers = await conversation(http, count)
        cpu = cpu_seconds(worker.pid), cpu_seconds(api.pid)
        for _ in range(args.cpu_turns):
            await turn(http, cid, viewers, fake)
        figures[f"cpu {count}"] = ((cpu_seconds(worker.pid) - cpu[0]) / args.cpu_turns,
                                   (cpu_seconds(api.pid) - cpu[1]) / args.cpu_turns)  # fmt: skip
        await close(viewers)
    return figures


def ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def report(figures: dict, args: argparse.Namespace, load_before: str) -> None:
    direct, api = figures["direct"], figures["api"]
    print(f"# bench.streaming — {machine_info(temporal_binary())}")
    print(f"# 1-min load average {load_before} before, {load_average()} after; fake Ollama: {len(REPLY.split())} "
          f"chunks {args.chunk_ms} ms apart; {args.turns} turns, one after another")  # fmt: skip
    print(f"{'time to first token':34}{'p50 ms':>9}{'p95 ms':>9}")
    print(f"{'ollama client, straight':34}{ms(direct, 0.5):>9.1f}{ms(direct, 0.95):>9.1f}")
    print(f"{'through the API (POST → SSE)':34}{ms(api, 0.5):>9.1f}{ms(api, 0.95):>9.1f}")
    print(f"{'added by Daemonflow':34}{ms(api, 0.5) - ms(direct, 0.5):>9.1f}{ms(api, 0.95) - ms(direct, 0.95):>9.1f}")
    on, off = figures["history streaming"], figures["history no streaming"]
    print(f"# history per turn: {on / 1024:.1f} KiB streaming, {off / 1024:.1f} KiB without ({on / off:.2f}x), "
          f"a {len(REPLY)}-character reply")  # fmt: skip
    print(f"{'viewers':>8}{'worker CPU ms/turn':>20}{'API CPU ms/turn':>18}")
    for count in (1, 10, 50):
        worker, api_cpu = figures[f"cpu {count}"]
        print(f"{count:>8}{worker * 1000:>20.0f}{api_cpu * 1000:>18.0f}")
    print(f"# mean of direct first token {statistics.mean(direct) * 1000:.1f} ms; through the API "
          f"{statistics.mean(api) * 1000:.1f} ms")  # fmt: skip


async def run(args: argparse.Namespace) -> None:
    load_before = load_average()
    progress("starting Temporal dev server, fake Ollama, a worker and an API process")
    env = await start_dev_server()
    try:
        with FakeOllama() as fake, tempfile.TemporaryDirectory(prefix="daemonflow-bench-streaming-") as tmp:
            fake.chunk_delay_s = args.chunk_ms / 1000
            settings = daemon_settings(Path(tmp), env.client.service_client.config.target_host, fake.url)
            keys, port = role_keys(), free_port()
            process_env = {**api_env(settings, keys, port), "DAEMONFLOW_SCHEDULES": "off",  # no default ports
                           "DAEMONFLOW_METRICS_PORT": str(free_port()), "DAEMONFLOW_TEMPORAL_METRICS_PORT": str(free_port())}
            with (Path(tmp) / "worker.log").open("wb") as log:
                worker = subprocess.Popen([sys.executable, "-m", "workers.main"], env=process_env, stdout=log,
                                          stderr=subprocess.STDOUT)  # fmt: skip
            with (Path(tmp) / "api.log").open("wb") as log:
                api = subprocess.Popen([sys.executable, "-m", "cli.main", "api"], env=process_env, stdout=log,
                                       stderr=subprocess.STDOUT)  # fmt: skip
            try:
                await wait_for_http(f"http://127.0.0.1:{port}", api, Path(tmp) / "api.log")
                headers = {"Authorization": f"Bearer {keys['operator']}"}
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=120) as http:
                    figures = await measure(args, env, fake, http, worker, api)
            except BaseException:
                for name in ("worker.log", "api.log"):
                    progress(f"--- {name} (last 3000 characters)\n{(Path(tmp) / name).read_text(errors='replace')[-3000:]}")
                raise
            finally:
                for process in (api, worker):
                    process.terminate()
                    process.wait(30)
    finally:
        await env.shutdown()
    report(figures, args, load_before)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.streaming", description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, help="turns for time to first token (default 20, quick 6)")
    parser.add_argument("--cpu-turns", type=int, help="turns per viewer count and per history figure (default 5, quick 2)")
    parser.add_argument("--chunk-ms", type=float, default=50.0, help="ms between the fake's chunks (default 50)")
    return profiled_args(parser, argv, PROFILES)


def main(argv: list[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
    exit_without_finalization(0)  # temporalio/sdk-python#300: see workers/process_exit.py
