"""``daemonflow plan …`` for real: subprocesses talking to the session's Temporal server, answered
by the test's worker; the fake model answers as each task."""

from __future__ import annotations

import asyncio
import json

import yaml

from tests.fakes.ollama import Reply
from tests.plan_support import TaskModel, plan_id
from tests.test_cli import daemonflow


async def test_create_watch_status_and_cancel_from_the_command_line(daemon, fake_ollama, tmp_path):
    model = TaskModel(fake_ollama)
    env = daemon.env()
    pid = plan_id()
    spec = tmp_path / "release.yaml"
    spec.write_text(yaml.safe_dump({"title": "release", "tasks": [
        {"id": "build", "prompt": "build it"}, {"id": "test", "prompt": "test it", "depends_on": ["build"]}]}))
    created = await daemonflow(env, tmp_path, "plan", "create", str(spec), "--id", pid, "--watch")
    assert created.code == 0, created.err
    lines = created.out.splitlines()
    assert lines[0] == f"plan {pid} started (2 tasks): daemonflow plan watch {pid}"
    assert lines[-1] == "succeeded · 2/2 done", created.out
    status = await daemonflow(env, tmp_path, "plan", "status", pid)
    assert status.code == 0 and f"plan {pid} — release: succeeded · 2/2 done" in status.out
    assert "test             succeeded         normal   after build  result of test" in status.out
    as_json = json.loads((await daemonflow(env, tmp_path, "plan", "status", pid, "--json")).out)
    assert [t["state"] for t in as_json["tasks"]] == ["succeeded", "succeeded"]

    model.script("slow", Reply(content="late", delay_s=20))
    other = tmp_path / "slow.json"
    other.write_text(json.dumps({"tasks": [{"id": "slow", "prompt": "wait"}, {"id": "next", "prompt": "x", "depends_on": ["slow"]}]}))
    slow_id = plan_id()
    assert (await daemonflow(env, tmp_path, "plan", "create", str(other), "--id", slow_id)).code == 0
    watching = asyncio.create_task(daemonflow(env, tmp_path, "plan", "watch", slow_id))
    cancelled = await daemonflow(env, tmp_path, "plan", "cancel", slow_id, "--reason", "not today")
    assert cancelled.code == 0 and cancelled.out.strip() == f"plan {slow_id}: end sent"
    watched = await watching
    assert watched.code == 1 and watched.out.splitlines()[-1].startswith("ended: not today · 2/2 done")


async def test_a_bad_plan_file_is_refused_with_what_is_wrong(daemon, tmp_path):
    env = daemon.env()
    cyclic = tmp_path / "cycle.yaml"
    cyclic.write_text(yaml.safe_dump({"tasks": [{"id": "a", "prompt": "x", "depends_on": ["b"]},
                                                {"id": "b", "prompt": "y", "depends_on": ["a"]}]}))  # fmt: skip
    refused = await daemonflow(env, tmp_path, "plan", "create", str(cyclic))
    assert refused.code == 2 and "dependency cycle: a → b → a" in refused.err
    agent = tmp_path / "agent.json"
    agent.write_text(json.dumps({"tasks": [{"id": "a", "prompt": "x", "agent": "nobody"}]}))
    refused = await daemonflow(env, tmp_path, "plan", "create", str(agent))
    assert refused.code == 2 and "unknown agent template(s) nobody" in refused.err
    missing = await daemonflow(env, tmp_path, "plan", "status", "nope")
    assert missing.code == 1 and "no plan 'nope'" in missing.err
