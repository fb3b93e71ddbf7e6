"""Score and re-engage: dirty records (and records scored under an older ICP version) are evaluated
in batches by ``worker.evaluate``; each batch's fits, flag changes, history and the clearing of
``dirty`` commit together."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy.orm import Session

from worker.config import ConnectionConfig
from worker.evaluate import Evaluation, FlagView, Policy, evaluate
from worker.icp.reasons import EncodedReasons, encoded_or_none
from worker.icp.scoring import Scorer
from worker.store import queries
from worker.store.bulk import Bulk, Insert, Statistics, Update
from worker.store.db import Store
from worker.store.models import RecordFit, RecordSnapshot
from worker.store.states import FlagState, TaskStatus
from worker.sync.behind import CommitsBehind
from worker.sync.counts import RunCounts
from worker.sync.tables import ProgressFn

#: What scoring reads: the snapshot's columns and its fit's (``fit_id`` is None when never scored).
SCORING_COLUMNS = (
    RecordSnapshot.id,
    RecordSnapshot.external_id,
    RecordSnapshot.object_type,
    RecordSnapshot.attributes,
    RecordSnapshot.status,
    RecordSnapshot.owner_id,
    RecordSnapshot.last_activity,
    RecordSnapshot.parent_id,
    RecordFit.snapshot_id.label("fit_id"),
    RecordFit.score,
    RecordFit.tier,
    RecordFit.coverage,
    RecordFit.reasons_text,
    RecordFit.icp_version,
    RecordFit.reasons,
    RecordFit.written,
    RecordFit.write_status,
    RecordFit.scored_at,
)

#: Records scored per transaction.
SCORE_BATCH = 2000


@dataclass
class ScoringContext:
    conn_id: int
    cfg: ConnectionConfig
    policy: Policy
    scorer: Scorer
    now: datetime
    run_id: int
    #: The score phase's planner statistics (one for every object type's batches).
    stats: Statistics = field(default_factory=lambda: Statistics(("record_fits", "reengage_flags")))


class StatusesNotRead(Exception):
    """An evaluation read the opportunity statuses of a batch whose statuses are not read yet."""


class _NotRead(Mapping[str, Sequence[Mapping[str, Any]]]):
    """A batch of accounts' opportunity statuses before they are read: any read raises
    ``StatusesNotRead``. An account's decision reads its state, so its opportunities' statuses, only when
    its tier rose into a target tier or it has an active flag (``reengage.decide``; about one account in
    eight on a first sync): ``score_batch`` evaluates the batch with this, then reads the statuses of the
    accounts that needed them, all at once, and evaluates those again."""

    def __getitem__(self, key: str) -> Sequence[Mapping[str, Any]]:
        raise StatusesNotRead

    def __iter__(self) -> Iterator[str]:
        raise StatusesNotRead

    def __len__(self) -> int:
        raise StatusesNotRead


NOT_READ: Mapping[str, Sequence[Mapping[str, Any]]] = _NotRead()


@dataclass
class BatchContext:
    """What a batch's evaluations read from the store besides the rows themselves."""

    account_fits: dict[str, Any]
    opp_statuses: Mapping[str, Sequence[Mapping[str, Any]]]
    active: dict[str, queries.ActiveFlagRow]
    last_raised: dict[str, datetime]


def batch_context(
    session: Session, conn_id: int, object_type: str, rows: Sequence[Any], *, statuses: bool = True
) -> BatchContext:
    """The batch's context; ``statuses=False``: an account batch's opportunity statuses are left unread
    (``NOT_READ``), for the caller to read for the accounts that need them."""
    ids = [row.external_id for row in rows]
    parents = {row.parent_id for row in rows if row.parent_id} if object_type == "opportunity" else set()
    active, last_raised = (
        queries.flags(session, conn_id, object_type, ids) if object_type != "opportunity" else ({}, {})
    )
    return BatchContext(
        account_fits=queries.account_fits(session, conn_id, parents),
        opp_statuses=(
            (queries.opportunity_statuses(session, conn_id, ids) if statuses else NOT_READ)
            if object_type == "account"
            else {}
        ),
        active=active,
        last_raised=last_raised,
    )


def evaluate_row(
    snap: Any, object_type: str, bc: BatchContext, scorer: Scorer, policy: Policy, now: datetime
) -> Evaluation:
    """One row of a batch (its snapshot's and its fit's columns) through the shared evaluation."""
    flag = bc.active.get(snap.external_id)
    return evaluate(
        snap,
        snap if snap.fit_id is not None else None,
        scorer=scorer,
        policy=policy,
        now=now,
        carried=bc.account_fits.get(snap.parent_id or "") if object_type == "opportunity" else None,
        opportunity_statuses=bc.opp_statuses,
        active_flag=FlagView(queries.aware(flag.raised_at), flag.reason) if flag is not None else None,
        last_raised=bc.last_raised.get(snap.external_id),
    )


#: A raised re-engagement flag's columns (the others start empty).
INSERT_FLAG = Insert(
    "reengage_flags",
    ("connection_id", "object_type", "external_id", "owner_id", "state", "kind", "from_tier", "to_tier",
     "from_version", "to_version", "reason", "raised_at", "task_status"),
)  # fmt: skip


def _apply_flag(
    ctx: ScoringContext,
    snap: Any,
    ev: Evaluation,
    bc: BatchContext,
    counts: RunCounts,
    moment: Any,
    clears: list[tuple[Any, ...]],
) -> tuple[Any, ...] | None:
    """As the evaluation decided: add the record's active flag's ``UPDATE_CLEARED`` values to
    ``clears``, or return a new flag's ``INSERT_FLAG`` values (``moment``: now, encoded)."""
    flag = bc.active.get(snap.external_id)
    if ev.clear_reason and flag is not None:
        task_status = TaskStatus.NONE.value if flag.task_status == TaskStatus.DUE else flag.task_status
        clears.append((FlagState.CLEARED.value, moment, ev.clear_reason, task_status, flag.id))
        counts.flags_cleared += 1
    elif ev.raise_kind:
        fit = snap if snap.fit_id is not None else None
        counts.flags_raised += 1
        return (
            ctx.conn_id, snap.object_type, snap.external_id, snap.owner_id, FlagState.ACTIVE.value,
            ev.raise_kind.value, fit.tier if fit is not None else "", ev.tier,
            fit.icp_version if fit is not None else None, ctx.policy.icp_version, ev.decision.reason or "",
            moment, (TaskStatus.DUE if ctx.cfg.reengage.create_tasks else TaskStatus.NONE).value,
        )  # fmt: skip
    return None


#: A flag the evaluation cleared: its new state, when, why, and its follow-up task no longer due.
UPDATE_CLEARED = Update(
    "reengage_flags",
    "id",
    (
        ("state", "varchar"),
        ("cleared_at", "timestamptz"),
        ("clear_reason", "text"),
        ("task_status", "varchar"),
    ),
)


#: What ``score_object`` reads per row: ``SCORING_COLUMNS`` as plain values (``fit_id`` None: never scored).
class ScoringRow(NamedTuple):
    id: int
    external_id: str
    object_type: str
    attributes: dict[str, Any] | None
    status: dict[str, Any] | None
    owner_id: str | None
    last_activity: date | None
    parent_id: str | None
    fit_id: int | None
    score: int | None
    tier: str | None
    coverage: float | None
    reasons_text: str | None
    icp_version: int | None
    reasons: Sequence[Mapping[str, Any]] | None
    written: dict[str, Any] | None
    write_status: str | None
    scored_at: datetime | None


#: The next batch to score after snapshot id ``?``: changed, never scored, or scored under another
#: version. The keyset runs on ``ix_record_snapshots_scan`` (connection, object type, id), so each batch
#: starts where the last one stopped instead of filtering the object's whole table again. The join
#: repeats the bound for the fits (the same rows: ``f.snapshot_id = s.id``): PostgreSQL merge-joins
#: the two primary keys and, without it, read every fit below the bound again for each batch (380 ms
#: a batch at 300,000 fits, quadratic in the records).
#: The JSON columns are read as text on both back ends and decoded with orjson (``read_json``):
#: PostgreSQL's driver would parse them with the standard library's slower ``json``.
SELECT_TO_SCORE = (
    "SELECT s.id, s.external_id, s.object_type, CAST(s.attributes AS TEXT), CAST(s.status AS TEXT),"
    " s.owner_id, s.last_activity, s.parent_id, f.snapshot_id, f.score, f.tier, f.coverage, f.reasons_text,"
    " f.icp_version, CAST(f.reasons AS TEXT), CAST(f.written AS TEXT), f.write_status, f.scored_at"
    " FROM record_snapshots s LEFT OUTER JOIN record_fits f ON f.snapshot_id = s.id AND f.snapshot_id > ?"
    " WHERE s.connection_id = ? AND s.object_type = ? AND s.id > ?"
    " AND (s.dirty = ? OR f.snapshot_id IS NULL OR f.icp_version <> ?)"
    " ORDER BY s.id LIMIT ?"
)
#: A fit's scored columns, in this order, with their PostgreSQL types.
FIT_VALUES = (
    ("score", "integer"), ("tier", "varchar"), ("coverage", "float8"), ("reasons", "json"),
    ("reasons_text", "varchar"), ("icp_version", "integer"), ("desired", "json"),
    ("scored_at", "timestamptz"), ("write_status", "varchar"),
)  # fmt: skip
INSERT_FIT = Insert("record_fits", ("snapshot_id", "written", "write_attempts", *(c for c, _ in FIT_VALUES)))
UPDATE_FIT = Update("record_fits", "snapshot_id", FIT_VALUES)
INSERT_HISTORY = Insert(
    "fit_history",
    ("connection_id", "object_type", "external_id", "icp_version", "score", "tier", "previous_tier",
     "previous_score", "previous_version", "cause", "reasons_text", "run_id", "scored_at"),
)  # fmt: skip


def read_json(value: str | None) -> Any:
    """A JSON column read as text (``CAST(... AS TEXT)``), on either back end."""
    return None if value is None else orjson.loads(value)


def rows_to_score(
    bulk: Bulk, conn_id: int, object_type: str, version: int, after_id: int
) -> list[ScoringRow]:
    """The next ``SCORE_BATCH`` records to score after snapshot id ``after_id``, decoded (a fit's reasons
    when first read)."""
    c = bulk.codec
    raw = bulk.rows(
        SELECT_TO_SCORE, (after_id, conn_id, object_type, after_id, c.flag(True), version, SCORE_BATCH)
    )
    js, day, at = read_json, c.read_day, c.read_moment
    # An opportunity's own status is never read (its account's state reads it, ``opportunity_statuses``):
    # it is left undecoded (None). A fit's reasons are decoded only if read (``EncodedReasons``): only a
    # history entry's cause under a new ICP version and a raised flag's explanation read them.
    sj = (lambda _: None) if object_type == "opportunity" else js
    er = encoded_or_none
    return [
        ScoringRow(i, e, o, js(a), sj(st), ow, day(la), p, fid, sc, t, cov, rt, v, er(rs), js(w), ws, at(m))
        for (i, e, o, a, st, ow, la, p, fid, sc, t, cov, rt, v, rs, w, ws, m) in raw
    ]


def _history_values(ctx: ScoringContext, object_type: str, snap: Any, ev: Evaluation, moment: Any) -> tuple:
    h = ev.history
    assert h is not None
    return (
        ctx.conn_id, object_type, snap.external_id, ctx.policy.icp_version, h.score, h.tier, h.previous_tier,
        h.previous_score, h.previous_version, h.cause.value, h.reasons_text, ctx.run_id, moment,
    )  # fmt: skip


@dataclass
class BatchWrites:
    """What scoring one batch stores, as statement rows (``apply_batch`` runs them)."""

    object_type: str
    #: The batch's snapshot ids (their ``dirty`` mark is cleared).
    ids: list[int]
    flags: list[tuple[Any, ...]]
    clears: list[tuple[Any, ...]]
    fit_inserts: list[tuple[Any, ...]]
    fit_updates: list[tuple[Any, ...]]
    history: list[tuple[Any, ...]]
    #: Accounts whose fit changed: their opportunities carry it, so they are marked to score again.
    changed_accounts: set[str]


def score_batch(
    session: Session, ctx: ScoringContext, object_type: str, rows: Sequence[Any], counts: RunCounts
) -> BatchWrites:
    """Score one batch of (snapshot, fit-or-None) rows: what it stores (reading only; ``apply_batch``
    stores it).

    An account batch is evaluated before its opportunities' statuses are read (``NOT_READ``): only the
    accounts whose decision reads them are evaluated again, once they are read. Each row's statements
    are built as soon as it is evaluated (few objects live long: the garbage collector runs less) and
    run in the rows' order."""
    bc = batch_context(session, ctx.conn_id, object_type, rows, statuses=False)
    bulk = Bulk(session)
    c = bulk.codec
    version, now = ctx.policy.icp_version, ctx.now
    moments = {now: c.moment(now)}  # most fits are scored now: encode that once
    changed_accounts: set[str] = set()
    clears: list[tuple[Any, ...]] = []

    def stored(
        snap: Any, ev: Evaluation
    ) -> tuple[tuple[Any, ...] | None, tuple[Any, ...], tuple[Any, ...] | None]:
        """The row's new flag (or None), its fit's values and its history entry (or None)."""
        flag = _apply_flag(ctx, snap, ev, bc, counts, moments[now], clears)
        at = moments.get(ev.scored_at)
        if at is None:
            at = c.moment(ev.scored_at)
        # Reasons come encoded (``FitResult.encoded_reasons``; an opportunity's carried ones are its
        # account's, as stored): their text is stored as it is.
        reasons = ev.reasons.text if isinstance(ev.reasons, EncodedReasons) else c.json(ev.reasons)
        values = (ev.score, ev.tier, ev.coverage, reasons, ev.reasons_text, version,
                  c.json(ev.desired), at, ev.write_status.value)  # fmt: skip
        if ev.result_changed:
            counts.fits_changed += 1
            if object_type == "account" and snap.fit_id is not None:
                changed_accounts.add(snap.external_id)
        history = (
            _history_values(ctx, object_type, snap, ev, moments[now]) if ev.history is not None else None
        )
        return (
            flag,
            ((snap.id, c.json(None), 0, *values) if snap.fit_id is None else (*values, snap.id)),
            history,
        )

    done: list[tuple[tuple[Any, ...] | None, tuple[Any, ...], tuple[Any, ...] | None] | None] = []
    unread: list[int] = []  # the accounts whose decision reads their opportunities' statuses
    for i, snap in enumerate(rows):
        try:
            ev = evaluate_row(snap, object_type, bc, ctx.scorer, ctx.policy, now)
        except StatusesNotRead:
            done.append(None)
            unread.append(i)
            continue
        done.append(stored(snap, ev))
    if unread:
        bc.opp_statuses = queries.opportunity_statuses(
            session, ctx.conn_id, [rows[i].external_id for i in unread]
        )
        for i in unread:
            done[i] = stored(rows[i], evaluate_row(rows[i], object_type, bc, ctx.scorer, ctx.policy, now))
    fit_inserts: list[tuple[Any, ...]] = []
    fit_updates: list[tuple[Any, ...]] = []
    history: list[tuple[Any, ...]] = []
    flags: list[tuple[Any, ...]] = []
    for snap, row in zip(rows, done, strict=True):
        assert row is not None
        flag, fit_values, entry = row
        if flag is not None:
            flags.append(flag)
        if entry is not None:
            history.append(entry)
        (fit_inserts if snap.fit_id is None else fit_updates).append(fit_values)
    counts.scored += len(rows)
    return BatchWrites(
        object_type, [row.id for row in rows], flags, clears, fit_inserts, fit_updates, history,
        changed_accounts,
    )  # fmt: skip


def apply_batch(session: Session, ctx: ScoringContext, writes: BatchWrites) -> None:
    """Store a scored batch in ``session``'s transaction: its flags raised and cleared, fits, history,
    the clearing of its ``dirty`` marks, and the marking of the opportunities whose account's fit
    changed."""
    bulk = Bulk(session)
    c = bulk.codec
    bulk.update(UPDATE_CLEARED, writes.clears)
    bulk.insert(INSERT_FLAG, writes.flags)
    bulk.insert(INSERT_FIT, writes.fit_inserts)
    bulk.update(UPDATE_FIT, writes.fit_updates)
    bulk.insert(INSERT_HISTORY, writes.history)
    where, params = c.in_list(writes.ids)
    # Only the marked rows are rewritten: a new record was stored clean (``pull.plan_page``).
    bulk.run(
        f"UPDATE record_snapshots SET dirty = ? WHERE dirty = ? AND id {where}",
        [c.flag(False), c.flag(True), *params],
    )
    if writes.changed_accounts:  # their opportunities carry the account's fit: score them again
        where, params = c.in_list(sorted(writes.changed_accounts))
        bulk.run(
            f"UPDATE record_snapshots SET dirty = ? WHERE {queries.opportunities_of(bulk)}"
            f" AND parent_id {where}",
            [c.flag(True), ctx.conn_id, *params],
        )
    ctx.stats.changed(session, len(writes.ids))


#: The interpreter's thread switch interval while a score phase commits behind its scoring (the
#: default is 5 ms): the committing thread waits for the GIL after each statement it ran, and the
#: scoring thread, never waiting on anything, would hold it for a whole interval each time.
COMMIT_SWITCH_INTERVAL = 0.0005


def score_object(
    store: Store, ctx: ScoringContext, object_type: str, counts: RunCounts, progress: ProgressFn | None
) -> None:
    """Score every record of ``object_type`` that needs it, batch after batch: this thread reads and
    evaluates a batch while a second one stores and commits the batch before (one batch ahead at
    most; the commits in batch order, each batch in one transaction). A batch's reads never depend on
    the batch before: each reads its own records, their flags and, for opportunities, the accounts'
    fits, which were all committed before the object type started. A crash loses at most the batch
    being committed and the one evaluated ahead: both are still dirty or unscored, and scored again.

    The batches' transactions are recomputable: a batch lost with a crashed PostgreSQL server is
    scored again by the next run (the write phase's first commit flushes every one before it)."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, COMMIT_SWITCH_INTERVAL))
    try:
        with CommitsBehind(store, "score-commit") as behind:
            last_id = 0
            while True:
                with store.session() as s:  # reads only
                    rows = rows_to_score(Bulk(s), ctx.conn_id, object_type, ctx.policy.icp_version, last_id)
                    if not rows:
                        break
                    last_id = rows[-1].id
                    writes = score_batch(s, ctx, object_type, rows, counts)
                behind.submit(_commit_batch, store, ctx, writes)
                if progress:
                    progress(f"score:{object_type}", len(rows))
    finally:
        sys.setswitchinterval(interval)
    with store.session() as s:
        ctx.stats.refresh(s)  # the next object type is planned with this one's rows counted


def _commit_batch(store: Store, ctx: ScoringContext, writes: BatchWrites) -> None:
    with store.session(recomputable=True) as s:
        apply_batch(s, ctx, writes)
