"""A second labelled corpus of header rows, written fresh for the alias work and never used
to tune it: clean header variants as HR, payroll and fund-admin systems write them.

Each layout is one file's header row: {header: the input key it feeds} (None: feeds nothing).
"""

from __future__ import annotations

LAYOUTS: list[dict[str, str | None]] = [
    {  # HRIS year-end extract
        "Employee Number": "employee_ref", "Fund ID": "fund_ref", "Annual Base": "base_salary",
        "Appraisal Score": "performance_score", "Career Level": "level",
        "Org Unit": "team", "DOJ": "start_date", "End of Employment": "leave_date",
        "Line Manager ID": "manager_ref", "Salary Currency": "currency",
        "Employment %": "fte", "On-Target Bonus %": "target_bonus_pct", "Gender": None,
    },
    {  # payroll bureau
        "Payroll ID": "employee_ref", "Portfolio": "fund_ref", "Basic Salary": "base_salary",
        "Review Score": "performance_score", "Grade": "level", "Cost Centre Team": "team",
        "Employment Start": "start_date", "Last Working Day": "leave_date",
        "Reports To": "manager_ref", "Pay Currency": "currency", "FTE": "fte",
        "Bonus Target": "target_bonus_pct", "Bank Account": None, "Tax Code": None,
    },
    {  # German subsidiary, English headers
        "Personnel Number": "employee_ref", "Fund Code": "fund_ref",
        "Fixed Salary": "base_salary", "Performance Rating": "performance_score",
        "Job Grade": "level", "Department": "team", "Date of Hire": "start_date",
        "Date of Leaving": "leave_date", "Manager Number": "manager_ref", "CCY": "currency",
        "Part-time %": "fte", "Target Incentive %": "target_bonus_pct", "Birth Date": None,
    },
    {  # abbreviations
        "EE ID": "employee_ref", "Fund": "fund_ref", "Base Pay": "base_salary",
        "Perf Rating": "performance_score", "Lvl": "level", "Desk": "team",
        "DOH": "start_date", "DOL": "leave_date", "Mgr ID": "manager_ref",
        "Curr": "currency", "FTE %": "fte", "TI %": "target_bonus_pct", "Loc": None,
    },
    {  # snake_case warehouse view
        "employee_id": "employee_ref", "fund_code": "fund_ref", "base_salary": "base_salary",
        "performance_score": "performance_score", "job_level": "level", "team_name": "team",
        "hire_date": "start_date", "termination_date": "leave_date",
        "manager_employee_id": "manager_ref", "currency_code": "currency",
        "fte_ratio": "fte", "target_bonus_pct": "target_bonus_pct", "cost_centre": None,
    },
    {  # UPPER CASE mainframe export
        "EMPLOYEE NO": "employee_ref", "FUND NO": "fund_ref", "BASE SALARY": "base_salary",
        "APPRAISAL RATING": "performance_score", "CORPORATE TITLE": "level",
        "BUSINESS UNIT": "team", "JOINING DATE": "start_date", "LEAVER DATE": "leave_date",
        "LINE MANAGER": "manager_ref", "PAY CCY": "currency", "WORKING TIME %": "fte",
        "TARGET BONUS %": "target_bonus_pct", "NATIONALITY": None,
    },
    {  # a hand-kept workbook
        "Staff ID": "employee_ref", "Strategy": "fund_ref", "Salary": "base_salary",
        "Year-End Rating": "performance_score", "Title": "level", "Group": "team",
        "Start of Employment": "start_date", "Employment End Date": "leave_date",
        "Supervisor ID": "manager_ref", "Currency": "currency", "Hours %": "fte",
        "Bonus Opportunity %": "target_bonus_pct", "Comments": None, "Email": None,
    },
    {  # camelCase API
        "workerId": "employee_ref", "fundId": "fund_ref", "annualSalary": "base_salary",
        "reviewRating": "performance_score", "jobGrade": "level", "businessUnit": "team",
        "originalHireDate": "start_date", "separationDate": "leave_date",
        "lineManagerId": "manager_ref", "salaryCurrency": "currency", "fte": "fte",
        "targetBonusPct": "target_bonus_pct", "phoneNumber": None,
    },
    {  # recruitment-style wording
        "Associate ID": "employee_ref", "Fund Name Code": "fund_ref",
        "Base Compensation": "base_salary", "Evaluation": "performance_score",
        "Rank": "level", "Division": "team", "Commencement Date": "start_date",
        "Exit Date": "leave_date", "Approver": "manager_ref", "Currency Code": "currency",
        "Activity Rate": "fte", "Incentive Target %": "target_bonus_pct", "Office": None,
    },
    {  # fund admin: funds file
        "Fund ID": "fund_ref", "Net Return": "fund_return", "Bonus Pool": "fund_pool",
        "Base Currency": "currency", "AUM": None, "Inception Date": None,
        "Fund Manager": None,
    },
    {  # finance: funds file, other words
        "Portfolio Code": "fund_ref", "Fund Performance": "fund_return",
        "Incentive Pool": "fund_pool", "CCY Code": "currency", "NAV per Unit": None,
    },
    {  # funds file, terse
        "Fund": "fund_ref", "Net Perf": "fund_return", "Bonus Pot": "fund_pool",
        "Ccy": "currency", "Benchmark": None,
    },
    {  # continuous-service wording
        "HR ID": "employee_ref", "Vehicle": "fund_ref", "Gross Salary": "base_salary",
        "Annual Review": "performance_score", "Band": "level", "Squad": "team",
        "Continuous Service Date": "start_date", "Contract End": "leave_date",
        "Line Manager Employee ID": "manager_ref", "Pay Currency Code": "currency",
        "FTE Percentage": "fte", "Target Bonus (% of base)": "target_bonus_pct",
        "Visa Status": None,
    },
    {  # Workday-ish with units
        "Employee ID": "employee_ref", "Fund Code": "fund_ref",
        "Base Salary (GBP)": "base_salary", "Performance Rating 2025": "performance_score",
        "Management Level": "level", "Supervisory Organization": "team",
        "Hire Date": "start_date", "Termination Date": "leave_date",
        "Manager ID": "manager_ref", "Currency": "currency", "Scheduled FTE": "fte",
        "Target Bonus % (FY25)": "target_bonus_pct", "Location": None,
    },
    {  # dotted abbreviations
        "Emp. No.": "employee_ref", "Fund No.": "fund_ref", "Base Sal.": "base_salary",
        "Perf. Score": "performance_score", "Job Lvl.": "level", "Dept.": "team",
        "Start Dt.": "start_date", "Term. Dt.": "leave_date", "Mgr. No.": "manager_ref",
        "Ccy.": "currency", "F.T.E.": "fte", "Tgt. Bonus %": "target_bonus_pct",
        "Ext.": None,
    },
]


def labelled_pairs() -> list[tuple[str, str]]:
    return [(h, k) for layout in LAYOUTS for h, k in layout.items() if k is not None]
