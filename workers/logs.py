"""Structured logs: one JSON object per line with the ids an operator searches by.

Every record gets ``conversation_id``, ``workflow_id``, ``run_id``, ``activity`` and ``trace_id``
when they are known: from the extras Temporal's ``workflow.logger`` / ``activity.logger`` attach,
from ``activity.info()`` for plain loggers inside activities, from the conversation id the activity
interceptor binds (:func:`bind_conversation`), and from the current OpenTelemetry span. Workflow
code logs through ``workflow.logger``, which is silent while a history replays, so a replay never
repeats a log line.

``DAEMONFLOW_LOG_FORMAT=json`` selects the JSON formatter; ``text`` (default) keeps the readable
one-line format and appends the same ids.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime

from opentelemetry import trace
from temporalio import activity

from config.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"
CONTEXT_FIELDS = ("conversation_id", "workflow_id", "run_id", "workflow_type", "activity", "attempt",
                  "task_queue", "trace_id", "span_id")
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "context", *CONTEXT_FIELDS,
                                                        "temporal_workflow", "temporal_activity"}

_conversation: contextvars.ContextVar[str | None] = contextvars.ContextVar("daemonflow_conversation", default=None)


def bind_conversation(conversation_id: str | None) -> contextvars.Token:
    return _conversation.set(conversation_id)


def unbind_conversation(token: contextvars.Token) -> None:
    _conversation.reset(token)


def conversation_of_workflow(workflow_id: str | None) -> str | None:
    """``conversation-<id>`` → ``<id>``; ``tool-<id>-<seq>-<index>`` → ``<id>``."""
    if not workflow_id:
        return None
    if workflow_id.startswith("conversation-"):
        return workflow_id.removeprefix("conversation-")
    if workflow_id.startswith("tool-"):
        parts = workflow_id.removeprefix("tool-").rsplit("-", 2)
        return parts[0] if len(parts) == 3 else None
    return None


class ContextFilter(logging.Filter):
    """Adds the Temporal and trace ids to every record (never fails a log call)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields: dict[str, object] = {}
        workflow_extra = getattr(record, "temporal_workflow", None)
        activity_extra = getattr(record, "temporal_activity", None)
        if isinstance(workflow_extra, dict):
            fields |= {
                "workflow_id": workflow_extra.get("workflow_id"),
                "run_id": workflow_extra.get("run_id"),
                "workflow_type": workflow_extra.get("workflow_type"),
                "task_queue": workflow_extra.get("task_queue"),
            }
        if isinstance(activity_extra, dict):
            fields |= {
                "workflow_id": activity_extra.get("workflow_id"),
                "run_id": activity_extra.get("workflow_run_id"),
                "activity": activity_extra.get("activity_type"),
                "attempt": activity_extra.get("attempt"),
                "task_queue": activity_extra.get("task_queue"),
            }
        elif activity.in_activity():
            info = activity.info()
            fields |= {
                "workflow_id": info.workflow_id,
                "run_id": info.workflow_run_id,
                "activity": info.activity_type,
                "attempt": info.attempt,
                "task_queue": info.task_queue,
            }
        fields["conversation_id"] = _conversation.get() or conversation_of_workflow(fields.get("workflow_id"))  # type: ignore[arg-type]
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            fields["trace_id"] = format(span.trace_id, "032x")
            fields["span_id"] = format(span.span_id, "016x")
        for key in CONTEXT_FIELDS:
            if getattr(record, key, None) is None:
                setattr(record, key, fields.get(key))
        known = [f"{k}={getattr(record, k)}" for k in ("conversation_id", "activity", "trace_id")
                 if getattr(record, k, None)]
        record.context = f" [{' '.join(known)}]" if known else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context ids, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings, stream=None) -> logging.Handler:
    """Root logging for a Daemonflow process; replaces earlier handlers (idempotent)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    if settings.log_format.lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for noisy in ("httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
