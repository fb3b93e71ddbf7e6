"""Write requests held in flight at a fake CRM, for tests that kill a worker while several are out
(``tests/integration/test_inflight_faults.py``).

``WriteGate(fake, match=..., ids=...)`` wraps the request entry point of one fake instance
(``FakeHubSpot.handle`` or ``FakeSalesforce.dispatch``; the fakes' code is unchanged). Requests that
``match`` pass untouched until ``pass_first`` of them have; from then on every one is held, with two
fates taken in turn, as a connection cut by a dying client would leave them:

* ``applied``: the fake carries the request out at once, then holds its answer (the CRM has the
  update, the client never hears of it);
* ``unapplied``: held before the fake sees it (the request was lost on the way).

``wait_held(n)`` returns once ``n`` requests are held at the same time; ``open()`` lets every later
request pass and ends the held ones: each is closed unanswered (an ``unapplied`` one is never carried
out). ``sent`` lists ``(fate, record ids)`` of every matching request, ``ids`` telling how to read the
record ids from a request body.

``Overlap(fake, match=..., hold=...)`` only counts: each matching request spends ``hold`` seconds inside
the fake (server time), and ``max_in_flight`` is the most that were inside at once, so a test can tell
that a connector kept several requests of a kind in flight while faults hit them.

``routed_session(port)`` is a ``requests.Session`` sending every https://*.salesforce.com request to a
fake Salesforce listening on ``127.0.0.1:port`` (what ``FakeSalesforce.session()`` does in-process),
for a worker running in another process: see ``testing.inflight_cli``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import requests

__all__ = ["HELD_TIMEOUT", "Overlap", "WriteGate", "routed_session"]

#: Longest a request is held (seconds): a test that forgets ``open()`` does not hang the fake.
HELD_TIMEOUT = 60.0

Match = Callable[[str, str], bool]
Ids = Callable[[bytes], Sequence[str]]


class WriteGate:
    """Holds a fake CRM's matching requests in flight (see the module docstring)."""

    def __init__(self, fake: Any, *, match: Match, ids: Ids, pass_first: int = 0) -> None:
        self.fake = fake
        self.match = match
        self.read_ids = ids
        self.pass_first = pass_first
        #: ``(fate, ids)`` per matching request, in arrival order: ``answered``, ``applied``, ``unapplied``.
        self.sent: list[tuple[str, list[str]]] = []
        self.held = 0
        self.max_held = 0
        self._opened = threading.Event()
        self._cond = threading.Condition()
        if hasattr(fake, "handle"):  # FakeHubSpot: handle(method, path, headers, body) -> outcome | None
            self._attr, self._dropped = "handle", None
        else:  # FakeSalesforce: dispatch(method, target, headers, body) -> Response
            from testing.salesforce import Response

            self._attr, self._dropped = "dispatch", Response(drop=True)
        self._inner = getattr(fake, self._attr)
        setattr(fake, self._attr, self._entry)

    def remove(self) -> None:
        """Put the fake's own entry point back (after ``open()``)."""
        self.open()
        if getattr(self.fake, self._attr) == self._entry:
            delattr(self.fake, self._attr)

    def _entry(self, method: str, target: str, headers: Any, body: bytes) -> Any:
        if not self.match(method, target.split("?", 1)[0]):
            return self._inner(method, target, headers, body)
        ids = list(self.read_ids(body))
        with self._cond:
            n = len(self.sent)
            gated = n >= self.pass_first and not self._opened.is_set()
            fate = "answered" if not gated else ("applied" if (n - self.pass_first) % 2 == 0 else "unapplied")
            self.sent.append((fate, ids))
        if fate == "answered":
            return self._inner(method, target, headers, body)
        if fate == "applied":
            self._inner(method, target, headers, body)
        with self._cond:
            self.held += 1
            self.max_held = max(self.max_held, self.held)
            self._cond.notify_all()
        try:
            self._opened.wait(HELD_TIMEOUT)
        finally:
            with self._cond:
                self.held -= 1
                self._cond.notify_all()
        return self._dropped  # the connection is closed unanswered

    def wait_held(self, n: int, timeout: float) -> None:
        """Until ``n`` requests are held at once; AssertionError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.held < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.held} write request(s) held after {timeout:.0f}s, waiting for {n} "
                        f"({len(self.sent)} seen)"
                    )
                self._cond.wait(min(left, 0.2))

    def open(self) -> None:
        """Every later request passes; the held ones end, closed unanswered."""
        self._opened.set()

    def ids(self, *fates: str) -> set[str]:
        """Record ids of the requests that met one of ``fates`` (all of them when none is given)."""
        return {i for fate, ids in self.sent if not fates or fate in fates for i in ids}


class Overlap:
    """Counts a fake CRM's matching requests in flight at once (see the module docstring)."""

    def __init__(self, fake: Any, *, match: Match, hold: float = 0.02) -> None:
        self.fake = fake
        self.match = match
        self.hold = hold
        self.in_flight = 0
        self.max_in_flight = 0
        self.seen = 0
        self._lock = threading.Lock()
        self._attr = "handle" if hasattr(fake, "handle") else "dispatch"
        self._inner = getattr(fake, self._attr)
        setattr(fake, self._attr, self._entry)

    def _entry(self, method: str, target: str, headers: Any, body: bytes) -> Any:
        if not self.match(method, target.split("?", 1)[0]):
            return self._inner(method, target, headers, body)
        with self._lock:
            self.seen += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.hold)
            return self._inner(method, target, headers, body)
        finally:
            with self._lock:
                self.in_flight -= 1


def routed_session(port: int, login_host: str | None = None) -> requests.Session:
    """A session whose https://*.salesforce.com (and ``login_host``) traffic goes to the fake Salesforce
    on ``127.0.0.1:port`` (and nothing else goes anywhere)."""
    from testing.salesforce import _RouteToFake

    session = requests.Session()
    session.trust_env = False
    adapter = _RouteToFake(SimpleNamespace(port=port, login_host=login_host))  # type: ignore[arg-type]
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
