"""Sensitive inputs' values in what the uploads area stores in the database, sealed.

The catalog says which inputs are sensitive (`catalog.service.sensitive_keys`). Their
values are sealed under the tenant's data key (`keys.service`) in `employee_rows.raw` (one
sealed JSON object per row under `SEALED`, the other cells stay plain for queries), in
`upload_problems.value`, and in the warning samples of a validation summary (kept in the
upload's metadata and in the `upload.validate` audit event, which therefore never holds a
plaintext salary either). Readers open them here, in the service layer, behind the
routes' permission checks. The Parquet and the rows spool are sealed whole (validation).

Before a mapping says which columns are sensitive, the file's first rows kept for the
preview (`metadata.sample`) are sealed whole, and the reading profile's notes that quote a
value ("detected from values like '1,234.50'") are sealed one by one.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl
from sqlalchemy.orm import Session, object_session

from server.db.session import tenant_session
from server.modules.catalog import service as catalog
from server.modules.keys import service as keys
from server.settings import Settings

SEALED = "_sealed"
SAMPLE = "uploads.sample"
FORMAT_NOTE = "uploads.format_note"


def sensitive_keys(session: Session) -> set[str]:
    return catalog.sensitive_keys(session)


def sealed_summary(summary: dict[str, Any], cipher: keys.TenantCipher,
                   sensitive: set[str]) -> dict[str, Any]:
    """`summary` with the sample values of sensitive inputs' warnings sealed."""
    warnings = []
    for warning in summary.get("warnings") or []:
        if warning.get("input_key") in sensitive:
            warning = {**warning, "samples": [
                {**sample, **{name: cipher.seal(keys.WARNING_SAMPLE, str(sample[name]))
                              for name in ("value", "read_as") if sample.get(name) is not None}}
                for sample in warning.get("samples") or []]}
        warnings.append(warning)
    return {**summary, "warnings": warnings}


def opened_summary(summary: dict[str, Any] | None, cipher_of: Any) -> dict[str, Any] | None:
    """`summary` with sealed samples opened (`cipher_of()` is called only if one is)."""
    if not summary or not any(keys.is_sealed(sample.get("value"))
                              for w in summary.get("warnings") or []
                              for sample in w.get("samples") or []):
        return summary
    cipher = cipher_of()
    return {**summary, "warnings": [
        {**w, "samples": [{**s, **{n: cipher.open_if_sealed(keys.WARNING_SAMPLE, s.get(n))
                                   for n in ("value", "read_as") if n in s}}
                          for s in w.get("samples") or []]}
        for w in summary.get("warnings") or []]}


def readable_summary(upload: Any, settings: Settings) -> dict[str, Any] | None:
    """The upload's validation summary as its readers see it (samples opened)."""
    return opened_summary((upload.metadata_ or {}).get("summary"),
                          _cipher_of(upload, settings))


def problem_value(value: str | None, input_key: str | None, cipher: keys.TenantCipher,
                  sensitive: set[str]) -> str | None:
    if value is None or input_key not in sensitive:
        return value
    return cipher.seal(keys.PROBLEM_VALUE, value)


def row_field(upload_id: Any, file_row: int) -> str:
    """The authenticated field of one row's sealed cells: a sealed object moved to
    another row or upload does not open there."""
    return f"{keys.EMPLOYEE_ROWS}|{upload_id}|{file_row}"


def seal_rows(frame: pl.DataFrame, row_column: str, plain: list[str], sealed: list[str],
              cipher: keys.TenantCipher, upload_id: Any) -> pl.Series:
    """Each row's `raw` JSON: the plain cells, plus the sensitive ones as one sealed JSON
    object under `SEALED` (one AES-GCM operation per row)."""
    secret = frame.select(pl.col(row_column), pl.struct(sealed).struct.json_encode())
    tokens = pl.Series([cipher.seal(row_field(upload_id, row), text)
                        for row, text in secret.iter_rows()], dtype=pl.String)
    return frame.select(pl.struct([*(pl.col(k) for k in plain),
                                   tokens.alias(SEALED)]).struct.json_encode()).to_series()


def opened_row(raw: dict[str, Any], cipher: keys.TenantCipher, upload_id: Any,
               file_row: int) -> dict[str, Any]:
    """An employee row's cells with its sealed ones opened (same shape as before sealing)."""
    if SEALED not in raw:
        return raw
    plain = {k: v for k, v in raw.items() if k != SEALED}
    return {**plain, **json.loads(cipher.open(row_field(upload_id, file_row), raw[SEALED]))}


def _cipher_of(upload: Any, settings: Settings) -> Any:
    def cipher_of() -> keys.TenantCipher:
        session = object_session(upload)
        if session is not None:
            return keys.cipher(session, settings)
        with tenant_session(upload.tenant_id) as own:
            return keys.cipher(own, settings)
    return cipher_of


def sealed_format(fmt_json: dict[str, Any], cipher: keys.TenantCipher) -> dict[str, Any]:
    """A file format as stored: the profile's notes (which quote values) sealed."""
    profile = dict(fmt_json.get("profile") or {})
    notes = profile.get("decided") or {}
    profile["decided"] = {k: v if keys.is_sealed(v) else cipher.seal(FORMAT_NOTE, str(v))
                          for k, v in notes.items()}
    return {**fmt_json, "profile": profile}


def opened_format(fmt_json: dict[str, Any] | None, cipher_of: Any) -> dict[str, Any] | None:
    notes = ((fmt_json or {}).get("profile") or {}).get("decided") or {}
    if not any(keys.is_sealed(v) for v in notes.values()):
        return fmt_json
    cipher = cipher_of()
    assert fmt_json is not None
    return {**fmt_json, "profile": {**fmt_json["profile"], "decided": {
        k: cipher.open_if_sealed(FORMAT_NOTE, v) for k, v in notes.items()}}}


def readable_format(upload: Any, settings: Settings) -> dict[str, Any] | None:
    return opened_format((upload.metadata_ or {}).get("format"), _cipher_of(upload, settings))


def sealed_sample(sample: Any, cipher: keys.TenantCipher) -> Any:
    """The file's first rows (raw cells, sensitivity unknown yet) as one sealed value."""
    return None if sample is None else cipher.seal(SAMPLE, json.dumps(sample))


def opened_sample(upload: Any, settings: Settings) -> Any:
    value = (upload.metadata_ or {}).get("sample")
    if not keys.is_sealed(value):
        return value
    return json.loads(_cipher_of(upload, settings)().open(SAMPLE, value))
