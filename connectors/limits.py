"""Request limits as values, and the small interface every limiter offers.

A CRM whose limit is a rolling request rate (HubSpot: 100 or 190 requests per 10 seconds, search 5 a
second) describes it with ``Rate`` values in its registry entry (``connectors.registry``); a limiter
enforces them. A connector talks to any limiter through ``RateLimiter``: its own in-process pacer
(``connectors.hubspot.ratelimit.RequestPacer``) or the one shared in Redis by every worker
(``worker.ratelimit.RedisRateLimiter``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class RateLimiter(Protocol):
    """What a connector needs from a limiter; thread-safe, since requests run in parallel."""

    def acquire(self, kind: str) -> float:
        """Block until one request of ``kind`` (``read``, ``write``, ``other`` or ``search``) may go;
        return the seconds waited."""

    def pause(self, seconds: float) -> None:
        """Let no request go for ``seconds`` (the server answered 429)."""


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
        """(emission interval, burst tolerance) in microseconds, for the generic cell rate algorithm:
        at most ``burst + window / interval`` requests in any window, so never more than ``budget``."""
        burst = self.burst if self.burst is not None else max(1, self.budget // 10)
        burst = min(max(1, burst), self.budget)
        if burst >= self.budget:
            if self.budget == 1:  # one per window, never two inside one closed window
                return int(self.window * 1_000_000) + 1, 0
            burst = self.budget - 1
        interval = self.window * 1_000_000 / (self.budget - burst)
        return int(interval) + 1, int(interval * (burst - 1))
