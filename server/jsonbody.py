"""Request bodies with exact numbers: JSON floats are parsed as `Decimal`, never `float`.

Money and rates in plan documents, parameters and test vectors must stay exact (rule R10):
`2500000.10` must not pass through binary floating point on its way to the engine. Routers
that accept such values use `APIRouter(route_class=ExactNumberRoute)`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


def _no_constants(name: str) -> Any:
    """NaN and Infinity are not JSON; refuse them like any other malformed body."""
    raise json.JSONDecodeError(f"{name} is not a JSON number", name, 0)


class ExactNumberRequest(Request):
    """A request whose `.json()` reads every non-integer number as a `Decimal`."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            self._json = json.loads(body, parse_float=Decimal, parse_constant=_no_constants)
        return self._json


class ExactNumberRoute(APIRoute):
    """Route class that hands its endpoint an `ExactNumberRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact_handler(request: Request) -> Response:
            return await handler(ExactNumberRequest(request.scope, request.receive))

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
