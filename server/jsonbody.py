"""Request bodies with exact numbers: JSON floats are parsed as `Decimal`, never `float`.

Money and rates in plan documents, parameters and test vectors must stay exact (rule R10):
`2500000.10` must not pass through binary floating point on its way to the engine. Routers
that accept such values use `APIRouter(route_class=ExactNumberRoute)`.

A number is checked as text before any Decimal or int is built from it: at most
`MAX_DIGITS` digits and an exponent within ±`MAX_EXPONENT`. `1e9999999` is a 9-byte
Decimal, but writing it out (jsonb, the engine) means ten million digits; a 5,000-digit
integer is refused by `int()` itself. Either answers 422 naming the field.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from server.errors import UnprocessableEntity

MAX_DIGITS = 60  # Decimal(38,10) needs 38; room for rates written with many places
MAX_EXPONENT = 60
_NUMBER = re.compile(r"-?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?")


class _Raw(str):
    """A JSON number's text, not yet converted (checked first, then made a Decimal/int)."""


class _RawInt(_Raw):
    pass


def number_problem(text: str) -> str | None:
    """Why this JSON number's text is refused, or None (checked without converting it)."""
    match = _NUMBER.fullmatch(text)
    if match is None:
        return "not a JSON number"
    whole, fraction, exponent = match.group(1), match.group(2) or "", match.group(3)
    digits = len((whole + fraction).lstrip("0")) or 1
    if digits > MAX_DIGITS:
        return f"a number may have at most {MAX_DIGITS} digits; this one has {digits}"
    if exponent is not None and (len(exponent.lstrip("+-").lstrip("0")) > 4
                                 or abs(int(exponent)) > MAX_EXPONENT):
        return (f"a number's exponent must be between -{MAX_EXPONENT} and {MAX_EXPONENT}; "
                "write the number out in full")
    return None


def _convert(value: Any, path: list[Any]) -> Any:
    if isinstance(value, _Raw):
        problem = number_problem(value)
        if problem is not None:
            shown = value if len(value) <= 40 else value[:37] + "..."
            raise UnprocessableEntity([{"loc": ["body", *path], "msg": problem,
                                        "type": "number_limit", "input": shown}])
        return int(value) if isinstance(value, _RawInt) else Decimal(value)
    if isinstance(value, dict):
        return {key: _convert(item, [*path, key]) for key, item in value.items()}
    if isinstance(value, list):
        return [_convert(item, [*path, index]) for index, item in enumerate(value)]
    return value


def exact_loads(body: bytes | str) -> Any:
    """JSON with Decimal for fractions and exponents, int for integers, each within the
    limits above (422 naming the field otherwise); NaN and Infinity refused."""
    raw = json.loads(body, parse_float=_Raw, parse_int=_RawInt, parse_constant=_no_constants)
    return _convert(raw, [])


def _no_constants(name: str) -> Any:
    """NaN and Infinity are not JSON; refuse them like any other malformed body."""
    raise json.JSONDecodeError(f"{name} is not a JSON number", name, 0)


class ExactNumberRequest(Request):
    """A request whose `.json()` reads every non-integer number as a `Decimal`."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            self._json = exact_loads(body)
        return self._json


class ExactNumberRoute(APIRoute):
    """Route class that hands its endpoint an `ExactNumberRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact_handler(request: Request) -> Response:
            exact = ExactNumberRequest(request.scope, request.receive)
            if "json" in exact.headers.get("content-type", ""):
                # Parsed here, so a refused number is our 422 rather than FastAPI's 400;
                # FastAPI reports malformed JSON itself (422 json_invalid).
                with contextlib.suppress(json.JSONDecodeError):
                    await exact.json()
            return await handler(exact)

        return exact_handler


def plain_json(value: Any) -> Any:
    """`value` with Decimals as plain strings (no exponent), ready for a jsonb column.

    A float (from a caller that parsed JSON itself) becomes the string of its shortest repr,
    which is the number the author wrote; it is never stored as binary floating point."""
    if isinstance(value, float):
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v) for v in value]
    return value
