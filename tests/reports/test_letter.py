"""The statement is a letter: what a manager reads on the PDF (pdftotext), in the plan's own
labels and the tenant's locale, one page for a typical employee, the appendix on demand."""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from engine.backends import reference
from engine.deferral import DeferralPolicy, split_amount
from engine.plan import compile_plan
from server.modules.reports.letter import letter_data, tranches
from server.modules.reports.messages import CATALOGS, words
from server.modules.reports.render import statement_pdf
from server.modules.reports.statement import Approval, Branding, RunInfo, build_statement
from tests.reports.conftest import ARTIFACTS, BRANDING, HOSTILE, HOSTILE_REF, Sample, pdf_text

APPROVED = (
    Approval("manager_approved", "Maria Manager", "2026-01-10T09:00:00+00:00", "manager"),
    Approval("hr_approved", "Hugo Human", "2026-01-11T09:30:00+00:00", "hr"),
    Approval("finance_approved", "Fiona Finance", "2026-01-12T09:00:00+00:00", "finance"),
    Approval("finalized", "Frank Final", "2026-01-12T10:00:00+00:00", "finance"),
)
FINAL = RunInfo("0b9f7c1e-5d4a-4c36-9a57-2f7f3f7e1a01", "finalized", "a1" * 32, "b2" * 32,
                None, APPROVED)


def _employee(sample: Sample) -> str:
    """A typical employee of the sample: eligible, paid, part of the bonus deferred."""
    rows = sample.results.filter(pl.col("eligible") & (pl.col("deferred") > 0)
                                 & (pl.col("employee_ref") != HOSTILE_REF))
    assert rows.height, "premise: the sample has such an employee"
    return rows["employee_ref"][0]


def _pdf(sample: Sample, ref: str, brand: Branding = BRANDING, run: RunInfo = FINAL) -> bytes:
    return statement_pdf(build_statement(sample.plan, sample.tape(ref), run, brand,
                                         sample.inputs(ref)))


def _gb_money(value: Decimal) -> str:
    """en-GB text of a USD amount with cents, written without Babel."""
    return f"US${value:,.2f}"


def _gb_percent(fraction: Decimal) -> str:
    text = format((fraction * 100).normalize(), "f")
    return f"{text}%"


def _row(text: str, label: str, value: str) -> bool:
    """`label value` on one line of `pdftotext -layout` (single-column parts)."""
    pattern = rf"^\s*{re.escape(label)}\s{{2,}}{re.escape(value)}\s*$"
    return re.search(pattern, text, re.M) is not None


def _said(words: str, label: str, value: str) -> bool:
    """`label`, perhaps its note, then `value`, in the PDF's reading order (`_words`)."""
    pattern = rf"(^| ){re.escape(label)} (.{{0,80}} )?{re.escape(value)}( |$)"
    return re.search(pattern, words) is not None


def _words(pdf: bytes) -> str:
    """The text in reading order (pdftotext -raw: one column after the other), every run
    of whitespace as one space."""
    return " ".join(pdf_text(pdf, "-raw").split())


def test_the_letter_reads_in_the_plans_labels_and_formats(sample: Sample) -> None:
    ref = _employee(sample)
    row = sample.result_row(ref)
    pdf = _pdf(sample, ref)
    text, words = pdf_text(pdf, "-layout"), _words(pdf)
    assert re.search(rf"Your bonus\s[^$]{{0,200}}{re.escape(_gb_money(row['bonus']))}", text)
    assert _row(text, "Target bonus", _gb_money(row["target_bonus"]))
    assert _row(text, "Bonus against target", _gb_percent(row["bonus_vs_target"]))
    assert _row(text, "Days employed in the period", str(int(row["days_employed"])))
    assert _row(text, "People sharing the fund pool", str(int(row["fund_headcount"])))
    assert _said(words, "Performance multiplier", format(row["perf_multiplier"].normalize(), "f"))
    fund_return = sample.frame.filter(pl.col("employee_ref") == ref)["fund_return"][0]
    assert _said(words, "Fund net return", _gb_percent(fund_return))
    assert _said(words, "Share deferred above the threshold", "40%")
    assert _said(words, "Hurdle rate", "5%")
    assert _said(words, "Performance period ends", "31 December 2025")
    # approvers by name and date, not role and user id
    assert "Finance approval Fiona Finance 12 Jan 2026 09:00" in words
    assert "Finalized Frank Final 12 Jan 2026 10:00" in words
    # no DSL, no code names, no counts with decimals
    for code in ("round2(", "cap_floor", "deferral_percent", "hurdle_rate", "365.00"):
        assert code not in text, code
    assert not re.search(r"(?<![\d,.])-?0\.\d{3,}", text), "a fraction not shown as a percentage"
    assert "Page 1 of 1" in text, "a typical employee's letter is one page"
    assert "DRAFT" not in text


def test_the_deferred_part_and_its_schedule(sample: Sample) -> None:
    ref = _employee(sample)
    row = sample.result_row(ref)
    words = _words(_pdf(sample, ref))
    assert f"Deferred: {_gb_money(row['deferred'])}" in words
    assert f"Paid now: {_gb_money(row['cash'])}" in words
    assert "It vests in 3 yearly instalments:" in words
    parts = tranches(row["deferred"], 3, date(2026, 12, 31))
    assert sum(part for _, part in parts) == row["deferred"]
    for year, (_, part) in zip((2026, 2027, 2028), parts, strict=True):
        assert f"Vests on 31 December {year} {_gb_money(part)}" in words


def test_tranches_add_up_to_the_cent() -> None:
    parts = tranches(Decimal("100.00"), 3, date(2024, 2, 29))
    assert [p for _, p in parts] == [Decimal("33.33"), Decimal("33.33"), Decimal("33.34")]
    assert [d for d, _ in parts] == [date(2024, 2, 29), date(2025, 2, 28), date(2026, 2, 28)]
    with pytest.raises(ValueError, match="deferral_years"):
        tranches(Decimal(1), 0, date(2025, 1, 1))


@pytest.mark.parametrize(("locale", "money", "day"), [
    ("en-US", r"\$\d{1,3}(,\d{3})*\.\d{2}", "December 31, 2025"),
    ("de-DE", r"\d{1,3}(\.\d{3})*,\d{2}\s\$", "31. Dezember 2025"),
    ("fr-FR", r"\d{1,3}(\s\d{3})*,\d{2}\s\$US", "31 décembre 2025"),
])
def test_numbers_and_dates_follow_the_tenant_locale(sample: Sample, locale: str, money: str,
                                                   day: str) -> None:
    ref = _employee(sample)
    brand = Branding.from_tenant("Acme", {"branding": {"locale": locale}})
    assert brand.locale == locale
    pdf = _pdf(sample, ref, brand)
    text = pdf_text(pdf, "-layout")
    target = re.search(r"^\s*Target bonus\s{2,}(.+?)\s*$", text, re.M)
    assert target and re.fullmatch(money, target.group(1)), target
    assert day in text
    decimal_mark = "." if locale == "en-US" else ","
    multiplier = sample.result_row(ref)["perf_multiplier"].normalize()
    assert _said(_words(pdf), "Performance multiplier",
                 format(multiplier, "f").replace(".", decimal_mark))


def test_unknown_locale_falls_back_and_bad_logo_is_dropped() -> None:
    brand = Branding.from_tenant("T", {"branding": {"locale": "xx-NOPE", "logo_svg":
                                                    '<svg><script>alert(1)</script></svg>'}})
    assert brand.locale == "en-GB" and brand.logo_svg is None
    logo = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
    assert Branding.from_tenant("T", {"branding": {"logo_svg": logo}}).logo_svg == logo
    external = '<svg xmlns="http://www.w3.org/2000/svg"><image href="http://x/y.png"/></svg>'
    assert Branding.from_tenant("T", {"branding": {"logo_svg": external}}).logo_svg is None


def test_auditor_appendix_is_off_by_default_and_switchable(sample: Sample) -> None:
    ref = _employee(sample)
    plain = pdf_text(_pdf(sample, ref), "-layout")
    assert "Appendix for auditors" not in plain and "round2(" not in plain
    brand = Branding.from_tenant("Acme", {"branding": {"statement_appendix": True}})
    pages = pdf_text(_pdf(sample, ref, brand), "-layout").split("\f")
    assert "Appendix for auditors" in pages[1]
    assert "round2(base_salary * target_pct)" in pages[1]
    assert re.search(r"only when target_bonus > 0 → true", pages[1])


def test_draft_watermark_on_every_page_and_hostile_text_stays_text(sample: Sample) -> None:
    brand = replace(BRANDING, appendix=True)
    draft = RunInfo("r", "draft", "a1" * 32)
    pages = [p for p in pdf_text(_pdf(sample, HOSTILE_REF, brand, draft), "-raw").split("\f")
             if p.strip()]
    assert len(pages) == 2 and all("DRAFT" in page for page in pages)
    assert HOSTILE in pages[0] and "Acme Capital <b>Partners</b> ·" in pages[0]


def test_same_statement_same_bytes(sample: Sample) -> None:
    ref = _employee(sample)
    assert _pdf(sample, ref) == _pdf(sample, ref)


def _below_threshold(sample: Sample):
    """The sample plan with the deferral threshold at 1,000,000: nothing deferred."""
    params = [p.model_copy(update={"value": Decimal("1000000")})
              if p.key == "deferral_threshold" else p for p in sample.plan.document.parameters]
    return compile_plan(sample.plan.document.model_copy(update={"parameters": params}))


@pytest.mark.parametrize("locale", ["en-GB", "de-DE"])
def test_statement_png_artifacts(sample: Sample, locale: str) -> None:
    """The pictures in docs/reports.md: a letter with a deferral schedule and one without, per
    locale, rendered with pdftoppm to tests/artifacts/ (gitignored) for a person to look at;
    each is one page."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    brand = Branding.from_tenant("Acme Capital Partners", {"branding": {"locale": locale}})
    cheapest = sample.results.filter(pl.col("eligible")).sort("bonus")["employee_ref"][0]
    cases = {"deferral": (_deferring(sample), _employee(sample)),
             "no-deferral": (_below_threshold(sample), cheapest)}
    last_page = {"en-GB": "Page 1 of 1", "de-DE": "Seite 1 von 1"}[locale]
    for name, (plan, ref) in cases.items():
        tape = reference.explain(plan, sample.frame, ref).to_dict()
        pdf = statement_pdf(build_statement(plan, tape, FINAL, brand, sample.inputs(ref)))
        assert last_page in pdf_text(pdf), (locale, name)
        stem = ARTIFACTS / f"statement-{locale}-{name}"
        stem.with_suffix(".pdf").write_bytes(pdf)
        subprocess.run(["pdftoppm", "-r", "90", "-png", "-singlefile", str(stem) + ".pdf",
                        str(stem)], check=True)
        assert Path(str(stem) + ".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_locale_catalog_has_every_word() -> None:
    for language, catalog in CATALOGS.items():
        assert set(catalog) == set(CATALOGS["en"]), language
        assert all(text.strip() for text in catalog.values()), language
    assert words("de-AT") is CATALOGS["de"] and words("fr_CA") is CATALOGS["fr"]
    assert words("en-US") is CATALOGS["en"] and words("pt-BR") is CATALOGS["en"]


# (locale, fixed words a manager reads, target bonus as the locale writes it, a date)
LETTER_WORDS = [
    ("de-DE", ["Bonusmitteilung", "Ihr Bonus", "So wurde Ihr Bonus ermittelt", "Ihre Werte",
               "Planbedingungen", "Aufgeschobener Teil und Zeitplan", "Genehmigt von",
               "Genehmigung Finanzen Fiona Finance", "Jetzt ausgezahlt", "Seite 1 von 1",
               "Status Abgeschlossen", "in 3 jährlichen Raten unverfallbar"],
     lambda v: f"{v:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".") + "\xa0$",
     "31. Dezember 2025"),
    ("fr-FR", ["Relevé de prime", "Votre prime", "Comment votre prime a été calculée",
               "Vos données", "Conditions du plan", "Part différée et son calendrier",
               "Approuvé par", "Approbation finance Fiona Finance", "Versé maintenant",
               "Page 1 sur 1", "Statut Finalisé", "en 3 tranches annuelles"],
     lambda v: f"{v:,.2f}".replace(",", "\u202f").replace(".", ",") + "\xa0$US",
     "31 décembre 2025"),
    ("en-US", ["Bonus statement", "Your bonus", "How your bonus was reached", "Your figures",
               "Plan terms", "Deferred part and its schedule", "Approved by",
               "Finance approval Fiona Finance", "Paid now", "Page 1 of 1", "Status Finalized",
               "in 3 yearly instalments"],
     lambda v: f"${v:,.2f}", "December 31, 2025"),
]


@pytest.mark.parametrize(("locale", "phrases", "money", "day"), LETTER_WORDS,
                         ids=[row[0] for row in LETTER_WORDS])
def test_the_letters_words_follow_the_tenant_locale(sample: Sample, locale: str,
                                                    phrases: list[str], money, day: str) -> None:
    """pdftotext of the letter: every fixed word in the locale's language (no English left
    in de/fr), amounts with the locale's separators (Babel's no-break and narrow no-break
    spaces), dates written out."""
    ref = _employee(sample)
    row = sample.result_row(ref)
    brand = Branding.from_tenant("Acme", {"branding": {"locale": locale}})
    pdf = _pdf(sample, ref, brand)
    words = _words(pdf)
    for phrase in phrases:
        assert phrase in words, phrase
    # Babel's separators are in the letter's text (a figure never breaks across lines);
    # pdftotext reads a no-break or narrow no-break space back as a plain space
    data = letter_data(build_statement(sample.plan, sample.tape(ref), FINAL, brand,
                                       sample.inputs(ref)))
    target = next(value for label, value in data["inputs"] + [[s["label"], s["value"]]
                                                               for s in data["steps"]]
                  if label == "Target bonus")
    assert target == money(row["target_bonus"])
    text = pdf_text(pdf, "-layout")
    for amount in (row["target_bonus"], row["deferred"]):
        assert money(amount).replace("\u202f", " ").replace("\xa0", " ") in text, amount
    assert day in text
    if locale != "en-US":
        for english in ("Your bonus", "Approved by", "Plan terms", "Page 1 of 1", "Vests on",
                        "Dear colleague"):
            assert english not in words, english


def _deferring(sample: Sample, **policy):
    """The sample plan with a deferral policy: the ledger's shape (engine.deferral)."""
    document = sample.plan.document.model_copy(update={"deferral": DeferralPolicy.model_validate(
        {"variable_pay_step": "bonus", "deferred_step": "deferred", "award_date": "2026-03-01",
         "instruments": [{"fund_ref": "F1", "share": "0.5"}],
         "schedule": {"kind": "pro_rata", "years": 3, "first_vesting_months": 12},
         "retention_months": 6} | policy)})
    return compile_plan(document)


def test_a_plan_with_a_deferral_policy_shows_the_ledgers_instalments(sample: Sample) -> None:
    plan = _deferring(sample)
    ref = _employee(sample)
    deferred = sample.result_row(ref)["deferred"]
    tape = reference.explain(plan, sample.frame, ref).to_dict()
    statement = build_statement(plan, tape, FINAL, BRANDING, sample.inputs(ref))
    words = _words(statement_pdf(statement))
    parts = split_amount(deferred, 3)
    assert sum(parts) == deferred
    assert (f"{_gb_money(deferred)} of your bonus is deferred. Awarded on 1 March 2026. "
            "It vests in 3 yearly instalments:") in words
    for year, part in zip((2027, 2028, 2029), parts, strict=True):
        assert (f"Vests on 1 March {year} held until 1 September "
                f"{year} {_gb_money(part)}") in words
    assert "50% of each instalment is paid in units of fund F1" in words
    assert "Vested units are held for 6 more months" in words
    assert "If you leave as a good leaver, your schedule continues." in words
    assert "Otherwise instalments not yet vested lapse." in words
    assert "Page 1 of 1" in words


def test_a_cliff_in_german_and_no_section_without_a_deferral(sample: Sample) -> None:
    plan = _deferring(sample, schedule={"kind": "cliff", "years": 1,
                                        "first_vesting_months": 36},
                      instruments=[], retention_months=0)
    ref = _employee(sample)
    tape = reference.explain(plan, sample.frame, ref).to_dict()
    brand = Branding.from_tenant("Acme", {"branding": {"locale": "de-DE"}})
    words = _words(statement_pdf(build_statement(plan, tape, FINAL, brand, sample.inputs(ref))))
    assert "Er wird in einer Rate unverfallbar: Unverfallbar am 1. März 2029" in words
    assert "Anteilen des Fonds" not in words and "gehalten bis" not in words
    below = sample.results.filter(pl.col("deferred") == 0)
    assert below.height, "premise: someone with nothing deferred"
    other = below["employee_ref"][0]
    tape = reference.explain(plan, sample.frame, other).to_dict()
    words = _words(statement_pdf(build_statement(plan, tape, FINAL, brand,
                                                 sample.inputs(other))))
    assert "Aufgeschobener Teil" not in words and "Aufgeschoben" not in words
