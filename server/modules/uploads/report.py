"""The validation report: problems (complete counts, the first MAX_LISTED listed) and the
warnings that say what cleaning and the reading profile changed (counts, sample rows)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from server.modules.uploads.normalise import MESSAGES, SAMPLES, Warning

MAX_LISTED = 10_000
Progress = Callable[[str, int], None]


@dataclass
class Problem:
    row: int | None
    column: str | None
    input_key: str | None
    value: str | None
    rule: dict[str, Any]
    message: str
    hint: str


@dataclass
class Report:
    """Counts are complete; `problems` holds the first MAX_LISTED entries in file order."""

    rows: int = 0
    errors: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)
    by_column: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    parquet_sha256: str | None = None
    parquet_bytes: int | None = None
    warnings: dict[tuple[str, str], Warning] = field(default_factory=dict)
    reported_cells: set[tuple[int, str]] = field(default_factory=set)

    def warn(self, kind: str, column: str, key: str, count: int,
             samples: list[dict[str, Any]], message: str | None = None) -> None:
        """Count `count` more cells of `column` changed by cleaning/reading of `kind`."""
        warning = self.warnings.setdefault((kind, key), Warning(
            kind, column, key, message or MESSAGES[kind]))
        warning.count += count
        warning.samples.extend(samples[: SAMPLES - len(warning.samples)])

    def cell_problem(self, row: int, column: str, key: str, value: str,
                     rule: dict[str, Any], message: str, hint: str) -> None:
        """A cell reading found unreadable; later checks of that cell are not listed again."""
        self.reported_cells.add((row, key))
        self.add(Problem(row, column, key, value, rule, message, hint))

    def add(self, problem: Problem) -> None:
        self.errors += 1
        self.by_rule[_rule_name(problem.rule)] += 1
        self.by_column[problem.column or "(row)"] += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(problem)

    def add_file_problem(self, message: str, hint: str) -> None:
        self.add(Problem(None, None, None, None, {"file": True}, message, hint))

    def sort(self, columns: Sequence[str]) -> None:
        """File order: by row, then column as in the file (whole-row problems first)."""
        order = {name: index for index, name in enumerate(columns)}
        self.problems.sort(key=lambda p: (p.row or 0, order.get(p.column or "", -1)))

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def summary(self) -> dict[str, Any]:
        return {"rows": self.rows, "errors": self.errors, "by_rule": dict(self.by_rule),
                "by_column": dict(self.by_column), "listed": len(self.problems),
                "truncated": self.errors > len(self.problems),
                "warnings": [w.as_json() for w in self.warnings.values()]}


def _rule_name(rule: dict[str, Any]) -> str:
    return next(iter(rule)) if rule else "other"


