"""``daemonflow chat`` prints the reply while the model writes it; ``--no-stream`` prints it once
stored; ``daemonflow double-texting`` sets the policy. Real subprocesses, the session's Temporal
server, the worker on this process's loop, the fake Ollama streaming with a delay."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from models.conversation import ConversationInput
from models.streaming import DoubleTexting
from tests.channel_support import ANSWERS, CODING, channel_id, team_answers
from tests.fakes.ollama import Reply
from tests.fixtures.temporal import Daemon
from tests.test_cli import daemonflow, inherited_env, status_of
from tests.test_streaming import LONG


async def chat_output_as_it_comes(daemon: Daemon, tmp_path: Path, *args: str) -> list[str]:
    """Run ``daemonflow chat ARGS``, send one message, and return stdout as successive snapshots
    (everything read so far, after each read), until the whole reply is on screen."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", "chat", *args, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**inherited_env(), **daemon.env()}, cwd=tmp_path,
    )  # fmt: skip
    assert process.stdin and process.stdout
    process.stdin.write(b"talk to me\n")
    await process.stdin.drain()
    snapshots, seen = [], ""
    try:
        while "word39" not in seen:
            chunk = await asyncio.wait_for(process.stdout.read(1 << 16), 60)
            assert chunk, f"chat exited early: {seen!r} {(await process.stderr.read()).decode()}"
            seen += chunk.decode()
            snapshots.append(seen)
    finally:
        process.stdin.write(b"/quit\n")
        await process.stdin.drain()
        process.stdin.close()
        await asyncio.wait_for(process.wait(), 60)
    return snapshots


async def test_chat_prints_tokens_as_they_arrive(daemon: Daemon, fake_ollama, tmp_path: Path) -> None:
    fake_ollama.chunk_delay_s = 0.05
    fake_ollama.script(Reply(content=LONG))
    snapshots = await chat_output_as_it_comes(daemon, tmp_path)
    partial = [s for s in snapshots if "word0" in s and "word39" not in s]
    assert partial, "the reply appeared all at once: nothing was printed while the model wrote"
    assert f"assistant> {LONG}\n" in snapshots[-1] + "\n"
    assert snapshots[-1].count("word20") == 1  # printed once, not streamed and then printed again


async def test_chat_no_stream_prints_the_stored_reply_in_one_piece(daemon: Daemon, fake_ollama, tmp_path: Path) -> None:
    fake_ollama.chunk_delay_s = 0.05
    fake_ollama.script(Reply(content=LONG))
    snapshots = await chat_output_as_it_comes(daemon, tmp_path, "--no-stream")
    assert not [s for s in snapshots if "word0" in s and "word39" not in s]
    assert f"assistant> {LONG}" in snapshots[-1]


async def test_chat_double_texting_starts_the_conversation_with_that_policy(daemon: Daemon, fake_ollama, tmp_path: Path) -> None:
    fake_ollama.script(Reply(content=LONG))
    snapshots = await chat_output_as_it_comes(daemon, tmp_path, "--double-texting", "reject")
    conversation_id = re.search(r"conversation (\S+) · agent", snapshots[-1]).group(1)
    handle = daemon.client.get_workflow_handle(f"conversation-{conversation_id}")
    assert (await status_of(handle)).double_texting == DoubleTexting.REJECT


async def test_double_texting_command_sets_the_policy(daemon: Daemon, tmp_path: Path) -> None:
    handle = await daemon.start()
    conversation_id = handle.id.removeprefix("conversation-")
    run = await daemonflow(daemon.env(), tmp_path, "double-texting", conversation_id, "reject")
    assert run.code == 0, run.err
    assert f"double-texting of conversation {conversation_id}: reject" in run.out
    assert (await status_of(handle)).double_texting == DoubleTexting.REJECT
    wrong = await daemonflow(daemon.env(), tmp_path, "double-texting", conversation_id, "sometimes")
    assert wrong.code == 2 and re.search(r"invalid choice: 'sometimes'", wrong.err)
    assert ConversationInput().double_texting == DoubleTexting.ENQUEUE


async def test_channel_watch_prints_an_agent_writing(daemon: Daemon, fake_ollama, tmp_path: Path) -> None:
    team_answers(fake_ollama)
    fake_ollama.chunk_delay_s = 0.2  # 8 chunks: 1.6 s of writing
    env, cid = daemon.env(), channel_id()
    assert (await daemonflow(env, tmp_path, "channel", "create", cid, "--agent", "developer")).code == 0
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", "channel", "watch", cid, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**inherited_env(), **env}, cwd=tmp_path,
    )  # fmt: skip
    assert process.stdout
    await asyncio.sleep(2)  # the watcher is following the developer's conversation
    posting = asyncio.create_task(daemonflow(env, tmp_path, "channel", "post", cid, CODING, "--as", "alice"))
    snapshots, seen = [], ""
    while "[#2] developer:" not in seen:
        chunk = await asyncio.wait_for(process.stdout.read(1 << 16), 60)
        assert chunk, (await process.stderr.read()).decode()
        seen += chunk.decode()
        snapshots.append(seen)
    assert (await posting).code == 0
    await daemonflow(env, tmp_path, "channel", "end", cid)
    await asyncio.wait_for(process.wait(), 60)
    writing = [s for s in snapshots if "developer> Run" in s and "read the traceback." not in s.split("developer> ", 1)[1]]
    assert writing, f"the developer's reply was not printed while it was written: {snapshots}"
    written = "".join(line.split("> ", 1)[1].removeprefix("…") for line in seen.splitlines() if line.startswith("developer> "))
    assert written == ANSWERS["developer"]  # every token printed once (an event line may come in between)
