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


def _done(value: dict[str, str]) -> Future[dict[str, str]]:
    future: Future[dict[str, str]] = Future()
    future.set_result(value)
    return future


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
        """Raw pages -> ``Page``s; deals wait in order until 1,000 of them share one associations read.

        That read runs beside the page chain (one thread), so the chain goes on listing meanwhile: the
        reads add requests, not waits, to the deals' pull."""
        if mapping.hubspot_object != "deals":
            for objects, cursor in raw:
                yield Page([to_record(o, mapping) for o in objects], cursor)
            return
        pending: deque[tuple[list[RawPage], Future[dict[str, str]]]] = deque()

        def ready(block: bool) -> Iterator[Page]:
            while pending and (block or pending[0][1].done()):
                held, accounts = pending.popleft()
                found = accounts.result()
                for objects, cursor in held:
                    records = [
                        to_record(o, mapping, stages=stages, account_id=found.get(str(o["id"])))
                        for o in objects
                    ]
                    yield Page(records, cursor)

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hubspot-associations") as reads:
            held: list[RawPage] = []
            waiting = 0
            for page in raw:
                held.append(page)
                waiting += len(page[0])
                if waiting >= ASSOCIATION_BATCH:
                    pending.append((held, reads.submit(self.deal_companies, self._ids(held))))
                    held, waiting = [], 0
                yield from ready(block=False)
            if held:
                ids = self._ids(held)
                pending.append((held, reads.submit(self.deal_companies, ids) if ids else _done({})))
            yield from ready(block=True)

    @staticmethod
    def _ids(pages: list[RawPage]) -> list[str]:
        return [str(o["id"]) for objects, _ in pages for o in objects]

    # -- pulls --------------------------------------------------------------------------------------

    def pull(self, mapping: ObjectMapping, since: str | None) -> Iterator[Page]:
        stages = self.stage_index() if mapping.hubspot_object == "deals" else None
        raw = self._full(mapping) if since is None else self._incremental(mapping, since)
        yield from self._pages(mapping, raw, stages)

    def _full(self, mapping: ObjectMapping) -> Iterator[RawPage]:
        started = format_modstamp(self.utcnow())
        api = self.client.api("objects.basic")
        properties = mapping.properties()
        after: str | None = None
        newest = ""
        while True:
            kwargs: dict[str, Any] = {
                "limit": self.options.list_page_size,
                "properties": properties,
                "archived": False,
            }
            if after:
                kwargs["after"] = after
            answer = self.client.call(
                "read",
                f"list {mapping.hubspot_object}",
                api.get_page_with_http_info,
                mapping.hubspot_object,
                **kwargs,
            )
            body = answer.body or {}
            objects = body.get("results") or []
            stamps = [self._stamp_ms(o) for o in objects if self._has_stamp(o)]
            if stamps:
                newest = max(newest, ms_to_modstamp(max(stamps)))
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if after:
                yield objects, None
                continue
            yield objects, (min(newest, started) if newest else started)
            return

    def _search(
        self, mapping: ObjectMapping, groups: list[list[dict[str, Any]]], sort: str, after: int
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "filterGroups": [{"filters": g} for g in groups],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
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
