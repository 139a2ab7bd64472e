"""Failed logins per client address: after `threshold` failures within `window` seconds the
address waits, the delay doubling with every further failure (capped). Counters live in
Redis when REDIS_URL is set (shared by every API process), else in process memory.

Per-account lockout is in the database (`comp.auth_login_failed`, migration 0081): an
attacker spreading guesses over many addresses still locks the account, and one address
guessing many accounts is stopped here; neither needs a header the client could forge.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import redis
import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ThrottlePolicy:
    threshold: int = 20
    window_seconds: int = 900
    base_seconds: int = 30
    cap_seconds: int = 3600

    def delay(self, failures: int) -> int:
        """Seconds an address waits after `failures` failures (0 below the threshold)."""
        if failures < self.threshold:
            return 0
        return min(self.base_seconds * 2 ** min(failures - self.threshold, 20), self.cap_seconds)


@dataclass
class MemoryThrottle:
    policy: ThrottlePolicy
    _state: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, address: str) -> float:
        with self._lock:
            _, _, locked_until = self._state.get(address, (0, 0.0, 0.0))
        return max(0.0, locked_until - time.monotonic())

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            count, started, _ = self._state.get(address, (0, now, 0.0))
            if now - started > self.policy.window_seconds:
                count, started = 0, now
            count += 1
            self._state[address] = (count, started, now + self.policy.delay(count))


class RedisThrottle:
    def __init__(self, url: str, policy: ThrottlePolicy, prefix: str = "paysheet:login:") -> None:
        self.policy = policy
        self.prefix = prefix
        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def wait(self, address: str) -> float:
        try:
            ttl = self.client.pttl(f"{self.prefix}lock:{address}")
        except redis.RedisError as exc:
            log.warning("login_throttle_redis_unavailable", error=str(exc))
            return 0.0
        return max(0.0, ttl / 1000.0)

    def failed(self, address: str) -> None:
        counter = f"{self.prefix}count:{address}"
        try:
            count = self.client.incr(counter)
            if count == 1:
                self.client.expire(counter, self.policy.window_seconds)
            delay = self.policy.delay(int(count))
            if delay:
                self.client.set(f"{self.prefix}lock:{address}", "1", ex=delay)
        except redis.RedisError as exc:
            log.warning("login_throttle_redis_unavailable", error=str(exc))


def build_throttle(redis_url: str | None, policy: ThrottlePolicy) -> MemoryThrottle | RedisThrottle:
    return RedisThrottle(redis_url, policy) if redis_url else MemoryThrottle(policy)
