"""The per-record evaluation: one snapshot, its previous fit and flags, the connection's policy →
what the CRM should hold, whether it must be written, the re-engagement decision, the history entry.

Pure: no I/O and no clock (``now`` is passed in). The sync's score phase stores what it returns and
the revision preview (``worker.icp.preview``) reports it, so the preview predicts record by record
what a publish then writes.

Rules kept here, once:

- an opportunity carries its account's fit (score, tier, reasons) when the account has one; otherwise
  it is scored from its own attributes;
- the owned values (``desired``) are the fit fields plus the re-engagement flag and its reason;
- a record must be written when its owned values differ from what the CRM was last written
  (``written``), a new ICP version alone being no change (the CRM's ICP version field says which
  version produced the values it shows); a record whose last write failed stays ``error`` (it is
  retried first) until the CRM holds its values;
- a history entry is due when the score or the tier changed (or the record was never scored).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from connectors.base import OBJECT_TYPES, ObjectType
from worker.icp.changes import ChangeCause, change_cause
from worker.icp.scoring import Scorer
from worker.reengage import NOTHING, ActiveFlag, Decision, decide, record_state, rise_explanation
from worker.store.states import FlagKind, WriteStatus

if TYPE_CHECKING:
    from worker.config import ConnectionConfig
    from worker.icp.model import IcpSpec

#: Longest CRM text of the fit reasons and of the re-engagement reason.
CRM_TEXT = 255


class SnapshotView(Protocol):
    """What the evaluation reads of a record snapshot (a store row or any object with these)."""

    @property
    def object_type(self) -> str: ...
    @property
    def external_id(self) -> str: ...
    @property
    def attributes(self) -> Mapping[str, Any] | None: ...
    @property
    def status(self) -> Mapping[str, Any] | None: ...
    @property
    def last_activity(self) -> date | None: ...


class FitView(Protocol):
    """A fit as stored (the record's previous fit, or an opportunity's account's fit)."""

    @property
    def score(self) -> int: ...
    @property
    def tier(self) -> str: ...
    @property
    def coverage(self) -> float: ...
    @property
    def reasons(self) -> Sequence[Mapping[str, Any]] | None: ...
    @property
    def reasons_text(self) -> str: ...


class PreviousFit(FitView, Protocol):
    @property
    def icp_version(self) -> int: ...
    @property
    def written(self) -> Mapping[str, Any] | None: ...
    @property
    def write_status(self) -> str: ...
    @property
    def scored_at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class FlagView:
    """The record's active re-engagement flag."""

    raised_at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Policy:
    """A connection's rules for one run (or one preview) under one ICP version."""

    icp_version: int
    #: The enabled object types, in scoring order (accounts before the opportunities carrying their fit).
    objects: tuple[ObjectType, ...]
    target_tiers: frozenset[str]
    dismissed_statuses: frozenset[str]
    stale_days: int
    cooloff_days: int
    #: The connection's first sync with ``reengage.flag_backlog`` on: flag what already fits.
    backlog: bool = False


def ordered(object_types: Iterable[str]) -> tuple[ObjectType, ...]:
    """Accounts before opportunities (which carry their account's fit) before leads."""
    wanted = set(object_types)
    return tuple(t for t in OBJECT_TYPES if t in wanted)


def policy_for(cfg: ConnectionConfig, spec: IcpSpec, icp_version: int, *, first_sync: bool = False) -> Policy:
    """The policy of a connection's configuration under ``spec`` (published as ``icp_version``);
    ``first_sync``: no pull of the connection has finished yet (the backlog is flagged if configured)."""
    return Policy(
        icp_version=icp_version,
        objects=ordered(cfg.objects),
        target_tiers=frozenset(spec.reengage_tiers),
        dismissed_statuses=cfg.dismissed,
        stale_days=cfg.reengage.stale_days,
        cooloff_days=cfg.reengage.cooloff_days,
        backlog=first_sync and cfg.reengage.flag_backlog,
    )


@dataclass(frozen=True, slots=True)
class Carried:
    """A fit an opportunity can carry (an account's, as just evaluated)."""

    score: int
    tier: str
    coverage: float
    reasons: Sequence[Mapping[str, Any]]
    reasons_text: str


#: ``HistoryEntry`` and ``Evaluation`` are built for every record the sync scores: they are plain (not
#: frozen) slotted dataclasses, whose ``__init__`` is about four times faster than a frozen one's (it
#: assigns the slots instead of going through ``object.__setattr__``). Nothing changes them once built.


@dataclass(slots=True)
class HistoryEntry:
    score: int
    tier: str
    previous_tier: str | None
    previous_score: int | None = None
    previous_version: int | None = None
    #: Why it changed (:class:`worker.icp.changes.ChangeCause`).
    cause: ChangeCause = ChangeCause.FIRST
    #: The compact reasons of the new fit, so the history says why without the versions' reasons.
    reasons_text: str = ""


@dataclass(slots=True)
class Evaluation:
    """The outcome for one record. ``desired`` is what the CRM should hold (without ``scored_at``)."""

    score: int
    tier: str
    coverage: float
    reasons: Sequence[Mapping[str, Any]]
    reasons_text: str
    desired: dict[str, Any]
    write_status: WriteStatus
    #: Score, tier, reasons or ICP version differ from the previous fit (or there was none).
    result_changed: bool
    scored_at: datetime
    decision: Decision
    history: HistoryEntry | None

    @property
    def must_write(self) -> bool:
        return self.write_status is not WriteStatus.OK

    @property
    def raise_kind(self) -> FlagKind | None:
        return self.decision.raise_kind

    @property
    def clear_reason(self) -> str | None:
        return self.decision.clear_reason

    @property
    def flag_on(self) -> bool:
        return bool(self.desired["reengage_flag"])

    def carried(self) -> Carried:
        return Carried(self.score, self.tier, self.coverage, self.reasons, self.reasons_text)


def material(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Owned values that decide whether a record is written: all but the ICP version."""
    if values is None:
        return None
    return {k: v for k, v in values.items() if k != "icp_version"}


def evaluate(
    snap: SnapshotView,
    fit: PreviousFit | None,
    *,
    scorer: Scorer,
    policy: Policy,
    now: datetime,
    carried: FitView | None = None,
    opportunity_statuses: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    active_flag: FlagView | None = None,
    last_raised: datetime | None = None,
) -> Evaluation:
    """Evaluate one record under ``policy``.

    ``carried``: for an opportunity, its account's fit (None: score the opportunity itself).
    ``opportunity_statuses``: for an account, its opportunities' statuses by account id.
    ``active_flag`` / ``last_raised``: the record's active flag and when it was last flagged at all.
    """
    version = policy.icp_version
    reasons: Sequence[Mapping[str, Any]]
    if carried is not None and snap.object_type == "opportunity":
        score, tier, coverage = carried.score, carried.tier, carried.coverage
        reasons, text = _stored_reasons(carried), carried.reasons_text  # passed on undecoded
    else:
        result = scorer.score(snap.attributes or {})
        score, tier, coverage = result.score, result.tier, result.coverage
        reasons, text = result.encoded_reasons(), result.compact(CRM_TEXT)
    previous_tier = fit.tier if fit is not None else None
    result_changed = fit is None or (fit.score, fit.tier, fit.reasons_text, fit.icp_version) != (
        score,
        tier,
        text,
        version,
    )
    decision = _reengage(
        snap, fit, tier, reasons, policy, now, opportunity_statuses, active_flag, last_raised
    )
    if decision.clear_reason:
        flag_on, flag_reason = False, ""
    elif decision.raise_kind:
        flag_on, flag_reason = True, (decision.reason or "")[:CRM_TEXT]
    elif active_flag is not None:
        flag_on, flag_reason = True, active_flag.reason[:CRM_TEXT]
    else:
        flag_on, flag_reason = False, ""
    desired = {
        "fit_score": score,
        "fit_tier": tier,
        "fit_reasons": text,
        "icp_version": version,
        "reengage_flag": flag_on,
        "reengage_reason": flag_reason,
    }
    if fit is None:
        status = WriteStatus.PENDING
    elif material(fit.written) != material(desired):
        status = WriteStatus.ERROR if fit.write_status == WriteStatus.ERROR else WriteStatus.PENDING
    else:
        status = WriteStatus.OK
    history = None
    if fit is None or (result_changed and (fit.tier != tier or fit.score != score)):
        cause = change_cause(
            had_fit=fit is not None,
            previous_version=fit.icp_version if fit is not None else None,
            version=version,
            old_reasons=_stored_reasons(fit),
            new_reasons=reasons,
            carried=carried is not None and snap.object_type == "opportunity",
        )
        history = HistoryEntry(
            score,
            tier,
            previous_tier,
            previous_score=fit.score if fit is not None else None,
            previous_version=fit.icp_version if fit is not None else None,
            cause=cause,
            reasons_text=text,
        )
    return Evaluation(
        score=score,
        tier=tier,
        coverage=coverage,
        reasons=reasons,
        reasons_text=text,
        desired=desired,
        write_status=status,
        result_changed=result_changed,
        scored_at=now if result_changed or fit is None else fit.scored_at,
        decision=decision,
        history=history,
    )


def _stored_reasons(fit: FitView | None) -> Sequence[Mapping[str, Any]]:
    """A stored fit's reasons (the previous fit's, or the account's an opportunity carries) as they
    came: undecoded (``EncodedReasons``, from ``worker.sync.score.rows_to_score`` and
    ``worker.store.queries.account_fits``), so only what reads them decodes them: a history entry's
    cause, a raised flag's explanation. Not ``or []``: its truth test would decode them."""
    if fit is None or fit.reasons is None:
        return []
    return fit.reasons


def _reengage(
    snap: SnapshotView,
    fit: PreviousFit | None,
    tier: str,
    reasons: Sequence[Mapping[str, Any]],
    policy: Policy,
    now: datetime,
    opportunity_statuses: Mapping[str, Sequence[Mapping[str, Any]]] | None,
    active_flag: FlagView | None,
    last_raised: datetime | None,
) -> Decision:
    if snap.object_type not in ("lead", "account"):
        return NOTHING
    # The state only when the decision reads it (``decide``): an account's reads its opportunities'.
    state = partial(
        record_state,
        snap.object_type,
        snap.status,
        snap.last_activity,
        snap.external_id,
        opportunity_statuses if opportunity_statuses is not None else {},
    )
    previous_tier = fit.tier if fit is not None else None
    return decide(
        state,
        previous_tier=previous_tier,
        new_tier=tier,
        target_tiers=policy.target_tiers,
        active_flag=ActiveFlag(active_flag.raised_at) if active_flag else None,
        last_raised=last_raised,
        now=now,
        dismissed_statuses=policy.dismissed_statuses,
        stale_days=policy.stale_days,
        cooloff_days=policy.cooloff_days,
        explanation=partial(
            rise_explanation,
            previous_tier or "unscored",
            tier,
            policy.icp_version,
            _stored_reasons(fit),
            reasons,
        ),
        backlog=policy.backlog,
    )
