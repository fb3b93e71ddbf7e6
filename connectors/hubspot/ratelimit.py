"""Client-side pacing so that a sync stays inside HubSpot's rolling windows instead of bouncing off them.

HubSpot counts requests in a rolling window (100 or 190 per 10 seconds per app, and a lower per-second
limit on the search endpoints). A token bucket of capacity ``C`` refilled at ``r`` tokens a second lets
through at most ``C + r * T`` requests in any window of ``T`` seconds, so choosing ``C + r * T = budget``
guarantees the window is never exceeded, whatever the timing of the calls.

The pacer is a ``connectors.limits.RateLimiter``: ``acquire(kind)``, plus ``pause(seconds)`` for a server
that says "wait"; a Redis-backed limiter shared by several workers can replace it without touching the
client (``connectors.hubspot.client.HubSpotClient`` only calls those two). It is thread-safe: a token is
reserved under a lock and waited for outside it, so parallel requests queue up in order. The rates a
shared limiter enforces come from ``shared_limits`` (the registry entry's ``rate_limits``).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from connectors.limits import Rate, RateLimiter

__all__ = ["RateLimiter", "RequestPacer", "TokenBucket", "budget_name", "shared_limits"]


def shared_limits(options: Mapping[str, Any] | None = None) -> dict[str, Rate]:
    """The rates a limiter shared by every worker enforces for a HubSpot connection's options, with the
    same headroom as the in-process pacer: ``"*"`` (the portal's 10-second window, every request) and
    ``"search"`` (the search endpoints' per-second limit, on top)."""
    options = options or {}
    headroom = float(options.get("rate_headroom", 0.05))
    per_10s = max(1, int(int(options.get("requests_per_10s", 100)) * (1 - headroom)))
    search = max(1, int(int(options.get("search_requests_per_second", 5)) * (1 - headroom)))
    # A small burst, as the pacer: every request of burst is one less of sustained rate.
    return {"*": Rate(per_10s, 10.0, burst=max(1, per_10s // 50)), "search": Rate(search, 1.0, burst=1)}


def budget_name(env_prefix: str, env: Mapping[str, str]) -> str | None:
    """A stable name for the budget a HubSpot connection draws on, from its credentials: HubSpot counts a
    private app's requests per app (its access token), a public app's per app and portal (its client id
    and the portal's refresh token). Hashed: the name never shows a secret."""
    identity = (env.get(env_prefix + "HUBSPOT_ACCESS_TOKEN") or "").strip()
    if not identity:
        client = (env.get(env_prefix + "HUBSPOT_CLIENT_ID") or "").strip()
        refresh = (env.get(env_prefix + "HUBSPOT_REFRESH_TOKEN") or "").strip()
        identity = f"{client}:{refresh}" if client and refresh else ""
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16] if identity else None


class TokenBucket:
    """A token bucket with an injectable clock; ``take()`` returns how long to wait for a token."""

    def __init__(self, capacity: float, rate_per_second: float, clock: Callable[[], float]) -> None:
        if capacity < 1 or rate_per_second <= 0:
            raise ValueError("a token bucket needs capacity >= 1 and a positive rate")
        self.capacity = float(capacity)
        self.rate = float(rate_per_second)
        self._clock = clock
        self._tokens = float(capacity)
        self._stamp = clock()

    @classmethod
    def for_window(cls, budget: int, window_seconds: float, clock: Callable[[], float]) -> TokenBucket:
        """A bucket that never lets more than ``budget`` requests into any window of ``window_seconds``.

        A small burst (2% of the budget) and the rest spread evenly: a sequential client gains nothing
        from a large burst, and every token of burst is one less of sustained rate."""
        budget = max(1, int(budget))
        capacity = max(1, budget // 50)
        if budget == capacity:  # a budget of 1: one request per window
            return cls(1, 1.0 / window_seconds * (1 - 1e-9), clock)
        return cls(capacity, (budget - capacity) / window_seconds, clock)

    def _refill(self) -> None:
        now = self._clock()
        if now > self._stamp:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = max(self._stamp, now)

    def take(self) -> float:
        """Take a token; return 0 or the seconds until the token is really there (already reserved)."""
        self._refill()
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.rate

    def drain(self, until: float) -> None:
        """No tokens before the clock reads ``until``."""
        self._refill()
        wait = until - self._stamp
        if wait > 0:
            self._tokens = min(self._tokens, -wait * self.rate)


class RequestPacer:
    """In-process limiter: one bucket for the portal's 10-second window, one more for search."""

    def __init__(
        self,
        requests_per_10s: int,
        search_per_second: int,
        *,
        headroom: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self.general = TokenBucket.for_window(math.floor(requests_per_10s * (1 - headroom)), 10.0, clock)
        self.search = TokenBucket.for_window(math.floor(search_per_second * (1 - headroom)) or 1, 1.0, clock)
        self.waited = 0.0

    def acquire(self, kind: str) -> float:
        with self._lock:
            wait = self.general.take()
            if kind == "search":
                wait = max(wait, self.search.take())
        if wait > 0:
            self.waited += wait
            self._sleep(wait)
        return wait

    def pause(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            until = self._clock() + seconds
            self.general.drain(until)
            self.search.drain(until)
