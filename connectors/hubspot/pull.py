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

Deals get their company from the v4 associations batch read (one request per page) and their
closed/won state from the pipelines' stage metadata (read once per pull).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from connectors.base import CrmRecord, Page
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

#: HubSpot's search returns at most 10,000 results per query.
SEARCH_CAP = 10_000
#: Inputs per v4 associations batch read.
ASSOCIATION_BATCH = 1000


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

    def _records(
        self, mapping: ObjectMapping, objects: list[dict[str, Any]], stages: dict[str, StageInfo] | None
    ) -> list[CrmRecord]:
        accounts: dict[str, str] = {}
        if mapping.hubspot_object == "deals" and objects:
            accounts = self.deal_companies([str(o["id"]) for o in objects])
        return [to_record(o, mapping, stages=stages, account_id=accounts.get(str(o["id"]))) for o in objects]

    # -- pulls --------------------------------------------------------------------------------------

    def pull(self, mapping: ObjectMapping, since: str | None) -> Iterator[Page]:
        stages = self.stage_index() if mapping.hubspot_object == "deals" else None
        if since is None:
            yield from self._full(mapping, stages)
        else:
            yield from self._incremental(mapping, stages, since)

    def _full(self, mapping: ObjectMapping, stages: dict[str, StageInfo] | None) -> Iterator[Page]:
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
            records = self._records(mapping, body.get("results") or [], stages)
            newest = max([newest, *(r.modstamp for r in records)])
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if after:
                yield Page(records, None)
                continue
            yield Page(records, min(newest, started) if newest else started)
            return

    def _search(
        self, mapping: ObjectMapping, groups: list[list[dict[str, Any]]], sort: str, after: int
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "filterGroups": [{"filters": g} for g in groups],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": mapping.properties(),
            "limit": self.options.search_page_size,
        }
        if after:
            body["after"] = str(after)
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
    def _stamp_ms(obj: dict[str, Any]) -> int:
        return modstamp_to_ms(str((obj.get("properties") or {}).get(MODSTAMP) or obj.get("updatedAt") or ""))

    def _incremental(
        self, mapping: ObjectMapping, stages: dict[str, StageInfo] | None, since: str
    ) -> Iterator[Page]:
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
                    records = self._records(mapping, fresh, stages)
                    yield Page(records, records[-1].modstamp)
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
                yield from self._single_stamp(mapping, stages, lower, handed_out | ids_at_last)
                lower, handed_out = lower + 1, set()
            else:
                lower, handed_out = last_ms, ids_at_last

    def _single_stamp(
        self, mapping: ObjectMapping, stages: dict[str, StageInfo] | None, stamp: int, seen: set[str]
    ) -> Iterator[Page]:
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
                    yield Page(self._records(mapping, fresh, stages), cursor)
                nxt = self._next_after(body)
                if nxt is None:
                    return
                if nxt >= SEARCH_CAP:
                    self.search_restarts += 1
                    above = highest
                    break
                after = nxt
