"""A statement as a letter: the words and figures an employee reads, formatted for a locale.

`letter_data` turns a `Statement` into plain JSON (strings, lists, dicts) for the Typst
template (templates/statement.typ), which only lays it out. The letter leads with the
payout, then how it was reached in the plan's own labels and display formats (no DSL, no
code names), the inputs and plan terms, the deferral and its schedule when the plan defers,
and the approvers by name and date. The full tape with expressions is the auditor appendix,
present only when the tenant switches it on (`Branding.appendix`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import ROUND_DOWN, Decimal
from typing import Any

from engine.deferral import DeferralPolicy, add_months, split_amount, vest_dates
from engine.dsl.ast import Type
from server.modules.reports.formatting import display
from server.modules.reports.localize import Localizer
from server.modules.reports.messages import words
from server.modules.reports.statement import Line, Statement, StepLine

DEFERRAL_YEARS = "deferral_years"
"""Plan parameter (whole number), for plans without a deferral policy: the deferred part
vests in that many equal yearly tranches on the anniversaries of the plan period's end."""
CENT = Decimal("0.01")
APPROVAL_STATES = ("manager_approved", "hr_approved", "finance_approved", "finalized",
                   "rejected")
LABEL_KEYS = ("how", "inputs", "terms", "deferral", "approvals", "no_approvals", "appendix",
              "appendix_intro", "page", "of")


def _line_text(loc: Localizer, line: Line | StepLine) -> str:
    if line.kind is Type.DECIMAL:
        return loc.value(line.value, line.fmt)
    return loc.value(line.value)


def _step_row(loc: Localizer, w: Mapping[str, str], step: StepLine) -> dict[str, Any]:
    untaken = step.condition is not None and step.condition_value is False
    note = step.notes
    if step.diagnostics:
        note = "; ".join(filter(None, [note, *step.diagnostics]))
    if untaken:
        note = "; ".join(filter(None, [note, w["not_applicable"]]))
    return {"label": step.label, "value": _line_text(loc, step), "note": note,
            "dim": untaken}


def tranches(amount: Decimal, years: int, first: date) -> list[tuple[date, Decimal]]:
    """`amount` in `years` yearly tranches from `first`: equal cents, the last one takes
    what rounding down left, so the tranches add up to the amount exactly."""
    if years < 1:
        raise ValueError(f"{DEFERRAL_YEARS} must be at least 1, got {years}")
    each = (amount / years).quantize(CENT, rounding=ROUND_DOWN)
    parts = [each] * (years - 1) + [amount - each * (years - 1)]
    return [(_anniversary(first, index), part) for index, part in enumerate(parts)]


def _anniversary(start: date, years: int) -> date:
    try:
        return start.replace(year=start.year + years)
    except ValueError:  # 29 February
        return start.replace(year=start.year + years, day=28)


def _count_text(w: Mapping[str, str], count: int) -> str:
    return w["deferral_one"] if count == 1 else w["deferral_tranches"].format(count=count)


def _policy_schedule(s: Statement, policy: DeferralPolicy, amount: Decimal, loc: Localizer,
                     w: Mapping[str, str]) -> dict[str, Any]:
    """The instalments as the ledger writes them at finalize (engine.deferral: the same
    vesting dates and cent split), with the vesting conditions in plain words."""
    award = policy.effective_award_date(s.effective_to) or s.effective_from
    dates = vest_dates(policy, award)
    held = policy.retention_months > 0 and bool(policy.instruments)
    rows = []
    for when, part in zip(dates, split_amount(amount, len(dates)), strict=True):
        note = (w["held_until"].format(date=loc.date(add_months(when, policy.retention_months)))
                if held else "")
        rows.append([w["vests_on"].format(date=loc.date(when)), loc.money(part), note])
    notes = [w["units_part"].format(share=loc.percent(i.share), fund=i.fund_ref)
             for i in policy.instruments]
    if held:
        notes.append(w["retention"].format(months=policy.retention_months))
    leaver = policy.leaver
    notes.append(w["leaver_keep" if leaver.good == "keep_schedule" else "leaver_forfeit"] + " "
                 + w["bad_leaver_keep" if leaver.bad == "keep_schedule"
                     else "bad_leaver_forfeit"])
    notes.append(w["malus"])
    text = " ".join([w["deferral_amount"].format(amount=loc.money(amount)),
                     w["award_date"].format(date=loc.date(award)),
                     _count_text(w, len(dates))])
    return {"text": text, "rows": rows, "notes": notes}


def _deferral(s: Statement, loc: Localizer, w: Mapping[str, str]) -> dict[str, Any] | None:
    """None (no section) unless part of this employee's bonus is deferred."""
    deferred = s.deferred
    if deferred is None or deferred.value is None or deferred.value <= 0:
        return None
    if s.deferral_policy is not None:
        return _policy_schedule(s, s.deferral_policy, deferred.value, loc, w)
    text = w["deferral_amount"].format(amount=loc.money(deferred.value))
    years = next((line.value for line in s.parameters if line.key == DEFERRAL_YEARS
                  and isinstance(line.value, Decimal)), None)
    if years is None or years != years.to_integral_value() or years < 1:
        return {"text": f"{text} {w['deferral_rules']}", "rows": [], "notes": []}
    first = _anniversary(s.effective_to or s.effective_from, 1)
    rows = tranches(deferred.value, int(years), first)
    return {"text": f"{text} {_count_text(w, int(years))}", "notes": [],
            "rows": [[w["vests_on"].format(date=loc.date(when)), loc.money(part)]
                     for when, part in rows]}


def _headline(s: Statement, loc: Localizer, w: Mapping[str, str]) -> dict[str, Any]:
    lines = []
    if s.deferred is not None and s.deferred.value:
        if s.cash is not None:
            lines.append([w["paid_now"], loc.money(s.cash.value)])
        lines.append([w["deferred"], loc.money(s.deferred.value)])
    return {"label": w["headline"], "amount": loc.money(s.payout.value), "lines": lines}


def _appendix(s: Statement, w: Mapping[str, str]) -> dict[str, Any]:
    rows = []
    for step in s.steps:
        guard = ""
        if step.condition is not None:
            guard = f"{w['only_when']} {step.condition} → {display(step.condition_value)}"
            if step.condition_value is False:
                guard += f" {w['default_used']}"
        rows.append({"order": str(step.order), "name": step.name, "expr": step.expr,
                     "guard": guard, "value": step.text})
    return {"header": ["#", w["col_step"], w["col_expression"], w["col_value"]],
            "rows": rows}


def _facts(s: Statement, w: Mapping[str, str], period: str) -> list[list[str]]:
    facts = [[w["employee"], s.employee_ref]]
    if s.fund_ref:
        facts.append([w["fund"], s.fund_ref])
    if s.run.scenario_name:
        facts.append([w["scenario"], s.run.scenario_name])
    status = w.get(f"state_{s.run.status}", s.run.status_label)
    return [*facts, [w["period"], period], [w["status"], status]]


def letter_data(statement: Statement) -> dict[str, Any]:
    """The statement's JSON for the Typst template (all text already formatted, every
    fixed word from the tenant locale's catalog, `messages.py`)."""
    s, brand = statement, statement.branding
    loc, w = Localizer(brand.locale, s.currency), words(brand.locale)
    period = (f"{loc.date(s.effective_from)} \u2013 {loc.date(s.effective_to)}"
              if s.effective_to else w["period_open"].format(start=loc.date(s.effective_from)))
    return {
        "title": w["title"],
        "lang": loc.locale.language,
        "draft": s.draft,
        "draft_word": w["draft"],
        "brand": {"name": brand.tenant_name, "primary": brand.primary,
                  "accent": brand.accent, "logo": brand.logo_svg},
        "plan_line": w["plan_line"].format(plan=s.plan_name, version=s.plan_version,
                                           period=period),
        "greeting": w["greeting"],
        "intro": w["intro"].format(plan=s.plan_name, currency=s.currency),
        "facts": _facts(s, w, period),
        "headline": _headline(s, loc, w),
        "steps": [_step_row(loc, w, step) for step in s.steps],
        "inputs": [[line.label, _line_text(loc, line)] for line in s.inputs],
        "parameters": [[line.label, _line_text(loc, line)] for line in s.parameters],
        "deferral": _deferral(s, loc, w),
        "approvals": [[w[a.state] if a.state in APPROVAL_STATES else a.state, a.by or "—",
                       loc.timestamp(a.at)] for a in s.run.history],
        "provenance": [[w["plan"], f"{s.plan_name} v{s.plan_version}"],
                       [w["plan_hash"], s.plan_hash], [w["run"], s.run.run_id],
                       [w["results_hash"], s.run.results_hash or "—"]],
        "appendix": _appendix(s, w) if brand.appendix else None,
        "footer": f"{brand.tenant_name} · {s.plan_name} v{s.plan_version} · {s.employee_ref}",
        "labels": {key: w[key] for key in LABEL_KEYS},
    }
