"""All runtime settings in one place.

Read from the environment (prefix ``DAEMONFLOW_``) and an optional ``.env`` file. Entry points build
one ``Settings`` and pass it down; nothing reads the environment behind their back. ``OLLAMA_HOST``
is read without the prefix, exactly as Ollama's own clients read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.agent import LlmProviderName
from models.monitoring import TokenBudget

DEFAULT_VAR_DIR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DAEMONFLOW_", env_file=".env", extra="ignore", populate_by_name=True
    )

    temporal_address: str = "localhost:7233"
    namespace: str = "default"
    task_queue: str = "daemonflow"

    var_dir: Path = DEFAULT_VAR_DIR
    database_url: str = ""
    """SQLAlchemy URL; empty means a SQLite file ``<var_dir>/daemonflow.db``."""

    qdrant_url: str = ""
    """Qdrant server URL; empty means the embedded engine (Qdrant Edge) in ``<var_dir>/qdrant-edge``
    (one process only)."""
    qdrant_api_key: str = ""
    memory_backend: str = "qdrant"
    """``qdrant`` or ``pgvector`` (a table in the PostgreSQL ``database_url``)."""
    memory_collection: str = "memories"
    """Qdrant collection / PostgreSQL table holding the memories; one embedding dimension each."""
    embed_batch_size: int = 32
    """Texts per ``/api/embed`` call."""
    memory_recall_k: int = 5
    memory_weight_similarity: float = 0.6
    memory_weight_recency: float = 0.2
    memory_weight_importance: float = 0.2
    memory_half_life_days: float = 30.0
    memory_min_score: float = 0.0
    memory_min_similarity: float = 0.0
    memory_duplicate_threshold: float = 0.92
    """A new memory this similar to one in the same scope updates it instead of adding a row."""
    memory_extraction: bool = True
    """After each turn, ask the chat model what is worth remembering (one more model call per
    turn); templates with ``memory: false`` never recall nor extract."""

    model: str = "llama3.2"
    """Default chat model, used by templates that do not name one."""
    embed_model: str = "all-minilm"
    llm_provider: LlmProviderName = "ollama"
    """Which API serves the chat model of templates that name no ``provider``: ``ollama`` (native
    API at ``OLLAMA_HOST``) or ``openai`` (an OpenAI-compatible server at ``openai_base_url``)."""
    ollama_host: str = Field(
        default="http://localhost:11434",
        validation_alias=AliasChoices("OLLAMA_HOST", "DAEMONFLOW_OLLAMA_HOST", "ollama_host"),
    )
    openai_base_url: str = "http://localhost:8080/v1"
    """An OpenAI-compatible server: llama.cpp's ``llama-server`` (``:8080/v1``), vLLM
    (``:8000/v1``), LM Studio (``:1234/v1``), Ollama itself (``:11434/v1``)."""
    openai_api_key: SecretStr = SecretStr("")
    """Sent as ``Authorization: Bearer …`` to ``openai_base_url``; empty for servers without keys.
    A secret: never logged, never in workflow history."""
    embed_provider: LlmProviderName | None = None
    """Which API serves ``embed_model``; empty: the same as ``llm_provider``."""
    embed_base_url: str = ""
    """Where the embedding server is (llama.cpp serves embeddings from a second ``llama-server
    --embeddings`` process); empty: ``OLLAMA_HOST`` or ``openai_base_url`` after ``embed_provider``."""
    embed_api_key: SecretStr = SecretStr("")
    """API key of the embedding server; empty: ``openai_api_key``."""
    max_tokens: int = Field(default=2048, ge=1)
    """Most tokens one model call may generate, for templates that set no ``max_tokens`` (Ollama
    ``num_predict``, OpenAI ``max_tokens``): a small model told to call a tool may otherwise run
    until its context is full."""
    llm_timeout_s: float = Field(
        default=600.0,
        gt=0,
        validation_alias=AliasChoices(
            "DAEMONFLOW_LLM_TIMEOUT_S", "DAEMONFLOW_OLLAMA_TIMEOUT_S", "llm_timeout_s", "ollama_timeout_s"
        ),
    )
    """Upper bound on one model call, any provider (``DAEMONFLOW_OLLAMA_TIMEOUT_S`` still works); a
    dead worker is noticed by heartbeats long before."""
    local_model: Literal["auto", "on", "off"] = "auto"
    """``daemonflow dev`` and the tiny local model (``make local-model``): ``auto`` starts it when
    no Ollama answers and no provider is configured, ``on`` always, ``off`` never."""
    local_model_dir: Path | None = None
    """Where ``make local-model`` put ``llama-server`` and the model; empty:
    ``$XDG_CACHE_HOME/daemonflow/local-model`` (``~/.cache/…``)."""

    agents_dir: Path | None = None
    """Extra agent templates (``*.yaml``) that add to or shadow the built-in ones."""

    policy_file: Path | None = None
    """Auto-accept rules; empty means the defaults in ``config/policy.yaml``."""

    relevance_file: Path | None = None
    """Relevance engine weights, thresholds and curves; empty means ``config/relevance.yaml``."""
    relevance_cache_size: int = Field(default=4096, ge=0)
    """Embeddings of agents' expertise entries (and recent posts) kept in memory per worker, by
    model and text digest; 0 keeps none."""
    # --- private messages (models/private_messages.py) ---
    message_max_open: int = Field(default=3, ge=1)
    """A recipient with this many accepted, unfinished private messages refuses the next (busy)."""
    message_min_expertise: float = Field(default=0.15, ge=-1, le=1)
    """A private message less similar than this to the recipient's closest expertise entry is refused."""
    message_reply_timeout_s: int = Field(default=900, ge=1)
    """How long a recipient may take over one answer before the message fails."""
    message_input_timeout_s: int = Field(default=86_400, ge=1)
    """How long a sender may take to answer the recipient's question (input_required)."""
    deepthink_steps: int = Field(default=3, ge=1, le=8)
    """Reasoning steps of a deepthink before its summary (at most 8)."""

    sandbox_image: str = "daemonflow-sandbox:latest"
    archive_after_s: int = Field(default=172_800, ge=0)
    """Conversations and channels idle this long (no turn, no post; nothing queued or waiting) are
    archived: their workflow completes with an archive record; a new message revives them. 0: never.
    A conversation's or channel's input ``archive_after_s`` overrides it."""
    sandbox_idle_s: int = 900
    """A sandbox container unused this long is removed by the worker (its workspace volume stays)."""
    sandbox_runtime: str | None = None
    """Docker runtime for sandboxes, e.g. ``runsc`` (gVisor) where installed."""
    api_keys: str = ""

    # --- HTTP API (api/, `daemonflow api`, and `daemonflow dev` on the same port)
    # ``api_keys`` above: comma- or newline-separated ``name:role:key`` entries, role one of
    # viewer|operator|approver|admin, key either the secret itself (16+ characters) or
    # ``sha256:<64 hex>`` of it; see api/auth.py and the README.
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    api_max_body_bytes: int = Field(default=1_048_576, ge=1024)
    """Larger request bodies are refused with 413 before anything reads them."""
    api_events_poll_s: float = Field(default=0.5, gt=0)
    """How often a live event stream asks the workflow for new events."""
    api_query_timeout_s: float = Field(default=10.0, gt=0)
    """How long the API waits for a worker to answer a query, accept a message or apply a decision (then 503)."""
    api_turn_wait_s: float = Field(default=300.0, gt=0)
    """How long ``POST …/messages`` holds the request for the turn's result (then 202 + turn id); a
    turn that waits for a person or a resume answers 202 at once."""

    max_message_chars: int = 100_000
    """Largest user message accepted by ``send_message``; larger ones are rejected, not cut."""
    turns_per_run: int = 100
    """Continue-as-new after this many turns even if the server does not suggest it yet."""

    # --- task plans (issue 15)
    plan_max_parallel: int = Field(default=3, ge=1, le=20)
    """Tasks of one plan running at once, unless the plan sets its own ``max_parallel``."""
    plan_tool_wait_s: float = Field(default=600.0, ge=0, le=3600)
    """How long ``create_plan`` waits for the plan it started before it answers the agent with the
    plan id and a note (the plan goes on)."""

    temporal_ui_port: int = 8233

    # --- observability and scaling
    worker_processes: int = Field(default=1, ge=1, le=64)
    """Processes of one ``daemonflow worker``: the first does everything, the others take the main
    queue's workflow tasks and their local steps (``workers/worker_group.py``); one per core at most."""
    llm_task_queue: str = ""
    """Queue of ``llm.chat``, memory, relevance and the AI tools (workers beside the model servers);
    empty: the main queue."""
    sandbox_task_queue: str = ""
    """Queue of a conversation's first tool call (workers on Docker hosts); empty: the main queue."""
    sandbox_host: str = ""
    """Names this worker's Docker host in its host queue; empty: the hostname. In Kubernetes use the
    node name: the workspaces live on the node's engine, not in the pod."""
    sandbox_host_queue: str = ""
    """The host queue itself; empty: ``<sandbox queue, or main queue + "-sandbox">-<sandbox host>``."""
    metrics_host: str = "127.0.0.1"
    """Interface of the worker's metrics endpoints; ``0.0.0.0`` in containers."""
    metrics_port: int = 9464
    """The worker's application ``/metrics`` (prometheus-client); 0 turns it off."""
    temporal_metrics_port: int = 9465
    """The Temporal SDK's own Prometheus endpoint on the worker; 0 turns it off."""
    conversation_metrics_interval_s: float = 30.0
    """How often the main-queue worker counts conversations by state (visibility queries)."""
    log_format: str = "text"
    """``text`` for people, ``json`` for log pipelines (one object per line, with ids and trace id)."""
    log_level: str = "INFO"
    otlp_endpoint: str = Field(
        default="",
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "DAEMONFLOW_OTLP_ENDPOINT", "otlp_endpoint"),
    )
    """OTLP/HTTP collector (e.g. ``http://otel-collector:4318``); empty: no traces are exported."""

    # --- monitoring, schedules, cache cleanup
    schedules: Literal["on", "off"] = "on"
    """``off``: the worker does not create/update the schedules at start (``daemonflow schedules apply`` still does)."""
    schedule_id_prefix: str = ""
    """Prepended to the schedule ids ``daemonflow-monitoring``, ``-cache-cleanup``, ``-pattern-analysis``,
    ``-optimisation-review`` (tests, several stacks on one namespace)."""
    monitoring_interval_s: int = Field(default=300, gt=0)
    cache_cleanup_interval_s: int = Field(default=120, gt=0)
    monitoring_window_minutes: int = Field(default=60, gt=0)
    """Window of the tool, agent and latency figures of a monitoring run."""
    monitoring_trend_minutes: int = Field(default=90, gt=0)
    usage_window_hours: float = Field(default=24, gt=0)
    """Window of the per-model usage figures of the report."""
    token_budgets: dict[str, TokenBudget] = Field(default_factory=dict)
    """Per model, e.g. ``{"llama3.2": {"window_hours": 24, "tokens": 1000000}}``."""
    budget_warning_pct: float = 30.0
    budget_critical_pct: float = 10.0
    llm_latency_warning_ms: float = 2_000
    llm_latency_critical_ms: float = 5_000
    """Thresholds on the mean time to first token of the window's model calls."""
    prompt_cache_warning_pct: float = Field(default=50.0, ge=0, le=100)
    prompt_cache_critical_pct: float = Field(default=30.0, ge=0, le=100)
    """Alerts on the model server's prompt-cache hit rate (seed 004); the score's part is full from 70 %."""
    parallelism_warning_pct: float = Field(default=30.0, ge=0, le=100)
    parallelism_critical_pct: float = Field(default=20.0, ge=0, le=100)
    """Alerts on the plans' parallelisation rate (seed 004); the score's part is full from 30 %."""
    history_max_days: float = Field(default=90, gt=0)
    """Health and analytics snapshots older than this are deleted (seed 001's ``history_max_days``)."""
    pattern_analysis_interval_s: int = Field(default=1800, gt=0)
    """How often ``PatternAnalysisWorkflow`` stores every agent's analytics (seed 004: 30 min)."""
    pattern_analysis_hours: float = Field(default=24, gt=0, le=24 * 366)
    """Each stored analytics snapshot covers the agent's last this-many hours."""
    optimisation_review_interval_s: int = Field(default=600, gt=0)
    """How often ``OptimisationReviewWorkflow`` reviews the latest analytics (seed 004: 10 min)."""
    optimisation_hint_days: float = Field(default=7, gt=0)
    """An optimisation hint lapses this long after it was applied."""
    optimisation_cooldown_days: float = Field(default=7, ge=0)
    """After an operator reverts a hint, the review does not apply that kind to that agent for this long."""
    approval_backlog_warning: int = 3
    approval_backlog_critical: int = 10
    approval_wait_warning_s: float = 900
    approval_wait_critical_s: float = 3_600
    disk_free_warning_pct: float = 10.0
    disk_free_critical_pct: float = 5.0
    health_check_timeout_s: float = 5.0
    alert_webhook_url: str = ""
    """If set, new, escalated and resolved alerts are POSTed there as JSON."""
    cache_threshold_mb: float = 500.0
    """Above this total the cache cleanup keeps only the newest ``cache_keep_newest`` entries."""
    cache_keep_newest: int = Field(default=5, ge=0)
    cache_max_age_days: float = Field(default=30, gt=0)
    cache_dry_run: bool = False
    """Scheduled cleanups only report what they would delete."""
    cache_reap_unknown_volumes: bool = False
    """Also remove Daemonflow workspace volumes of conversations this store has never heard of."""

    @property
    def embedded_memory_dir(self) -> Path:
        """Where the embedded memory store (Qdrant Edge, one shard per collection) lives."""
        return self.var_dir / "qdrant-edge"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'daemonflow.db'}"
