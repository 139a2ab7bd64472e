"""The append-only deferral ledger: writing batches, reading balances, verifying the chain.

Every change to a deferred award is a batch of new entries (never an update). A batch is
written in the caller's transaction together with ONE audit event (entity `deferral_batch`,
id = batch id) whose `after` carries the SHA-256 of the batch's canonical entries, so the
audit hash chain covers every entry: changing or removing an entry (which the database also
refuses) breaks the batch hash, and `verify` names the batch.

Sign conventions (docs/deferrals.md): `award` and `vest` are positive; `malus`, `forfeit`
and `clawback` are negative; `adjustment` is either. Unvested = award + malus + forfeit +
adjustment - vest; vested = vest + clawback (units for unit parts, amounts for cash parts).
"""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from psycopg import sql as psql
from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from engine import r10
from engine.hashing import canonical_json
from server.db.bulk import StagedInserter
from server.modules.audit.service import AuditFilter, list_events, record_event
from server.modules.auth.dependencies import Principal
from server.modules.deferrals.models import LedgerEntry

BATCH_ENTITY = "deferral_batch"
HASHED = ("id", "award_id", "employee_ref", "tranche", "kind", "instrument", "fund_ref",
          "amount", "units", "nav", "nav_date", "currency", "vest_date", "retention_until",
          "effective_date", "source", "source_id", "note")
UNVESTED_KINDS = {"award": 1, "malus": 1, "forfeit": 1, "adjustment": 1, "vest": -1}
VESTED_KINDS = {"vest": 1, "clawback": 1}
ZERO = Decimal(0)


def _canonical(entry: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key in HASHED:
        value = entry.get(key)
        if isinstance(value, Decimal):
            value = r10.text(r10.r10(value))
        elif isinstance(value, uuid.UUID | date):
            value = str(value) if isinstance(value, uuid.UUID) else value.isoformat()
        out[key] = value
    return out


def batch_hash(entries: Iterable[dict[str, Any]]) -> str:
    ordered = sorted((_canonical(e) for e in entries), key=lambda e: e["id"])
    return hashlib.sha256(canonical_json(ordered)).hexdigest()


def append(session: Session, principal: Principal | uuid.UUID | None, action: str,
           entries: list[dict[str, Any]], source: str, source_id: uuid.UUID) -> uuid.UUID:
    """Insert `entries` as one batch and audit it (same transaction as the caller's)."""
    batch_id = uuid.uuid4()
    actor = principal.user_id if isinstance(principal, Principal) else principal
    rows = []
    for entry in entries:
        row = {"id": uuid.uuid4(), "note": None, "units": None, "nav": None, "nav_date": None,
               "fund_ref": None, **entry, "batch_id": batch_id, "source": source,
               "source_id": source_id, "created_by": actor,
               "tenant_id": session.info["tenant_id"]}
        rows.append(row)
    if rows:
        copy_rows(session, LedgerEntry.__table__, rows, "ledger_stage")
    record_event(session, principal_or_actor_id=principal, action=action,
                 entity=BATCH_ENTITY, entity_id=batch_id,
                 after={"entries": len(rows), "sha256": batch_hash(rows), "source": source,
                        "source_id": source_id})
    return batch_id


COLUMNS = tuple(getattr(LedgerEntry, column.key) for column in LedgerEntry.__table__.c)


def _csv_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return r10.text(r10.r10(value))
    if isinstance(value, dict | list):
        return canonical_json(value).decode("utf-8")
    return str(value) if isinstance(value, uuid.UUID | date) else value


def copy_rows(session: Session, table: Table, rows: list[dict[str, Any]], stage: str) -> int:
    """Insert `rows` (dicts with every column but server-generated ones) through COPY into a
    temp table and INSERT ... SELECT (server.db.bulk), in the caller's transaction: a
    10k-employee finalize writes its ledger in one round trip instead of one per row."""
    names = [c.name for c in table.c if c.name in rows[0] and c.name != "tenant_id"]
    types = {c.name: c.type.compile(dialect=postgresql.dialect()) for c in table.c}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([_csv_value(row[name]) for name in names])
    inserter = StagedInserter(session, table.name, [(n, types[n]) for n in names],
                              {n: psql.Identifier(n) for n in names}, stage=stage)
    try:
        inserter.submit(buffer.getvalue().encode("utf-8"))
    except BaseException:
        inserter.abandon()
        raise
    return inserter.finish()


def entries(session: Session, *, award_ids: list[uuid.UUID] | None = None,
            employee_ref: str | None = None) -> list[Any]:
    """Ledger rows in order (named rows with the entry's attributes: reading 100k of them
    as ORM objects would be several times slower). The tenant filter applies as usual."""
    query = select(*COLUMNS).order_by(LedgerEntry.seq)
    if award_ids is not None:
        query = query.where(LedgerEntry.award_id.in_(award_ids))
    if employee_ref is not None:
        query = query.where(LedgerEntry.employee_ref == employee_ref)
    return list(session.execute(query))


@dataclass
class Position:
    """One part of one tranche (cash, or units of one fund) and its running balances."""

    award_id: uuid.UUID
    employee_ref: str
    tranche: int
    instrument: str
    fund_ref: str | None
    currency: str
    vest_date: date
    retention_until: date
    award_nav: Decimal | None = None
    awarded: Decimal = ZERO  # units for unit parts, money for cash
    awarded_amount: Decimal = ZERO
    unvested: Decimal = ZERO
    unvested_amount: Decimal = ZERO  # at the award NAV
    vested: Decimal = ZERO
    vested_amount: Decimal = ZERO  # at the vesting NAV
    by_kind: dict[str, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))

    @property
    def key(self) -> tuple:
        return (self.award_id, self.tranche, self.instrument, self.fund_ref)


def _quantity(entry: LedgerEntry) -> Decimal:
    return entry.units if entry.instrument == "units" else entry.amount


def positions(rows: Iterable[LedgerEntry]) -> list[Position]:
    """Balances per (award, tranche, instrument, fund), in ledger order of first appearance."""
    found: dict[tuple, Position] = {}
    for entry in rows:
        key = (entry.award_id, entry.tranche, entry.instrument, entry.fund_ref)
        pos = found.get(key)
        if pos is None:
            pos = found[key] = Position(entry.award_id, entry.employee_ref, entry.tranche,
                                        entry.instrument, entry.fund_ref, entry.currency,
                                        entry.vest_date, entry.retention_until)
        quantity = _quantity(entry)
        if entry.kind == "award":
            pos.award_nav = entry.nav
            pos.awarded += quantity
            pos.awarded_amount += entry.amount
        pos.unvested += UNVESTED_KINDS.get(entry.kind, 0) * quantity
        if entry.kind != "vest":
            pos.unvested_amount += UNVESTED_KINDS.get(entry.kind, 0) * entry.amount
        pos.vested += VESTED_KINDS.get(entry.kind, 0) * quantity
        pos.vested_amount += VESTED_KINDS.get(entry.kind, 0) * entry.amount
        pos.by_kind[entry.kind] += entry.amount
    for pos in found.values():
        if pos.instrument == "cash" or pos.unvested == 0:
            # a vest always takes the whole unvested balance, so nothing of it remains
            pos.unvested_amount = pos.unvested
    return list(found.values())


@dataclass(frozen=True)
class LedgerReport:
    ok: bool
    batches: int
    entries: int
    broken_batch: uuid.UUID | None = None
    reason: str | None = None


def verify(session: Session) -> LedgerReport:
    """Every batch's entries hash to what the audit chain recorded, and every entry's batch
    is in the audit chain (pair it with the audit chain check for the full proof)."""
    by_batch: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries(session):
        by_batch[entry.batch_id].append({key: getattr(entry, key) for key in HASHED})
    recorded: dict[uuid.UUID, str] = {}
    cursor = None
    while True:
        page, cursor = list_events(session, AuditFilter(entity=BATCH_ENTITY), 500, cursor)
        recorded.update({event.entity_id: event.after["sha256"] for event in page})
        if cursor is None:
            break
    for batch_id, rows in by_batch.items():
        if batch_id not in recorded:
            return LedgerReport(False, len(recorded), 0, batch_id, "batch is not in the audit")
        if batch_hash(rows) != recorded[batch_id]:
            return LedgerReport(False, len(recorded), 0, batch_id,
                                "entries do not hash to the audited batch")
    count = sum(len(rows) for rows in by_batch.values())
    for batch_id, digest in recorded.items():
        if batch_id not in by_batch and digest != batch_hash([]):
            return LedgerReport(False, len(recorded), count, batch_id, "entries are missing")
    return LedgerReport(True, len(recorded), count)
