"""JSON responses serialised once, with stored JSON spliced in as it is stored.

FastAPI serialises a returned model through its `response_model` (a dump, a validation, a
second dump); an endpoint on the hot read path returns `model_response(model)` instead:
pydantic writes the JSON once, in Rust. The route keeps `response_model=` for its OpenAPI
schema. A large jsonb column (a run's totals) need not be parsed into Python objects only
to be written back out: read it as text (`column.cast(Text)`: PostgreSQL writes valid
JSON) and pass it as `raw`, which splices it in unparsed. Its numbers stay the text that
was stored (R10: no float in between).
"""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel


def model_response(model: BaseModel, status_code: int = 200, **raw: str | None) -> Response:
    """`model` as a JSON response; each `raw` field (JSON text, None for null) replaces the
    model's field of that name."""
    body = model.model_dump_json(by_alias=True, exclude=set(raw) or None).encode()
    if raw:
        fields = b",".join(b'"%s":%s' % (name.encode(), (text or "null").encode())
                           for name, text in raw.items())
        body = body[:-1] + (b"," if body != b"{}" else b"") + fields + b"}"
    return Response(body, status_code=status_code, media_type="application/json")
