"""The sandbox runs ``run_command`` with the shell the policy reads commands for: bash, no startup files.

Real Docker and the real sandbox image: the policy's reading (``policy/shell.py``, checked against
bash by ``tests/test_policy_bash.py``) only protects anything if the command then runs in bash,
and no variable of the exec environment can make bash run a file or change its options first.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import docker
import pytest

from activities.sandbox import SandboxManager
from config.settings import Settings
from models.sandbox import ExecRequest, SandboxLimits
from tests.fixtures.docker import remove_sandbox


@pytest.fixture(scope="module")
def sandbox(docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    manager = SandboxManager(docker_client, Settings(), tmp_path_factory.mktemp("artifacts"), SandboxLimits())
    conversation_id = f"test-shell-{uuid.uuid4().hex[:10]}"
    manager.ensure(conversation_id)
    yield manager, conversation_id
    remove_sandbox(docker_client, conversation_id)


def test_commands_run_in_bash_without_startup_files(sandbox):
    manager, conversation_id = sandbox
    setup = ExecRequest(conversation_id=conversation_id, command="printf 'echo STARTUP-FILE-RAN\\n' > /tmp/rc")
    assert manager.exec(setup).exit_code == 0
    hostile_env = {"BASH_ENV": "/tmp/rc", "ENV": "/tmp/rc", "SHELLOPTS": "xtrace", "BASHOPTS": "extglob",
                   "POSIXLY_CORRECT": "1"}
    probe = "echo \"bash=${BASH_VERSINFO[0]}\"; shopt -q extglob && echo extglob-on; [[ -o xtrace ]] && echo xtrace-on; " \
            "[[ -o posix ]] && echo posix-on; printf '%s\\n' $'\\x41'"
    result = manager.exec(ExecRequest(conversation_id=conversation_id, command=probe, env=hostile_env))
    assert result.exit_code == 0, result.output
    assert result.output == "bash=5\nA\n"


def test_the_program_is_bash_with_the_startup_variables_removed():
    program = ExecRequest(conversation_id="x", command="ls").program()
    assert program[-5:] == ["/bin/bash", "--noprofile", "--norc", "-c", "ls"]
    assert program[0] == "/usr/bin/env" and {"BASH_ENV", "ENV"} <= set(program[2:-5:2])
    assert ExecRequest(conversation_id="x", argv=["ls", "-la"]).program() == ["ls", "-la"]
