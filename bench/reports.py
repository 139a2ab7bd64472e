"""Statement rendering benchmark (prints figures and ratios to the budget; not a test).

    python bench/reports.py [--employees 1000] [--pdf 10] [--xlsx 100] [--bulk 1000]
                            [--processes 2]

Budget (ARCHITECTURE.md): <= 1 s per PDF statement, <= 0.05 s per XLSX statement. The bulk
job renders `--bulk` PDF statements on `--processes` spawned processes, as the worker does.
A ratio above 1 means within budget (budget / measured).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.data import load_inputs  # noqa: E402
from engine.plan import compile_plan, load_plan  # noqa: E402
from samples import generate  # noqa: E402
from server.modules.reports.bulk import render_statements, statements_zip  # noqa: E402
from server.modules.reports.render import statement_pdf, statement_xlsx  # noqa: E402
from server.modules.reports.statement import Branding, RunInfo, build_statement  # noqa: E402
from server.modules.reports.tapes import explain_all  # noqa: E402

PDF_BUDGET, XLSX_BUDGET = 1.0, 0.05


def _per_item(render, statements) -> float:
    render(statements[0])  # warm-up: imports, fonts, templates
    start = time.perf_counter()
    for statement in statements:
        render(statement)
    return (time.perf_counter() - start) / len(statements)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--employees", type=int, default=1000)
    parser.add_argument("--pdf", type=int, default=10)
    parser.add_argument("--xlsx", type=int, default=100)
    parser.add_argument("--bulk", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    employees = max(args.employees, args.bulk, args.pdf, args.xlsx)

    plan = compile_plan(load_plan(ROOT / "samples" / "plans" / "fund_bonus.json"))
    with tempfile.TemporaryDirectory() as folder:
        emp, funds = generate.write(employees, 20, 7, Path(folder))
        frame = load_inputs(plan, emp, funds)
    run = RunInfo("bench-run", "draft", "0" * 64, "1" * 64)
    brand = Branding("Bench Capital")
    start = time.perf_counter()
    tapes = explain_all(plan, frame)
    tape_seconds = time.perf_counter() - start
    refs = sorted(tapes)
    print(f"machine: {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}")
    print(f"tapes: {len(tapes)} employees from one reference evaluation in {tape_seconds:.2f} s")

    statements = [build_statement(plan, tapes[ref], run, brand) for ref in refs]
    pdf = _per_item(statement_pdf, statements[: args.pdf])
    xlsx = _per_item(statement_xlsx, statements[: args.xlsx])
    print(f"PDF statement : {pdf:.3f} s each  (budget {PDF_BUDGET} s, "
          f"ratio {PDF_BUDGET / pdf:.2f})")
    print(f"XLSX statement: {xlsx:.4f} s each (budget {XLSX_BUDGET} s, "
          f"ratio {XLSX_BUDGET / xlsx:.2f})")

    if args.bulk:
        chosen = {ref: tapes[ref] for ref in refs[: args.bulk]}
        start = time.perf_counter()
        rendered = render_statements(plan, chosen, run, brand, "pdf", processes=args.processes)
        archive = statements_zip(rendered, "pdf")
        seconds = time.perf_counter() - start
        per = seconds / len(chosen)
        print(f"bulk: {len(chosen)} PDF statements on {args.processes} processes in "
              f"{seconds:.1f} s = {per:.3f} s/statement wall ({len(archive) / 1e6:.1f} MB zip); "
              f"{pdf / per:.2f}x the single-process rate")


if __name__ == "__main__":
    main()
