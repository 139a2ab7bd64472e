"""Audit workbook build and verification benchmark (prints figures and the ratio to the
budget; not a test).

    python bench/excel_audit.py [--employees 500] [--funds 6] [--exact-rows 40] [--no-verify]

Builds the audit workbook of an engine evaluation of samples/plans/fund_bonus.json over
generated data, timing the build stage by stage (the recalculation that fills the helper
columns' cached values, writing the file), then times `verify_workbook` stage by stage (read,
parse the formula columns, evaluate, check formulas and compare). Budgets: a 500-employee
workbook verifies in well under a minute, 30 s is the line; a build (the download of a run's
audit workbook) takes at most 60 s at 10,000 employees. For comparison it also times the exact
mode (every `formulas` function called once per row) on `--exact-rows` rows. CPU seconds are
printed beside wall time: on a shared machine they are the better measure of the code itself.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.backends import excel_audit, excel_verify, reference  # noqa: E402
from engine.backends.excel_recalc import RowModel  # noqa: E402
from engine.data import load_inputs  # noqa: E402
from engine.plan import compile_plan, load_plan  # noqa: E402
from samples import generate  # noqa: E402
from tests.engine.excel_harness import saved_inputs  # noqa: E402

BUDGET = 30.0
BUILD_BUDGET_PER_10K = 60.0


@contextmanager
def timed(label: str, into: dict[str, tuple[float, float]]):
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    into[label] = (time.perf_counter() - wall, time.process_time() - cpu)


def _stages(path: Path) -> dict[str, tuple[float, float]]:
    """verify_workbook's stages, timed by wrapping them."""
    found: dict[str, tuple[float, float]] = {}
    originals = {
        (excel_verify, "_grids"): "read the file",
        (RowModel, "__init__"): "parse formula columns",
        (RowModel, "calculate"): "evaluate all rows",
        (excel_verify, "_changed_formulas"): "check formulas",
    }
    saved = {key: getattr(*key) for key in originals}

    def wrap(key, label):
        function = saved[key]

        def run(*args, **kwargs):
            with timed(label, found):
                return function(*args, **kwargs)

        return run

    for key, label in originals.items():
        setattr(*key, wrap(key, label))
    try:
        with timed("verify_workbook (total)", found):
            report = excel_verify.verify_workbook(path)
    finally:
        for key, function in saved.items():
            setattr(*key, function)
    assert report.ok, report.problems[:5]
    return found


def _build(plan, data, result) -> tuple[bytes, dict[str, tuple[float, float]]]:
    """The workbook's bytes and the build's stages (the recalculation timed inside it)."""
    found: dict[str, tuple[float, float]] = {}
    original = excel_audit._recalculate

    def recalculate(*args, **kwargs):
        with timed("  recalculate (helper cache)", found):
            return original(*args, **kwargs)

    excel_audit._recalculate = recalculate
    try:
        with timed("build_audit_workbook", found):
            built = excel_audit.build_audit_workbook(plan, data, result, {})
    finally:
        excel_audit._recalculate = original
    return built, found


def _exact(plan, data, tmp: Path) -> tuple[float, float]:
    built, inputs = saved_inputs(plan, data, tmp)
    times: dict[str, tuple[float, float]] = {}
    fast_model, exact_model = RowModel(built.layout), RowModel(built.layout, exact=True)
    with timed("fast", times):
        fast_model.calculate(inputs)
    with timed("exact", times):
        exact_model.calculate(inputs)
    return times["fast"][0], times["exact"][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--employees", type=int, default=500)
    parser.add_argument("--funds", type=int, default=6)
    parser.add_argument("--exact-rows", type=int, default=40)
    parser.add_argument("--no-verify", action="store_true", help="time the build only")
    args = parser.parse_args()
    plan = compile_plan(load_plan(ROOT / "samples/plans/fund_bonus.json"))
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        employees, funds = generate.write(args.employees, args.funds, 2025, tmp / "data")
        data = load_inputs(plan, employees, funds)
        path = tmp / "audit.xlsx"
        built, build = _build(plan, data, reference.evaluate(plan, data))
        path.write_bytes(built)
        print(f"audit workbook build, {args.employees} employees x {len(plan.steps)} steps "
              f"({len(built) / 1e6:.1f} MB):")
        for label, (wall, cpu) in build.items():
            print(f"  {label:28s} {wall:7.2f} s wall {cpu:7.2f} s cpu")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        print(f"  peak memory (whole process so far) {peak:.2f} GB")
        budget = BUILD_BUDGET_PER_10K * max(args.employees, 1) / 10_000
        cpu = build["build_audit_workbook"][1]
        print(f"  budget {budget:.1f} s: ratio {budget / build['build_audit_workbook'][0]:.2f} "
              f"wall, {budget / cpu:.2f} cpu")
        if args.no_verify:
            return
        stages = _stages(path)
        print(f"verify-workbook, {args.employees} employees x {len(plan.steps)} steps:")
        for label, (wall, cpu) in stages.items():
            print(f"  {label:26s} {wall:7.2f} s wall {cpu:7.2f} s cpu")
        total = stages["verify_workbook (total)"][0]
        print(f"  budget {BUDGET:.0f} s: ratio {BUDGET / total:.2f}")
        small = data.sort("employee_ref").head(args.exact_rows)
        fast, exact = _exact(plan, small, tmp)
        print(f"evaluation of {small.height} rows: fast {fast:.2f} s, exact (per row) "
              f"{exact:.2f} s")


if __name__ == "__main__":
    main()
