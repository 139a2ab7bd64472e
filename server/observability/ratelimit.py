"""Token-bucket rate limit on write requests (POST/PUT/PATCH/DELETE under /api/).

One bucket per client address (the socket peer; behind a proxy, uvicorn's --proxy-headers
with --forwarded-allow-ips sets it from the proxy's header, never from a header the client
chose), plus one per account taken once the caller is authenticated (`take_account`). A
made-up Authorization header per request no longer buys a fresh bucket. In-process buckets by
default; with REDIS_URL the buckets live in Redis so every API process shares them. A Redis
outage lets requests through (logged): the limit protects capacity, it guards no invariant.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from typing import Protocol

import redis
import structlog
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from server.errors import TooManyRequests, problem_response

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
log = structlog.get_logger(__name__)


class Buckets(Protocol):
    def take(self, key: str) -> float:
        """Take one token; 0.0 when allowed, else the seconds until one is available."""


class MemoryBuckets:
    def __init__(self, per_minute: int, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._state.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._state[key] = (tokens - 1.0, now)
                return 0.0
            self._state[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


_LUA_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local data = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(data[1]) or burst
local ts = tonumber(data[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return tostring(wait)
"""


class RedisBuckets:
    def __init__(
        self, url: str, per_minute: int, burst: int, prefix: str = "paysheet:ratelimit:"
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self.prefix = prefix
        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._script = self.client.register_script(_LUA_TAKE)

    def take(self, key: str) -> float:
        try:
            return float(self._script(keys=[self.prefix + key], args=[self.rate, self.burst]))
        except redis.RedisError as exc:
            log.warning("rate_limit_redis_unavailable", error=str(exc))
            return 0.0


def client_key(scope: Scope) -> str:
    """The bucket of the connection's client address (never a request header)."""
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


def account_key(user_id: object) -> str:
    return "u:" + hashlib.sha256(str(user_id).encode()).hexdigest()[:32]


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, buckets: Buckets) -> None:
        self.app = app
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in WRITE_METHODS
            and scope["path"].startswith("/api/")
        ):
            wait = self.buckets.take(client_key(scope))
            if wait > 0:
                error = TooManyRequests(max(1, math.ceil(wait)))
                response = problem_response(
                    Request(scope), error.status, error.title, error.detail, headers=error.headers
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
