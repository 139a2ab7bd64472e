"""Individual statements: the PDF and XLSX show exactly what the engine computed."""

from __future__ import annotations

import io
import re
import subprocess
import zipfile
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from engine.dsl.ast import Type
from server.modules.reports.formatting import decimal_text, display
from server.modules.reports.render import statement_html, statement_pdf, statement_xlsx
from server.modules.reports.statement import Branding, RunInfo, build_statement
from tests.reports.conftest import (
    ARTIFACTS,
    BRANDING,
    HOSTILE,
    HOSTILE_REF,
    Sample,
    pdf_text,
    pdf_words,
    run_info,
)


@pytest.mark.parametrize(("value", "text"), [
    ("18617.0500000000", "18,617.05"), ("0.8625000000", "0.8625"), ("-1.0000000000", "-1.00"),
    ("0E-10", "0.00"), ("1234567.1234567891", "1,234,567.1234567891"), ("-0.0000000001",
                                                                        "-0.0000000001"),
])
def test_decimal_text_shows_every_digit(value: str, text: str) -> None:
    assert decimal_text(Decimal(value)) == text


def _known_employee(sample: Sample) -> str:
    """The first eligible employee with a non-zero payout (so the tape has real values)."""
    for row in sample.results.iter_rows(named=True):
        if row["eligible"] and row["bonus"] and row["employee_ref"] != HOSTILE_REF:
            return row["employee_ref"]
    raise AssertionError("sample data has no paid employee")


def _statement(sample: Sample, ref: str, status: str = "draft", branding: Branding = BRANDING):
    return build_statement(sample.plan, sample.tape(ref), run_info(status), branding,
                           sample.inputs(ref))


def test_pdf_shows_inputs_steps_and_payout_as_computed_by_the_engine(sample: Sample) -> None:
    ref = _known_employee(sample)
    text = pdf_text(statement_pdf(_statement(sample, ref)), "-layout")
    engine_row = sample.result_row(ref)  # the Polars backend: independent of the tape
    for spec in sample.plan.document.inputs:
        value = display(sample.inputs(ref)[spec.key] if spec.dtype == "text" else
                        _typed_input(sample, ref, spec.key))
        pattern = rf"^\s*{re.escape(spec.label or spec.key)}\s+{spec.key}\s+{re.escape(value)}$"
        assert re.search(pattern, text, re.M), f"input {spec.key} = {value} not on the PDF"
    for step in sample.plan.steps:
        value = display(engine_row[step.name])
        pattern = rf"^\s*{step.order}\s+{step.name}\s.*\s{re.escape(value)}$"
        assert re.search(pattern, text, re.M), f"step {step.name} = {value} not on the PDF"
    assert f"USD {decimal_text(engine_row['bonus'])}" in text
    assert f"of which deferred: USD {decimal_text(engine_row['deferred'])}" in text
    assert sample.plan.plan_hash in text
    assert "Acme Capital <b>Partners</b>" in text  # escaped text, not markup


def _typed_input(sample: Sample, ref: str, key: str):
    return sample.frame.filter(sample.frame["employee_ref"] == ref)[key][0]


def test_draft_watermark_on_every_page_until_finalized(sample: Sample) -> None:
    ref = _known_employee(sample)
    draft_pages = pdf_text(statement_pdf(_statement(sample, ref)), "-raw").split("\f")
    draft_pages = [page for page in draft_pages if page.strip()]
    assert len(draft_pages) >= 2
    assert all("DRAFT" in page for page in draft_pages)
    final = pdf_text(statement_pdf(_statement(sample, ref, "finalized")), "-raw")
    assert "DRAFT" not in final
    assert "Finalized" in final and "finance@example.com" in final
    assert re.search(r"Page 1 of \d", final)


# User ids whose hyphens are all followed by a digit: Unicode line breaking (UAX #14) allows no
# break there, so in the approvals table the only break in "finance (<id>)" is the space.
UNBREAKABLE_IDS = ("d053309a-5d38-41ba-98d8-55f3af7fe201", "a1c346ea-5fc6-460e-8687-84a1cafe3aa8")


def _finalized_by(finance_ids: tuple[str, str]) -> RunInfo:
    """A finalized run whose finance approval and finalisation were made by these users, as
    the approvals module records them."""
    history = [{"to_state": state, "actor_role": "finance", "actor_user_id": user,
                "at": "2026-01-12T10:00:00+00:00"}
               for state, user in zip(("finance_approved", "finalized"), finance_ids,
                                      strict=True)]
    return RunInfo.from_dict({"id": "0b9f7c1e-5d4a-4c36-9a57-2f7f3f7e1a01",
                              "status": "finalized", "snapshot_hash": "a1" * 32,
                              "results_hash": "b2" * 32,
                              "approvals_state": {"history": history}})


def test_finalized_statement_names_the_finaliser_however_the_id_wraps(sample: Sample) -> None:
    """The check of test_api's finalized statement, on the user ids of the run where it
    failed: the role and the id are on two lines, and the statement is still correct."""
    ref = _known_employee(sample)
    statement = build_statement(sample.plan, sample.tape(ref), _finalized_by(UNBREAKABLE_IDS),
                                BRANDING, sample.inputs(ref))
    pdf = statement_pdf(statement)
    assert "Finalized finance\n(" in pdf_text(pdf, "-raw"), "premise: the id wraps"
    final = pdf_words(pdf)
    assert "DRAFT" not in final
    assert "Approval state Finalized" in final
    assert f"Finalized finance ({UNBREAKABLE_IDS[1]})" in final


def test_xlsx_holds_numbers_with_number_formats(sample: Sample) -> None:
    ref = _known_employee(sample)
    engine_row = sample.result_row(ref)
    sheet = load_workbook(io.BytesIO(statement_xlsx(_statement(sample, ref)))).active
    rows = {row[1].value: row for row in sheet.iter_rows() if isinstance(row[0].value, int)}
    for step in sample.plan.steps:
        cell = rows[step.name][5]
        expected = engine_row[step.name]
        if step.type is Type.DECIMAL and expected is not None:
            assert cell.data_type == "n", step.name
            assert Decimal(repr(cell.value)) == expected.normalize(), step.name
            assert cell.number_format.startswith("#,##0.00")
        elif step.type is Type.BOOL:
            assert cell.value is expected
    facts = {row[0].value: row[1] for row in sheet.iter_rows() if row[0].value}
    assert facts["Payout"].data_type == "n"
    assert Decimal(repr(facts["Payout"].value)) == engine_row["bonus"].normalize()
    assert "DRAFT" in sheet["A2"].value
    final = load_workbook(io.BytesIO(statement_xlsx(_statement(sample, ref, "finalized"))))
    assert "DRAFT" not in final.active["A2"].value


def test_hostile_text_is_inert_everywhere(sample: Sample) -> None:
    statement = _statement(sample, HOSTILE_REF)
    html = statement_html(statement)
    assert "<b>Partners</b>" not in html and "&lt;b&gt;Partners&lt;/b&gt;" in html
    assert HOSTILE.replace('"', "&#34;") in html
    data = statement_xlsx(statement)
    sheet = load_workbook(io.BytesIO(data)).active
    team = next(row[2] for row in sheet.iter_rows() if row[1].value == "team")
    assert team.data_type == "s" and team.value == "'" + HOSTILE
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert b"<f>" not in archive.read("xl/worksheets/sheet1.xml")


def test_bad_branding_colours_fall_back() -> None:
    brand = Branding.from_tenant("T", {"branding": {"primary": "red;} body{display:none",
                                                    "accent": "#00ff00"}})
    assert brand.primary == "#1F3A5F" and brand.accent == "#00ff00"


def test_tape_of_another_plan_is_refused(sample: Sample) -> None:
    tape = sample.tape(_known_employee(sample)) | {"plan_hash": "0" * 64}
    with pytest.raises(ValueError, match="plan hash"):
        build_statement(sample.plan, tape, run_info(), BRANDING)


def test_statement_png_artifact(sample: Sample) -> None:
    """Renders page 1 to tests/artifacts/ (gitignored) for a person to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pdf = ARTIFACTS / "statement.pdf"
    pdf.write_bytes(statement_pdf(_statement(sample, _known_employee(sample))))
    subprocess.run(["pdftoppm", "-r", "80", "-png", "-f", "1", "-l", "1", "-singlefile",
                    str(pdf), str(ARTIFACTS / "statement")], check=True)
    assert (ARTIFACTS / "statement.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
