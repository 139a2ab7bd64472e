"""Engine benchmark (`make bench`): the sample fund bonus plan over generated employees.

Prints one line per figure with its budget (ARCHITECTURE.md "Performance budget"):
- Polars evaluation time at 10k and 1M employees (best of several runs, and at 10k their
  median; the input frame is loaded once beforehand, so this is evaluation only; CSV loading
  is printed separately);
- the Decimal reference at 10k, measured (best of 3 full runs, not extrapolated), and the
  ratio of the two best times: the same statistic on both sides, each the least disturbed by
  whatever else the machine is doing (a single reference run varied 1.35-2.4 s). The two
  are measured in three alternating rounds (one reference run, then 17 Polars runs), so
  that a slow spell of a shared machine falls on both sides, not on one;
- peak memory at 1M: the maximum RSS of a child process that loads the CSVs and evaluates
  the plan once (resource.getrusage(RUSAGE_CHILDREN).ru_maxrss after it exits).

Not a test: it never fails on time. `--quick` uses 1k / 100k employees for a smoke run.
The first and last lines give the Polars version, its thread pool and the machine's load
average: on a shared machine a figure means little without the load it was measured under.
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
importlib.import_module("engine")  # before Polars loads: engine/__init__ sets its allocator

import polars as pl  # noqa: E402

from engine.backends import polars as fast  # noqa: E402
from engine.backends import reference  # noqa: E402
from engine.data import load_inputs  # noqa: E402
from engine.plan import CompiledPlan, compile_plan, load_plan  # noqa: E402
from samples.generate import write  # noqa: E402

PLAN = ROOT / "samples/plans/fund_bonus.json"


def timings(runs: int, action: Callable[[], object]) -> list[float]:
    """`runs` timings of `action`, in seconds, fastest first."""
    taken = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        taken.append(time.perf_counter() - start)
    return sorted(taken)


def interleaved(
    rounds: int, per_round: int, fast: Callable[[], object], slow: Callable[[], object]
) -> tuple[list[float], list[float]]:
    """Timings of `fast` and `slow` (fastest first) taken in alternating rounds: `slow`
    once, then `fast` `per_round` times."""
    fast_times: list[float] = []
    slow_times: list[float] = []
    for _ in range(rounds):
        slow_times += timings(1, slow)
        fast_times += timings(per_round, fast)
    return sorted(fast_times), sorted(slow_times)


def line(label: str, value: str, budget: str = "") -> None:
    print(f"{label:<44} {value:>14}   {budget}", flush=True)


def load() -> str:
    """The 1, 5 and 15 minute load averages, and how many CPUs share them."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def measure(plan: CompiledPlan, employees: int, funds: int, runs: int, folder: Path):
    paths = write(employees, funds, seed=7, out=folder / f"n{employees}")
    start = time.perf_counter()
    frame = load_inputs(plan, *paths)
    loaded = time.perf_counter() - start
    fast.evaluate(plan, frame)  # warm-up: first call pays for imports and thread pools
    return paths, frame, loaded, timings(runs, lambda: fast.evaluate(plan, frame))


CHILD = """
import sys
sys.path.insert(0, {root!r})
from engine.backends import polars as fast
from engine.data import load_inputs
from engine.plan import compile_plan, load_plan
plan = compile_plan(load_plan({plan!r}))
fast.evaluate(plan, load_inputs(plan, {employees!r}, {funds!r}))
"""


def child_peak_rss_mb(employees: Path, funds: Path) -> float:
    """Peak RSS (MiB) of a fresh process that loads the CSVs and evaluates once."""
    code = CHILD.format(root=str(ROOT), plan=str(PLAN), employees=str(employees), funds=str(funds))
    subprocess.run([sys.executable, "-c", code], check=True)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Paysheet engine benchmark")
    parser.add_argument("--quick", action="store_true", help="1k and 100k employees")
    args = parser.parse_args(argv)
    small, large = (1_000, 100_000) if args.quick else (10_000, 1_000_000)
    plan = compile_plan(load_plan(PLAN))
    print(f"plan: {plan.document.name} ({len(plan.steps)} steps); employees {small:,} / {large:,}")
    print(f"polars {pl.__version__}, {pl.thread_pool_size()} threads; {load()}")
    with tempfile.TemporaryDirectory(prefix="paysheet-bench-") as tmp:
        folder = Path(tmp)
        _, frame, loaded, _ = measure(plan, small, 40, 0, folder)
        line(f"CSV load + validation, {small:,} rows", f"{loaded * 1000:.1f} ms")
        polars_small, reference_runs = interleaved(
            3, 17, lambda: fast.evaluate(plan, frame), lambda: reference.evaluate(plan, frame)
        )
        best = polars_small[0]
        line(
            f"Polars eval, {small:,} rows (best of 51)", f"{best * 1000:.1f} ms", "budget <= 20 ms"
        )
        line(f"Polars eval, {small:,} rows (median of 51)", f"{polars_small[25] * 1000:.1f} ms")
        reference_small = reference_runs[0]
        line(f"reference eval, {small:,} rows (best of 3)", f"{reference_small * 1000:.0f} ms")
        ratio = reference_small / best
        line("speedup Polars vs reference (best/best)", f"{ratio:.0f}x", "budget >= 100x")
        paths, _, loaded, polars_large = measure(plan, large, 200, 3, folder)
        line(f"CSV load + validation, {large:,} rows", f"{loaded:.2f} s")
        line(
            f"Polars eval, {large:,} rows (best of 3)",
            f"{polars_large[0]:.2f} s",
            "budget <= 1.5 s",
        )
        peak = child_peak_rss_mb(*paths)
        line(
            f"peak RSS, load + eval {large:,} rows (child)", f"{peak:.0f} MiB", "budget <= 2048 MiB"
        )
    print(f"after: {load()}")


if __name__ == "__main__":
    main()
