"""The sandbox escape suite, against the real Docker engine and the real sandbox image.

Each test tries one way out (network, root filesystem, privileges, the Docker socket, host paths,
resources, time) and asserts the door is shut and the attempt is reported. Tests that cannot hurt
each other share one container (module fixture); the ones that exhaust a resource or delete
containers get their own conversation.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import activities.sandbox as sandbox_module
from activities.sandbox import (
    CREATED_BY,
    LABEL_CONVERSATION,
    LABEL_CREATED_BY,
    LABEL_NETWORK,
    SandboxActivities,
    SandboxFileError,
    SandboxImageMissing,
    SandboxManager,
    SandboxUnavailable,
    SandboxViolation,
    container_name,
    volume_name,
    workspace_path,
)
from config.settings import Settings
from models.sandbox import ExecRequest, ExecResult, ReadFileRequest, SandboxLimits
from tests.fixtures.docker import remove_sandbox

LIMITS = SandboxLimits(memory="256m", pids=64, kill_grace_s=2.0, pids_full_s=3.0)


@pytest.fixture(scope="module")
def manager(docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> SandboxManager:
    return SandboxManager(docker_client, Settings(), tmp_path_factory.mktemp("artifacts"), LIMITS)


@pytest.fixture(scope="module")
def shared(manager: SandboxManager, docker_client: docker.DockerClient) -> Iterator[str]:
    """One conversation (container + volume) for the tests that do not disturb each other."""
    conversation_id = f"test-shared-{uuid.uuid4().hex[:10]}"
    manager.ensure(conversation_id)
    yield conversation_id
    remove_sandbox(docker_client, conversation_id)


def run(manager: SandboxManager, conversation_id: str, command: str, **options) -> ExecResult:
    return manager.exec(ExecRequest(conversation_id=conversation_id, command=command, **options))


def sleeping(manager: SandboxManager, conversation_id: str, seconds: int) -> int:
    """How many ``sleep <seconds>`` processes are left in the container.

    Matches the argument exactly (``grep -x`` over NUL-separated argv) with a bracket expression, so
    the probe's own command line never matches itself.
    """
    digits = str(seconds)
    pattern = f"{digits[:-1]}[{digits[-1]}]"
    probe = f"grep -lxz '{pattern}' /proc/[0-9]*/cmdline 2>/dev/null | wc -l"
    return int(run(manager, conversation_id, probe).output)


# --- the escape suite ---------------------------------------------------------------------------


def test_network_is_unreachable(manager: SandboxManager, shared: str) -> None:
    interfaces = run(manager, shared, "ls /sys/class/net")
    assert interfaces.output.split() == ["lo"]
    probe = run(
        manager,
        shared,
        "python3 -c 'import socket; s = socket.create_connection((\"1.1.1.1\", 53), timeout=3)'",
    )
    assert probe.exit_code != 0
    assert "Network is unreachable" in probe.output or "OSError" in probe.output


def test_root_filesystem_is_read_only(manager: SandboxManager, shared: str) -> None:
    for path in ("/usr/x", "/etc/x", "/home/sandbox/x", "/x"):
        result = run(manager, shared, f"touch {path}")
        assert result.exit_code != 0, path
        assert "Read-only file system" in result.output, result.output


def test_tmp_is_writable_but_noexec(manager: SandboxManager, shared: str) -> None:
    result = run(manager, shared, "printf '#!/bin/sh\\necho ran\\n' > /tmp/x.sh && chmod +x /tmp/x.sh && /tmp/x.sh")
    assert result.exit_code == 126
    assert "Permission denied" in result.output
    assert "ran" not in result.output.replace("/tmp/x.sh", "")
    assert run(manager, shared, "echo data > /tmp/data && cat /tmp/data").output == "data\n"


def test_no_capabilities_and_no_new_privileges(manager: SandboxManager, shared: str) -> None:
    status = dict(
        line.split(":", 1) for line in run(manager, shared, "cat /proc/self/status").output.splitlines() if ":" in line
    )
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert status[cap].strip() == "0000000000000000", cap
    assert status["NoNewPrivs"].strip() == "1"


def test_runs_as_uid_1000_not_root(manager: SandboxManager, shared: str) -> None:
    assert run(manager, shared, "id -u; id -g").output.split() == ["1000", "1000"]
    uids = run(manager, shared, "grep -E '^(Uid|Gid):' /proc/self/status").output.split()
    assert uids == ["Uid:", *["1000"] * 4, "Gid:", *["1000"] * 4]  # real, effective, saved, fs


def test_no_docker_socket(manager: SandboxManager, shared: str, docker_client: docker.DockerClient) -> None:
    result = run(manager, shared, "ls -la /var/run/docker.sock /run/docker.sock; env | grep -c DOCKER_HOST")
    assert result.output.count("No such file or directory") == 2
    assert result.output.strip().endswith("0")
    container = docker_client.containers.get(container_name(shared))
    assert not any("docker.sock" in (m.get("Source") or "") for m in container.attrs["Mounts"])


def test_no_host_paths(manager: SandboxManager, shared: str, docker_client: docker.DockerClient, tmp_path: Path) -> None:
    marker = tmp_path / f"host-marker-{uuid.uuid4().hex}"
    marker.write_text("host secret")
    found = run(
        manager,
        shared,
        f"test -e {marker} && echo VISIBLE; "
        f"find / \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -name {marker.name} -print 2>/dev/null; true",
    )
    assert found.exit_code == 0
    assert found.output == ""

    # The only mount is the conversation's named volume; no bind mounts at all.
    container = docker_client.containers.get(container_name(shared))
    assert [(m["Type"], m["Name"], m["Destination"]) for m in container.attrs["Mounts"]] == [
        ("volume", volume_name(shared), "/workspace")
    ]
    assert not container.attrs["HostConfig"].get("Binds")
    assert not container.attrs["HostConfig"].get("Privileged")

    # Inside, every mount backed by a disk is the volume or one of Docker's own files.
    allowed = {"/workspace", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/sbin/docker-init", "/usr/sbin/docker-init"}
    virtual = {"overlay", "proc", "tmpfs", "devpts", "mqueue", "sysfs", "cgroup", "cgroup2"}
    for line in run(manager, shared, "cat /proc/self/mountinfo").output.splitlines():
        fields = line.split()
        mount_point, fs_type = fields[4], fields[fields.index("-") + 1]
        if fs_type not in virtual:
            assert mount_point in allowed, line


def test_fork_bomb_is_contained_by_pids_limit(manager: SandboxManager, new_conversation_id) -> None:
    conversation_id = new_conversation_id("bomb")
    limit = run(manager, conversation_id, "cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max 2>/dev/null")
    assert limit.output.split() == [str(LIMITS.pids)]

    # The classic shell bomb: every fork past the limit fails. Commands run in bash, which retries
    # a failed fork ("fork: retry: Resource temporarily unavailable") where dash gave up, so the
    # bomb's background processes never die out by themselves: a table kept full ends them, long
    # before the command's timeout.
    shell_bomb = run(manager, conversation_id, "bomb() { bomb | bomb & }; bomb; sleep 60", timeout_s=60)
    assert "Resource temporarily unavailable" in shell_bomb.output
    assert shell_bomb.killed_reason == "pids_limit"  # why it ended (the full table), not when

    # A bomb that never gives up forking, as quiet as it is relentless: the same.
    bomb = "python3 -c 'import os\nwhile True:\n    try: os.fork()\n    except OSError: pass'"
    python_bomb = run(manager, conversation_id, bomb, timeout_s=60)
    assert python_bomb.killed_reason == "pids_limit"

    # Below the limit for good, it is left alone: many processes are not a bomb.
    many = run(manager, conversation_id, f"for i in $(seq {LIMITS.pids // 2}); do sleep 4 & done; wait; echo done",
               timeout_s=30)
    assert many.exit_code == 0 and many.killed_reason is None and many.output.endswith("done\n")

    # Killed from outside (no-output timeout) while the pids table is full: the killer needs a pid
    # and some CPU; if it cannot finish within the grace, the container is restarted instead.
    run(manager, conversation_id, "echo kept > before-bomb.txt")
    quiet_bomb = run(manager, conversation_id, bomb, timeout_s=60, no_output_timeout_s=1)  # before the table check
    assert quiet_bomb.timed_out and quiet_bomb.killed_reason == "no_output"
    assert run(manager, conversation_id, "cat before-bomb.txt").output == "kept\n"

    pids_now = "cat /sys/fs/cgroup/pids.current /sys/fs/cgroup/pids/pids.current 2>/dev/null; true"
    after = run(manager, conversation_id, f"echo alive; {pids_now}")
    assert after.exit_code == 0 and after.output.startswith("alive")
    assert int(after.output.split()[1]) < 10  # the bombs' processes are gone (init reaped them)


def test_memory_hog_is_killed_inside_its_limit(manager: SandboxManager, new_conversation_id) -> None:
    conversation_id = new_conversation_id("oom")
    hog = run(manager, conversation_id, "python3 -c 'b = []\nwhile True: b.append(b\"x\" * 10**7)'", timeout_s=30)
    assert hog.exit_code == 137
    assert hog.killed_reason == "oom"
    assert not hog.timed_out
    assert run(manager, conversation_id, "echo alive").output == "alive\n"  # the container survived

    # A hog inside a pipeline: the exit code is the pipeline's, the OOM kill is still reported.
    piped = run(manager, conversation_id, "python3 -c 'b = []\nwhile True: b.append(b\"x\" * 10**7)' | cat; exit 3")
    assert piped.exit_code == 3 and piped.killed_reason == "oom"
    assert run(manager, conversation_id, "false").killed_reason is None


def test_command_past_its_timeout_is_killed_with_its_children(manager: SandboxManager, shared: str) -> None:
    result = run(manager, shared, "sleep 300 & echo started; wait", timeout_s=1.5)
    assert result.timed_out and result.killed_reason == "timeout"
    assert result.exit_code == 137
    assert result.output == "started\n"
    assert sleeping(manager, shared, 300) == 0


def test_process_escaping_the_kill_is_ended_by_a_container_restart(
    manager: SandboxManager, new_conversation_id
) -> None:
    # A new session and an empty environment: neither the group kill nor the token killer finds it,
    # and it holds the output stream open. Only restarting the container ends it.
    conversation_id = new_conversation_id("escape")
    run(manager, conversation_id, "echo kept > w.txt")
    result = run(manager, conversation_id, "setsid env -i sleep 61 & echo started; wait", no_output_timeout_s=1)
    assert result.killed_reason == "no_output" and result.timed_out
    assert result.container_restarted
    assert result.output == "started\n"
    assert sleeping(manager, conversation_id, 61) == 0
    assert run(manager, conversation_id, "cat w.txt").output == "kept\n"


def test_no_output_timeout(manager: SandboxManager, shared: str) -> None:
    quiet = run(manager, shared, "echo hello; sleep 60", no_output_timeout_s=1.0)
    assert quiet.timed_out and quiet.killed_reason == "no_output"
    assert quiet.output == "hello\n"

    chatty = run(manager, shared, "for i in 1 2 3 4 5 6 7 8; do echo $i; sleep 0.2; done", no_output_timeout_s=2.0)
    assert chatty.exit_code == 0 and not chatty.timed_out  # output resets the clock


def test_output_is_capped_and_the_full_output_kept_as_artifact(manager: SandboxManager, shared: str) -> None:
    full = "".join(f"{i}\n" for i in range(1, 100_001))
    result = run(manager, shared, "seq 1 100000")
    assert result.exit_code == 0
    assert result.truncated
    assert len(result.output) <= LIMITS.output_cap_chars
    assert result.output.startswith("1\n2\n3\n")
    assert result.output.endswith("99999\n100000\n")
    assert result.artifact_id and result.artifact_id in result.output
    assert result.output_chars == len(full)
    assert Path(result.artifact_path).read_text() == full

    small = run(manager, shared, "echo small")
    assert not small.truncated and small.artifact_id is None


def test_container_is_reused_and_workspace_persists(manager: SandboxManager, shared: str) -> None:
    first = run(manager, shared, "echo state > kept.txt && echo tmp > /tmp/kept && pwd")
    second = run(manager, shared, "cat kept.txt /tmp/kept")
    assert first.output == "/workspace\n"
    assert second.container_id == first.container_id
    assert second.output == "state\ntmp\n"


def test_argv_env_and_workdir(manager: SandboxManager, shared: str) -> None:
    run(manager, shared, "mkdir -p sub/dir")
    result = manager.exec(
        ExecRequest(
            conversation_id=shared,
            argv=["sh", "-c", 'pwd; echo "$GREETING"'],
            workdir="sub/dir",
            env={"GREETING": "hi $x"},
        )
    )
    assert result.output == "/workspace/sub/dir\nhi $x\n"
    with pytest.raises(SandboxViolation):
        manager.exec(ExecRequest(conversation_id=shared, command="true", workdir="../etc"))


def test_files_in_and_out_as_tar(manager: SandboxManager, shared: str) -> None:
    text = "héllo wörld\nsecond line\n"
    assert manager.write_file(shared, "docs/notes/a.txt", text) == "/workspace/docs/notes/a.txt"
    assert manager.read_file(shared, "/workspace/docs/notes/a.txt").content == text
    shown = run(manager, shared, "cat docs/notes/a.txt; stat -c '%u:%g %a' docs/notes/a.txt docs")
    assert shown.output == text + "1000:1000 644\n1000:1000 755\n"

    # The sandbox's own files come out the same way, capped at max_bytes.
    run(manager, shared, "seq 1 1000 > numbers.txt")
    part = manager.read_file(shared, "numbers.txt", max_bytes=10)
    assert part.content == "1\n2\n3\n4\n5\n" and part.truncated
    assert part.size == len("".join(f"{i}\n" for i in range(1, 1001)))

    for bad in ("../etc/passwd", "/etc/passwd", "docs/../../etc/shadow", "/workspace/../root"):
        with pytest.raises(SandboxViolation) as caught:
            manager.read_file(shared, bad)
        assert caught.value.non_retryable and caught.value.type == "SandboxViolation"
        assert "outside /workspace" in str(caught.value)
        with pytest.raises(SandboxViolation):
            manager.write_file(shared, bad, "x")

    with pytest.raises(SandboxFileError, match="no such file"):
        manager.read_file(shared, "missing.txt")
    with pytest.raises(SandboxFileError, match="is a directory"):
        manager.read_file(shared, "docs")

    run(manager, shared, "ln -sf /etc/passwd escape-link && ln -sf docs/notes/a.txt inner-link")
    with pytest.raises(SandboxViolation):
        manager.read_file(shared, "escape-link")
    assert manager.read_file(shared, "inner-link").content == text


def test_paths_are_normalised() -> None:
    assert workspace_path("a/./b//c") == "/workspace/a/b/c"
    assert workspace_path("a/../b") == "/workspace/b"
    assert workspace_path("//workspace/x") == "/workspace/x"
    for bad in ("..", "../x", "/", "/workspace2/x", "/tmp/x", "a/../../x", "", "a\x00b"):
        with pytest.raises(SandboxViolation):
            workspace_path(bad)


def test_labels_let_a_new_worker_find_the_sandbox(
    manager: SandboxManager, docker_client: docker.DockerClient, new_conversation_id, tmp_path: Path
) -> None:
    conversation_id = new_conversation_id("restart")
    first = run(manager, conversation_id, "echo before > f.txt")
    container = docker_client.containers.get(container_name(conversation_id))
    assert container.labels[LABEL_CONVERSATION] == conversation_id
    assert container.labels[LABEL_CREATED_BY] == CREATED_BY
    assert container.labels[LABEL_NETWORK] == "none"
    assert docker_client.volumes.get(volume_name(conversation_id)).attrs["Labels"][LABEL_CONVERSATION] == conversation_id

    # A worker restart: a new client and manager with no memory of the first.
    restarted = SandboxManager(docker.from_env(), Settings(), tmp_path, LIMITS)
    assert [c.id for c in restarted.find(conversation_id)] == [first.container_id]
    again = restarted.exec(ExecRequest(conversation_id=conversation_id, command="cat f.txt"))
    assert again.container_id == first.container_id and again.output == "before\n"


def test_egress_runs_in_a_separate_container_on_the_same_workspace(
    manager: SandboxManager, docker_client: docker.DockerClient, new_conversation_id
) -> None:
    conversation_id = new_conversation_id("egress")
    offline = run(manager, conversation_id, "echo shared > s.txt; ls /sys/class/net")
    online = run(manager, conversation_id, "cat s.txt; ls /sys/class/net", network=True)
    assert online.container_id != offline.container_id
    assert offline.output.split() == ["lo"]
    assert online.output.split()[0] == "shared" and "eth0" in online.output.split()
    egress = docker_client.containers.get(container_name(conversation_id, network=True))
    assert egress.labels[LABEL_NETWORK] == "bridge"
    assert egress.attrs["HostConfig"]["CapDrop"] == ["ALL"] and egress.attrs["HostConfig"]["ReadonlyRootfs"]
    # The offline container never gains a network afterwards.
    assert run(manager, conversation_id, "ls /sys/class/net").output.split() == ["lo"]


def test_reap_idle_keeps_busy_and_recent_containers_and_the_volume(
    manager: SandboxManager, docker_client: docker.DockerClient, new_conversation_id, shared: str
) -> None:
    conversation_id = new_conversation_id("reap")
    name = container_name(conversation_id)
    day_ago = "touch -d '1 day ago' /tmp/.daemonflow-last-use"
    run(manager, conversation_id, "echo kept > w.txt")
    container = docker_client.containers.get(name)

    # Busy: an exec is running, however old the marker looks. It waits for /tmp/go.
    busy = threading.Thread(
        target=run, args=(manager, conversation_id, f"{day_ago}; while [ ! -e /tmp/go ]; do sleep 0.1; done")
    )
    busy.start()
    deadline = time.monotonic() + 30
    while time.time() - manager.last_used(container) < 3600:  # the busy command has aged the marker
        assert time.monotonic() < deadline, "the busy command never started"
        time.sleep(0.2)
    assert name not in manager.reap_idle(max_idle_s=12 * 3600)
    run(manager, conversation_id, f"touch /tmp/go; {day_ago}")  # release it; the marker stays old
    busy.join()

    # Idle for a day: reaped; the shared container, used seconds ago, is not.
    removed = manager.reap_idle(max_idle_s=12 * 3600)
    assert name in removed and container_name(shared) not in removed
    assert manager.find(conversation_id) == []
    docker_client.volumes.get(volume_name(conversation_id))  # still there

    # Next use recreates the container on the same workspace.
    assert run(manager, conversation_id, "cat w.txt").output == "kept\n"

    assert manager.remove(conversation_id, volumes=True) == [name, volume_name(conversation_id)]
    assert manager.find(conversation_id) == []


# --- errors -------------------------------------------------------------------------------------


def test_missing_image_is_a_non_retryable_error_with_the_fix(
    docker_client: docker.DockerClient, new_conversation_id, tmp_path: Path
) -> None:
    manager = SandboxManager(docker_client, Settings(sandbox_image="daemonflow-no-such-image:never"), tmp_path)
    with pytest.raises(SandboxImageMissing) as caught:
        manager.exec(ExecRequest(conversation_id=new_conversation_id("noimage"), command="true"))
    assert caught.value.non_retryable
    assert "deploy/provision-docker.sh" in str(caught.value) and "docker build" in str(caught.value)


def test_unknown_runtime_is_a_non_retryable_error(
    docker_client: docker.DockerClient, new_conversation_id, tmp_path: Path
) -> None:
    manager = SandboxManager(docker_client, Settings(), tmp_path, runtime="no-such-runtime")
    with pytest.raises(ApplicationError) as caught:
        manager.ensure(new_conversation_id("runtime"))
    assert caught.value.non_retryable and "no-such-runtime" in str(caught.value)


def test_unreachable_engine_is_a_retryable_error(tmp_path: Path) -> None:
    client = docker.DockerClient(base_url=f"unix://{tmp_path}/no-docker.sock", version="1.41", timeout=2)
    manager = SandboxManager(client, Settings(), tmp_path)
    with pytest.raises(SandboxUnavailable) as caught:
        manager.exec(ExecRequest(conversation_id="unreachable", command="true"))
    assert not caught.value.non_retryable
    assert "cannot reach the Docker engine" in str(caught.value)


def test_request_validation() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ExecRequest(conversation_id="c", command="true", argv=["true"])
    with pytest.raises(ValueError, match="exactly one"):
        ExecRequest(conversation_id="c")
    for bad in ("", "has space", "../x", "x-egress", "-x"):
        with pytest.raises(ValueError):
            ExecRequest(conversation_id=bad, command="true")


# --- as Temporal activities ---------------------------------------------------------------------


async def test_activity_heartbeats_while_streaming(
    manager: SandboxManager, shared: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox_module, "HEARTBEAT_EVERY_S", 0.2)
    beats: list[tuple] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)
    activities = SandboxActivities(manager)
    result = await env.run(
        activities.exec, ExecRequest(conversation_id=shared, command="for i in 1 2 3 4 5; do echo $i; sleep 0.2; done")
    )
    assert result.output.split() == ["1", "2", "3", "4", "5"]
    assert len(beats) >= 2

    with pytest.raises(ApplicationError) as caught:
        await env.run(activities.read_file, ReadFileRequest(conversation_id=shared, path="../../etc/passwd"))
    assert caught.value.type == "SandboxViolation" and caught.value.non_retryable


async def test_cancelled_activity_kills_its_command(manager: SandboxManager, shared: str) -> None:
    env = ActivityEnvironment()
    activities = SandboxActivities(manager)
    task = asyncio.create_task(env.run(activities.exec, ExecRequest(conversation_id=shared, command="sleep 120")))
    await asyncio.sleep(1.0)
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(sleeping, manager, shared, 120) == 0
