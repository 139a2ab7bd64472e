"""The approvals history of runs with people named: the history stores user ids (stable
through renames, and what four-eyes compares), approvers want to read names."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from server.modules.runs.models import PlanRun
from server.modules.tenants import service as tenants

People = dict[str, str]


def _entries(run: PlanRun) -> list[dict[str, Any]]:
    return list((run.approvals_state or {}).get("history", []))


def people_of(session: Session, runs: Iterable[PlanRun]) -> People:
    """user id (text) → name, for every actor in the runs' histories, in one query."""
    ids = {uuid.UUID(entry["actor_user_id"]) for run in runs for entry in _entries(run)
           if entry.get("actor_user_id")}
    return {user_id: person.name for user_id, person in tenants.people(session, ids).items()}


def named_history(run: PlanRun, people: People) -> list[dict[str, Any]]:
    """The run's history entries, each with `actor_name` from `people` (None if unknown)."""
    return [{**entry, "actor_name": people.get(entry.get("actor_user_id", ""))}
            for entry in _entries(run)]
