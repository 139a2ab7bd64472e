"""Deterministic sample data for the fund bonus plan: employees.csv and funds.csv.

    python samples/generate.py --employees 10000 --funds 40 [--seed 7] [--out DIR]

Random draws are Polars hashes of (row, seed, field), so the same arguments always give the
same files (for a given Polars version) and a million rows take about a second. Levels,
salaries, scores (on a half-point grid, so with many ties), joiners and leavers (empty dates
for everyone else) and fund returns (positive and negative) follow plausible shapes.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

import polars as pl

LEVELS = (  # level, share of headcount (%), salary floor, salary span
    ("analyst", 35, 80_000, 50_000),
    ("associate", 30, 120_000, 60_000),
    ("vp", 20, 180_000, 90_000),
    ("director", 10, 260_000, 140_000),
    ("md", 5, 400_000, 300_000),
)
TEAMS = 24


def _draw(seed: int, field: int, modulo: int) -> pl.Expr:
    """A deterministic pseudo-random integer in [0, modulo) per row."""
    return (pl.col("row").hash(seed * 1_000_003 + field) % modulo).cast(pl.Int64)


def _rows(count: int) -> pl.DataFrame:
    return pl.DataFrame({"row": pl.int_range(count, eager=True, dtype=pl.UInt64)})


def _pick_level(roll: pl.Expr, column: int) -> pl.Expr:
    """The level (column 0), salary floor (2) or span (3) for a roll in [0, 100)."""
    expr = pl.when(pl.lit(False)).then(None)
    bound = 0
    for row in LEVELS:
        bound += row[1]
        expr = expr.when(roll < bound).then(pl.lit(row[column]))
    return expr.otherwise(pl.lit(LEVELS[-1][column]))


def _date_in_2025(day: pl.Expr) -> pl.Expr:
    return (pl.lit(date(2025, 1, 1)) + pl.duration(days=day)).dt.strftime("%Y-%m-%d")


def employees(count: int, funds: int, seed: int) -> pl.DataFrame:
    roll = _draw(seed, 1, 100)
    frame = _rows(count).select(
        (pl.lit("E") + (pl.col("row") + 1).cast(pl.String).str.zfill(7)).alias("employee_ref"),
        (pl.lit("F") + (_draw(seed, 2, funds) + 1).cast(pl.String).str.zfill(3)).alias("fund_ref"),
        _pick_level(roll, 0).alias("level"),
        (pl.lit("T") + (_draw(seed, 3, TEAMS) + 1).cast(pl.String).str.zfill(2)).alias("team"),
        (
            _pick_level(roll, 2) + _draw(seed, 4, 1_000_000) * _pick_level(roll, 3) // 1_000_000
        ).alias("salary_whole"),
        _draw(seed, 5, 100).alias("cents"),
        (_draw(seed, 6, 9) * 5 + 10).alias("score_tenths"),
        _draw(seed, 7, 100).alias("joiner_roll"),
        _draw(seed, 8, 100).alias("leaver_roll"),
        _draw(seed, 9, 365).alias("start_day"),
        _draw(seed, 10, 365).alias("leave_day"),
    )
    return frame.select(
        "employee_ref",
        "fund_ref",
        "level",
        "team",
        pl.format("{}.{}", "salary_whole", pl.col("cents").cast(pl.String).str.zfill(2)).alias(
            "base_salary"
        ),
        pl.format("{}.{}", pl.col("score_tenths") // 10, pl.col("score_tenths") % 10).alias(
            "performance_score"
        ),
        pl.when(pl.col("joiner_roll") < 8)
        .then(_date_in_2025(pl.col("start_day")))
        .alias("start_date"),
        pl.when(pl.col("leaver_roll") < 5)
        .then(_date_in_2025(pl.max_horizontal("leave_day", "start_day")))
        .alias("leave_date"),
    )


def fund_table(count: int, seed: int) -> pl.DataFrame:
    """Returns between -15% and +35% (4 dp); pools between 0.5M and 20M whole dollars."""
    basis_points = _draw(seed, 11, 5001) - 1500
    sign = pl.when(basis_points < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    magnitude = basis_points.abs()
    return _rows(count).select(
        (pl.lit("F") + (pl.col("row") + 1).cast(pl.String).str.zfill(3)).alias("fund_ref"),
        pl.format(
            "{}{}.{}", sign, magnitude // 10000, (magnitude % 10000).cast(pl.String).str.zfill(4)
        ).alias("fund_return"),
        ((_draw(seed, 12, 19_500) + 500) * 1000).cast(pl.String).alias("fund_pool"),
    )


def write(count: int, funds: int, seed: int, out: Path) -> tuple[Path, Path]:
    """Write employees.csv and funds.csv into `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    employees_path, funds_path = out / "employees.csv", out / "funds.csv"
    employees(count, funds, seed).write_csv(employees_path, line_terminator="\n")
    fund_table(funds, seed).write_csv(funds_path, line_terminator="\n")
    return employees_path, funds_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--employees", type=int, required=True)
    parser.add_argument("--funds", type=int, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    if args.employees < 1 or args.funds < 1:
        parser.error("--employees and --funds must be at least 1")
    for path in write(args.employees, args.funds, args.seed, args.out):
        print(path)


if __name__ == "__main__":
    main()
