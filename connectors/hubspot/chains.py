"""A full pull as two page chains that meet in the middle, so that one object type's pull is not one long
serial chain of requests (each page needs the ``after`` of the one before: 60 pages at 250 ms are 15 s,
whatever the rate limit allows).

* The **list chain** pages ``GET /crm/v3/objects/{object}`` from the start, 100 a page, as a full pull
  always did.
* The **search chain** pages ``POST /crm/v3/objects/{object}/search`` sorted by ``hs_object_id``
  descending, 200 a page, from the top; before the search's 10,000-result cap it restarts below the
  lowest id it has seen (``hs_object_id LT``).

Both hand out only records neither has handed out yet (one set of ids, under a lock): every record comes
exactly once. The search chain stops when it reaches ids the list chain has passed, the list chain when
it reaches ids the search chain has handed out. Stopping the list chain there relies on it listing in
id order, which is what HubSpot does but does not document, so it is checked: a list page out of order
turns the meeting off (the list chain goes to its end, the search chain stops), and when both have
stopped, fewer records than the search counted (its ``total``) send the list chain on from where it
stopped, to its end. The search index may lag a few seconds behind the last writes; records it did not
show yet are newer than the pull's watermark and come with the next incremental pull, as they do there.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: The answer to one list request (``after``: None for the first page).
ListPage = Callable[[str | None], dict[str, Any]]
#: The answer to one search request: ids below ``upper`` (None: all), descending, from offset ``after``.
SearchPage = Callable[[int | None, int], dict[str, Any]]

#: Pages waiting for the consumer (bounds memory when the store is slower than the chains).
PAGES_AHEAD = 4
SEARCH_CAP = 10_000


def _next(body: dict[str, Any]) -> str | None:
    value = ((body.get("paging") or {}).get("next") or {}).get("after")
    return None if value in (None, "") else str(value)


@dataclass
class _Meeting:
    """What the two chains share (guarded by ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    claimed: set[int] = field(default_factory=set)
    #: Highest id the list chain has seen, lowest the search chain has seen.
    low: int = -1
    high: float = float("inf")
    #: Every list page so far was in ascending id order, above the page before.
    ordered: bool = True
    #: The chains met: between them they have seen every id.
    met: bool = False
    #: Where the list chain stopped when the chains met (None: it reached its end).
    list_after: str | None = None
    total: int | None = None

    def claim(self, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        fresh = []
        for obj in objects:
            key = int(obj["id"])
            if key not in self.claimed:
                self.claimed.add(key)
                fresh.append(obj)
        return fresh


class MeetInTheMiddle:
    """Runs both chains in threads; iterate it for the pages (lists of objects) in arrival order."""

    def __init__(self, list_page: ListPage, search_page: SearchPage, what: str) -> None:
        self._list_page = list_page
        self._search_page = search_page
        self._what = what
        self._state = _Meeting()
        self._ready: queue.Queue[tuple[list[dict[str, Any]] | None, BaseException | None]] = queue.Queue(
            maxsize=PAGES_AHEAD
        )
        self._stop = threading.Event()
        #: Requests each chain sent (for tests and the benchmark).
        self.list_requests = 0
        self.search_requests = 0

    def _put(self, objects: list[dict[str, Any]] | None, error: BaseException | None = None) -> bool:
        while not self._stop.is_set():
            try:
                self._ready.put((objects, error), timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, chain: Callable[[], None]) -> None:
        try:
            chain()
            self._put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            self._put(None, exc)

    def _list_seen(self, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Note a list page (under the lock): its order, the highest id, whether the chains met; return
        the records not handed out yet."""
        state = self._state
        ids = [int(o["id"]) for o in objects]
        if ids and (ids != sorted(set(ids)) or ids[0] <= state.low):
            state.ordered = False  # not in id order: no meeting, the list chain lists everything
        if ids:
            state.low = max(state.low, *ids)
        if state.ordered and ids and ids[-1] >= state.high:
            state.met = True
        return state.claim(objects)

    def _list_chain(self, after: str | None, *, resume: bool = False) -> None:
        state = self._state
        while after is not None and not self._stop.is_set():
            with state.lock:
                if state.met and not resume:
                    state.list_after = after  # where to go on from, should the count fall short
                    return
            body = self._list_page(after)
            self.list_requests += 1
            after = _next(body)
            with state.lock:
                fresh = self._list_seen(body.get("results") or [])
            if fresh and not self._put(fresh):
                return

    def _search_chain(self) -> None:
        state = self._state
        upper: int | None = None
        offset = 0
        while not self._stop.is_set():
            with state.lock:
                if state.met or not state.ordered:
                    return
            body = self._search_page(upper, offset)
            self.search_requests += 1
            objects = body.get("results") or []
            ids = [int(o["id"]) for o in objects]
            with state.lock:
                if state.total is None and body.get("total") is not None:
                    state.total = int(body["total"])
                fresh = state.claim(objects)
                if ids:
                    state.high = min(state.high, min(ids))
                    if min(ids) <= state.low and state.ordered:
                        state.met = True
            if fresh and not self._put(fresh):
                return
            nxt = _next(body)
            if nxt is None or not ids:
                with state.lock:
                    state.met = state.met or state.ordered  # it saw everything down to the lowest id
                return
            if int(nxt) >= SEARCH_CAP:
                upper, offset = min(ids), 0
            else:
                offset = int(nxt)

    def _pages(self, chains: list[Callable[[], None]]) -> Iterator[list[dict[str, Any]]]:
        threads = [
            threading.Thread(target=self._run, args=(c,), name=f"hubspot-{self._what}-{n}", daemon=True)
            for n, c in enumerate(chains)
        ]
        for thread in threads:
            thread.start()
        try:
            running = len(threads)
            while running:
                objects, error = self._ready.get()
                if error is not None:
                    raise error
                if objects is None:
                    running -= 1
                    continue
                yield objects
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(timeout=60)
            self._stop.clear()

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        # The first list page alone: a type of one page needs no second chain.
        body = self._list_page(None)
        self.list_requests += 1
        after = _next(body)
        fresh = self._list_seen(body.get("results") or [])
        if fresh:
            yield fresh
        if after is None:
            return
        yield from self._pages([lambda: self._list_chain(after), self._search_chain])
        state = self._state
        short = state.total is not None and len(state.claimed) < state.total
        if state.list_after is not None and (short or not state.ordered):
            log.warning(
                "hubspot: %s: %d records handed out, the search counted %s; listing on to the end",
                self._what,
                len(state.claimed),
                state.total,
            )
            after = state.list_after
            yield from self._pages([lambda: self._list_chain(after, resume=True)])
