"""One request budget per CRM org, shared in Redis by every worker process.

Each connector paces itself inside one process (``connectors.hubspot.ratelimit.RequestPacer``); two
workers syncing the same portal would each use the whole budget. ``RedisRateLimiter`` is a
``connectors.limits.RateLimiter`` too (``acquire(kind)``, ``pause(seconds)``) and keeps its state in
Redis, so all processes together stay inside the CRM's rolling window. The rates come from the CRM's
registry entry (``connectors.registry.CrmEntry.rate_limits``).

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

import os
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from connectors.limits import Rate
from connectors.registry import crm_entry

__all__ = ["Rate", "RedisRateLimiter", "limiter_for"]

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


def limiter_for(cfg: Any, *, redis_url: str, prefix: str = "icp:",
                env: Mapping[str, str] | None = None) -> RedisRateLimiter | None:  # fmt: skip
    """The shared limiter of a connection (a ``worker.config.ConnectionConfig``), or None for CRMs whose
    registry entry has no rolling rate to share (files; Salesforce counts a daily allocation, which its
    connector reserves itself).

    Connections drawing on one budget (for HubSpot: the same credentials) share one limiter; without
    credentials the connection's name names it."""
    entry = crm_entry(cfg.crm)
    if entry.rate_limits is None:
        return None
    from worker.locks import redis_client

    env = os.environ if env is None else env
    budget = entry.budget_name(cfg.env_prefix or "", env) if entry.budget_name else None
    org = budget or f"connection-{cfg.name}"
    return RedisRateLimiter(
        redis_client(redis_url), f"{cfg.crm}:{org}", entry.rate_limits(cfg.options or {}), prefix=prefix
    )
