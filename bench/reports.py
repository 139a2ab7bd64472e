"""Statement rendering benchmark (prints figures and ratios to the budget; not a test).

    python bench/reports.py [--employees 2000] [--pdf 200] [--weasyprint 10] [--xlsx 100]
                            [--bulk 1000] [--export 2000,10000] [--processes 2]

Budget (ARCHITECTURE.md): <= 25 ms of CPU per two-page PDF statement, measured for BOTH
renderers in the same run on the same statements (Typst, which statements use, and the
WeasyPrint HTML print it replaced); <= 0.05 s per XLSX statement; the signed export bundle
(every statement PDF, results CSV/XLSX, audit workbook, manifest) of 2,000 employees in
<= 30 s and of 10,000 in <= 2 min. The bulk job renders `--bulk` PDF statements on
`--processes` spawned processes, as the worker does. A ratio above 1 means within budget
(budget / measured). Wall time suffers when other work shares the cores, so CPU seconds
(this process, or the workers) are printed too: on a shared machine they are the better
measure of the code itself.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.data import load_inputs  # noqa: E402
from engine.plan import compile_plan, load_plan  # noqa: E402
from samples import generate  # noqa: E402
from server.modules.reports.bulk import render_statements, statements_zip  # noqa: E402
from server.modules.reports.render import (  # noqa: E402
    statement_pdf,
    statement_pdf_weasyprint,
    statement_xlsx,
)
from server.modules.reports.statement import Branding, RunInfo, build_statement  # noqa: E402
from server.modules.reports.tapes import explain_all  # noqa: E402

PDF_BUDGET, XLSX_BUDGET = 0.025, 0.05
EXPORT_BUDGETS = {2000: 30.0, 10000: 120.0}


def _per_item(render, statements) -> tuple[float, float]:
    """(wall, cpu) seconds per statement after a warm-up (imports, fonts, templates)."""
    render(statements[0])
    wall, cpu = time.perf_counter(), time.process_time()
    for statement in statements:
        render(statement)
    count = len(statements)
    return (time.perf_counter() - wall) / count, (time.process_time() - cpu) / count


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--employees", type=int, default=1000)
    parser.add_argument("--pdf", type=int, default=200, help="statements rendered by Typst")
    parser.add_argument("--weasyprint", type=int, default=10,
                        help="the same statements printed by WeasyPrint (0: skip)")
    parser.add_argument("--xlsx", type=int, default=100)
    parser.add_argument("--bulk", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--export", default="2000",
                        help="employee counts for the signed export bundle, e.g. 2000,10000 "
                             "('' to skip)")
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
    pdf, pdf_cpu = _per_item(statement_pdf, statements[: args.pdf])
    print(f"PDF statement, Typst     : {pdf * 1000:.1f} ms wall, {pdf_cpu * 1000:.1f} ms CPU "
          f"each over {min(args.pdf, len(statements))} (budget {PDF_BUDGET * 1000:.0f} ms CPU; "
          f"ratio {PDF_BUDGET / pdf_cpu:.2f})")
    if args.weasyprint:
        weasy, weasy_cpu = _per_item(statement_pdf_weasyprint, statements[: args.weasyprint])
        print(f"PDF statement, WeasyPrint: {weasy * 1000:.1f} ms wall, {weasy_cpu * 1000:.1f} "
              f"ms CPU each over {min(args.weasyprint, len(statements))} (budget "
              f"{PDF_BUDGET * 1000:.0f} ms CPU; ratio {PDF_BUDGET / weasy_cpu:.2f}); Typst is "
              f"{weasy_cpu / pdf_cpu:.0f}x less CPU")
    xlsx, xlsx_cpu = _per_item(statement_xlsx, statements[: args.xlsx])
    print(f"XLSX statement: {xlsx:.4f} s wall, {xlsx_cpu:.4f} s CPU each (budget {XLSX_BUDGET} "
          f"s; ratio wall {XLSX_BUDGET / xlsx:.2f}, CPU {XLSX_BUDGET / xlsx_cpu:.2f})")

    if args.bulk:
        chosen = {ref: tapes[ref] for ref in refs[: args.bulk]}
        children_before = _children_cpu()
        start = time.perf_counter()
        rendered = render_statements(plan, chosen, run, brand, "pdf", processes=args.processes)
        archive = statements_zip(rendered, "pdf")
        seconds = time.perf_counter() - start
        workers_cpu = _children_cpu() - children_before
        per = seconds / len(chosen)
        print(f"bulk: {len(chosen)} PDF statements on {args.processes} processes in "
              f"{seconds:.1f} s wall = {per:.3f} s/statement ({len(archive) / 1e6:.1f} MB zip); "
              f"workers' CPU {workers_cpu / len(chosen):.3f} s/statement; "
              f"{pdf / per:.2f}x the single-process wall rate")
    for count in [int(n) for n in args.export.split(",") if n.strip()]:
        export_figures(plan, count, args.processes)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def export_figures(plan, count: int, processes: int) -> None:
    """The worker's export pipeline on `count` employees, files on disk as in production:
    one reference evaluation for the tapes, statements on `processes` processes written as
    they come, results CSV/XLSX, the audit workbook, the signed bundle streamed to disk."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from engine.backends import polars as polars_backend
    from engine.backends.excel_audit import build_audit_workbook
    from server.modules.reports.bulk import member_name
    from server.modules.reports.bundle import write_bundle
    from server.modules.reports.export import export_files, manifest_run, rows_from_frame
    from server.modules.reports.service import employee_inputs
    from server.modules.workbooks.audit import stamped_xlsx

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        emp, funds = generate.write(count, max(2, count // 100), 7, root)
        frame = load_inputs(plan, emp, funds)
        result = polars_backend.evaluate(plan, frame)
        run = RunInfo("bench-run", "finalized", "0" * 64, "1" * 64)
        children, start, cpu = _children_cpu(), time.perf_counter(), time.process_time()
        phases = {}
        tapes = explain_all(plan, frame)
        phases["tapes"] = time.perf_counter() - start
        paths = {ref: root / member_name(ref, "pdf") for ref in tapes}

        def store(pairs):
            for ref, pdf in pairs:
                paths[ref].parent.mkdir(parents=True, exist_ok=True)
                paths[ref].write_bytes(pdf)

        def other_files():  # as the job does: in a thread while the processes render
            stamp = datetime(2026, 1, 1)
            workbook = stamped_xlsx(build_audit_workbook(plan, frame, result, {}, created=stamp),
                                    stamp)
            return dict(export_files(plan, rows_from_frame(result.frame), {}, [], workbook))

        with ThreadPoolExecutor(max_workers=1) as side:
            others = side.submit(other_files)
            render_statements(plan, tapes, run, Branding("Bench Capital"), "pdf",
                              inputs=employee_inputs(frame), processes=processes,
                              on_chunk=store)
            phases["statements"] = time.perf_counter() - start - sum(phases.values())
            files = others.result()
        files.update({member_name(ref, "pdf"): path for ref, path in paths.items()})
        phases["audit workbook, results csv/xlsx (after statements)"] = (
            time.perf_counter() - start - sum(phases.values()))
        with (root / "bundle.zip").open("w+b") as handle:
            write_bundle(handle, files, manifest_run(run, plan, "t", files),
                         Ed25519PrivateKey.generate())
        phases["manifest + zip"] = time.perf_counter() - start - sum(phases.values())
        seconds = time.perf_counter() - start
        size = (root / "bundle.zip").stat().st_size
    cpu_all = time.process_time() - cpu + _children_cpu() - children
    budget = EXPORT_BUDGETS.get(count, 30.0 * count / 2000)
    print(f"export bundle, {count} employees: {seconds:.1f} s wall (budget {budget:.0f} s; "
          f"ratio {budget / seconds:.2f}), {cpu_all:.1f} s CPU, {size / 1e6:.0f} MB; "
          + ", ".join(f"{name} {value:.1f} s" for name, value in phases.items()))


if __name__ == "__main__":
    main()
