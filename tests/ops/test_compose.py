"""docker-compose.yml cannot run here (no Docker engine), so its consistency with the
repository is checked instead: mounted files exist, environment names are settings, commands
exist, Prometheus/Alertmanager/Grafana configuration points at the services and files the
compose file provides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
import yaml

from server.cli import app as cli_app
from server.settings import Settings
from tests.uploads.server_process import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
REQUIRED = {"postgres", "redis", "api", "worker", "prometheus", "alertmanager", "grafana"}
# Read by libraries, not by Settings: the compose file may set these too.
NON_SETTINGS_ENV = {"PROMETHEUS_MULTIPROC_DIR"}


def _mounts(service: str) -> dict[str, Path]:
    """Container path → repository path of each bind mount (`./…`) of a service."""
    mounts = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            mounts[target] = ROOT / source
    return mounts


def _host_path(service: str, container_path: str) -> Path:
    for target, source in sorted(_mounts(service).items(), key=lambda item: -len(item[0])):
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return source / container_path[len(target):].lstrip("/")
    raise AssertionError(f"{service}: {container_path} is not mounted from the repository")


def test_every_service_of_the_production_shape_with_a_health_check() -> None:
    assert set(SERVICES) >= REQUIRED
    for name in REQUIRED:
        assert "healthcheck" in SERVICES[name], f"{name} has no health check"


@pytest.mark.parametrize("service", sorted(REQUIRED))
def test_images_are_built_here_or_pinned(service: str) -> None:
    spec = SERVICES[service]
    if "build" in spec:
        assert (ROOT / spec["build"] / "Dockerfile").is_file()
    else:
        image = spec["image"]
        assert ":" in image and not image.endswith(":latest"), f"{service}: pin {image}"


def test_every_bind_mounted_file_is_in_the_repository() -> None:
    mounts = [(name, source) for name in SERVICES for source in _mounts(name).values()]
    assert len(mounts) >= 6
    for name, source in mounts:
        assert source.exists(), f"{name} mounts {source}, which is not in the repository"


def test_named_volumes_are_declared() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    for name, spec in SERVICES.items():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith(("./", "/")):
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_environment_names_are_settings() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    for name in ("api", "worker"):
        env = SERVICES[name]["environment"]
        unknown = set(env) - fields - NON_SETTINGS_ENV
        assert not unknown, f"{name}: {unknown} are not in server/settings.py"
        assert {"DATABASE_URL", "REDIS_URL", "DATA_DIR"} <= set(env)
    assert "MIGRATION_DATABASE_URL" in SERVICES["api"]["environment"]


def test_paysheet_commands_and_options_exist() -> None:
    group = typer.main.get_command(cli_app)
    for name in ("api", "worker"):
        command = SERVICES[name]["command"]
        assert command[0] == "paysheet"
        sub = group.commands.get(command[1])
        assert sub is not None, f"{name}: no command paysheet {command[1]}"
        options = {opt for param in sub.params for opt in getattr(param, "opts", [])}
        given = [arg for arg in command[2:] if arg.startswith("--")]
        assert set(given) <= options, f"{name}: unknown options {set(given) - options}"


def test_prometheus_scrapes_the_compose_services_and_loads_the_rules() -> None:
    config_path = _host_path("prometheus", "/etc/prometheus/prometheus.yml")
    config = yaml.safe_load(config_path.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api = jobs["paysheet-api"]["dns_sd_configs"][0]
    assert api["names"] == ["api"] and str(api["port"]) == SERVICES["api"]["environment"]["PORT"]
    worker = jobs["paysheet-worker"]["dns_sd_configs"][0]
    command = SERVICES["worker"]["command"]
    assert worker["names"] == ["worker"]
    assert str(worker["port"]) == command[command.index("--metrics-port") + 1]
    rule_dir = config["rule_files"][0].rsplit("/", 1)[0]
    rules = sorted(_host_path("prometheus", rule_dir).glob("*.yml"))
    assert [path.name for path in rules] == ["paysheet.yml", "slo.yml"]
    alertmanager = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0]
    host, port = alertmanager.split(":")
    assert host in SERVICES and f"{port}:{port}" in SERVICES[host]["ports"]
    assert _host_path("alertmanager", "/etc/alertmanager/alertmanager.yml").is_file()


def test_grafana_provisions_the_datasource_and_every_dashboard() -> None:
    provisioning = _host_path("grafana", "/etc/grafana/provisioning")
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    source = datasource["datasources"][0]
    assert source["url"] == "http://prometheus:9090" and "prometheus" in SERVICES
    provider = yaml.safe_load((provisioning / "dashboards" / "paysheet.yml").read_text())
    folder = _host_path("grafana", provider["providers"][0]["options"]["path"])
    dashboards = sorted(folder.glob("*.json"))
    assert len(dashboards) >= 2
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == source["uid"], (path.name, panel["title"])
            assert panel["targets"], (path.name, panel["title"])
