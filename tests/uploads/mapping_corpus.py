"""Labelled corpus for mapping suggestions: realistic header rows from HR/finance exports.

Each layout is one file's header row: {header as written: the input key it feeds}
(None: a column that feeds nothing). 14 input keys, 89 labelled header variants.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CorpusTarget:
    key: str
    label: str


TARGETS = [
    CorpusTarget("employee_ref", "Employee ID"),
    CorpusTarget("fund_ref", "Fund code"),
    CorpusTarget("base_salary", "Base salary"),
    CorpusTarget("performance_score", "Performance score (1-5)"),
    CorpusTarget("level", "Level"),
    CorpusTarget("team", "Team"),
    CorpusTarget("start_date", "Start date (joiners)"),
    CorpusTarget("leave_date", "Leave date (leavers)"),
    CorpusTarget("fund_return", "Fund net return"),
    CorpusTarget("fund_pool", "Fund bonus pool"),
    CorpusTarget("target_bonus_pct", "Target bonus (% of salary)"),
    CorpusTarget("manager_ref", "Manager ID"),
    CorpusTarget("currency", "Pay currency"),
    CorpusTarget("fte", "Full-time equivalent"),
]

LAYOUTS: list[dict[str, str | None]] = [
    {  # Workday-style export
        "Employee ID": "employee_ref", "Legal Name": None, "Fund Code": "fund_ref",
        "Base Salary (USD)": "base_salary", "Perf Score 2025": "performance_score",
        "Job Level": "level", "Team": "team", "Hire Date": "start_date",
        "Termination Date": "leave_date", "Manager ID": "manager_ref", "Currency": "currency",
        "FTE": "fte",
    },
    {  # SAP-style technical names
        "EMP_ID": "employee_ref", "FUND_CD": "fund_ref", "BASE_SAL_AMT": "base_salary",
        "PERF_RTG": "performance_score", "GRADE": "level", "DEPT": "team",
        "START_DT": "start_date", "EXIT_DT": "leave_date", "MGR_ID": "manager_ref",
        "CCY": "currency", "TGT_BONUS_PCT": "target_bonus_pct", "COST_CENTER": None,
    },
    {  # spreadsheet kept by an HR analyst
        "Staff Number": "employee_ref", "Name": None, "Portfolio": "fund_ref",
        "Annual Base Salary": "base_salary", "Performance Rating": "performance_score",
        "Band": "level", "Desk": "team", "Date of Joining": "start_date",
        "Leaving Date": "leave_date", "Line Manager": "manager_ref",
        "Target Bonus %": "target_bonus_pct", "Full-time equivalent": "fte",
    },
    {  # camelCase API dump
        "employeeId": "employee_ref", "fundCode": "fund_ref", "baseSalary": "base_salary",
        "perfScore": "performance_score", "level": "level", "teamName": "team",
        "startDate": "start_date", "leaveDate": "leave_date", "managerId": "manager_ref",
        "payCurrency": "currency", "fte": "fte", "targetBonusPct": "target_bonus_pct",
    },
    {  # payroll provider
        "Emp #": "employee_ref", "Fund": "fund_ref", "Salary (EUR)": "base_salary",
        "Rating FY25": "performance_score", "Corporate Title": "level",
        "Department": "team", "Hired On": "start_date", "Exit Date": "leave_date",
        "Supervisor No.": "manager_ref", "Pay Ccy": "currency", "FTE %": "fte",
        "Bonus Target (%)": "target_bonus_pct", "Location": None,
    },
    {  # finance team's fund sheet
        "Fund Code": "fund_ref", "Fund Name": None, "Net Return 2025 (%)": "fund_return",
        "Bonus Pool (USD)": "fund_pool", "Strategy Manager": None, "Base Currency": "currency",
    },
    {  # fund admin export
        "FUND_ID": "fund_ref", "FUND_RET": "fund_return", "BONUS_POOL_AMT": "fund_pool",
        "NAV": None, "CCY": "currency",
    },
    {  # fund return sheet with other wording
        "Portfolio Code": "fund_ref", "Fund Return": "fund_return",
        "Total Bonus Pool": "fund_pool", "AUM (USD m)": None,
    },
    {  # lower-case with underscores
        "employee_number": "employee_ref", "fund_reference": "fund_ref",
        "basic_pay": "base_salary", "performance": "performance_score",
        "seniority": "level", "group": "team", "joined": "start_date",
        "left": "leave_date", "reports_to": "manager_ref", "currency_code": "currency",
    },
    {  # written after the synonym table, unseen while it was tuned
        "Personnel Nr": "employee_ref", "Vehicle": "fund_ref", "Fixed Pay": "base_salary",
        "Perf. Mgmt Score": "performance_score", "Grade Level": "level",
        "Business Unit": "team", "Hire_Dt": "start_date", "Term Date": "leave_date",
        "Incentive Target": "target_bonus_pct", "Approver ID": "manager_ref",
        "Bonus Eligible": None, "Years in Role": None, "Working Hours %": "fte",
    },
]


def labelled_pairs() -> list[tuple[str, str]]:
    return [(h, k) for layout in LAYOUTS for h, k in layout.items() if k is not None]
