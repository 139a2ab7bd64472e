"""How an upload is read: the preview, changing the reading (sheet, header row, encoding,
reading profile), reading profiles kept with presets, and the tenant's header aliases.

Kept apart from `service.py` (storage and lifecycle); it uses that module's helpers.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from server.errors import Conflict, UnprocessableEntity
from server.modules.audit.service import record_event
from server.modules.auth.dependencies import Principal
from server.modules.keys import service as keys
from server.modules.uploads import sealing, service
from server.modules.uploads.detection import PROFILE_FIELDS, detect
from server.modules.uploads.models import MappingAlias
from server.modules.uploads.parsing import FileRejected, iter_records
from server.modules.uploads.preview import infer_column
from server.modules.uploads.profile import ReadingProfile
from server.modules.uploads.targets import mapping_targets
from server.settings import Settings

MAX_ALIASES = 100


def preview(session: Session, settings: Settings, upload_id: uuid.UUID) -> dict[str, Any]:
    """First 100 data rows, each column's inferred type and what reading does to its
    values. Workbooks answer from the sample kept at upload (no sheet is read again)."""
    upload = service.get_upload(session, upload_id)
    fmt = service.stored_format(upload)
    rows = sealing.opened_sample(upload, settings)
    if rows is None:
        path = service.original_path(settings, upload)
        rows = []
        for record in iter_records(path, fmt):
            rows.append({"row": record.row, "cells": record.cells})
            if len(rows) == service.PREVIEW_ROWS:
                break
    rows = [{"row": r["row"], "cells": r["cells"][: len(fmt.columns)]} for r in rows]
    profile = ReadingProfile.from_json(fmt.profile)
    columns = []
    for index, name in enumerate(fmt.columns):
        values = [(r["row"], r["cells"][index] if index < len(r["cells"]) else "") for r in rows]
        inferred, warnings = infer_column(name, values, profile)
        columns.append({"index": index, "name": name, "inferred_type": inferred,
                        "warnings": warnings})
    return {"upload_id": upload.id, "columns": columns, "rows": rows,
            "format": sealing.opened_format(fmt.as_json(), lambda: keys.cipher(session, settings))}


def change_reading(session: Session, principal: Principal, settings: Settings,
                   upload_id: uuid.UUID, choices: dict[str, Any]) -> Any:
    """Read the file again with the user's choices (sheet, header_row, encoding) and/or
    set the profile's decimal, thousands and date_order; refused while validating or
    once ready (the data a run may use never changes)."""
    upload = service.get_upload(session, upload_id, lock=True)
    old = service.stored_format(upload)
    if upload.status in ("processing", "ready"):
        raise Conflict(f"the upload is {upload.status}; its reading cannot change")
    path = service.original_path(settings, upload)
    sheet = choices.get("sheet") or old.sheet
    encoding = choices.get("encoding") or (old.encoding if old.encoding_detected == "chosen"
                                            else None)
    try:
        fmt = detect(session, path, upload.kind, sheet if old.format != "csv"
                     else None, encoding=encoding, header_row=choices.get("header_row"))
    except FileRejected as rejected:
        raise UnprocessableEntity([{"loc": ["body"], "msg": str(rejected),
                                    "type": rejected.code}]) from None
    profile = ReadingProfile.from_json(fmt.profile)
    for name in PROFILE_FIELDS:
        if name in choices:
            setattr(profile, name, choices[name])
            profile.decided[name] = "chosen"
    fmt.profile = profile.as_json()
    cipher = keys.cipher(session, settings)
    service.store_format(upload, fmt, cipher)
    flag_modified(upload, "metadata_")
    record_event(session, principal_or_actor_id=principal, action="upload.reading",
                 entity="upload", entity_id=upload.id,
                 before={"format": sealing.sealed_format(old.as_json(), cipher)},
                 after={"choices": choices, "format": upload.metadata_["format"]})
    return upload


def list_aliases(session: Session) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in session.scalars(select(MappingAlias).order_by(MappingAlias.input_key,
                                                            MappingAlias.alias)):
        out.setdefault(row.input_key, []).append(row.alias)
    return out


def set_aliases(session: Session, principal: Principal, input_key: str, aliases: list[str]
                ) -> list[str]:
    """Replace the tenant's aliases of one input (an empty list removes them)."""
    cleaned = sorted({" ".join(a.split()) for a in aliases if a.strip()})
    if len(cleaned) > MAX_ALIASES or any(len(a) > 200 for a in cleaned):
        raise UnprocessableEntity([{"loc": ["body"], "msg": f"at most {MAX_ALIASES} aliases "
                                    "of at most 200 characters", "type": "value_error"}])
    known = {t.key for kind in service.KINDS for t in mapping_targets(session, kind, None)}
    if input_key not in known:
        raise UnprocessableEntity([{"loc": ["path", "input_key"], "msg": f"'{input_key}' is "
                                    "not an input of the catalog", "type": "value_error"}])
    before = list_aliases(session).get(input_key, [])
    session.execute(delete(MappingAlias).where(MappingAlias.input_key == input_key))
    for alias in cleaned:
        session.add(MappingAlias(tenant_id=principal.tenant_id, input_key=input_key,
                                 alias=alias, created_by=principal.user_id))
    session.flush()
    record_event(session, principal_or_actor_id=principal, action="mapping.aliases",
                 entity="mapping_alias",
                 entity_id=uuid.uuid5(uuid.NAMESPACE_URL, f"mapping-alias:{input_key}"),
                 before={input_key: before},
                 after={input_key: cleaned})
    return cleaned
