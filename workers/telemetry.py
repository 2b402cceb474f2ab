"""Tracing: one tracer provider per process, OTLP export only when a collector is configured.

Every Daemonflow span comes from :func:`tracer`, which reads the provider installed here rather
than OpenTelemetry's global one: the global provider can be set only once per process, and tests
(and an embedding application) need to swap in their own. ``setup_tracing`` also makes the
provider global, so third-party instrumentation (FastAPI, httpx) reports to the same place.

Without ``OTEL_EXPORTER_OTLP_ENDPOINT`` nothing is installed: spans are no-ops, headers carry no
trace context, and the cost is a few attribute look-ups per activity.
"""

from __future__ import annotations

import logging
import socket

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from config.settings import Settings

log = logging.getLogger("daemonflow.telemetry")

_provider: TracerProvider | None = None


def setup_tracing(settings: Settings, service_name: str) -> TracerProvider | None:
    """Install an OTLP/HTTP-exporting provider if ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

    Call once at process start (worker: ``daemonflow-worker``, API: ``daemonflow-api``) before
    connecting the Temporal client, whose tracing interceptor takes its tracer from here.
    Idempotent: a second call returns the provider already installed.
    """
    if _provider is not None:
        return _provider
    if not settings.otlp_endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    resource = Resource.create({"service.name": service_name, "service.instance.id": socket.gethostname()})
    provider = TracerProvider(resource=resource)
    endpoint = settings.otlp_endpoint.rstrip("/")
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
    use_tracer_provider(provider)
    trace.set_tracer_provider(provider)
    log.info("exporting traces to %s as %s", endpoint, service_name)
    return provider


def use_tracer_provider(provider: TracerProvider | None) -> None:
    """Make ``provider`` the source of Daemonflow's spans (``None``: back to the global one)."""
    global _provider
    _provider = provider


def tracer_provider() -> trace.TracerProvider:
    """The provider in use: ours if installed, else OpenTelemetry's global (a no-op by default)."""
    return _provider or trace.get_tracer_provider()


def tracer(name: str = "daemonflow") -> trace.Tracer:
    return tracer_provider().get_tracer(name)


def shutdown_tracing() -> None:
    """Flush spans still buffered (a stopping worker must not lose its last turn's trace)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis=5_000)
