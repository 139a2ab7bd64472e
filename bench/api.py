"""API throughput benchmark (`make bench`): the read mix under 50 connections, with `wrk`.

Sets up a throw-away database (BENCH_DATABASE_URL, default the local server as `postgres`), a
tenant with the sample plan locked, 1,000 generated employees uploaded and mapped, and one
finished run (executed by a `paysheet worker`), so every read endpoint has real data behind
it. Then starts the API as its own processes (`paysheet serve`, one uvicorn process per CPU,
no in-process worker) and drives it with `wrk` (Debian package; a C load generator, so the
client does not eat the server's CPU), 50 keep-alive connections, for a fixed duration:

- the baseline: `GET /healthz` alone (no database, no auth), measured in the same run, so
  the ratio says what our auth + database + serialisation cost;
- the read mix (ARCHITECTURE.md): the plans list, a run with its totals, the audit list,
  signed in as an admin, in rotation.

Prints throughput, P50/P95/P99 and errors of both, the ratios to the budget (>= 300 req/s,
P99 <= 300 ms, 0 errors) and the CPU each request cost: the API processes' and the
PostgreSQL backends' serving the bench database (psutil; run as root or as the database's
user), the figure that does not depend on how busy a shared machine is. `--breakdown` adds
each endpoint alone; `--profile DIR` records the API processes with py-spy during the mix
(collapsed stacks per process). Not a test: it never fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from bench.runs import FUNDS, _tenant, _upload, _wait, _worker, bench_database, stop  # noqa: E402
from samples.generate import employees, fund_table  # noqa: E402
from server.app import create_app  # noqa: E402
from server.db import session as db  # noqa: E402
from server.modules.auth.permissions import Role  # noqa: E402
from server.modules.auth.service import issue_token  # noqa: E402
from server.modules.tenants import service as tenants  # noqa: E402
from server.settings import Settings  # noqa: E402
from tests.runs.support import create_locked_plan, sample_document  # noqa: E402

API = "/api/v1"
CONNECTIONS = 50
BUDGET_RPS = 300.0
BUDGET_P99_MS = 300.0


def _seed(settings: Settings, employee_count: int) -> tuple[dict[str, str], dict[str, str]]:
    """A tenant with a locked plan, uploads and one finished run; returns headers and ids."""
    with TestClient(create_app(settings)) as client:
        tenant = _tenant()
        headers = tenant.users["hr"].headers
        plan_id = create_locked_plan(client, tenant, sample_document())
        people, funds = employees(employee_count, FUNDS, 7), fund_table(FUNDS, 7)
        worker = _worker(settings)  # validates the uploads too (queue tasks), then runs
        try:
            upload_id = _upload(client, tenant, people.write_csv().encode(), "employees",
                                plan_id, people.columns)
            funds_id = _upload(client, tenant, funds.write_csv().encode(), "funds", plan_id,
                               funds.columns)
            run_id = client.post(f"{API}/runs", headers=headers, json={
                "plan_id": plan_id, "upload_id": upload_id, "funds_upload_id": funds_id,
            }).json()["run_id"]
            _wait(client, headers, run_id)
        finally:
            stop(worker, timeout=60)
    ids = {"tenant": str(tenant.id), "plan": plan_id, "upload": upload_id, "run": run_id}
    return _admin_headers(tenant.id), ids


def _admin_headers(tenant_id: uuid.UUID) -> dict[str, str]:
    """An admin's token: the one role that may read every endpoint of the mix (audit too)."""
    with db.tenant_session(tenant_id) as session:
        admin = tenants.add_user(session, None, email=f"admin@{uuid.uuid4().hex[:8]}.bench",
                                 role=Role.ADMIN, display_name="Admin", teams=[])
        token = issue_token(session, admin.user.id, timedelta(hours=4)).token
    return {"Authorization": f"Bearer {token}"}


def _endpoints(ids: dict[str, str]) -> dict[str, str]:
    """The read mix: plans list, a run with its totals, the audit list."""
    return {
        "plans list": f"{API}/tenants/{ids['tenant']}/bonus-plans",
        "run totals": f"{API}/runs/{ids['run']}",
        "audit list": f"{API}/audit?limit=50",
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(settings: Settings, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(DATABASE_URL=settings.database_url, DATA_DIR=str(settings.data_dir),
               LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT), EMBEDDED_WORKERS="0",
               RATE_LIMIT_PER_MINUTE="1000000", RATE_LIMIT_BURST="1000000",
               QUEUE_NAME=settings.queue_name)
    log = (settings.data_dir / "server.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
                            env=env, cwd=ROOT, start_new_session=True,
                            stdout=log, stderr=subprocess.STDOUT)


async def _ready(base: str, server: subprocess.Popen) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        while True:  # start-up readiness poll: /readyz answers once uvicorn listens
            if server.poll() is not None:
                raise SystemExit(f"the API process exited with {server.returncode}")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)


WRK_SCRIPT = """
local paths = {%(paths)s}
local headers = {%(headers)s}
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1], headers)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%.1f %%.1f %%.1f %%.1f\\n", summary.requests,
    summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def _lua_list(items: list[str]) -> str:
    return ", ".join(f'"{item}"' for item in items)


def _wrk(base: str, paths: list[str], headers: dict[str, str], seconds: int,
         workdir: Path) -> dict[str, float]:
    """One wrk run: 2 threads, CONNECTIONS keep-alive connections, `paths` in rotation."""
    wrk = shutil.which("wrk")
    if not wrk:
        raise SystemExit("wrk is missing: apt-get install wrk")
    script = workdir / f"mix-{len(paths)}.lua"
    script.write_text(WRK_SCRIPT % {
        "paths": _lua_list(paths),
        "headers": ", ".join(f'["{k}"] = "{v}"' for k, v in headers.items())})
    done = subprocess.run([wrk, "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s",
                           "-s", str(script), base], capture_output=True, text=True, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    requests, micros, errors, p50, p95, p99, top = (float(x) for x in line.split()[1:])
    return {"rps": requests / (micros / 1e6), "requests": requests, "errors": errors,
            "p50": p50 / 1000, "p95": p95 / 1000, "p99": p99 / 1000, "max": top / 1000}


def _line(name: str, result: dict[str, float]) -> str:
    return (f"{name:<10} {result['rps']:8.1f} req/s  P50 {result['p50']:7.1f} ms  "
            f"P95 {result['p95']:7.1f} ms  P99 {result['p99']:7.1f} ms  "
            f"errors {result['errors']:.0f} of {result['requests']:.0f}")


def _profile(server_pid: int, seconds: int, folder: Path) -> list[subprocess.Popen]:
    """py-spy on every API process (the children of `paysheet serve`) during the mix."""
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if not spy:
        raise SystemExit("py-spy is missing: pip install py-spy")
    folder.mkdir(parents=True, exist_ok=True)
    children = subprocess.run(["pgrep", "-P", str(server_pid)], capture_output=True,
                              text=True).stdout.split() or [str(server_pid)]
    return [subprocess.Popen([spy, "record", "--pid", pid, "--duration", str(seconds),
                              "--rate", "200", "--format", "raw",
                              "--output", str(folder / f"api-{pid}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for pid in children]


def tree_cpu(pid: int) -> float:
    """User + system CPU of a process tree so far (`paysheet serve` and its API processes, or
    a worker and its render processes), reaped children included."""
    import psutil

    parent = psutil.Process(pid)
    total = 0.0
    for process in [parent, *parent.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


class BackendCpu:
    """CPU of the PostgreSQL backends serving one database, sampled from a thread.

    A backend's process title names its database (`postgres: 15/main: user db 127.0.0.1(…)`),
    so psutil finds exactly the bench's backends among the shared server's (we run as root or
    as the server's user). A backend that exits between two samples loses at most one
    interval of CPU: the interval is short and the pool keeps its connections, so the figure
    is a slight undercount; `started` counts the backends opened during the window (pool
    churn, each one a fork and a catalog warm-up in PostgreSQL).
    """

    def __init__(self, database: str, interval: float = 0.2) -> None:
        self.marker = f" {database} "
        self.interval = interval
        self._seen: dict[int, tuple[float, float]] = {}  # pid -> (first, last) CPU seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pg-cpu", daemon=True)

    def _sample(self) -> None:
        import psutil

        for process in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(process.info["cmdline"] or ())
            if not cmdline.startswith("postgres:") or self.marker not in cmdline:
                continue
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            used = times.user + times.system
            first = self._seen.get(process.pid, (None, 0.0))[0]
            self._seen[process.pid] = (used if first is None else first, used)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> BackendCpu:
        self._sample()
        self._before = set(self._seen)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def seconds(self) -> float:
        """CPU used in the window (a backend new in the window counts from zero)."""
        return sum(last - (first if pid in self._before else 0.0)
                   for pid, (first, last) in self._seen.items())

    @property
    def started(self) -> int:
        return len(set(self._seen) - self._before)


def _database_name(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).database or ""


def _costed(base: str, paths: list[str], headers: dict[str, str], seconds: int,
            workdir: Path, server_pid: int, database: str) -> dict[str, float]:
    """One wrk run with the API processes' and the PostgreSQL backends' CPU per request."""
    cpu = tree_cpu(server_pid)
    with BackendCpu(database) as backends:
        result = _wrk(base, paths, headers, seconds, workdir)
    requests = max(result["requests"], 1)
    result["cpu_ms"] = (tree_cpu(server_pid) - cpu) * 1000 / requests
    result["pg_ms"] = backends.seconds * 1000 / requests
    result["started"] = backends.started
    return result


def _cost(result: dict[str, float]) -> str:
    return (f"API {result['cpu_ms']:.2f} ms + PostgreSQL {result['pg_ms']:.2f} ms = "
            f"{result['cpu_ms'] + result['pg_ms']:.2f} ms")


def _measure(base: str, headers: dict[str, str], ids: dict[str, str], seconds: int,
             workdir: Path, server_pid: int, profile: Path | None, database: str,
             breakdown: bool) -> None:
    paths = list(_endpoints(ids).values())
    _wrk(base, paths, headers, 3, workdir)  # warm-up: connections, caches, imports
    healthz = _costed(base, ["/healthz"], {}, seconds, workdir, server_pid, database)
    spies = _profile(server_pid, seconds, profile) if profile else []
    load = os.getloadavg()[0]
    mix = _costed(base, paths, headers, seconds, workdir, server_pid, database)
    after = os.getloadavg()[0]
    for spy in spies:
        spy.wait(timeout=120)
    print(f"wrk, {CONNECTIONS} connections, {seconds} s each, {os.cpu_count()} CPUs "
          f"(load average before the mix: {load:.1f}, after: {after:.1f})")
    print(_line("/healthz", healthz))
    print(_line("read mix", mix) + f"   ({', '.join(_endpoints(ids))})")
    print(f"CPU per request (unlike the latencies, independent of how busy the machine is): "
          f"read mix {_cost(mix)} ({mix['started']:.0f} backends started during the mix); "
          f"/healthz API {healthz['cpu_ms']:.2f} ms")
    print(f"read mix vs budget: throughput {mix['rps'] / BUDGET_RPS:.2f}x of >= "
          f"{BUDGET_RPS:.0f} req/s, P99 {mix['p99'] / BUDGET_P99_MS:.2f}x of <= "
          f"{BUDGET_P99_MS:.0f} ms, errors {mix['errors']:.0f} (budget 0); "
          f"{mix['rps'] / healthz['rps']:.2f}x the /healthz throughput")
    if breakdown:
        for name, path in _endpoints(ids).items():
            alone = _costed(base, [path], headers, max(3, seconds // 2), workdir, server_pid,
                            database)
            print(f"  {name:<10} alone: {_cost(alone)} per request, {alone['rps']:.0f} req/s, "
                  f"P99 {alone['p99']:.0f} ms")
    if profile:
        print(f"py-spy profiles (collapsed stacks: speedscope or flamegraph.pl): {profile}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="each wrk run (default 20)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="record the API processes with py-spy into this folder")
    parser.add_argument("--breakdown", action="store_true",
                        help="also each endpoint of the mix alone, with its CPU per request")
    args = parser.parse_args()
    with bench_database("api_") as settings:
        headers, ids = _seed(settings, 1_000)
        db.release_connections()
        port = _free_port()
        server = _serve(settings, port)
        try:
            base = f"http://127.0.0.1:{port}"
            asyncio.run(_ready(base, server))
            _measure(base, headers, ids, args.seconds, settings.data_dir, server.pid,
                     args.profile, _database_name(settings), args.breakdown)
        finally:
            stop(server)


if __name__ == "__main__":
    main()
