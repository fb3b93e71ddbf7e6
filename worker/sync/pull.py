"""Pull and snapshot: each page's snapshots commit, then the cursor advances past them. Object types
pull one after the other, or in parallel threads when the connector allows it (``pull_objects``)."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, partial
from types import TracebackType
from typing import Any

from sqlalchemy import exists, update
from sqlalchemy.orm import Session

from connectors.base import Connector, CrmRecord, ObjectType, Page
from worker.config import ConnectionConfig
from worker.normalize import NormalizeConfig, normalize_status, normalize_values
from worker.store.bulk import Bulk, Codec, Insert, Statistics, Update, among
from worker.store.db import Store
from worker.store.models import Cursor
from worker.sync.behind import CommitsBehind
from worker.sync.counts import RunCounts
from worker.sync.tables import FIT, SNAP, ProgressFn
from worker.sync.warnings import WarningTally, take_connector_problems


def normalize_config(cfg: ConnectionConfig) -> NormalizeConfig:
    return NormalizeConfig(
        industry_synonyms=dict(cfg.industry_synonyms), attribute_kinds=dict(cfg.attribute_kinds)
    )


#: Longest raw CRM text kept per attribute.
RAW_KEPT = 200


def raw_differing(raw: Mapping[str, Any], attributes: Mapping[str, Any]) -> dict[str, str]:
    """The CRM's text of each attribute whose normalised value reads differently (for explanations)."""
    kept: dict[str, str] = {}
    for key, value in raw.items():
        if value is None:
            continue
        normal = attributes.get(key, _ABSENT)
        if normal is _ABSENT:
            continue
        text = value if type(value) is str else str(value)
        if text != (normal if type(normal) is str else str(normal)):  # str(a str) is itself: not called
            kept[key] = text[:RAW_KEPT]
    return kept


_ABSENT = object()


@dataclass(slots=True)
class PagePlan:
    """What storing one pulled page does (``plan_page``), as statement rows for ``apply_page``."""

    inserts: list[tuple[Any, ...]]
    updates: list[tuple[Any, ...]]
    echoes: list[tuple[Any, ...]]
    #: Accounts whose opportunities changed: marked for their re-engagement state to be looked at again.
    parents: set[str]
    warnings: int

    @property
    def changed(self) -> int:
        """New and changed records (echoes of our own write-back are not changes)."""
        return len(self.inserts) + len(self.updates)


def plan_page(
    bulk: Bulk,
    conn_id: int,
    object_type: str,
    records: Sequence[CrmRecord],
    norm: NormalizeConfig,
    now: datetime,
    tally: WarningTally | None = None,
) -> PagePlan:
    """How to store one page of pulled records, read against the store as it is (reading only);
    unchanged ones (same modification stamp) are skipped.
    Attributes and status values are normalised here, once; what could not be read is counted in
    ``tally``. A record whose stamp moved but whose stored columns encode exactly as the new ones (the
    CRM's echo of our own write-back) only gets its new stamp: it stays as dirty as it was and does not
    make its account dirty. A new record is stored clean (``dirty`` false): having no fit, it is scored
    anyway, and the score phase then has no mark to clear."""
    latest: dict[str, CrmRecord] = {}
    for rec in records:  # the same id twice in a page: the last one wins
        latest[rec.external_id] = rec
    warnings = 0
    if len(latest) < len(records):  # the rows that lost still count their problems
        for rec in records:
            if latest[rec.external_id] is not rec:
                lost = normalize_values(rec.raw, norm)[1]
                warnings += len(lost)
                if tally is not None:
                    tally.add_values(object_type, rec.external_id, lost)
    stored = _stored(bulk, conn_id, object_type, list(latest))
    inserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    echoes: list[tuple[Any, ...]] = []
    parents: set[str] = set()
    moment, clean = bulk.codec.moment(now), bulk.codec.flag(False)
    for ext_id, rec in latest.items():
        known = stored.get(ext_id)
        if known is not None and known[1] == rec.modstamp and rec.modstamp:
            continue  # re-pulled by the look-back, unchanged
        attributes, problems = normalize_values(rec.raw, norm)
        status, status_problems = normalize_status(rec.status)
        problems += status_problems
        warnings += len(problems)
        if tally is not None and problems:
            tally.add_values(object_type, ext_id, problems)
        parent = status.get("account_id")
        row = _snapshot_values(bulk.codec, rec, attributes, status, problems, parent, moment)
        if known is None:  # never scored: scored anyway (no fit), so not marked dirty (no clearing later)
            inserts.append((conn_id, object_type, ext_id, *row[:9], clean, moment))
            if object_type == "opportunity" and parent:
                parents.add(str(parent))
        elif known[2] == _content(row):  # only the stamp moved (our own write-back echoed): not dirty
            echoes.append((rec.modstamp, moment, known[0]))
        else:
            updates.append((*row, known[0]))
            if object_type == "opportunity" and parent:
                parents.add(str(parent))
    return PagePlan(inserts, updates, echoes, parents, warnings)


def apply_page(session: Session, conn_id: int, plan: PagePlan) -> None:
    """Store a planned page in ``session``'s transaction."""
    bulk = Bulk(session)
    bulk.insert(INSERT_SNAPSHOT, plan.inserts)
    bulk.update(UPDATE_SNAPSHOT, plan.updates)
    bulk.update(UPDATE_STAMP, plan.echoes)
    if plan.parents:  # an account's pipeline changed: its re-engagement state must be looked at again
        # Only a scored account is marked: one without a fit is scored anyway (as a new record is stored
        # clean), and one already dirty stays so. A first sync so marks none, and its score phase has no
        # account to clear (it marked every account with an opportunity: 75,000 at 100k accounts).
        session.execute(
            update(SNAP)
            .where(
                SNAP.c.connection_id == conn_id,
                SNAP.c.object_type == "account",
                among(session, SNAP.c.external_id, plan.parents),
                SNAP.c.dirty.is_(False),
                exists().where(FIT.c.snapshot_id == SNAP.c.id),
            )
            .values(dirty=True)
        )


#: A snapshot's stored columns after its key (connection, object type, external id), in this order,
#: with their PostgreSQL types.
SNAPSHOT_COLUMNS = (
    ("name", "varchar"), ("attributes", "json"), ("status", "json"), ("warnings", "json"), ("raw", "json"),
    ("owner_id", "varchar"), ("last_activity", "date"), ("crm_modstamp", "varchar"),
    ("parent_id", "varchar"), ("dirty", "boolean"), ("pulled_at", "timestamptz"),
)  # fmt: skip
INSERT_SNAPSHOT = Insert(
    "record_snapshots", ("connection_id", "object_type", "external_id", *(c for c, _ in SNAPSHOT_COLUMNS))
)
UPDATE_SNAPSHOT = Update("record_snapshots", "id", SNAPSHOT_COLUMNS)
#: A re-pulled record whose stored columns are as they were: only its stamp and pull time move.
UPDATE_STAMP = Update("record_snapshots", "id", (("crm_modstamp", "varchar"), ("pulled_at", "timestamptz")))
#: The stored columns that make a snapshot's content (``SNAPSHOT_COLUMNS`` but the stamp, ``dirty`` and
#: ``pulled_at``), read as the text the database holds.
SELECT_STORED = (
    "SELECT external_id, id, crm_modstamp, name, CAST(attributes AS TEXT), CAST(status AS TEXT),"
    " CAST(warnings AS TEXT), CAST(raw AS TEXT), owner_id, CAST(last_activity AS TEXT), parent_id"
    " FROM record_snapshots WHERE connection_id = ? AND object_type = ? AND external_id "
)


def _stored(
    bulk: Bulk, conn_id: int, object_type: str, ids: Sequence[str]
) -> dict[str, tuple[int, str, tuple[Any, ...]]]:
    """The page's records already in the store: external id → (snapshot id, stamp, stored content)."""
    if not ids:
        return {}
    where, params = bulk.codec.in_list(ids)
    return {
        ext: (snap_id, stamp, tuple(content))
        for ext, snap_id, stamp, *content in bulk.rows(SELECT_STORED + where, [conn_id, object_type, *params])
    }


def _content(row: Sequence[Any]) -> tuple[Any, ...]:
    """A new row's ``_snapshot_values`` as ``SELECT_STORED`` reads them back (dates as ISO text)."""
    day = row[6]
    return (*row[:6], None if day is None else str(day), row[8])


def _snapshot_values(
    codec: Codec,
    rec: CrmRecord,
    attributes: Mapping[str, Any],
    status: Mapping[str, Any],
    problems: Sequence[Any],
    parent: Any,
    moment: Any,
) -> tuple[Any, ...]:
    """A pulled record's ``SNAPSHOT_COLUMNS``, encoded for the store (``moment``: ``pulled_at``, encoded).
    Most records have no problem and keep no raw text (and opportunities have no attributes): those
    columns are the codec's encoding of an empty list or mapping, encoded once (``_empty``)."""
    empty_list, empty_map = _empty(codec.json)
    kept = raw_differing(rec.raw, attributes) if rec.raw else None
    return (
        (rec.name or "")[:255] or None,
        codec.json(attributes) if attributes else empty_map,
        codec.json({k: (v.isoformat() if isinstance(v, date) else v) for k, v in status.items()})
        if status
        else empty_map,
        codec.json([str(p) for p in problems]) if problems else empty_list,
        codec.json(kept) if kept else empty_map,
        rec.owner_id,
        codec.day(rec.last_activity),
        rec.modstamp,
        str(parent) if parent else None,
        codec.flag(True),
        moment,
    )


@cache  # by the encoder, hashed by identity (cheaper than hashing the whole codec for every record)
def _empty(encode: Callable[[Any], Any]) -> tuple[Any, Any]:
    """An encoder's encoding of an empty JSON list and of an empty JSON object."""
    return encode([]), encode({})


def pull_objects(
    store: Store,
    conn_id: int,
    cfg: ConnectionConfig,
    connector: Connector,
    object_types: Sequence[ObjectType],
    *,
    full: bool,
    now: datetime,
    counts: RunCounts,
    progress: ProgressFn | None,
    run_id: int | None = None,
) -> None:
    """Pull every object type: one after the other, or all at once when the connector says its pulls
    may run in parallel (``parallel_pulls``: a CRM whose limit is a request rate, not a record count,
    so that several page chains in flight use the rate). Either way each page commits with its own
    cursor, in page order, so a crash at any point resumes every object type where it was.

    On PostgreSQL each page's statements and cursor commit in a second thread while this one reads
    and prepares the next page (``PageStore``); on SQLite they commit here.

    With ``run_id``, the data problems found are stored with the run (``run_warnings``) when the pull
    is done. (A connector's own problems, ``take_problems``, are told to the page received next: only
    connectors that pull one object type at a time have them.)"""
    norm = normalize_config(cfg)
    tally = WarningTally()
    stats = Statistics(("record_snapshots",))
    sinces = {obj: _since(store, conn_id, obj, full) for obj in object_types}
    with PageStore(store, conn_id, norm, now, counts, progress, connector, tally, stats) as pages:
        if len(object_types) < 2 or not getattr(connector, "parallel_pulls", False):
            for obj in object_types:
                for page in connector.pull(obj, sinces[obj]):
                    pages.store(obj, page)
                pages.settle()
                _leftover_problems(connector, obj, counts, tally)
                with store.session() as s:
                    stats.refresh(s)
        else:
            for obj, page in _concurrent_pages(connector, sinces):
                pages.store(obj, page)
            pages.settle()
            with store.session() as s:
                stats.refresh(s)
    if run_id is not None and tally.entries:
        with store.session() as s:
            tally.store(s, run_id, conn_id)


def _leftover_problems(
    connector: Connector, object_type: ObjectType, counts: RunCounts, tally: WarningTally
) -> None:
    found = take_connector_problems(connector)  # rows skipped after the last page (an empty id)
    tally.add_connector(object_type, found)
    counts.warnings += len(found)


def _since(store: Store, conn_id: int, object_type: ObjectType, full: bool) -> str | None:
    with store.session() as s:
        cursor = s.get(Cursor, (conn_id, object_type))
        return None if full or cursor is None else cursor.value


def _commits_behind(store: Store) -> bool:
    """Whether a store's pages commit behind the pull (``PageStore``): where the database does its work
    in its own process. Measured on the files connector's first sync of 25,000 accounts, interleaved in
    one sitting: on PostgreSQL the pull took 4.07-4.42 s with it against 4.64-4.87 s without; on SQLite,
    whose statements are this process's own work and hold the interpreter's lock between calls,
    3.64-4.72 s with it against 3.36-4.07 s without."""
    return store.engine.dialect.name == "postgresql"


class PageStore:
    """Stores pulled pages, each in one transaction with its object's cursor (recomputable: a page lost
    with a crashed database server is pulled again from the cursor before it).

    Each page is planned here (``plan_page``: looked up, normalised and encoded) and applied by a
    ``CommitsBehind``: on PostgreSQL in a second thread, while this one reads and plans the next page;
    elsewhere at once. At most one page is in flight, and a page sharing a record with it waits for its
    commit before it is looked up (it would otherwise read that record as it was before). The pull's
    counts and progress move when a page has committed; the data problems (``tally``) when it is
    planned, in this thread. ``settle`` waits for the page in flight."""

    def __init__(
        self,
        store: Store,
        conn_id: int,
        norm: NormalizeConfig,
        now: datetime,
        counts: RunCounts,
        progress: ProgressFn | None,
        connector: Connector,
        tally: WarningTally,
        stats: Statistics | None = None,
    ) -> None:
        self._store, self._conn_id, self._norm, self._now = store, conn_id, norm, now
        self._counts, self._progress, self._connector = counts, progress, connector
        self._tally, self._stats = tally, stats
        self._behind = CommitsBehind(store, "pull-commit", inline=not _commits_behind(store))
        #: The page in flight: its object type and external ids.
        self._in_flight: tuple[str, set[str]] | None = None

    def store(self, object_type: ObjectType, page: Page) -> None:
        ids = {rec.external_id for rec in page.records}
        if self._in_flight is not None:
            kind, pending = self._in_flight
            if kind == object_type and not pending.isdisjoint(ids):
                self.settle()  # those records are being stored: look them up once they are
        with self._store.session() as s:  # reads only
            plan = plan_page(
                Bulk(s), self._conn_id, object_type, page.records, self._norm, self._now, self._tally
            )
        found = take_connector_problems(self._connector)
        self._tally.add_connector(object_type, found)
        self._counts.warnings += plan.warnings + len(found)
        self._behind.submit(
            self._commit, object_type, page.cursor, plan,
            then=partial(self._committed, object_type, len(page.records), plan.changed),
        )  # fmt: skip
        self._in_flight = (object_type, ids)

    def settle(self) -> None:
        self._behind.wait()
        self._in_flight = None

    def _commit(self, object_type: ObjectType, cursor: str | None, plan: PagePlan) -> None:
        now = self._now
        with self._store.session(recomputable=True) as s:
            apply_page(s, self._conn_id, plan)
            if self._stats is not None:
                self._stats.changed(s, plan.changed)
            if cursor:
                cur = s.get(Cursor, (self._conn_id, object_type))
                if cur is None:
                    s.add(
                        Cursor(
                            connection_id=self._conn_id, object_type=object_type, value=cursor, updated_at=now
                        )
                    )
                elif cursor > cur.value:
                    cur.value, cur.updated_at = cursor, now

    def _committed(self, object_type: ObjectType, pulled: int, changed: int) -> None:
        self._counts.add_pulled(object_type, pulled, changed)
        if self._progress:
            self._progress(f"pull:{object_type}", pulled)

    def __enter__(self) -> PageStore:
        self._behind.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is not None:  # the pull failed: the page in flight still commits, and is counted
            with contextlib.suppress(Exception):  # its own error, if any, gives way to the pull's
                self.settle()
        self._behind.__exit__(kind, error, tb)


#: Pages waiting to be stored, per object type pulled at once (bounds memory: pulls wait for the store).
PAGES_AHEAD = 2


def _concurrent_pages(
    connector: Connector, sinces: Mapping[ObjectType, str | None]
) -> Iterator[tuple[ObjectType, Page]]:
    """Each object type's pages from its own thread, in arrival order (each type's in its own order).
    The first error stops every pull and is raised here; so is leaving early."""
    ready: queue.Queue[tuple[ObjectType, Page | None, BaseException | None]] = queue.Queue(
        maxsize=PAGES_AHEAD * len(sinces)
    )
    stop = threading.Event()

    def put(item: tuple[ObjectType, Page | None, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce(obj: ObjectType, since: str | None) -> None:
        pages = connector.pull(obj, since)
        try:
            for page in pages:
                if not put((obj, page, None)):
                    return
            put((obj, None, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            put((obj, None, exc))
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    threads = [
        threading.Thread(target=produce, args=(obj, since), name=f"pull-{obj}", daemon=True)
        for obj, since in sinces.items()
    ]
    for thread in threads:
        thread.start()
    try:
        running = len(threads)
        while running:
            obj, page, error = ready.get()
            if error is not None:
                raise error
            if page is None:
                running -= 1
                continue
            yield obj, page
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
