"""Incremental pull: SOQL by ``SystemModstamp``, consumed one batch at a time; Bulk API 2.0 above a size.

The query is ``SystemModstamp >= since - lookback ORDER BY SystemModstamp ASC, Id ASC``; each batch the
REST API returns (up to 2,000 records, then ``nextRecordsUrl``) becomes one ``Page`` whose cursor is its
last record's stamp, so the caller can commit page by page and resume after a crash. Only one batch is
held in memory at a time.

The first REST batch says how many records the query matches (``totalSize``). Above the connection's
``bulk_read_threshold`` (a full sync, a large incremental window) the pull runs as a Bulk API 2.0 query
job instead (``connectors.salesforce.bulk``): its result sets come in no useful order, so each becomes
pages of 2,000 with no cursor but the last, which carries the newest stamp seen. If the job cannot run
(daily allocation, a failed job) the REST pull goes on from the batch it already has.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

from simple_salesforce.format import format_soql

from connectors.base import CrmRecord, Page
from connectors.salesforce.bulk import BulkJobs, BulkUnavailable
from connectors.salesforce.client import QueryLocatorExpired, SalesforceClient
from connectors.salesforce.mapping import ObjectMapping, parse_datetime, to_crm_record

log = logging.getLogger("connectors.salesforce")


#: Records per page handed to the sync from a bulk result set (the size of a REST batch).
BULK_PAGE = 2000


def build_pull_query(mapping: ObjectMapping, since: datetime | None, *, ordered: bool = True) -> str:
    """The pull's SOQL. Field and object names must already be checked against ``describe``;
    the date-time goes through simple-salesforce's quoting (which drops sub-seconds: the window only
    widens). ``ordered=False`` for a bulk query job, which takes no ORDER BY."""
    select = "SELECT {fields:literal} FROM {sobject:literal}"
    order = " ORDER BY SystemModstamp ASC, Id ASC" if ordered else ""
    names = {"fields": ", ".join(mapping.fields), "sobject": mapping.sobject}
    if since is None:
        return format_soql(select + order, **names)
    return format_soql(select + " WHERE SystemModstamp >= {since}" + order, since=since, **names)


def bulk_pages(
    bulk: BulkJobs, mapping: ObjectMapping, start: datetime | None, types: dict[str, str], since: str | None
) -> Iterator[Page]:
    """The pull as a Bulk API query job (``BulkUnavailable`` before any page if it cannot run)."""
    newest = ""
    held: list[CrmRecord] = []
    for rows in bulk.query(build_pull_query(mapping, start, ordered=False), types):
        for row in rows:
            record = to_crm_record(mapping, row)
            newest = max(newest, record.modstamp)
            held.append(record)
            if len(held) > BULK_PAGE:  # keep one back: the last page carries the cursor
                yield Page(held[:BULK_PAGE], None)
                held = held[BULK_PAGE:]
    yield Page(held, newest or since)


def pull_pages(
    client: SalesforceClient,
    mapping: ObjectMapping,
    since: str | None,
    *,
    lookback_seconds: int,
    bulk: BulkJobs | None = None,
    bulk_threshold: int = 0,
    types: dict[str, str] | None = None,
) -> Iterator[Page]:
    """Pages of ``CrmRecord`` modified at or after ``since`` minus the look-back (all when ``None``);
    through ``bulk`` when the query matches more than ``bulk_threshold`` records."""
    start = None if since is None else parse_datetime(since) - timedelta(seconds=lookback_seconds)
    result = client.query(build_pull_query(mapping, start))
    if bulk is not None and int(result.get("totalSize") or 0) > bulk_threshold:
        try:
            yield from bulk_pages(bulk, mapping, start, types or {}, since)
            return
        except BulkUnavailable as exc:
            log.warning("Salesforce %s pull stays on REST: %s", mapping.sobject, exc)
    last_stamp: str | None = None
    boundary_ids: set[str] = set()  # ids already yielded with stamp == last_stamp
    skip_through: str | None = None  # after a query restart: drop what was yielded before
    skip_ids: set[str] = set()
    while True:
        records: list[CrmRecord] = []
        for row in result.get("records") or ():
            record = to_crm_record(mapping, row)
            if skip_through is not None and (
                record.modstamp < skip_through
                or (record.modstamp == skip_through and record.external_id in skip_ids)
            ):
                continue
            records.append(record)
        if records:
            for record in records:
                if record.modstamp != last_stamp:
                    last_stamp, boundary_ids = record.modstamp, set()
                boundary_ids.add(record.external_id)
            yield Page(records=records, cursor=records[-1].modstamp)
        if result.get("done", True) or not result.get("nextRecordsUrl"):
            return
        try:
            result = client.query_more(result["nextRecordsUrl"])
        except QueryLocatorExpired:
            # The cursor died (idle too long, or the user opened more than ten). Ask again from the
            # last stamp yielded and skip what this pull already handed over.
            log.warning(
                "Salesforce query cursor for %s expired; re-querying from %s",
                mapping.sobject,
                last_stamp or since,
            )
            skip_through, skip_ids = last_stamp, set(boundary_ids)
            restart = start if last_stamp is None else parse_datetime(last_stamp)
            result = client.query(build_pull_query(mapping, restart))
