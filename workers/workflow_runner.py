"""The workflow runner: Temporal's sandbox, minus one lookup it makes expensive.

Why not the SDK's default ``SandboxedWorkflowRunner`` as it is: before the worker sends a workflow
task's completion (and after it receives an activation) the SDK visits every payload sequence six
times (reference decoding, external storage, codec — each way) and asks the workflow instance, for
each visit, which serialization context applies (``get_serialization_context``,
``get_external_store_context``: the activity or child a command belongs to). The sandbox answers
each question by compiling and ``exec``-ing a two-line snippet under its import hooks. A py-spy
profile of the worker at 50 concurrent conversations (``bench/README.md``, *Figures*) put those
lookups at 18–20 % of the samples holding the interpreter lock — seven times the cost of running the
workflow code itself (2.9 %). Daemonflow has no payload codec and no external storage, so the
answers change nothing but still cost that much.

Why not ``UnsandboxedWorkflowRunner``: it would remove this cost too, but also the sandbox's checks.

What ``LeanSandboxRunner`` changes: the two lookups call the sandboxed instance's own method directly
(the same SDK function the snippet calls, on the same objects, returning the same context — tested
in ``tests/test_workflow_runner.py``), instead of through ``exec``. They read only the instance's
pending commands and its ``Info``; no workflow code runs in them.

What the sandbox still checks, unchanged, because every activation (where workflow code runs)
still goes through it: restricted calls at run time (``datetime.now``, ``random``, ``open``, ``os``,
network, threads: ``RestrictedWorkflowAccessError``), a fresh copy of every non-passthrough module
per workflow run (no state leaks between runs), and the import-time validation of each workflow
class when the worker starts. What keeps determinism beyond that: the Replayer test over recorded
histories (``tests/test_replay.py``), ``workflow.patched`` for changed commands, and pure policy
and scoring code.

It relies on the SDK's private ``_Instance`` (its ``globals_and_locals`` and the
``__temporal_in_sandbox`` name); temporalio is pinned (``pyproject.toml``), and the test above fails
— rather than the worker silently misbehaving — if an upgrade changes them.
"""

from __future__ import annotations

from temporalio.converter import SerializationContext
from temporalio.converter._extstore import StorageDriverStoreContext
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker._command_aware_visitor import CommandInfo
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox._runner import _Instance

IN_SANDBOX = "__temporal_in_sandbox"
"""The name the SDK's sandbox gives the instance it creates inside its globals."""


class _LeanInstance(_Instance):
    """A sandboxed workflow instance whose context lookups skip ``exec``."""

    def _in_sandbox(self):
        return self.globals_and_locals[IN_SANDBOX]

    def get_serialization_context(self, command_info: CommandInfo | None) -> SerializationContext | None:
        return self._in_sandbox().get_serialization_context(command_info)

    def get_external_store_context(self, command_info: CommandInfo | None) -> StorageDriverStoreContext:
        return self._in_sandbox().get_external_store_context(command_info)


class LeanSandboxRunner(SandboxedWorkflowRunner):
    """``SandboxedWorkflowRunner`` (same restrictions) whose instances are ``_LeanInstance``."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _LeanInstance(det, self.runner_class, self.restrictions)
