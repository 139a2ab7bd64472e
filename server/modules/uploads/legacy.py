"""Sealing what was stored in plaintext before PII encryption (migration 0131).

For every tenant with sensitive inputs, sealed as new data is (`sealing.py`): the sensitive
cells of `employee_rows.raw`, sensitive `upload_problems.value`s, the warning samples of
upload summaries, the preview sample and the reading profile's notes; and every plaintext
typed Parquet and rows spool under `<DATA_DIR>/uploads/<tenant>/` is replaced by its sealed
form (same plaintext, so the hash that names it and every run snapshot stay valid; the file
keeps its mode). Runs as the owner on the migration's connection; what is already sealed is
left alone, so running it again changes nothing. Audit events are append-only and
hash-chained: `upload.validate` events recorded before the upgrade keep their samples
(operations.md says so).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from server.modules.keys import service as keys
from server.modules.uploads import sealing
from server.settings import Settings

BATCH = 5000
FIELDS = {"typed": keys.TYPED_DATA, "spool": keys.ROWS_SPOOL}


def seal_existing(connection: Connection, settings: Settings) -> dict[str, int]:
    """Seal every tenant's plaintext PII; returns counts per store."""
    counts = {"employee_rows": 0, "upload_problems": 0, "summaries": 0, "formats": 0,
              "files": 0}
    tenants = connection.execute(text(
        "select tenant_id, array_agg(key) from comp.input_catalog where sensitive "
        "group by tenant_id")).all()
    session = Session(bind=connection)
    for tenant_id, sensitive_list in tenants:
        sensitive = set(sensitive_list)
        cipher = _LazyCipher(session, settings, tenant_id)

        counts["employee_rows"] += _rows(connection, tenant_id, sensitive, cipher)
        counts["upload_problems"] += _problems(connection, tenant_id, sensitive, cipher)
        counts["summaries"] += _summaries(connection, tenant_id, sensitive, cipher)
        counts["formats"] += _formats(connection, tenant_id, cipher)
        counts["files"] += _files(settings, tenant_id, cipher)
    session.flush()
    return counts


class _LazyCipher:
    """The tenant's cipher, fetched (and its data key created) only if something needs
    sealing: a database with nothing to seal never touches the KMS."""

    def __init__(self, session: Session, settings: Settings, tenant_id: uuid.UUID) -> None:
        self.args = (session, settings, tenant_id)
        self.cipher: keys.TenantCipher | None = None

    def __call__(self) -> keys.TenantCipher:
        if self.cipher is None:
            session, settings, tenant_id = self.args
            self.cipher = keys.cipher(session, settings, tenant_id)
        return self.cipher


def _rows(connection: Connection, tenant_id: uuid.UUID, sensitive: set[str],
          cipher: Any) -> int:
    done = 0
    while True:
        found = connection.execute(text(
            "select upload_id, file_row, raw from comp.employee_rows where tenant_id = :t "
            "and not raw ? '_sealed' and raw ?| cast(:keys as text[]) limit :n"),
            {"t": tenant_id, "keys": sorted(sensitive), "n": BATCH}).all()
        if not found:
            return done
        updates = []
        for upload_id, file_row, raw in found:
            secret = {k: v for k, v in raw.items() if k in sensitive}
            plain = {k: v for k, v in raw.items() if k not in sensitive}
            plain[sealing.SEALED] = cipher().seal(sealing.row_field(upload_id, file_row),
                                                  json.dumps(secret))
            updates.append({"u": upload_id, "r": file_row, "raw": json.dumps(plain)})
        connection.execute(text(
            "update comp.employee_rows set raw = cast(:raw as jsonb) "
            "where upload_id = :u and file_row = :r"), updates)
        done += len(updates)


def _problems(connection: Connection, tenant_id: uuid.UUID, sensitive: set[str],
              cipher: Any) -> int:
    found = connection.execute(text(
        "select upload_id, seq, value from comp.upload_problems where tenant_id = :t "
        "and input_key = any(cast(:keys as text[])) and value is not null "
        "and value not like 'pii1:%'"), {"t": tenant_id, "keys": sorted(sensitive)}).all()
    if found:
        connection.execute(text(
            "update comp.upload_problems set value = :v where upload_id = :u and seq = :s"),
            [{"u": u, "s": seq, "v": cipher().seal(keys.PROBLEM_VALUE, value)}
             for u, seq, value in found])
    return len(found)


def _summaries(connection: Connection, tenant_id: uuid.UUID, sensitive: set[str],
               cipher: Any) -> int:
    found = connection.execute(text(
        "select id, metadata -> 'summary' from comp.uploads where tenant_id = :t "
        "and jsonb_array_length(coalesce(metadata -> 'summary' -> 'warnings', '[]')) > 0"),
        {"t": tenant_id}).all()
    changed = 0
    for upload_id, summary in found:
        if not any(w.get("input_key") in sensitive and any(
                not keys.is_sealed(s.get("value")) for s in w.get("samples") or [])
                for w in summary.get("warnings") or []):
            continue
        opened = sealing.opened_summary(summary, cipher)  # a half-sealed one: start over
        sealed = sealing.sealed_summary(opened or summary, cipher(), sensitive)
        connection.execute(text(
            "update comp.uploads set metadata = jsonb_set(metadata, '{summary}', "
            "cast(:s as jsonb)) where id = :u"), {"u": upload_id, "s": json.dumps(sealed)})
        changed += 1
    return changed


def _formats(connection: Connection, tenant_id: uuid.UUID, cipher: Any) -> int:
    """The preview sample (first rows) and the reading profile's notes quoting values."""
    found = connection.execute(text(
        "select id, metadata -> 'format', metadata -> 'sample' from comp.uploads "
        "where tenant_id = :t and (jsonb_typeof(metadata -> 'sample') = 'array' or "
        "exists (select 1 from jsonb_each_text(coalesce(metadata -> 'format' -> 'profile' "
        "-> 'decided', '{}')) n where n.value not like 'pii1:%'))"), {"t": tenant_id}).all()
    for upload_id, fmt, sample in found:
        sealed = {"format": sealing.sealed_format(fmt, cipher()) if fmt else fmt,
                  "sample": sample if keys.is_sealed(sample)
                  else sealing.sealed_sample(sample, cipher())}
        connection.execute(text(
            "update comp.uploads set metadata = metadata || cast(:m as jsonb) where id = :u"),
            {"u": upload_id, "m": json.dumps(sealed)})
    return len(found)


def _files(settings: Settings, tenant_id: uuid.UUID, cipher: Any) -> int:
    folder = Path(settings.data_dir) / "uploads" / str(tenant_id)
    if not folder.is_dir():
        return 0
    done = 0
    candidates = [(p, "typed") for p in folder.rglob("*.parquet")] + \
        [(p, "spool") for p in folder.glob("*.rows.arrows")]
    for path, kind in candidates:
        with open(path, "rb") as handle:
            if keys.is_sealed_file(handle.read(8)):
                continue
        _seal_file(path, cipher(), FIELDS[kind])
        done += 1
    return done


def _seal_file(path: Path, cipher: keys.TenantCipher, field: str) -> None:
    """Replace `path` by its sealed form atomically, keeping its mode (read-only objects)."""
    mode = path.stat().st_mode & 0o777
    temporary = path.with_name(path.name + ".sealing")
    with open(path, "rb") as source, open(temporary, "wb") as target:
        writer = cipher.writer(target, field)
        while chunk := source.read(1 << 20):
            writer.write(chunk)
        writer.close()
    os.chmod(temporary, mode)
    os.replace(temporary, path)
