"""Client-side pacing so that a sync stays inside HubSpot's rolling windows instead of bouncing off them.

HubSpot counts requests in a rolling window (100 or 190 per 10 seconds per app, and a lower per-second
limit on the search endpoints): a request is refused when ``N`` were already counted in the last ``T``
seconds. Requests spaced evenly, one every ``(T + JITTER_MARGIN) / N`` seconds, never put ``N + 1`` into
one window, even when the network bunches them up by up to ``JITTER_MARGIN`` (the server counts a
request when it arrives, the pacer when it leaves): 9.76 requests a second against 100 per 10 s, 4 a
second against the search endpoints' 5. ``rate_headroom`` leaves a further share of each limit unused.
A token bucket of capacity 1 refilled at that pace is exactly this spacing (at most ``1 + r * t``
requests in any ``t`` seconds); the Redis limiter applies the same spacing (``shared_limits``).

The pacer is a ``connectors.limits.RateLimiter``: ``acquire(kind)``, plus ``pause(seconds)`` for a server
that says "wait"; a Redis-backed limiter shared by several workers can replace it without touching the
client (``connectors.hubspot.client.HubSpotClient`` only calls those two). It is thread-safe: a token is
reserved under a lock and waited for outside it, so parallel requests queue up in order. The rates a
shared limiter enforces come from ``shared_limits`` (the registry entry's ``rate_limits``).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from connectors.limits import Rate, RateLimiter

__all__ = [
    "JITTER_MARGIN",
    "RateLimiter",
    "RequestPacer",
    "TokenBucket",
    "budget_name",
    "shared_limits",
    "spacing",
]


#: Seconds by which the network may bunch requests up between the pacer and HubSpot's counter.
JITTER_MARGIN = 0.25
#: ``rate_headroom`` unless the options say otherwise.
DEFAULT_HEADROOM = 0.0


def spacing(limit: int, window: float, headroom: float = DEFAULT_HEADROOM) -> float:
    """Seconds between two requests so that ``limit + 1`` never land in one ``window`` (see above)."""
    usable = max(1.0, limit * (1 - headroom))
    return (window + JITTER_MARGIN) / usable


def spaced(interval: float) -> Rate:
    """The ``Rate`` of one request every ``interval`` seconds, no burst (two in any ``interval``)."""
    return Rate(2, interval, burst=1)


def shared_limits(options: Mapping[str, Any] | None = None) -> dict[str, Rate]:
    """The rates a limiter shared by every worker enforces for a HubSpot connection's options, the same
    spacing as the in-process pacer: ``"*"`` (the portal's 10-second window, every request) and
    ``"search"`` (the search endpoints' per-second limit, on top)."""
    options = options or {}
    headroom = float(options.get("rate_headroom", DEFAULT_HEADROOM))
    per_10s = int(options.get("requests_per_10s", 100))
    search = int(options.get("search_requests_per_second", 5))
    return {
        "*": spaced(spacing(per_10s, 10.0, headroom)),
        "search": spaced(spacing(search, 1.0, headroom)),
    }


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

    @classmethod
    def spaced(cls, interval: float, clock: Callable[[], float]) -> TokenBucket:
        """One token every ``interval`` seconds and no burst: requests evenly spaced."""
        return cls(1, 1.0 / interval, clock)

    def available_in(self) -> float:
        """Seconds until a token is there (0: now); nothing is taken."""
        self._refill()
        missing = 1.0 - self._tokens
        # A microsecond early is nothing to the server; waiting for it might never end on a clock that
        # reads 1.7e9 seconds (a float adds nothing that small).
        return 0.0 if missing * 1_000_000 <= self.rate else missing / self.rate

    def drain(self, until: float) -> None:
        """No token before the clock reads ``until`` (``available_in`` says so until then)."""
        self._refill()
        wait = until - self._stamp
        if wait > 0:
            self._tokens = min(self._tokens, 1.0 - wait * self.rate)


class RequestPacer:
    """In-process limiter: one bucket for the portal's 10-second window, one more for search.

    A request is counted when it really goes: ``acquire`` looks at how long until every bucket it counts
    against has a token, sleeps that long and looks again (as the Redis limiter does). So a search waiting
    for the search window holds no slot of the portal's window, and a request waiting for its turn when a
    429 arrives (``pause``) waits for the pause too: every request in flight slows down, not only the
    refused one."""

    def __init__(
        self,
        requests_per_10s: int,
        search_per_second: int,
        *,
        headroom: float = DEFAULT_HEADROOM,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        #: Seconds between two requests (the portal's window), and between two searches.
        self.interval = spacing(requests_per_10s, 10.0, headroom)
        self.search_interval = spacing(search_per_second, 1.0, headroom)
        self.general = TokenBucket.spaced(self.interval, clock)
        self.search = TokenBucket.spaced(self.search_interval, clock)
        self.waited = 0.0

    def acquire(self, kind: str) -> float:
        buckets = (self.general, self.search) if kind == "search" else (self.general,)
        waited = 0.0
        while True:
            with self._lock:
                wait = max(bucket.available_in() for bucket in buckets)
                if wait <= 0:
                    for bucket in buckets:
                        bucket.take()
                    self.waited += waited
                    return waited
            waited += wait
            self._sleep(wait)

    def pause(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            until = self._clock() + seconds
            self.general.drain(until)
            self.search.drain(until)
