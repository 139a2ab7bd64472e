"""Opaque cursors for keyset pagination: one codec for every list endpoint.

A cursor is the sort key of the last item served, as base64url JSON. Clients treat it as
opaque; a cursor that does not decode into the expected key answers 422 naming
`query.cursor`, never a server error.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from server.errors import UnprocessableEntity


def encode_cursor(*key: str | int) -> str:
    """The cursor for an item whose sort key is `key` (strings and integers only)."""
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *parsers: Callable[[Any], Any]) -> tuple[Any, ...]:
    """The sort key in `cursor`, each part passed through its parser (e.g. `int`,
    `uuid.UUID`, `datetime.fromisoformat`)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
        if not isinstance(key, list) or len(key) != len(parsers):
            raise ValueError("wrong shape")
        return tuple(parse(part) for parse, part in zip(parsers, key, strict=True))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise UnprocessableEntity(
            [{"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "value_error"}]
        ) from None
