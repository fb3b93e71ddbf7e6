"""Lazy page generators over HubSpot's list and search endpoints.

* Full sync (``since=None``): ``GET /crm/v3/objects/{object}`` 100 a page, ``after`` paging, in id order.
  Those pages are not in modification order, so they carry ``cursor=None`` (keep the stored cursor)
  except the last one, which carries a watermark: the lower of the newest stamp seen and the moment the
  full sync started, so that anything changed while it ran is pulled again next time.
* Incremental: ``POST /crm/v3/objects/{object}/search`` with ``hs_lastmodifieddate >= since - lookback``
  sorted ascending, 200 a page; each page's cursor is its last record's stamp. Search stops at 10,000
  results per query (paging further is a 400), so before the cap the window restarts from the last
  stamp seen, skipping the records already handed out at that stamp. If 10,000 records share one
  stamp (a bulk import), that stamp is walked again by ``hs_object_id`` (HubSpot does not promise an
  order among equal stamps, so the first 10,000 are re-read once and skipped: about 50 extra calls).

Every search request carries ``after`` (``"0"`` on the first page), as HubSpot's OpenAPI spec requires.

Deals get their company from the v4 associations batch read, one request per 1,000 deals (the read's
limit): pages are held back until 1,000 deals are waiting (10 list pages, 5 search pages) or the pull
ends, then handed out in order once their read has answered (the read runs beside the page chain, which
goes on listing). Their closed/won state comes from the pipelines' stage metadata (read once per pull).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from connectors.base import Page
from connectors.hubspot.chains import MeetInTheMiddle
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.mapping import (
    MODSTAMP,
    ObjectMapping,
    StageInfo,
    build_stage_index,
    format_modstamp,
    modstamp_to_ms,
    ms_to_modstamp,
    pick_account_id,
    to_record,
)
from connectors.hubspot.options import HubSpotOptions

#: A page as HubSpot answered it: the objects and the cursor to store after them.
RawPage = tuple[list[dict[str, Any]], str | None]

#: HubSpot's search returns at most 10,000 results per query.
SEARCH_CAP = 10_000
#: Inputs per v4 associations batch read.
ASSOCIATION_BATCH = 1000


class _AssociationReads:
    """Deal ids in arrival order, read ``ASSOCIATION_BATCH`` at a time in ``pool`` (one worker: the reads
    answer in order); ``accounts`` collects deal id -> company id as they answer."""

    def __init__(self, pool: ThreadPoolExecutor, read: Callable[[Sequence[str]], dict[str, str]]) -> None:
        self._pool = pool
        self._read = read
        self._queued: list[str] = []
        self._sent = 0  # ids handed to a read
        self._reads: list[tuple[int, Future[dict[str, str]]]] = []  # (ids up to its end, read)
        self._merged = 0  # reads whose answers are in ``accounts``, and the ids they covered
        self._merged_end = 0
        self.accounts: dict[str, str] = {}
        self._count = 0

    def add(self, ids: list[str]) -> int:
        """Queue ``ids``; return how many ids have come so far (the end of this page)."""
        self._queued += ids
        self._count += len(ids)
        while len(self._queued) >= ASSOCIATION_BATCH:
            self._send(self._queued[:ASSOCIATION_BATCH])
            self._queued = self._queued[ASSOCIATION_BATCH:]
        return self._count

    def flush(self) -> None:
        if self._queued:
            self._send(self._queued)
            self._queued = []

    def _send(self, ids: list[str]) -> None:
        self._sent += len(ids)
        self._reads.append((self._sent, self._pool.submit(self._read, ids)))

    def answered(self, upto: int, *, wait: bool) -> bool:
        """Whether the ids up to ``upto`` have their answers (merged into ``accounts``)."""
        if upto > self._sent:
            return False
        while self._merged_end < upto:
            end, future = self._reads[self._merged]
            if not (wait or future.done()):
                return False
            self.accounts.update(future.result())
            self._merged, self._merged_end = self._merged + 1, end
        return True


class Puller:
    """Pulls one canonical object type at a time."""

    def __init__(
        self, client: HubSpotClient, options: HubSpotOptions, utcnow: Callable[[], datetime]
    ) -> None:
        self.client = client
        self.options = options
        self.utcnow = utcnow
        #: Search windows restarted because of the 10,000 cap (for tests and the benchmark).
        self.search_restarts = 0

    # -- helpers ------------------------------------------------------------------------------------

    def stage_index(self) -> dict[str, StageInfo]:
        api = self.client.api("pipelines")
        # One request: the pipelines API is not paged.
        answer = self.client.call("read", "read deal pipelines", api.get_all_with_http_info, "deals")
        return build_stage_index((answer.body or {}).get("results") or [])

    def deal_companies(self, deal_ids: Sequence[str]) -> dict[str, str]:
        """Deal id -> company id via ``POST /crm/v4/associations/deals/companies/batch/read``."""
        found: dict[str, str] = {}
        api = self.client.api("associations.batch")
        for start in range(0, len(deal_ids), ASSOCIATION_BATCH):
            chunk = deal_ids[start : start + ASSOCIATION_BATCH]
            answer = self.client.call(
                "read",
                "read deal->company associations",
                api.get_page_with_http_info,
                "deals",
                "companies",
                {"inputs": [{"id": i} for i in chunk]},
            )
            # 207: deals without a company come back as errors; they simply have no account.
            for result in (answer.body or {}).get("results") or ():
                account = pick_account_id(result.get("to") or ())
                if account:
                    found[str(result["from"]["id"])] = account
        return found

    def _pages(
        self, mapping: ObjectMapping, raw: Iterator[RawPage], stages: dict[str, StageInfo] | None
    ) -> Iterator[Page]:
        """Raw pages -> ``Page``s; deals wait, in order, for the associations read of their ids.

        Each read takes the next 1,000 deal ids, whatever pages they came in, and runs beside the page
        chain (one thread), which goes on listing meanwhile: ``ceil(deals / 1000)`` reads in all, adding
        requests, not waits, to the deals' pull."""
        if mapping.hubspot_object != "deals":
            for objects, cursor in raw:
                yield Page([to_record(o, mapping) for o in objects], cursor)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hubspot-associations") as pool:
            reads = _AssociationReads(pool, self.deal_companies)
            held: deque[tuple[RawPage, int]] = deque()  # a page and how many ids up to its end
            for page in raw:
                held.append((page, reads.add([str(o["id"]) for o in page[0]])))
                while held and reads.answered(held[0][1], wait=False):
                    yield self._deal_page(held.popleft()[0], mapping, stages, reads)
            reads.flush()
            while held:
                reads.answered(held[0][1], wait=True)
                yield self._deal_page(held.popleft()[0], mapping, stages, reads)

    @staticmethod
    def _deal_page(
        page: RawPage, mapping: ObjectMapping, stages: dict[str, StageInfo] | None, reads: _AssociationReads
    ) -> Page:
        objects, cursor = page
        records = [
            to_record(o, mapping, stages=stages, account_id=reads.accounts.pop(str(o["id"]), None))
            for o in objects
        ]
        return Page(records, cursor)

    # -- pulls --------------------------------------------------------------------------------------

    def pull(self, mapping: ObjectMapping, since: str | None) -> Iterator[Page]:
        stages = self.stage_index() if mapping.hubspot_object == "deals" else None
        raw = self._full(mapping) if since is None else self._incremental(mapping, since)
        yield from self._pages(mapping, raw, stages)

    def _full(self, mapping: ObjectMapping) -> Iterator[RawPage]:
        """Every record, from two chains that meet in the middle (``connectors.hubspot.chains``): the list
        endpoint from the first id up, search by ``hs_object_id`` from the last one down. Pages carry no
        cursor but the last, which carries the watermark."""
        started = format_modstamp(self.utcnow())
        properties = mapping.properties()
        obj = mapping.hubspot_object

        def list_page(after: str | None) -> dict[str, Any]:
            kwargs: dict[str, Any] = {"limit": self.options.list_page_size, "properties": properties}
            if after:
                kwargs["after"] = after
            api = self.client.api("objects.basic")
            answer = self.client.call(
                "read", f"list {obj}", api.get_page_with_http_info, obj, archived=False, **kwargs
            )
            return answer.body or {}

        def search_page(upper: int | None, offset: int) -> dict[str, Any]:
            below = [{"propertyName": "hs_object_id", "operator": "LT", "value": str(upper)}]
            return self._search(
                mapping, [below] if upper is not None else [], "hs_object_id", offset, "DESCENDING"
            )

        chains = MeetInTheMiddle(list_page, search_page, f"full pull of {obj}")
        newest = ""
        held: list[dict[str, Any]] | None = None
        for objects in chains:
            stamps = [self._stamp_ms(o) for o in objects if self._has_stamp(o)]
            if stamps:
                newest = max(newest, ms_to_modstamp(max(stamps)))
            if held is not None:
                yield held, None
            held = objects
        yield held or [], (min(newest, started) if newest else started)

    def _search(
        self,
        mapping: ObjectMapping,
        groups: list[list[dict[str, Any]]],
        sort: str,
        after: int,
        direction: str = "ASCENDING",
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "filterGroups": [{"filters": g} for g in groups],
            "sorts": [{"propertyName": sort, "direction": direction}],
            "properties": mapping.properties(),
            "limit": self.options.search_page_size,
            "after": str(after),
        }
        api = self.client.api("objects.search")
        answer = self.client.call(
            "read",
            f"search {mapping.hubspot_object}",
            api.do_search_with_http_info,
            mapping.hubspot_object,
            body,
        )
        return answer.body or {}

    @staticmethod
    def _next_after(body: dict[str, Any]) -> int | None:
        value: Any = ((body.get("paging") or {}).get("next") or {}).get("after")
        return int(value) if value not in (None, "") else None

    @staticmethod
    def _has_stamp(obj: dict[str, Any]) -> bool:
        return bool((obj.get("properties") or {}).get(MODSTAMP) or obj.get("updatedAt"))

    @staticmethod
    def _stamp_ms(obj: dict[str, Any]) -> int:
        return modstamp_to_ms(str((obj.get("properties") or {}).get(MODSTAMP) or obj.get("updatedAt") or ""))

    def _incremental(self, mapping: ObjectMapping, since: str) -> Iterator[RawPage]:
        lower = modstamp_to_ms(since) - self.options.lookback_seconds * 1000
        handed_out: set[str] = set()  # ids already yielded at stamp == lower (after a restart)
        while True:
            after = 0
            last_ms: int | None = None
            ids_at_last: set[str] = set()
            while True:
                body = self._search(
                    mapping,
                    [[{"propertyName": MODSTAMP, "operator": "GTE", "value": str(lower)}]],
                    MODSTAMP,
                    after,
                )
                fresh = []
                for obj in body.get("results") or ():
                    stamp = self._stamp_ms(obj)
                    if stamp != last_ms:
                        last_ms, ids_at_last = stamp, set()
                    ids_at_last.add(str(obj["id"]))
                    if not (stamp == lower and str(obj["id"]) in handed_out):
                        fresh.append(obj)
                if fresh:
                    yield fresh, ms_to_modstamp(self._stamp_ms(fresh[-1]))
                nxt = self._next_after(body)
                if nxt is None:
                    return
                if nxt >= SEARCH_CAP:
                    break
                after = nxt
            self.search_restarts += 1
            assert last_ms is not None
            if last_ms == lower:
                # 10,000 records share one stamp: walk it by id, then go on after it.
                yield from self._single_stamp(mapping, lower, handed_out | ids_at_last)
                lower, handed_out = lower + 1, set()
            else:
                lower, handed_out = last_ms, ids_at_last

    def _single_stamp(self, mapping: ObjectMapping, stamp: int, seen: set[str]) -> Iterator[RawPage]:
        cursor = ms_to_modstamp(stamp)
        above = 0  # the window's lower id bound; moves only when the window restarts
        while True:
            after = 0
            highest = above
            while True:
                filters = [
                    {"propertyName": MODSTAMP, "operator": "EQ", "value": str(stamp)},
                    {"propertyName": "hs_object_id", "operator": "GT", "value": str(above)},
                ]
                body = self._search(mapping, [filters], "hs_object_id", after)
                results = body.get("results") or []
                highest = max([highest, *(int(o["id"]) for o in results)])
                fresh = [o for o in results if str(o["id"]) not in seen]
                if fresh:
                    yield fresh, cursor
                nxt = self._next_after(body)
                if nxt is None:
                    return
                if nxt >= SEARCH_CAP:
                    self.search_restarts += 1
                    above = highest
                    break
                after = nxt
