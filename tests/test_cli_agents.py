"""``daemonflow agents`` and archived conversations from the command line, against a real worker on
its own task queue and store (so the counts are this test's alone)."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import WorkflowExecutionStatus

from tests.channel_support import open_channel
from tests.test_archive import closed
from tests.test_cli import daemonflow
from tests.test_conversation import status_of, wait_for

REPO = Path(__file__).resolve().parent.parent


async def test_agents_pause_and_resume_reach_conversations_and_channel_seats(daemon, fake_ollama):
    own = await daemon.start(agent="analyst")
    channel = await open_channel(daemon, agents=["developer", "analyst"])
    seat = daemon.client.get_workflow_handle(f"conversation-{channel.id}--analyst")
    await wait_for(lambda: _answers(seat))
    env = daemon.env()

    paused = await daemonflow(env, REPO, "agents", "pause", "analyst", "--reason", "upgrade")
    assert paused.code == 0, paused.err
    assert paused.out.strip() == "paused agent analyst: 2 running conversations reached (1 in channels)"
    for handle in (own, seat):
        status = await wait_for(lambda handle=handle: _paused(handle))
        assert status.pause_reason == "agent analyst paused: upgrade"
    developer = daemon.client.get_workflow_handle(f"conversation-{channel.id}--developer")
    assert not (await status_of(developer)).paused

    resumed = await daemonflow(env, REPO, "agents", "resume", "analyst")
    assert resumed.out.strip() == "resumed agent analyst: 2 running conversations reached (1 in channels)"
    for handle in (own, seat):
        await wait_for(lambda handle=handle: _not_paused(handle))
    unknown = await daemonflow(env, REPO, "agents", "pause", "nobody")
    assert unknown.code == 1 and "no agent template 'nobody'" in unknown.err


async def test_an_archived_conversation_reads_and_revives_from_the_cli(daemon, fake_ollama):
    handle = await daemon.start(archive_after_s=1, initial_message="remember the tea")
    assert await wait_for(lambda: closed(handle), timeout=30) == WorkflowExecutionStatus.COMPLETED
    cid = handle.id.removeprefix("conversation-")
    env = daemon.env()
    status = await daemonflow(env, REPO, "status", cid)
    assert status.code == 0 and "state         archived" in status.out and "workflow      archived" in status.out
    history = await daemonflow(env, REPO, "history", cid)
    assert "remember the tea" in history.out and "echo: remember the tea" in history.out
    listed = await daemonflow(env, REPO, "agents", "archives", "--kind", "conversation")
    assert listed.out.startswith(f"conversation {cid} · archived") and "after 1s idle · 1 turns" in listed.out

    injected = await daemonflow(env, REPO, "inject", cid, "what did I say?", "--priority", "queue")
    assert injected.code == 0, injected.err
    assert (await wait_for(lambda: _turns(daemon.client.get_workflow_handle(handle.id), 2))).turn == 2
    revived = await daemonflow(env, REPO, "agents", "archives", "--id", cid)
    assert "revived" in revived.out


async def _answers(handle):
    try:
        return await status_of(handle)
    except Exception:  # noqa: BLE001 - not started yet
        return None


async def _paused(handle):
    status = await status_of(handle)
    return status if status.paused else None


async def _not_paused(handle):
    return not (await status_of(handle)).paused


async def _turns(latest, n):
    status = await status_of(latest)
    return status if status.turn >= n and status.state == "idle" else None
