"""Pool vs target: exact per-fund figures from the engine's results, in JSON, XLSX and PDF."""

from __future__ import annotations

import io
from decimal import Decimal

import polars as pl
from openpyxl import load_workbook

from engine import r10
from engine.backends.base import EvalResult
from server.modules.reports.pool import (
    TOTAL,
    pool_json,
    pool_pdf,
    pool_specs,
    pool_vs_target,
    pool_xlsx,
)
from tests.reports.conftest import BRANDING, Sample, pdf_text


def test_pool_specs_come_from_allocate_steps(sample: Sample) -> None:
    specs = pool_specs(sample.plan)
    assert [(s.step, s.pool, s.key) for s in specs] == [("pool_share", "fund_pool", "fund_ref")]


def test_per_fund_figures_match_independent_polars_sums(sample: Sample) -> None:
    lines = pool_vs_target(sample.plan, sample.frame, EvalResult(sample.results))
    joined = sample.results.join(sample.frame.select("employee_ref", "fund_ref", "fund_pool"),
                                 on="employee_ref")
    expected = joined.group_by("fund_ref").agg(
        pl.col("fund_pool").first(), pl.col("target_bonus").sum(), pl.col("bonus").sum(),
        pl.len()).sort("fund_ref")
    funds = [line for line in lines if line.group != TOTAL]
    assert [line.group for line in funds] == expected["fund_ref"].to_list()
    for line, row in zip(funds, expected.iter_rows(named=True), strict=True):
        assert line.headcount == row["len"]
        assert line.pool_amount == row["fund_pool"]
        assert line.target_sum == row["target_bonus"]
        assert line.allocated == row["bonus"]
        assert line.variance == row["bonus"] - row["fund_pool"]
        assert line.scale_factor == r10.div(row["bonus"], row["target_bonus"])
    total = lines[-1]
    assert total.group == TOTAL and total.headcount == sample.frame.height
    assert total.allocated == sum((line.allocated for line in funds), Decimal(0))
    assert pool_json(lines)[0]["allocated"] == r10.text(funds[0].allocated)


def test_pool_renderings(sample: Sample) -> None:
    lines = pool_vs_target(sample.plan, sample.frame, EvalResult(sample.results))
    sheet = load_workbook(io.BytesIO(pool_xlsx(lines, "Pool vs target"))).active
    data = [row for row in sheet.iter_rows(min_row=4) if row[1].value]
    assert len(data) == len(lines)
    assert all(cell.data_type == "n" for row in data for cell in row[2:6])
    assert sheet._charts, "the workbook carries a bar chart"
    text = pdf_text(pool_pdf(lines, BRANDING, "2025 plan", "run-1", "Finalized"), "-layout")
    funds = [line for line in lines if line.group != TOTAL]
    for line in funds:
        assert line.group in text
    assert "Sum of targets" in text and "Total" in text
