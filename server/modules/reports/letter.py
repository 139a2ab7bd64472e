"""A statement as a letter: the words and figures an employee reads, formatted for a locale.

`letter_data` turns a `Statement` into plain JSON (strings, lists, dicts) for the Typst
template (templates/statement.typ), which only lays it out. The letter leads with the
payout, then how it was reached in the plan's own labels and display formats (no DSL, no
code names), the inputs and plan terms, the deferral and its schedule when the plan defers,
and the approvers by name and date. The full tape with expressions is the auditor appendix,
present only when the tenant switches it on (`Branding.appendix`).
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_DOWN, Decimal
from typing import Any

from engine.dsl.ast import Type
from server.modules.reports.formatting import display
from server.modules.reports.localize import Localizer
from server.modules.reports.statement import Line, Statement, StepLine

DEFERRAL_YEARS = "deferral_years"
"""Plan parameter (whole number): the deferred part vests in that many equal yearly tranches
on the anniversaries of the plan period's end (plan convention)."""
CENT = Decimal("0.01")
APPROVAL_LABELS = {"manager_approved": "Manager approval", "hr_approved": "HR approval",
                   "finance_approved": "Finance approval", "finalized": "Finalized",
                   "rejected": "Sent back"}

LABELS = {
    "how": "How your bonus was reached",
    "inputs": "Your figures",
    "terms": "Plan terms",
    "deferral": "Deferred part and its schedule",
    "approvals": "Approved by",
    "no_approvals": "Not yet approved.",
    "appendix": "Appendix for auditors: the full calculation",
    "appendix_intro": "Every step of the plan in calculation order, with its expression, "
                      "guard and exact value.",
    "page": "Page",
    "of": "of",
}


def _line_text(loc: Localizer, line: Line | StepLine) -> str:
    if line.kind is Type.DECIMAL:
        return loc.value(line.value, line.fmt)
    return loc.value(line.value)


def _step_row(loc: Localizer, step: StepLine) -> dict[str, Any]:
    untaken = step.condition is not None and step.condition_value is False
    note = step.notes
    if step.diagnostics:
        note = "; ".join(filter(None, [note, *step.diagnostics]))
    if untaken:
        note = "; ".join(filter(None, [note, "does not apply to you"]))
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


def _deferral(statement: Statement, loc: Localizer) -> dict[str, Any] | None:
    deferred = statement.deferred
    if deferred is None or deferred.value is None or deferred.value <= 0:
        return None
    years = next((line.value for line in statement.parameters if line.key == DEFERRAL_YEARS
                  and isinstance(line.value, Decimal)), None)
    text = f"{loc.money(deferred.value)} of your bonus is deferred."
    if years is None or years != years.to_integral_value() or years < 1:
        return {"text": text + " It vests under the plan's deferral rules.", "rows": []}
    end = statement.effective_to or statement.effective_from
    first = _anniversary(end, 1)
    rows = tranches(deferred.value, int(years), first)
    return {"text": f"{text} It vests in {int(years)} yearly "
                    f"tranche{'s' if years > 1 else ''}:",
            "rows": [[f"Vests on {loc.date(when)}", loc.money(part)] for when, part in rows]}


def _headline(statement: Statement, loc: Localizer) -> dict[str, Any]:
    lines = []
    if statement.deferred is not None and statement.deferred.value:
        if statement.cash is not None:
            lines.append(["Paid now", loc.money(statement.cash.value)])
        lines.append(["Deferred", loc.money(statement.deferred.value)])
    return {"label": f"Your {statement.payout.label.lower()}", "amount":
            loc.money(statement.payout.value), "lines": lines}


def _appendix(statement: Statement) -> dict[str, Any]:
    rows = []
    for step in statement.steps:
        guard = ""
        if step.condition is not None:
            guard = f"only when {step.condition} → {display(step.condition_value)}"
            if step.condition_value is False:
                guard += " (default used)"
        rows.append({"order": str(step.order), "name": step.name, "expr": step.expr,
                     "guard": guard, "value": step.text})
    return {"header": ["#", "Step", "Expression and guard", "Exact value"], "rows": rows}


def letter_data(statement: Statement) -> dict[str, Any]:
    """The statement's JSON for the Typst template (all text already formatted)."""
    s, brand = statement, statement.branding
    loc = Localizer(brand.locale, s.currency)
    period = (f"{loc.date(s.effective_from)} \u2013 {loc.date(s.effective_to)}"
              if s.effective_to else f"from {loc.date(s.effective_from)}")
    facts = [["Employee", s.employee_ref]]
    if s.fund_ref:
        facts.append(["Fund", s.fund_ref])
    if s.run.scenario_name:
        facts.append(["Scenario", s.run.scenario_name])
    facts += [["Period", period], ["Status", s.run.status_label]]
    return {
        "title": "Bonus statement",
        "lang": loc.locale.language,
        "draft": s.draft,
        "draft_word": "DRAFT",
        "brand": {"name": brand.tenant_name, "primary": brand.primary,
                  "accent": brand.accent, "logo": brand.logo_svg},
        "plan_line": f"{s.plan_name} · version {s.plan_version} · {period}",
        "greeting": "Dear colleague,",
        "intro": f"this letter sets out your bonus under the {s.plan_name} and how it was "
                 f"reached. Amounts are in {s.currency}.",
        "facts": facts,
        "headline": _headline(s, loc),
        "steps": [_step_row(loc, step) for step in s.steps],
        "inputs": [[line.label, _line_text(loc, line)] for line in s.inputs],
        "parameters": [[line.label, _line_text(loc, line)] for line in s.parameters],
        "deferral": _deferral(s, loc),
        "approvals": [[APPROVAL_LABELS.get(a.state, a.state), a.by or "—", loc.timestamp(a.at)]
                      for a in s.run.history],
        "provenance": [["Plan", f"{s.plan_name} v{s.plan_version}"],
                       ["Plan hash", s.plan_hash], ["Run", s.run.run_id],
                       ["Results hash", s.run.results_hash or "—"]],
        "appendix": _appendix(s) if brand.appendix else None,
        "footer": f"{brand.tenant_name} · {s.plan_name} v{s.plan_version} · {s.employee_ref}",
        "labels": LABELS,
    }
