"""Per-tenant data keys: created on first use, unwrapped through the KMS, cached in memory.

Other areas call `cipher(session, settings)` for the session's tenant and seal or open
values and files with it (`keys/cipher.py`); they never see a wrapped key or the KMS.
Which catalog inputs are sensitive is the catalog's business (`catalog.service`).

A process keeps unwrapped data keys in memory (keyed by KMS, tenant and version): a run
does not call the KMS per value. Rotation rewraps keys without changing them, so the cache
stays valid; a new data-key version (`rotate --data`) is seen by the next `cipher()` call.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from threading import Lock

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from server.db.session import system_session, tenant_session
from server.modules.audit.service import record_event
from server.modules.keys.cipher import TenantCipher as TenantCipher
from server.modules.keys.cipher import Undecryptable as Undecryptable
from server.modules.keys.cipher import is_sealed as is_sealed
from server.modules.keys.cipher import is_sealed_file as is_sealed_file
from server.modules.keys.kms import KeyUnavailable as KeyUnavailable
from server.modules.keys.kms import Kms, LocalKeyFileKms, kms_for
from server.modules.keys.models import TenantDataKey
from server.settings import Settings

# Field names bound into the authenticated data (a value sealed for one never opens as another).
TYPED_DATA = "uploads.typed_data"
ROWS_SPOOL = "uploads.rows_spool"
EMPLOYEE_ROWS = "employee_rows.raw"
PROBLEM_VALUE = "upload_problems.value"
WARNING_SAMPLE = "uploads.warning_sample"

SESSION_MEMO = "pii_ciphers"
_cache: dict[tuple[int, uuid.UUID, int, bytes], bytes] = {}
_cache_lock = Lock()


def _context(tenant_id: uuid.UUID, version: int) -> bytes:
    return f"paysheet-dek|{tenant_id}|v{version}".encode()


def _tenant(session: Session) -> uuid.UUID:
    tenant_id = session.info.get("tenant_id")
    if tenant_id is None:
        raise KeyUnavailable("data keys need a tenant session")
    return uuid.UUID(str(tenant_id))


def _unwrap(kms: Kms, row: TenantDataKey) -> bytes:
    # Keyed by the wrapped bytes: a key whose creating transaction rolled back and a later
    # key of the same version are never confused.
    key = (id(kms), row.tenant_id, row.version, bytes(row.wrapped))
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    plain = kms.unwrap(row.kek_id, bytes(row.wrapped), _context(row.tenant_id, row.version))
    with _cache_lock:
        _cache[key] = plain
    return plain


def _create(session: Session, kms: Kms, tenant_id: uuid.UUID, version: int) -> None:
    """Insert data-key `version` (random 256 bits, wrapped); a concurrent creator wins."""
    kek_id, wrapped = kms.wrap(os.urandom(32), _context(tenant_id, version))
    session.execute(text(
        "insert into comp.tenant_data_keys (tenant_id, version, kek_id, wrapped) "
        "values (:tenant, :version, :kek, :wrapped) on conflict do nothing"),
        {"tenant": tenant_id, "version": version, "kek": kek_id, "wrapped": wrapped})


def _first_key(session: Session, kms: Kms, tenant_id: uuid.UUID) -> None:
    """The tenant's first data key, committed in its own transaction (so data sealed with
    it can never outlive it through a caller's rollback); inline on an owner's maintenance
    session (migrations), which is one transaction anyway."""
    if session.info.get("tenant_id") is None:
        _create(session, kms, tenant_id, 1)
        return
    with tenant_session(tenant_id) as own:
        _create(own, kms, tenant_id, 1)


def cipher(session: Session, settings: Settings,
           tenant_id: uuid.UUID | None = None) -> TenantCipher:
    """The session tenant's cipher (its first data key is created here when it has none).
    `tenant_id` only for the owner's maintenance sessions (migrations), which have none.
    KeyUnavailable names the KEK when the KMS cannot unwrap a key."""
    tenant_id = tenant_id or _tenant(session)
    kms = kms_for(settings)
    memo = session.info.setdefault(SESSION_MEMO, {})  # one lookup per transaction's session
    if (id(kms), tenant_id) in memo:
        return memo[(id(kms), tenant_id)]
    query = select(TenantDataKey).where(TenantDataKey.tenant_id == tenant_id)
    rows = session.scalars(query).all()
    if not rows:
        _first_key(session, kms, tenant_id)
        rows = session.scalars(query).all()
    keys = {row.version: _unwrap(kms, row) for row in rows}
    memo[(id(kms), tenant_id)] = found = TenantCipher(tenant_id, keys, max(keys))
    return found


def new_data_key_version(session: Session, settings: Settings) -> int:
    """A new data-key version for the session's tenant (it encrypts from now on)."""
    tenant_id = _tenant(session)
    version = (session.scalar(select(func.max(TenantDataKey.version))) or 0) + 1
    _create(session, kms_for(settings), tenant_id, version)
    session.info.pop(SESSION_MEMO, None)
    return version


def rewrap(session: Session, settings: Settings) -> int:
    """Rewrap every data key of the session's tenant under the KMS's active KEK (the keys
    themselves do not change, so nothing they encrypted changes). Returns how many."""
    kms = kms_for(settings)
    active = kms.active_kek_id
    count = 0
    for row in session.scalars(select(TenantDataKey).with_for_update()).all():
        if row.kek_id == active:
            continue
        plain = _unwrap(kms, row)
        row.kek_id, row.wrapped = kms.wrap(plain, _context(row.tenant_id, row.version))
        row.rewrapped_at = datetime.now(UTC)
        count += 1
    return count


def kek_ids_in_use(session: Session) -> set[str]:
    return set(session.scalars(select(TenantDataKey.kek_id).distinct()).all())


def forget_cached_keys() -> None:
    """Drop every unwrapped key this process holds (tests; after a KEK change)."""
    with _cache_lock:
        _cache.clear()


@dataclass(frozen=True)
class Rotation:
    """What `paysheet keys rotate` did."""

    kek_id: str
    tenants: int
    rewrapped: int
    new_data_keys: int
    retired: list[str]
    failed: list[tuple[uuid.UUID, str]]


def wrapping() -> list[tuple[uuid.UUID, str, int]]:
    """(tenant, KEK id, number of data keys) across every tenant."""
    with system_session() as session:
        return [(r.tenant_id, r.kek_id, r.keys) for r in session.execute(
            text("select * from comp.data_key_wrapping()")).all()]


def rotate_all(settings: Settings, new_data_key: bool = False) -> Rotation:
    """A new KEK version (local key file; a cloud KMS rotates its own), every tenant's data
    keys rewrapped under it (one audited transaction per tenant), then the KEK versions no
    data key names any more dropped from the key file. A tenant whose keys the KMS cannot
    unwrap is reported in `failed` (its KEK version stays, the others rotate). With
    `new_data_key`, every tenant also gets a new data-key version: new data is sealed with
    it, older data stays readable under the versions that sealed it."""
    kms = kms_for(settings)
    if isinstance(kms, LocalKeyFileKms):
        kms.add_version()
    active = kms.active_kek_id
    tenants = sorted({tenant for tenant, _, _ in wrapping()})
    rewrapped = created = 0
    failed: list[tuple[uuid.UUID, str]] = []
    for tenant_id in tenants:
        try:
            with tenant_session(tenant_id) as session:
                count = rewrap(session, settings)
                version = new_data_key_version(session, settings) if new_data_key else None
                record_event(session, principal_or_actor_id=None, action="keys.rotate",
                             entity="tenant", entity_id=tenant_id,
                             after={"kek_id": active, "rewrapped": count,
                                    "new_data_key_version": version})
        except KeyUnavailable as error:  # the others still rotate; this one is named
            failed.append((tenant_id, str(error)))
            continue
        created += version is not None
        rewrapped += count
    in_use = {kek for _, kek, _ in wrapping()}
    retired = kms.retire(in_use)
    return Rotation(active, len(tenants), rewrapped, created, retired, failed)
