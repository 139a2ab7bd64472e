"""`paysheet slo report` and GET /api/v1/ops/slo against a real Prometheus holding known
data: three hours of counters backfilled with `promtool tsdb create-blocks-from openmetrics`,
so every attainment and remaining budget is known exactly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.settings import Settings
from tests.ops.prometheus import prometheus
from tests.uploads.server_process import ROOT

MINUTES = 180
H = "paysheet_http_request_duration_seconds"
# Per minute: 995 answers 200 (960 of them within 300 ms), 5 answers 500 (all fast);
# 10 runs, all within 2 minutes; no export at all.
SERIES = {
    f'{H}_count{{route="/api/v1/bonus-plans",method="GET",status="200"}}': 995,
    f'{H}_count{{route="/api/v1/bonus-plans",method="GET",status="500"}}': 5,
    f'{H}_bucket{{route="/api/v1/bonus-plans",method="GET",status="200",le="0.3"}}': 960,
    f'{H}_bucket{{route="/api/v1/bonus-plans",method="GET",status="500",le="0.3"}}': 5,
    # probes and scrapes are outside every SLO, however slow or failing
    f'{H}_count{{route="/metrics",method="GET",status="500"}}': 1000,
    'paysheet_run_duration_seconds_count': 10,
    'paysheet_run_duration_seconds_bucket{le="120.0"}': 10,
}
EXPECTED = {  # slo: (error ratio, remaining budget, status)
    "availability": (0.005, 1 - 0.005 / 0.001, "exhausted"),
    "api_latency": (0.035, 1 - 0.035 / 0.05, "ok"),
    "run_duration": (0.0, 1.0, "ok"),
    "export_duration": (None, None, "no data"),
}


def _openmetrics(start: int) -> str:
    lines = []
    for series, per_minute in SERIES.items():
        name = series.split("{")[0]
        lines.append(f"# TYPE {name} gauge")  # backfilled as plain samples
        lines += [f"{series} {per_minute * i} {start + 60 * i}" for i in range(MINUTES + 1)]
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, datetime]]:
    """(Prometheus URL, end of the data) with the series above loaded."""
    workdir = tmp_path_factory.mktemp("slo-prometheus")
    start = (int(time.time()) // 3600 - 5) * 3600  # whole hours, ending two hours ago or more
    source = workdir / "data.om"
    source.write_text(_openmetrics(start))
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: apt-get install prometheus"
    done = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(source),
                           str(workdir / "data")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    with prometheus(workdir, {"global": {"scrape_interval": "15s"}}) as base:
        yield base, datetime.fromtimestamp(start + 60 * MINUTES, UTC)


def _check(items: list[dict]) -> None:
    assert [item["slo"] for item in items] == list(EXPECTED)
    for item in items:
        ratio, remaining, status = EXPECTED[item["slo"]]
        assert item["status"] == status, item
        if ratio is None:
            assert item["error_ratio"] is None and item["attainment"] is None, item
            continue
        assert item["error_ratio"] == pytest.approx(ratio, abs=1e-9), item
        assert item["attainment"] == pytest.approx(1 - ratio, abs=1e-9), item
        assert item["budget_remaining"] == pytest.approx(remaining, abs=1e-6), item


def test_cli_report_prints_attainment_and_budget(backfilled) -> None:
    base, end = backfilled
    command = [sys.executable, "-m", "server.cli", "slo", "report", "--period", "1h",
               "--end", end.strftime("%Y-%m-%dT%H:%M:%S"), "--prometheus-url", base]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TZ": "UTC"}
    table = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env,
                           timeout=120)
    assert table.returncode == 1, table.stderr  # a budget is exhausted
    rows = {line.split()[0]: line for line in table.stdout.splitlines()[2:]}
    assert "99.500%" in rows["availability"] and "-400.0%" in rows["availability"]
    assert "exhausted" in rows["availability"]
    assert "96.500%" in rows["api_latency"] and "30.0%" in rows["api_latency"]
    assert "100.000%" in rows["run_duration"]
    assert rows["export_duration"].split()[-2:] == ["no", "data"]
    as_json = subprocess.run([*command, "--json"], capture_output=True, text=True, cwd=ROOT,
                             env=env, timeout=120)
    _check(json.loads(as_json.stdout))


def test_cli_names_a_bad_period_and_an_unreachable_prometheus(backfilled) -> None:
    base, _ = backfilled
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    bad = subprocess.run([sys.executable, "-m", "server.cli", "slo", "report", "--period",
                          "month", "--prometheus-url", base], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=120)
    assert bad.returncode == 2 and "period: 'month'" in bad.stderr
    gone = subprocess.run([sys.executable, "-m", "server.cli", "slo", "report",
                           "--prometheus-url", "http://127.0.0.1:9"], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)
    assert gone.returncode == 2 and "unreachable" in gone.stderr


def test_endpoint_for_admins_only(backfilled, settings: Settings, make_tenant) -> None:
    base, end = backfilled
    tenant = make_tenant()
    with TestClient(create_app(settings.model_copy(update={"prometheus_url": base}))) as api:
        params = {"period": "1h", "end": end.isoformat()}
        answer = api.get("/api/v1/ops/slo", params=params, headers=tenant.users["admin"].headers)
        assert answer.status_code == 200, answer.text
        _check(answer.json()["items"])
        for role in ("hr", "finance", "auditor", "manager", "readonly"):
            refused = api.get("/api/v1/ops/slo", params=params,
                              headers=tenant.users[role].headers)
            assert refused.status_code == 403, (role, refused.text)
        bad = api.get("/api/v1/ops/slo", params={"period": "1 month"},
                      headers=tenant.users["admin"].headers)
        assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["query", "period"]
    with TestClient(create_app(settings.model_copy(
            update={"prometheus_url": "http://127.0.0.1:9"}))) as api:
        down = api.get("/api/v1/ops/slo", headers=tenant.users["admin"].headers)
        assert down.status_code == 503 and "unreachable" in down.json()["detail"]
