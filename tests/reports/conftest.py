"""Report fixtures built straight from the engine: the sample plan over generated data.

One employee's team is a formula-injection payload, so every renderer sees hostile text.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from engine.backends import polars as polars_backend
from engine.backends import reference
from engine.data import load_inputs
from engine.plan import CompiledPlan, compile_plan, load_plan
from samples import generate
from server.modules.reports.statement import Approval, Branding, RunInfo
from tests.runs.conftest import consumer, rc, runs_settings, sample_inputs  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "samples" / "plans" / "fund_bonus.json"
ARTIFACTS = ROOT / "tests" / "artifacts"
HOSTILE = '=HYPERLINK("http://x","y")'
HOSTILE_REF = "E0000007"


@dataclass(frozen=True)
class Sample:
    plan: CompiledPlan
    frame: pl.DataFrame
    results: pl.DataFrame

    def tape(self, employee_ref: str) -> dict:
        return reference.explain(self.plan, self.frame, employee_ref).to_dict()

    def inputs(self, employee_ref: str) -> dict:
        row = self.frame.filter(pl.col("employee_ref") == employee_ref).to_dicts()[0]
        return {key: (value.isoformat() if hasattr(value, "isoformat") else value)
                for key, value in row.items()}

    def result_row(self, employee_ref: str) -> dict:
        return self.results.filter(pl.col("employee_ref") == employee_ref).to_dicts()[0]


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    out = tmp_path_factory.mktemp("sample")
    employees = generate.employees(40, 3, seed=11).with_columns(
        pl.when(pl.col("employee_ref") == HOSTILE_REF).then(pl.lit(HOSTILE))
        .otherwise(pl.col("team")).alias("team")
    )
    employees.write_csv(out / "employees.csv")
    generate.fund_table(3, seed=11).write_csv(out / "funds.csv")
    plan = compile_plan(load_plan(PLAN))
    frame = load_inputs(plan, out / "employees.csv", out / "funds.csv")
    results = polars_backend.evaluate(plan, frame).frame
    return Sample(plan, frame, results)


def run_info(status: str = "draft", run_id: str = "0b9f7c1e-5d4a-4c36-9a57-2f7f3f7e1a01"
             ) -> RunInfo:
    history = () if status == "draft" else (
        Approval("manager_approved", "manager@example.com", "2026-01-10T09:00:00+00:00"),
        Approval("hr_approved", "hr@example.com", "2026-01-11T09:00:00+00:00"),
        Approval("finance_approved", "finance@example.com", "2026-01-12T09:00:00+00:00"),
        Approval("finalized", "admin@example.com", "2026-01-12T10:00:00+00:00"),
    )
    return RunInfo(run_id, status, "a1" * 32, "b2" * 32, None, history)


BRANDING = Branding("Acme Capital <b>Partners</b>", "#0B4F6C", "#F2A541")


def pdf_text(pdf: bytes, *args: str) -> str:
    """pdftotext (poppler) output of `pdf`; pages are separated by form feeds."""
    return subprocess.run(["pdftotext", *args, "-", "-"], input=pdf, capture_output=True,
                          check=True).stdout.decode("utf-8")


def pdf_words(pdf: bytes) -> str:
    """The PDF's text in reading order with every run of whitespace, line and page breaks
    included, as one space. Where a table cell wraps depends on its text (a user id's hyphens
    followed by digits allow no break, UAX #14), so assertions about phrases read this."""
    return " ".join(pdf_text(pdf, "-raw").split())
