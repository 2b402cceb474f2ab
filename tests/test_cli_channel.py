"""``daemonflow channel …`` for real: subprocesses talking to the session's Temporal server, answered
by the test's worker; the fake Ollama answers as each agent."""

from __future__ import annotations

import asyncio
import json

from tests.channel_support import CODING, DATA, channel_id, team_answers
from tests.fakes.ollama import Reply, ToolCall, by_system_prompt
from tests.test_cli import daemonflow
from tests.test_conversation import wait_for


async def test_create_post_watch_history_and_end_from_the_command_line(daemon, fake_ollama, tmp_path):
    team_answers(fake_ollama)
    env, cid = daemon.env(), channel_id()
    spec = tmp_path / "channel.yaml"
    spec.write_text("title: Release 2.3\nagents: [developer, {agent: moderator}]\n"
                    "relevance: {thresholds: {intervene: 0.5}}\nbudgets: {replies_per_post: 2}\n")
    created = await daemonflow(env, tmp_path, "channel", "create", cid, "--file", str(spec), "--agent", "analyst",
                               "--person", "alice", "--user", "u1")  # fmt: skip
    assert created.code == 0, created.err
    assert created.out.strip() == (f"created channel {cid} (agents: developer, moderator, analyst; people: alice); "
                                   f"post with `daemonflow channel post {cid} TEXT`")

    posted = await daemonflow(env, tmp_path, "channel", "post", cid, CODING, "--as", "alice")
    assert posted.code == 0, posted.err
    lines = posted.out.splitlines()
    assert lines[0] == f"[#1] alice: {CODING}"
    assert lines[1].startswith("[#2] developer (intervene (high priority) 0.") and lines[1].endswith(
        "Run pytest with -x and read the traceback.")
    assert "moderator ignore 0.00" in lines[2] and "analyst ignore 0.00" in lines[2]

    as_json = await daemonflow(env, tmp_path, "channel", "post", cid, DATA, "--as", "bob", "--json")
    assert json.loads(as_json.out)["spoke"] == ["analyst"]
    status = await daemonflow(env, tmp_path, "channel", "status", cid)
    assert f"channel       {cid} · Release 2.3" in status.out and "people        alice, bob" in status.out
    assert "agent         developer    idle               1 replies" in status.out
    history = await daemonflow(env, tmp_path, "channel", "history", cid, "--limit", "3")
    assert history.out.splitlines()[0] == "[#2] developer: Run pytest with -x and read the traceback."
    listed = await daemonflow(env, tmp_path, "channel", "list", "--member", "bob")
    assert listed.code == 0 and cid in listed.out

    watching = asyncio.create_task(daemonflow(env, tmp_path, "channel", "watch", cid))
    ended = await daemonflow(env, tmp_path, "channel", "end", cid, "--reason", "released")
    assert ended.out.strip() == f"ended channel {cid} and its agents' conversations"
    watched = await watching
    assert watched.code == 0 and f"[#1] alice: {CODING}" in watched.out
    assert "scored #1: developer intervene" in watched.out and watched.out.splitlines()[-1].endswith("ended: released")


async def test_a_post_waiting_for_a_person_says_what_to_approve(daemon, fake_ollama, tmp_path):
    team_answers(fake_ollama)
    asked = []

    def developer(request):
        asked.append(request)
        return Reply(tool_calls=[ToolCall(name="run_command", arguments={"command": "ls"})]) if len(asked) == 1 else "no"

    fake_ollama.responder = by_system_prompt({'You are "developer"': developer})
    env, cid = daemon.env(), channel_id()
    assert (await daemonflow(env, tmp_path, "channel", "create", cid, "--agent", "developer")).code == 0
    posted = await daemonflow(env, tmp_path, "channel", "post", cid, CODING, "--as", "alice")
    assert posted.code == 0, posted.err
    assert "waiting for a person to decide developer's run_command (call 2-0)" in posted.out
    assert f"  daemonflow approve {cid}--developer 2-0   (or deny)" in posted.out
    denied = await daemonflow(env, tmp_path, "deny", f"{cid}--developer", "2-0", "--reason", "not now")
    assert denied.code == 0, denied.err

    async def answered():
        out = (await daemonflow(env, tmp_path, "channel", "history", cid)).out
        return "[#2] developer: no" in out

    await wait_for(answered, timeout=30)


async def test_mistakes_are_explained(daemon, tmp_path):
    env = daemon.env()
    no_agents = await daemonflow(env, tmp_path, "channel", "create", "x1")
    assert no_agents.code == 2 and "a channel needs at least one agent" in no_agents.err
    unknown = await daemonflow(env, tmp_path, "channel", "status", "nope-nope")
    assert unknown.code == 1 and "no channel 'nope-nope'" in unknown.err
    cid = channel_id()
    assert (await daemonflow(env, tmp_path, "channel", "create", cid, "--agent", "developer")).code == 0
    bad_author = await daemonflow(env, tmp_path, "channel", "post", cid, "hi", "--as", "a b")
    assert bad_author.code == 2 and "choose one with --as NAME" in bad_author.err
    as_agent = await daemonflow(env, tmp_path, "channel", "post", cid, "hi", "--as", "developer")
    assert as_agent.code == 1 and "agents speak through their turns" in as_agent.err
    twice = await daemonflow(env, tmp_path, "channel", "create", cid, "--agent", "developer")
    assert twice.code == 1 and "is already used" in twice.err
