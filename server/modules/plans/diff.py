"""Step-level difference between two plan documents (e.g. two versions of one plan).

Steps, inputs and parameters are matched by name/key; a matched item lists only the
fields that differ. `before` is the `against` plan, `after` the plan asked about.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

HEADER_FIELDS = ("name", "effective_from", "effective_to", "currency")


def _changes(
    before: Mapping[str, Any], after: Mapping[str, Any], skip: tuple[str, ...] = ()
) -> dict[str, dict[str, Any]]:
    keys = sorted((set(before) | set(after)) - set(skip))
    return {
        key: {"before": before.get(key), "after": after.get(key)}
        for key in keys
        if before.get(key) != after.get(key)
    }


def _section(
    before: list[Mapping[str, Any]], after: list[Mapping[str, Any]], key: str
) -> dict[str, Any]:
    old = {item[key]: item for item in before}
    new = {item[key]: item for item in after}
    changed = []
    for name in (name for name in new if name in old):
        fields = _changes(old[name], new[name], skip=(key,))
        if fields:
            changed.append({"name": name, "fields": fields})
    return {
        "added": [dict(new[name]) for name in new if name not in old],
        "removed": [dict(old[name]) for name in old if name not in new],
        "changed": changed,
    }


def diff_documents(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Header, steps, inputs, parameters and payout changes from `before` to `after`."""
    header = _changes(
        {k: before.get(k) for k in HEADER_FIELDS}, {k: after.get(k) for k in HEADER_FIELDS}
    )
    payout = None
    if before.get("payout") != after.get("payout"):
        payout = {"before": before.get("payout"), "after": after.get("payout")}
    result = {
        "header": header,
        "steps": _section(before.get("steps") or [], after.get("steps") or [], "name"),
        "inputs": _section(before.get("inputs") or [], after.get("inputs") or [], "key"),
        "parameters": _section(
            before.get("parameters") or [], after.get("parameters") or [], "key"
        ),
        "payout": payout,
    }
    sections = (result["steps"], result["inputs"], result["parameters"])
    result["identical"] = (
        not header
        and payout is None
        and not any(s["added"] or s["removed"] or s["changed"] for s in sections)
    )
    return result
