"""Upload benchmark: a generated ~250 MB CSV (about 2M rows) through tus in 5 MB chunks to a
real server process, then mapped, validated and normalised (Parquet + employee_rows).

    python bench/uploads.py [--rows 2000000] [--chunk-mb 5] [--keep]

Needs PostgreSQL as a superuser (DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/
postgres): it creates a scratch database and drops it afterwards. Prints the time of each
phase (transfer; map -> ready, when a run can start; ready -> employee_rows filled), the
server's own stage timings, throughput, and the peak RSS growth (VmHWM over the RSS before
the upload) of the queue worker that validates (`python -m server.worker` next to the API
server: validation is a queue task), plus the API process's own growth. Budget
(ARCHITECTURE.md): <= 60 s end to end until the upload is ready, RSS growth <= 300 MB;
the time until employee_rows is filled is printed too. Not a test.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import polars as pl
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from samples.generate import employees  # noqa: E402
from server.db import session as db  # noqa: E402
from server.db.bootstrap import bootstrap, drop_database  # noqa: E402
from server.modules.auth.service import issue_token  # noqa: E402
from server.modules.tenants import service as tenants  # noqa: E402
from server.settings import Settings  # noqa: E402

API = "/api/v1"
TUS = {"Tus-Resumable": "1.0.0"}
BUDGET_SECONDS, BUDGET_RSS_MB = 60, 300
CATALOG = [("base_salary", "Base salary", "decimal"), ("performance_score", "Score", "decimal"),
           ("level", "Level", "text"), ("team", "Team", "text"),
           ("start_date", "Start date", "date"), ("leave_date", "Leave date", "date")]


def generate(rows: int, path: Path) -> None:
    """samples/generate.py employees plus the wider columns a real HR export carries."""
    frame = employees(rows, 40, 7).with_columns(
        (pl.lit("Employee ") + pl.col("employee_ref")).alias("full_name"),
        (pl.col("employee_ref").str.to_lowercase() + pl.lit("@example-fund-manager.com"))
        .alias("email"),
        (pl.lit("CC-") + pl.col("team") + pl.lit("-") + pl.col("level")).alias("cost_center"),
        pl.when(pl.col("fund_ref").str.ends_with("1")).then(pl.lit("Singapore"))
        .when(pl.col("team").str.ends_with("2")).then(pl.lit("New York"))
        .otherwise(pl.lit("London")).alias("location"),
        pl.when(pl.col("level") == "analyst").then(pl.lit("N")).otherwise(pl.lit("Y"))
        .alias("eligible"),
    )
    frame.select(
        pl.col("employee_ref").alias("Employee ID"), pl.col("full_name").alias("Full Name"),
        pl.col("email").alias("Email"), pl.col("fund_ref").alias("Fund Code"),
        pl.col("level").alias("Job Level"), pl.col("team").alias("Team"),
        pl.col("cost_center").alias("Cost Center"), pl.col("location").alias("Location"),
        pl.col("eligible").alias("Bonus Eligible"),
        pl.col("base_salary").alias("Base Salary (USD)"),
        pl.col("performance_score").alias("Perf Score 2025"),
        pl.col("start_date").alias("Hire Date"), pl.col("leave_date").alias("Termination Date"),
    ).write_csv(path, line_terminator="\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def prepare_tenant(app_url: str, migrate_url: str) -> tuple[uuid.UUID, str]:
    db.configure(Settings(database_url=app_url))
    created = tenants.create_tenant("Bench", f"admin@{uuid.uuid4().hex[:8]}.example.com")
    with db.tenant_session(created.tenant.id) as session:
        token = issue_token(session, created.admin.user.id, timedelta(hours=2)).token
    with psycopg.connect(migrate_url, autocommit=True) as conn:
        conn.execute("set role paysheet_owner")
        for key, label, dtype in CATALOG:
            conn.execute("insert into comp.input_catalog (tenant_id, key, label, dtype) "
                         "values (%s, %s, %s, %s)", (created.tenant.id, key, label, dtype))
    db.release_connections()
    return created.tenant.id, token


def start_server(app_url: str, data_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": app_url, "DATA_DIR": str(data_dir),
           "LOG_LEVEL": "WARNING", "RATE_LIMIT_PER_MINUTE": "100000",
           "RATE_LIMIT_BURST": "100000"}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "server.app:create_app", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.05)
    process.terminate()
    raise RuntimeError("server did not start")


def start_worker(app_url: str, data_dir: Path) -> subprocess.Popen:
    """The queue consumer that validates (one thread, as `paysheet serve` embeds it):
    validation is a queue task, not work of the API process."""
    env = {**os.environ, "DATABASE_URL": app_url, "DATA_DIR": str(data_dir),
           "LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    return subprocess.Popen([sys.executable, "-m", "server.worker", "--threads", "--workers",
                             "1"], cwd=ROOT, env=env)


def warm_up(client: httpx.Client, source: Path, small: Path, mapping: dict) -> None:
    """The first 100 rows through upload, map and rows, so the worker has imported what it
    needs before the measured upload (its baseline RSS is taken after this)."""
    with source.open() as lines:
        small.write_text("".join(line for _, line in zip(range(101), lines, strict=False)))
    upload_id = upload(client, small, 1024 * 1024)
    client.post(f"{API}/uploads/{upload_id}/map", json=mapping).raise_for_status()
    wait_for(client, upload_id, rows_settled)


def upload(client: httpx.Client, path: Path, chunk: int) -> str:
    size = path.stat().st_size
    meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}"
                    for k, v in {"filename": path.name, "kind": "employees"}.items())
    created = client.post(f"{API}/uploads", headers={**TUS, "Upload-Length": str(size),
                                                     "Upload-Metadata": meta})
    created.raise_for_status()
    location = created.headers["Location"]
    offset = 0
    with path.open("rb") as handle:
        while offset < size:
            data = handle.read(chunk)
            response = client.patch(location, content=data, headers={
                **TUS, "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream"})
            if response.status_code != 204:
                raise RuntimeError(f"PATCH at {offset}: {response.status_code} {response.text}")
            offset = int(response.headers["Upload-Offset"])
    return location.rsplit("/", 1)[1]


def wait_for(client: httpx.Client, upload_id: str, done) -> dict:
    """Poll the upload (every 0.1 s: the figures are +- 0.1 s) until `done(body)`."""
    while True:
        body = client.get(f"{API}/uploads/{upload_id}").json()
        if done(body):
            return body
        time.sleep(0.1)


def usable(body: dict) -> bool:
    """What a user waits for before starting a run: ready (or failed)."""
    return body["status"] in ("ready", "failed")


def rows_settled(body: dict) -> bool:
    return body["status"] == "failed" or (body.get("rows") or {}).get("status") in (
        "filled", "failed")


@dataclass
class Figures:
    rows: int
    size_mb: float
    chunk_mb: int
    transfer: float
    to_ready: float
    to_rows: float
    rss_before_kb: int
    peak_ready_kb: int
    peak_kb: int


def report(f: Figures, body: dict) -> None:
    """Print the phases, the server's own stage timings and the budget verdicts."""
    ready = f.transfer + f.to_ready
    total = ready + f.to_rows
    timings = body.get("timings") or {}
    fill = body.get("rows") or {}
    print(f"upload (tus, {f.chunk_mb} MB chunks): {f.transfer:.1f} s, "
          f"{f.size_mb / f.transfer:.1f} MB/s")
    print(f"map -> ready (validated, Parquet written): {f.to_ready:.1f} s, "
          f"{f.rows / f.to_ready:,.0f} rows/s; status {body['status']}, rows "
          f"{body['summary'] and body['summary']['rows']}, parquet sha256 "
          f"{str(body['parquet_sha256'])[:12]}")
    print("  server stages (s): " + ", ".join(f"{k} {v}" for k, v in timings.items()))
    print(f"ready -> employee_rows {fill.get('status')}: {f.to_rows:.1f} s (count "
          f"{fill.get('count')}, server {fill.get('seconds')} s: COPY "
          f"{fill.get('copy_seconds')} s, INSERT...SELECT {fill.get('insert_seconds')} s)")
    print(f"end to end until a run can start (ready): {ready:.1f} s "
          f"({f.size_mb / ready:.1f} MB/s), budget {BUDGET_SECONDS} s: "
          f"{'OK' if ready <= BUDGET_SECONDS else 'OVER'}")
    print(f"end to end including employee_rows: {total:.1f} s")
    for label, peak in (("until ready", f.peak_ready_kb), ("including rows", f.peak_kb)):
        growth = (peak - f.rss_before_kb) / 1024
        print(f"worker RSS {label}: {f.rss_before_kb / 1024:.0f} MB before, peak "
              f"{peak / 1024:.0f} MB, growth {growth:.0f} MB, budget {BUDGET_RSS_MB} MB: "
              f"{'OK' if growth <= BUDGET_RSS_MB else 'OVER'}")
    if body["status"] != "ready" or fill.get("status") != "filled":
        print(json.dumps(body, indent=1)[:2000])


def run(rows: int, chunk_mb: int, keep: bool) -> None:
    admin = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"paysheet_bench_{uuid.uuid4().hex[:8]}"
    workdir = Path(tempfile.mkdtemp(prefix="paysheet-bench-"))
    csv_path = workdir / "employees.csv"
    started = time.perf_counter()
    generate(rows, csv_path)
    size_mb = csv_path.stat().st_size / 1e6
    print(f"generated {rows:,} rows, {size_mb:.1f} MB in {time.perf_counter() - started:.1f} s")
    urls = bootstrap(admin, name, "paysheet-bench")
    mapping = {"employee_ref": "Employee ID", "fund_ref": "Fund Code",
               "base_salary": "Base Salary (USD)", "performance_score": "Perf Score 2025",
               "level": "Job Level", "team": "Team", "start_date": "Hire Date",
               "leave_date": "Termination Date"}
    process = worker = None
    try:
        _, token = prepare_tenant(urls.app, urls.migrate)
        process, base = start_server(urls.app, workdir / "data")
        worker = start_worker(urls.app, workdir / "data")
        with httpx.Client(base_url=base, timeout=600,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            client.get(f"{API}/uploads").raise_for_status()  # warm: imports, pool
            warm_up(client, csv_path, workdir / "warm.csv", mapping)  # the worker too
            baseline = rss_kb(worker.pid, "VmRSS")
            api_baseline = rss_kb(process.pid, "VmRSS")
            t0 = time.perf_counter()
            upload_id = upload(client, csv_path, chunk_mb * 1024 * 1024)
            t1 = time.perf_counter()
            suggested = client.get(f"{API}/uploads/{upload_id}/mapping-suggestions").json()
            auto = {s["key"]: s["column"] for s in suggested["suggestions"] if s["column"]}
            client.post(f"{API}/uploads/{upload_id}/map", json=mapping).raise_for_status()
            body = wait_for(client, upload_id, usable)
            t2 = time.perf_counter()
            peak_ready = rss_kb(worker.pid, "VmHWM")
            body = wait_for(client, upload_id, rows_settled)
            t3 = time.perf_counter()
            peak = rss_kb(worker.pid, "VmHWM")
            print(f"API process RSS growth (receiving, answering): "
                  f"{(rss_kb(process.pid, 'VmHWM') - api_baseline) / 1024:.0f} MB; the figures "
                  "below are the worker's (validation and the rows fill run there)")
        report(Figures(rows, size_mb, chunk_mb, t1 - t0, t2 - t1, t3 - t2, baseline,
                       peak_ready, peak), body)
        print(f"suggestions matched {sum(auto.get(k) == v for k, v in mapping.items())}/"
              f"{len(mapping)} mapped columns")
    finally:
        for child in (process, worker):
            if child is not None:
                child.terminate()
                child.wait(timeout=60)
        db.release_connections()
        drop_database(admin, name)
        if not keep:
            for path in sorted(workdir.rglob("*"), reverse=True):
                path.rmdir() if path.is_dir() else path.unlink()
            workdir.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--chunk-mb", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = parser.parse_args()
    run(args.rows, args.chunk_mb, args.keep)


if __name__ == "__main__":
    main()
