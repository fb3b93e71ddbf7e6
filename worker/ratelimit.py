"""One request budget per CRM org, shared in Redis by every worker process.

Each connector paces itself inside one process (``connectors.hubspot.ratelimit.RequestPacer``); two
workers syncing the same portal would each use the whole budget. ``RedisRateLimiter`` has the same two
methods, ``acquire(kind)`` and ``pause(seconds)``, and keeps its state in Redis, so all processes
together stay inside the CRM's rolling window.

The algorithm is GCRA (the "generic cell rate algorithm", a token bucket kept as one timestamp per
bucket): a bucket with emission interval ``T`` and burst ``b`` admits a request at time ``t`` when
``t >= TAT - (b - 1) * T`` and then moves its theoretical arrival time to ``max(TAT, t) + T``. In any
window of ``W`` seconds it admits at most ``b + W / T`` requests, so ``T = W / (budget - b)`` keeps every
window at or under ``budget``. One Lua script checks every bucket a request counts against (the
portal-wide window and, for HubSpot searches, the search window) atomically, on the Redis clock: if all
admit the request now it is counted in each, otherwise nothing changes and the script answers how long
until all would; the caller sleeps that long (plus a little jitter, so that waiting processes do not
wake together) and asks again. Requests are counted when they really go, so a search waiting for its
own window never holds up reads, and no window is ever exceeded.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: Admit one request if every bucket of KEYS allows it now, counting it in each; otherwise change nothing
#: and return the microseconds until all of them would. ARGV: (interval_us, tolerance_us) per key.
ADMIT_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local wait = 0
local tats = {}
for i = 1, #KEYS do
    local tau = tonumber(ARGV[2 * i])
    local tat = tonumber(redis.call('GET', KEYS[i]) or now)
    if tat < now then tat = now end
    tats[i] = tat
    if tat - tau - now > wait then wait = tat - tau - now end
end
if wait > 0 then return math.ceil(wait) end
for i = 1, #KEYS do
    local tat = tats[i] + tonumber(ARGV[2 * i - 1])
    redis.call('SET', KEYS[i], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
end
return 0
"""

#: Let no request of KEYS go for ARGV[1] microseconds (the server said "wait"); ARGV[1 + i]: tolerance.
PAUSE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_us = now + tonumber(ARGV[1])
for i = 1, #KEYS do
    local tat = until_us + tonumber(ARGV[1 + i])
    local current = tonumber(redis.call('GET', KEYS[i]) or 0)
    if tat > current then
        redis.call('SET', KEYS[i], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
    end
end
return 1
"""


@dataclass(frozen=True)
class Rate:
    """At most ``budget`` requests in any window of ``window`` seconds, ``burst`` of them back to back."""

    budget: int
    window: float
    burst: int | None = None

    def __post_init__(self) -> None:
        if self.budget < 1 or self.window <= 0:
            raise ValueError("a rate needs a budget >= 1 and a positive window")

    def gcra(self) -> tuple[int, int]:
        """(emission interval, burst tolerance) in microseconds."""
        burst = self.burst if self.burst is not None else max(1, self.budget // 10)
        burst = min(max(1, burst), self.budget)
        if burst >= self.budget:
            if self.budget == 1:  # one per window, never two inside one closed window
                return int(self.window * 1_000_000) + 1, 0
            burst = self.budget - 1
        interval = self.window * 1_000_000 / (self.budget - burst)
        return int(interval) + 1, int(interval * (burst - 1))


class RedisRateLimiter:
    """A rate limiter for one CRM org shared by every process that talks to it.

    ``limits`` maps a request kind to its rate; the ``"*"`` entry applies to every kind (the portal's
    rolling window), a kind's own entry applies on top (``"search"``: HubSpot's per-second search limit).
    """

    def __init__(
        self,
        client: Any,
        org: str,
        limits: Mapping[str, Rate],
        *,
        prefix: str = "icp:",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not limits:
            raise ValueError("give at least one rate")
        self.client = client
        self.org = org
        self.limits = dict(limits)
        self.prefix = prefix
        self._sleep = sleep
        self._admit = client.register_script(ADMIT_SCRIPT)
        self._pause = client.register_script(PAUSE_SCRIPT)
        #: Seconds this instance spent waiting (for the run record).
        self.waited = 0.0

    def _buckets(self, kind: str | None) -> list[tuple[str, Rate]]:
        chosen = []
        for name, rate in self.limits.items():
            if name == "*" or name == kind or kind is None:
                chosen.append((f"{self.prefix}ratelimit:{self.org}:{name}", rate))
        return chosen

    def acquire(self, kind: str) -> float:
        """Block until one request of ``kind`` may go; return the seconds waited."""
        buckets = self._buckets(kind)
        if not buckets:
            return 0.0
        keys = [key for key, _ in buckets]
        args: list[int] = []
        for _, rate in buckets:
            args.extend(rate.gcra())
        waited = 0.0
        while True:
            wait = int(self._admit(keys=keys, args=args)) / 1_000_000
            if wait <= 0:
                self.waited += waited
                return waited
            wait += random.uniform(0, min(0.005, wait / 10))
            waited += wait
            self._sleep(wait)

    def pause(self, seconds: float) -> None:
        """Let no request of this org go for ``seconds`` (in any process): the server answered 429."""
        if seconds <= 0:
            return
        buckets = self._buckets(None)
        self._pause(
            keys=[key for key, _ in buckets],
            args=[int(seconds * 1_000_000), *(rate.gcra()[1] for _, rate in buckets)],
        )

    def reset(self) -> None:
        """Forget the org's state (tests, or after changing its limits)."""
        keys = [key for key, _ in self._buckets(None)]
        if keys:
            self.client.delete(*keys)


def hubspot_limits(options: Mapping[str, Any] | None = None) -> dict[str, Rate]:
    """The rates of a HubSpot connection's options, with the same headroom as its in-process pacer."""
    options = options or {}
    headroom = float(options.get("rate_headroom", 0.05))
    per_10s = max(1, int(int(options.get("requests_per_10s", 100)) * (1 - headroom)))
    search = max(1, int(int(options.get("search_requests_per_second", 5)) * (1 - headroom)))
    # A small burst, as the connector's pacer: every request of burst is one less of sustained rate.
    return {"*": Rate(per_10s, 10.0, burst=max(1, per_10s // 50)), "search": Rate(search, 1.0, burst=1)}


def hubspot_org(env_prefix: str, env: Mapping[str, str]) -> str | None:
    """A stable name for the budget a HubSpot connection draws on, from its credentials: HubSpot counts a
    private app's requests per app (its access token), a public app's per app and portal (its client id
    and the portal's refresh token). Hashed: the Redis key never shows a secret."""
    identity = (env.get(env_prefix + "HUBSPOT_ACCESS_TOKEN") or "").strip()
    if not identity:
        client = (env.get(env_prefix + "HUBSPOT_CLIENT_ID") or "").strip()
        refresh = (env.get(env_prefix + "HUBSPOT_REFRESH_TOKEN") or "").strip()
        identity = f"{client}:{refresh}" if client and refresh else ""
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16] if identity else None


def limiter_for(cfg: Any, *, redis_url: str, prefix: str = "icp:",
                env: Mapping[str, str] | None = None) -> RedisRateLimiter | None:  # fmt: skip
    """The shared limiter of a connection (a ``worker.config.ConnectionConfig``), or None for CRMs whose
    limit is not a rolling window we pace (files; Salesforce counts a daily allocation, which its
    connector reserves itself).

    Connections with the same HubSpot credentials share one budget; without credentials the
    connection's name names it."""
    if cfg.crm != "hubspot":
        return None
    from worker.locks import redis_client

    env = os.environ if env is None else env
    org = hubspot_org(cfg.env_prefix or "", env) or f"connection-{cfg.name}"
    return RedisRateLimiter(
        redis_client(redis_url), f"hubspot:{org}", hubspot_limits(cfg.options), prefix=prefix
    )
