"""Column mapping suggestions: which file column feeds which plan input, and how sure we are.

Each (input, column) pair gets a score in [0, 1]:
  1.00  the tenant's saved preset maps this very header to the input
  0.99  a past mapping of this tenant did
  0.98  the header is the input's key or label (case and spacing aside)
  0.97  the header is one of the input's aliases: the tenant's own (`mapping_aliases`) or
        the built-in HR synonyms seeded below (`SEED_ALIASES`: "DOJ" for a start date)
  0.93  the header has the same normalised tokens as one of those aliases
  ≤0.95 normalised tokens: units like "(USD)", years, punctuation and case removed,
        camelCase split, abbreviations and synonyms unified (emp → employee, sal → salary,
        id/no/number/code → id, ...), compared as token sets (F1) with a fuzzy string ratio
        as tie-breaker and for typos.
Pairs are then assigned greedily, best score first, so no column feeds two inputs; every
input also gets its next-best columns as alternatives.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Protocol

MIN_CONFIDENCE = 0.5
MIN_ALTERNATIVE = 0.3
ALTERNATIVES = 3
TOKEN_CAP = 0.95

SYNONYMS: dict[str, tuple[str, ...]] = {
    "id": ("id", "no", "nr", "num", "number", "code", "ref", "reference", "identifier", "key",
           "uid", "ident"),
    "employee": ("employee", "emp", "empl", "ee", "staff", "worker", "person", "personnel"),
    "salary": ("salary", "sal", "pay", "wage", "wages", "compensation", "comp", "remuneration"),
    "base": ("base", "basic", "fixed"),
    "performance": ("performance", "perf", "prf"),
    "score": ("score", "rating", "rtg", "mark"),
    "level": ("level", "lvl", "grade", "band", "rank", "title", "seniority", "position"),
    "team": ("team", "desk", "group", "department", "dept", "unit", "division", "squad"),
    "date": ("date", "dt", "dte", "day", "on"),
    "start": ("start", "hire", "hired", "joining", "join", "joined", "commencement", "begin",
              "entry"),
    "leave": ("leave", "leaving", "termination", "term", "exit", "left", "leaver", "separation",
              "end"),
    "fund": ("fund", "portfolio", "strategy", "vehicle", "book"),
    "return": ("return", "ret", "returns", "yield", "roi"),
    "pool": ("pool", "pot", "budget"),
    "amount": ("amount", "amt", "value", "val", "sum"),
    "target": ("target", "tgt", "trgt"),
    "bonus": ("bonus", "bns", "incentive", "award"),
    "pct": ("pct", "percent", "percentage", "perc", "ratio", "share"),
    "manager": ("manager", "mgr", "supervisor", "boss", "lead", "approver"),
    "currency": ("currency", "ccy", "curr", "cur"),
    "fte": ("fte",),
    "country": ("country", "cty", "nation"),
    "name": ("name", "nm"),
}
PHRASES = {
    "full time equivalent": "fte",
    "full-time equivalent": "fte",
    "line manager": "manager",
    "reports to": "manager",
    "date of joining": "start date",
    "years of service": "tenure",
    "net return": "return",
}
DROPPED = {
    "of", "the", "a", "an", "in", "for", "per", "and", "to", "by", "at", "is", "annual",
    "current", "actual", "final", "total", "gross", "usd", "eur", "gbp", "chf", "jpy", "sgd",
    "hkd", "cad", "aud", "local", "fy", "ytd",
}
# Headers HR exports use for common inputs, by the concept the input's key or label names
# (matched on normalised tokens, so `start_date`, "Start date (joiners)" and `hire_date`
# all get the start-date aliases). Tenants add their own through /mapping-aliases.
SEED_ALIASES: dict[str, tuple[str, ...]] = {
    "start date": (
        "DOJ", "Date of Joining", "Joining Date", "Employment Start", "Employment Start Date",
        "Start of Employment", "Hire Date", "Original Hire Date", "Service Date",
        "Seniority Date", "Commencement Date", "Entry Date", "Date Joined", "Joined",
        "Date of Hire", "DOH", "First Day", "Continuous Service Date"),
    "leave date": (
        "End of Employment", "Employment End", "Employment End Date", "Termination Date",
        "Date of Leaving", "DOL", "Last Day", "Last Working Day", "LWD", "Separation Date",
        "Exit Date", "Leaver Date", "Left On", "Date Left", "Contract End"),
    "performance score": (
        "Appraisal Score", "Appraisal Rating", "Appraisal", "Review Score", "Review Rating",
        "Performance Rating", "Perf Rating", "Rating", "Annual Review", "Year-End Rating",
        "Performance Grade", "PR Score", "Perf", "Performance Review", "Evaluation"),
    "base salary": (
        "Basic Pay", "Annual Base", "Base Pay", "Fixed Pay", "Salary", "Base Comp",
        "Basic Salary", "Annual Salary", "Fixed Salary", "Base", "Base Compensation",
        "Contractual Salary", "FTE Salary", "Gross Salary"),
    "employee id": (
        "Personnel Number", "Payroll Number", "Payroll ID", "Staff ID", "Emp #", "Worker ID",
        "Associate ID", "PERNR", "Badge Number", "Employee Number", "EE ID", "HR ID",
        "Person ID", "Employee Code", "Matricule"),
    "fund code": ("Fund", "Portfolio Code", "Strategy", "Fund ID", "Vehicle", "Book"),
    "level": ("Corporate Title", "Job Grade", "Band", "Title", "Job Level", "Career Level",
              "Rank", "Seniority", "Position Level"),
    "team": ("Desk", "Business Unit", "Org Unit", "Department", "Division", "Cost Centre Team",
             "Group"),
    "manager id": ("Line Manager", "Reports To", "Supervisor ID", "Manager Number",
                   "Approver", "Line Manager ID", "Manager Employee ID"),
    "target bonus pct": ("Target Incentive %", "Bonus Target", "TI %", "Target Bonus",
                         "On-Target Bonus %", "Bonus Opportunity %", "Incentive Target %"),
    "fte": ("Working Time %", "Part-time %", "Employment %", "FTE %", "Working Hours %",
            "Hours %", "Activity Rate"),
    "currency": ("Pay Currency", "Ccy", "Salary Currency", "Currency Code", "CCY Code"),
    "fund return": ("Net Return", "Performance (net)", "Fund Performance", "Return %",
                    "Net Perf"),
    "fund pool": ("Bonus Pool", "Pool", "Bonus Pot", "Incentive Pool"),
}
ALIAS_EXACT, ALIAS_TOKENS = 0.97, 0.93

CANONICAL = {word: concept for concept, words in SYNONYMS.items() for word in words}

_BRACKETS = re.compile(r"\([^)]*\)|\[[^\]]*\]|\{[^}]*\}")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_LETTER_DIGIT = re.compile(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")
_YEAR = re.compile(r"^(19|20)\d{2}$|^fy\d{2,4}$|^q[1-4]$|^h[12]$|^\d+$")
_NON_WORD = re.compile(r"[^a-z0-9%]+")


def tokens(text: str) -> list[str]:
    """Normalised concept tokens of a header, key or label (order kept, no repeats)."""
    spaced = _LETTER_DIGIT.sub(" ", _CAMEL.sub(" ", text.strip()))
    lowered = _BRACKETS.sub(" ", spaced.lower()).replace("_", " ").replace("#", " id ")
    lowered = lowered.replace("%", " pct ")
    for phrase, replacement in PHRASES.items():
        lowered = lowered.replace(phrase, replacement)
    words = [w for w in _NON_WORD.split(lowered) if w]
    kept = [w for w in words if w not in DROPPED and not _YEAR.match(w)] or words
    out: list[str] = []
    for word in kept:
        concept = CANONICAL.get(word, word)
        if concept not in out:
            out.append(concept)
    return out


def _seed_index() -> None:
    _SEEDS.extend((frozenset(tokens(concept)), aliases)
                  for concept, aliases in SEED_ALIASES.items())


def _plain(text: str) -> str:
    return " ".join(text.lower().replace("_", " ").split())


def _token_match(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if len(a) >= 3 and len(b) >= 3 and (a.startswith(b) or b.startswith(a)):
        return 0.8
    ratio = SequenceMatcher(None, a, b).ratio()
    return 0.8 if ratio >= 0.85 else 0.0


def token_score(target: Sequence[str], header: Sequence[str]) -> float:
    """F1 of the two token sets, partial credit for near-identical tokens."""
    if not target or not header:
        return 0.0
    recall = sum(max(_token_match(t, h) for h in header) for t in target) / len(target)
    precision = sum(max(_token_match(h, t) for t in target) for h in header) / len(header)
    if recall + precision == 0:
        return 0.0
    return 2 * recall * precision / (recall + precision)


class TargetLike(Protocol):
    key: str
    label: str


def seeded_aliases(target: TargetLike) -> tuple[str, ...]:
    """The built-in aliases of the concept the target's key or label names."""
    names = {frozenset(tokens(target.key)), frozenset(tokens(target.label))}
    return tuple(alias for concept, aliases in _SEEDS for alias in aliases
                 if concept in names)


_SEEDS: list[tuple[frozenset[str], tuple[str, ...]]] = []


def _alias_score(target: TargetLike, header: str) -> float:
    aliases = (*getattr(target, "aliases", ()), *seeded_aliases(target))
    if not aliases:
        return 0.0
    plain, header_tokens = _plain(header), tokens(header)
    best = 0.0
    for alias in aliases:
        if _plain(alias) == plain:
            return ALIAS_EXACT
        if header_tokens and tokens(alias) == header_tokens:
            best = ALIAS_TOKENS
    return best


@dataclass(frozen=True)
class Candidate:
    column: str
    confidence: float
    source: str


@dataclass
class Suggestion:
    key: str
    label: str
    column: str | None
    confidence: float
    source: str | None
    alternatives: list[Candidate] = field(default_factory=list)


@dataclass(frozen=True)
class Remembered:
    """A header → input link the tenant made before (a preset or a past upload's mapping)."""

    key: str
    source: str
    weight: float


def remembered_key(header: str) -> str:
    return _plain(header)


def pair_score(target: TargetLike, header: str) -> float:
    plain = _plain(header)
    if plain in (_plain(target.key), _plain(target.label)):
        return 0.98
    header_tokens = tokens(header)
    best = 0.0
    for name in (target.key, target.label):
        name_tokens = tokens(name)
        by_tokens = token_score(name_tokens, header_tokens)
        by_string = SequenceMatcher(None, " ".join(name_tokens), " ".join(header_tokens)).ratio()
        best = max(best, min(TOKEN_CAP, 0.9 * by_tokens + 0.08 * by_string), 0.8 * by_string)
    return best


def _scores(targets: Sequence[TargetLike], headers: Sequence[str],
            memory: Mapping[str, Sequence[Remembered]]) -> list[tuple[float, int, int, str]]:
    scored = []
    for ti, target in enumerate(targets):
        for hi, header in enumerate(headers):
            score, source = pair_score(target, header), "name"
            if score == 0.98:
                source = "exact"
            alias = _alias_score(target, header)
            if alias > score:
                score, source = alias, "alias"
            for memo in memory.get(remembered_key(header), ()):
                if memo.key == target.key and memo.weight > score:
                    score, source = memo.weight, memo.source
            scored.append((round(score, 4), ti, hi, source))
    return scored


def suggest(targets: Sequence[TargetLike], headers: Sequence[str],
            memory: Mapping[str, Sequence[Remembered]] | None = None) -> list[Suggestion]:
    """One suggestion per target, in target order (column None when nothing fits)."""
    scored = _scores(targets, headers, memory or {})
    suggestions = [Suggestion(t.key, t.label, None, 0.0, None) for t in targets]
    used_targets: set[int] = set()
    used_columns: set[int] = set()
    for score, ti, hi, source in sorted(scored, key=lambda s: (-s[0], s[1], s[2])):
        if score < MIN_CONFIDENCE:
            break
        if ti in used_targets or hi in used_columns:
            continue
        used_targets.add(ti)
        used_columns.add(hi)
        suggestion = suggestions[ti]
        suggestion.column, suggestion.confidence, suggestion.source = headers[hi], score, source
    for ti, suggestion in enumerate(suggestions):
        others = sorted((s for s in scored if s[1] == ti and headers[s[2]] != suggestion.column
                         and s[0] >= MIN_ALTERNATIVE), key=lambda s: -s[0])
        suggestion.alternatives = [Candidate(headers[hi], score, source)
                                   for score, _, hi, source in others[:ALTERNATIVES]]
    return suggestions


_seed_index()
