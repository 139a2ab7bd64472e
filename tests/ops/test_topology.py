"""The production topology with real processes: two API processes and two RedisHuey workers
on the machine's PostgreSQL and Redis, scraped by a real Prometheus loaded with the rules of
deploy/prometheus. The end-to-end flow runs through them; a worker killed mid-run leaves the
run to the other (one result set); an API process killed mid-upload resumes the tus upload
after its restart; every dashboard and rule query evaluates against what was scraped.

The tests of this module run in order and share the stack (module-scoped)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
import yaml

from samples.generate import employees, fund_table
from tests.ops.prometheus import prometheus, query
from tests.ops.topology import Api, Worker, api, wait_until, worker
from tests.runs.support import create_locked_plan, sample_document, wait_for_run
from tests.uploads.conftest import TUS, tus_metadata
from tests.uploads.server_process import ROOT

API = "/api/v1"
DEPLOY = ROOT / "deploy"
pytestmark = pytest.mark.slow


@dataclass
class Stack:
    apis: list[Api]
    workers: list[Worker]
    prometheus: str
    database: object


@pytest.fixture(scope="module")
def stack(database, redis_url: str) -> Iterator[Stack]:
    workdir = Path(tempfile.mkdtemp(prefix="paysheet-topology-"))
    env = {key: value for key, value in __import__("os").environ.items()
           if key not in ("MIGRATION_DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR")}
    env.update(DATABASE_URL=database.app, REDIS_URL=redis_url, DATA_DIR=str(workdir / "data"),
               QUEUE_NAME=f"topology-{uuid.uuid4().hex[:8]}", LOG_LEVEL="WARNING",
               RATE_LIMIT_PER_MINUTE="100000", RATE_LIMIT_BURST="100000",
               RUN_MAX_ATTEMPTS="3", PYTHONPATH=str(ROOT))
    apis = [api(env, workdir, f"api-{i}") for i in (1, 2)]
    workers = [worker(env, workdir, f"worker-{i}") for i in (1, 2)]
    try:
        for process in [*apis, *workers]:
            process.start()
        with prometheus(workdir / "prometheus", _prometheus_config(workdir, apis, workers)) as url:
            yield Stack(apis, workers, url, database)
    finally:
        for process in [*apis, *workers]:
            process.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def _prometheus_config(workdir: Path, apis: list[Api], workers: list[Worker]) -> dict:
    """deploy/prometheus's job names and rules, with local targets and 1 s intervals."""
    rules = workdir / "rules"
    rules.mkdir()
    for path in (DEPLOY / "prometheus" / "rules").glob("*.yml"):
        document = yaml.safe_load(path.read_text())
        for group in document["groups"]:
            group["interval"] = "1s"
        (rules / path.name).write_text(yaml.safe_dump(document))
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules / "*.yml")],
        "scrape_configs": [
            {"job_name": "paysheet-api",
             "static_configs": [{"targets": [f"127.0.0.1:{a.port}" for a in apis]}]},
            {"job_name": "paysheet-worker",
             "static_configs": [{"targets": [f"127.0.0.1:{w.metrics_port}" for w in workers]}]},
        ]}


def _client(process: Api) -> httpx.Client:
    return httpx.Client(base_url=process.url, timeout=60)


def _identity(columns: list[str]) -> dict[str, str]:
    return {column: column for column in columns}


def _wait_ready_upload(client: httpx.Client, headers: dict, upload_id: str) -> None:
    def settled() -> dict | None:
        upload = client.get(f"{API}/uploads/{upload_id}", headers=headers).json()
        return upload if upload["status"] in ("ready", "failed", "rejected") else None

    upload = wait_until(settled, f"upload {upload_id} validated")
    assert upload["status"] == "ready", client.get(
        f"{API}/uploads/{upload_id}/validation", headers=headers).text


def _tus_upload(client: httpx.Client, headers: dict, data: bytes, kind: str) -> str:
    created = client.post(f"{API}/uploads", headers={
        **headers, **TUS, "Upload-Length": str(len(data)),
        "Upload-Metadata": tus_metadata(filename=f"{kind}.csv", kind=kind)})
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    for offset in range(0, len(data), 256 * 1024):
        sent = client.patch(location, content=data[offset:offset + 256 * 1024], headers={
            **headers, **TUS, "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream"})
        assert sent.status_code == 204, sent.text
    return location.rstrip("/").rsplit("/", 1)[1]


def _inputs(stack: Stack, tenant, count: int) -> dict:
    """A locked plan and ready employees/funds uploads, created through both API processes:
    employees by tus on API 2, funds by multipart on API 1, both mapped on API 1."""
    hr = tenant.users["hr"].headers
    one, two = _client(stack.apis[0]), _client(stack.apis[1])
    plan_id = create_locked_plan(one, tenant, sample_document())
    people, funds = employees(count, 6, 7), fund_table(6, 7)
    employees_id = _tus_upload(two, hr, people.write_csv(line_terminator="\n").encode(),
                               "employees")
    funds_csv = funds.write_csv(line_terminator="\n").encode()
    posted = one.post(f"{API}/uploads", headers=hr, data={"kind": "funds"},
                      files={"file": ("funds.csv", funds_csv, "text/csv")})
    assert posted.status_code == 201, posted.text
    funds_id = posted.json()["id"]
    for upload_id, frame in ((employees_id, people), (funds_id, funds)):
        mapped = one.post(f"{API}/uploads/{upload_id}/map", headers=hr, params={
            "plan_id": plan_id}, json=_identity(frame.columns))
        assert mapped.status_code == 202, mapped.text
        _wait_ready_upload(two, hr, upload_id)
    return {"plan_id": plan_id, "upload_id": employees_id, "funds_upload_id": funds_id}


def _result_count(database, run_id: str) -> int:
    with psycopg.connect(database.migrate) as conn:
        return conn.execute("select count(*) from comp.run_results where run_id = %s",
                            (run_id,)).fetchone()[0]


def test_end_to_end_through_two_apis_and_two_workers(stack: Stack, make_tenant) -> None:
    tenant = make_tenant()
    hr = tenant.users["hr"].headers
    body = _inputs(stack, tenant, 400)
    one, two = _client(stack.apis[0]), _client(stack.apis[1])
    run_ids = []
    for client in (one, two, one):
        posted = client.post(f"{API}/runs", headers=hr, json=body)
        assert posted.status_code in (201, 202), posted.text
        run_ids.append(posted.json()["run_id"])
    runs = [wait_for_run(two if i % 2 else one, run_id, hr) for i, run_id in enumerate(run_ids)]
    assert [run["status"] for run in runs] == ["draft"] * 3, runs
    assert len({run["results_hash"] for run in runs}) == 1
    assert all(_result_count(stack.database, run_id) == 400 for run_id in run_ids)
    pids = {int(run["progress"]["worker"].rsplit(":", 1)[1]) for run in runs}
    assert all(any(w.owns(pid) for w in stack.workers) for pid in pids), pids
    results = two.get(f"{API}/runs/{run_ids[0]}/results", headers=hr, params={"limit": 5})
    assert results.status_code == 200 and len(results.json()["items"]) == 5, results.text


def test_killed_worker_mid_run_finishes_on_the_other(stack: Stack, make_tenant) -> None:
    tenant = make_tenant()
    hr = tenant.users["hr"].headers
    body = _inputs(stack, tenant, 300)
    one = _client(stack.apis[0])
    with psycopg.connect(stack.database.migrate) as blocker:
        # The executing worker blocks inside its persist transaction: mid-run, for sure.
        blocker.execute("lock table comp.run_totals in share mode")
        run_id = one.post(f"{API}/runs", headers=hr, json=body).json()["run_id"]
        running = wait_for_run(one, run_id, hr, done=lambda run: run["status"] == "running"
                               and (run.get("progress") or {}).get("worker"))
        pid = int(running["progress"]["worker"].rsplit(":", 1)[1])
        victim = next(w for w in stack.workers if w.owns(pid))
        survivor = next(w for w in stack.workers if w is not victim)
        wait_until(lambda: _waiting_on_lock(stack.database), "the run to reach persist")
        victim.kill()
        blocker.rollback()
    # The survivor's minute-by-minute recovery finds the orphan (its lock died with it).
    run = wait_for_run(one, run_id, hr, deadline_seconds=240)
    assert run["status"] == "draft", run
    assert run["attempts"] == 2, run
    assert _result_count(stack.database, run_id) == 300  # one result set, not two
    new_pid = int(run["progress"]["worker"].rsplit(":", 1)[1])
    assert survivor.owns(new_pid), (new_pid, survivor.pid)


def _waiting_on_lock(database) -> bool:
    with psycopg.connect(database.migrate, autocommit=True) as conn:
        return bool(conn.execute(
            "select 1 from pg_stat_activity where wait_event_type = 'Lock' and "
            "datname = current_database() and query ilike 'insert into comp.run_totals%'"
        ).fetchone())


def test_restarted_api_process_resumes_the_tus_upload(stack: Stack, make_tenant) -> None:
    tenant = make_tenant()
    hr = tenant.users["hr"].headers
    target = stack.apis[0]
    data = employees(20_000, 6, 11).write_csv(line_terminator="\n").encode()
    first = 512 * 1024
    with _client(target) as client:
        created = client.post(f"{API}/uploads", headers={
            **hr, **TUS, "Upload-Length": str(len(data)),
            "Upload-Metadata": tus_metadata(filename="big.csv", kind="employees")})
        location = created.headers["Location"]
        sent = client.patch(location, content=data[:first], headers={
            **hr, **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
        assert sent.status_code == 204, sent.text
    killed = threading.Event()

    def body() -> Iterator[bytes]:
        """The rest, in pieces; the API process dies after the third one."""
        for index, offset in enumerate(range(first, len(data), 64 * 1024)):
            if index == 3:
                target.kill()
                killed.set()
            yield data[offset:offset + 64 * 1024]

    with pytest.raises(httpx.TransportError), _client(target) as client:
        client.patch(location, content=body(), headers={
            **hr, **TUS, "Upload-Offset": str(first),
            "Content-Type": "application/offset+octet-stream"})
    assert killed.is_set() and not target.alive()
    target.start()  # the same port: the client comes back to the same address
    with _client(target) as client:
        head = client.head(location, headers={**hr, **TUS})
        assert head.status_code == 200, head.text
        offset = int(head.headers["Upload-Offset"])
        assert first <= offset < len(data)
        resumed = client.patch(location, content=data[offset:], headers={
            **hr, **TUS, "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream"})
        assert resumed.status_code == 204, resumed.text
        assert int(resumed.headers["Upload-Offset"]) == len(data)
        upload = client.get(location, headers=hr).json()
    assert upload["sha256"] == hashlib.sha256(data).hexdigest(), upload


METRIC = re.compile(r"\b((?:paysheet|process)_[a-z0-9_]+|up|ALERTS)\b(?!\s*\()")
RECORDED = re.compile(r"\bpaysheet:[a-z0-9_:]+")
# Panels whose data needs an export, a failed step or a firing alert: this test makes none.
MAY_BE_EMPTY = re.compile(r"export|step_failures|ALERTS")


def _dashboard_queries() -> list[tuple[str, str]]:
    queries = []
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            queries += [(f"{path.name}: {panel['title']}", target["expr"])
                        for target in panel["targets"]]
    return queries


def _rule_expressions() -> tuple[list[tuple[str, str]], set[str]]:
    exprs, records = [], set()
    for path in sorted((DEPLOY / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                exprs.append((rule.get("alert") or rule["record"], rule["expr"]))
                records.add(rule.get("record", ""))
    return exprs, records


def test_every_dashboard_and_rule_query_evaluates_against_real_prometheus(stack: Stack) -> None:
    base = stack.prometheus
    # Rules have evaluated over scraped traffic, runs and uploads of the tests above.
    for record in ("paysheet:slo_availability_errors:ratio_rate5m",
                   "paysheet:slo_run_duration_errors:ratio_rate1h"):
        try:
            wait_until(lambda record=record: query(base, record)["result"], record, 60)
        except AssertionError:
            targets = httpx.get(f"{base}/api/v1/targets", timeout=30).json()["data"]
            raise AssertionError((record, query(base, "paysheet_run_duration_seconds_count"),
                                  query(base, "paysheet_http_request_duration_seconds_count"),
                                  targets["activeTargets"])) from None
    rules = httpx.get(f"{base}/api/v1/rules", timeout=30).json()["data"]["groups"]
    unhealthy = [(rule["name"], rule.get("lastError")) for group in rules
                 for rule in group["rules"] if rule["health"] == "err"]
    assert len(rules) == 4 and not unhealthy, unhealthy
    metadata = httpx.get(f"{base}/api/v1/metadata", timeout=30).json()["data"]
    names = set(httpx.get(f"{base}/api/v1/label/__name__/values", timeout=30).json()["data"])
    panels = _dashboard_queries()
    exprs, records = _rule_expressions()
    assert len(panels) >= 25
    empty = []
    for title, expr in [*panels, *exprs]:
        data = query(base, expr)  # asserts the query is accepted and evaluates
        for name in METRIC.findall(expr):
            base_name = re.sub(r"_(bucket|count|sum)$", "", name)
            assert name in ("ALERTS", "up") or name in names or base_name in metadata, (
                f"{title}: {name} is not exported by the server or the worker")
        for name in RECORDED.findall(expr):
            assert name in records, f"{title}: {name} is not a recording rule"
        if (title, expr) in panels and not data["result"] and not MAY_BE_EMPTY.search(expr):
            empty.append(title)
    assert not empty, f"dashboard panels without data after real traffic: {empty}"
    workers_up = query(base, 'sum(up{job="paysheet-worker"})')["result"]
    assert float(workers_up[0]["value"][1]) >= 1
