"""Worker interceptors: tracing that follows a turn, and what every activity reports.

``TracingInterceptor`` (on the client, ``workers/client.py``) makes the spans and carries trace
context in Temporal headers. Alone it parents every span inside a workflow to the workflow's
*start*: a conversation lives for weeks, so the activities of turn 40 would hang under the trace
of the request that started it, and the request that sent message 40 would show only a link.
``TurnContextInterceptor`` fixes that for Daemonflow's shape: while a ``send_message`` update is
in flight, activities and child workflows the workflow schedules are parented to that update's
trace context (the oldest in-flight update: the workflow answers queued messages in order).
It only changes trace headers, never commands, so histories replay unchanged.

``ActivityObserver`` records metrics and span attributes from each activity's input models and
result (``workers/metrics.py``) and binds the conversation id for the logs, so the activities
themselves carry no telemetry code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import opentelemetry.context
import opentelemetry.trace
import temporalio.converter
from opentelemetry.context import Context
from temporalio import activity, workflow
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.opentelemetry._interceptor import default_text_map_propagator
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    HandleUpdateInput,
    Interceptor,
    StartActivityInput,
    StartChildWorkflowInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from workers import logs, metrics, telemetry

TRACE_HEADER = "_tracer-data"  # TracingInterceptor's header key
TURN_UPDATE = "send_message"
"""The update a turn answers (public contract); ``decide`` and ``watch_turn`` run no activities of
their own and a watch spans the turns queued ahead of its own, so they never parent a turn's spans."""

# Load OpenTelemetry's context implementation now: the workflow sandbox forbids the file access
# its lazy loading does (TracingInterceptor does the same at import).
opentelemetry.context.get_current()


def tracing_interceptor() -> TracingInterceptor:
    """The client-side tracing interceptor, with Daemonflow's tracer (see ``workers.telemetry``)."""
    return TracingInterceptor(telemetry.tracer("temporalio"))


class DaemonflowInterceptor(Interceptor):
    """Worker interceptor: listed after the client's ``TracingInterceptor`` so that it runs
    inside the activity span (attributes land on it) and before the tracing outbound (the turn's
    context is attached when the activity span is made)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return ActivityObserver(next)

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return TurnContextInterceptor


# --- workflows ------------------------------------------------------------------------------------


class TurnContextInterceptor(WorkflowInboundInterceptor):
    def __init__(self, next: WorkflowInboundInterceptor) -> None:
        super().__init__(next)
        self.in_flight: dict[str, Context] = {}

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_TurnContextOutbound(outbound, self))

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        context = _context_from_headers(input.headers) if input.update == TURN_UPDATE else None
        if context is None:
            return await super().handle_update_handler(input)
        self.in_flight[input.id] = context
        try:
            return await super().handle_update_handler(input)
        finally:
            self.in_flight.pop(input.id, None)

    @contextmanager
    def turn_context(self) -> Iterator[None]:
        if not self.in_flight:
            yield
            return
        token = opentelemetry.context.attach(next(iter(self.in_flight.values())))
        try:
            yield
        finally:
            opentelemetry.context.detach(token)


class _TurnContextOutbound(WorkflowOutboundInterceptor):
    def __init__(self, next: WorkflowOutboundInterceptor, root: TurnContextInterceptor) -> None:
        super().__init__(next)
        self._root = root

    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle:
        with self._root.turn_context():
            return super().start_activity(input)

    def start_local_activity(self, input: StartLocalActivityInput) -> workflow.ActivityHandle:
        with self._root.turn_context():  # a quick model's step (workflows/model_step.py)
            return super().start_local_activity(input)

    async def start_child_workflow(self, input: StartChildWorkflowInput) -> workflow.ChildWorkflowHandle:
        with self._root.turn_context():
            return await super().start_child_workflow(input)


def _context_from_headers(headers) -> Context | None:
    payload = headers.get(TRACE_HEADER)
    if not payload:
        return None
    carrier = temporalio.converter.PayloadConverter.default.from_payloads([payload])[0]
    if not carrier:
        return None
    context = default_text_map_propagator.extract(carrier)
    span = opentelemetry.trace.get_current_span(context)
    return context if span.get_span_context().is_valid else None


# --- activities -----------------------------------------------------------------------------------


class ActivityObserver(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        conversation_id = next(
            (getattr(arg, "conversation_id") for arg in input.args if isinstance(getattr(arg, "conversation_id", None), str)),
            None,
        ) or logs.conversation_of_workflow(info.workflow_id)
        token = logs.bind_conversation(conversation_id)
        span = opentelemetry.trace.get_current_span()
        span.set_attribute("daemonflow.activity", info.activity_type)
        span.set_attribute("daemonflow.attempt", info.attempt)
        if conversation_id:
            span.set_attribute("daemonflow.conversation_id", conversation_id)
        started = time.monotonic()
        result: Any = None
        outcome = "ok"
        try:
            result = await super().execute_activity(input)
            return result
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except BaseException as err:
            outcome = "error"
            metrics.activity_failed(info.activity_type, err)
            raise
        finally:
            attributes = metrics.observe_activity(
                input.fn, info.activity_type, input.args, result, outcome, time.monotonic() - started
            )
            for key, value in attributes.items():
                span.set_attribute(key, value)
            logs.unbind_conversation(token)
