"""Which records to flag for re-engagement, and which flags to clear. Pure: the date is passed in.

A record is *dismissed* when it is a lead whose status is one of the connection's dismissed statuses,
or an account whose latest opportunity was lost and that has no open opportunity. It is *stale* when
it has had no activity for ``stale_days``, is not converted and is not a customer (a record with no
activity date at all is not called stale: we cannot tell a new record from a forgotten one).

A stale or dismissed record is flagged when its tier rises into a target tier from a tier outside
it (an ICP revision, or its own data changed), unless it was flagged within the cool-off window or
has open pipeline. A flag clears when the record is worked again, converts, gets open pipeline, or
no longer fits.

The backlog at adoption: on a connection's first sync no record has a previous tier, so nothing
*rises*; with ``backlog`` on, a stale or dismissed record that already fits a target tier is flagged
too (kind ``backlog``), under the same cool-off and per-owner cap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from worker.icp.changes import change_note
from worker.store.states import FlagKind


@dataclass(slots=True)
class RecordState:
    """What the rules need to know about one lead or account. (Not frozen: one is built for every lead and
    account scored, and a plain slotted ``__init__`` is about four times faster; nothing changes it.)"""

    object_type: str
    status: Mapping[str, Any]
    last_activity: date | None
    #: Accounts: has an open opportunity. Leads: always False.
    has_open_pipeline: bool = False
    #: Accounts: the latest closed opportunity was lost (and none is open).
    latest_opportunity_lost: bool = False
    is_customer: bool = False


@dataclass(frozen=True, slots=True)
class ActiveFlag:
    raised_at: datetime


@dataclass(frozen=True, slots=True)
class Decision:
    """``raise_kind`` is ``dismissed``, ``stale`` or ``backlog`` when a flag is to be raised;
    ``clear_reason`` is set when an active flag is to be cleared. Both None: nothing to do."""

    raise_kind: FlagKind | None = None
    reason: str | None = None
    clear_reason: str | None = None


NOTHING = Decision()


def dismissal(state: RecordState, dismissed_statuses: frozenset[str]) -> bool:
    if state.object_type == "lead":
        status = state.status.get("lead_status")
        return isinstance(status, str) and status.strip().casefold() in dismissed_statuses
    if state.object_type == "account":
        return state.latest_opportunity_lost and not state.has_open_pipeline
    return False


def staleness(state: RecordState, today: date, stale_days: int) -> bool:
    if state.last_activity is None or state.is_customer or state.status.get("is_converted") is True:
        return False
    return (today - state.last_activity).days >= stale_days


def decide(
    state: RecordState | Callable[[], RecordState],
    *,
    previous_tier: str | None,
    new_tier: str,
    target_tiers: frozenset[str],
    active_flag: ActiveFlag | None,
    last_raised: datetime | None,
    now: datetime,
    dismissed_statuses: frozenset[str],
    stale_days: int,
    cooloff_days: int,
    explanation: str | Callable[[], str],
    backlog: bool = False,
) -> Decision:
    """The re-engagement decision for one record after it was (re)scored.

    ``explanation`` is the start of the flag's reason ("poor → best under ICP v3: employees 620 ≥ 500"),
    or a function computing it (called only when a flag is raised). ``backlog``: the connection's first
    sync flags a never-scored record that already fits (kind ``backlog``).

    ``state`` may be a function computing it: called only when the decision depends on it, which for
    most records it does not (no active flag, and the tier did not rise into a target tier). An account's
    state reads its opportunities' statuses, so the score phase reads those only for such accounts.
    """
    if active_flag is None:  # nothing to clear; a flag is raised only into a target tier from outside it
        if new_tier not in target_tiers or previous_tier in target_tiers:
            return NOTHING
        if previous_tier is None and not backlog:
            return NOTHING
    if callable(state):
        state = state()
    if state.object_type not in ("lead", "account"):
        return NOTHING
    converted = state.status.get("is_converted") is True
    if active_flag is not None:
        if new_tier not in target_tiers:
            return Decision(clear_reason=f"no longer fits (tier {new_tier})")
        if converted:
            return Decision(clear_reason="lead converted")
        if state.has_open_pipeline:
            return Decision(clear_reason="open pipeline")
        if state.last_activity is not None and state.last_activity > active_flag.raised_at.date():
            return Decision(clear_reason=f"worked again on {state.last_activity.isoformat()}")
        return NOTHING
    if converted or state.has_open_pipeline:
        return NOTHING
    if state.last_activity is not None and state.last_activity > now.date():
        return NOTHING  # worked after today (a clock ahead of ours): the flag would clear at once
    if last_raised is not None and now - last_raised < timedelta(days=cooloff_days):
        return NOTHING
    if dismissal(state, dismissed_statuses):
        why = FlagKind.DISMISSED
    elif staleness(state, now.date(), stale_days):
        why = FlagKind.STALE
    else:
        return NOTHING
    text = explanation() if callable(explanation) else explanation
    if previous_tier is None:
        return Decision(raise_kind=FlagKind.BACKLOG, reason=f"{FlagKind.BACKLOG} ({why}): {text}")
    return Decision(raise_kind=why, reason=f"{why}: {text}")


def rise_explanation(
    previous_tier: str,
    new_tier: str,
    version: int,
    old_reasons: Sequence[Mapping[str, Any]],
    new_reasons: Sequence[Mapping[str, Any]],
    limit: int = 2,
) -> str:
    """ "poor → best under ICP v3: employees 742 ≥ 500: +25, new in ICP v3" — the reasons whose points rose
    most, each saying what changed (:func:`worker.icp.changes.change_note`: new in the version, the value
    it was, or that it was missing). A record never scored before gets the reasons alone."""
    before = {r["code"]: r for r in old_reasons}
    gains = sorted(
        ((r.get("points", 0.0) - before.get(r["code"], {}).get("points", 0.0), r) for r in new_reasons),
        key=lambda g: -g[0],
    )
    texts = [
        str(r.get("text", r["code"])) + (change_note(before.get(r["code"]), r, version) if before else "")
        for gain, r in gains[:limit]
        if gain > 0
    ]
    head = f"{previous_tier} → {new_tier} under ICP v{version}"
    return f"{head}: {'; '.join(texts)}" if texts else head


def account_context(opportunities: Iterable[Mapping[str, Any]]) -> tuple[bool, bool, bool]:
    """(has open pipeline, latest closed opportunity lost, is a customer) from an account's
    opportunities' status dicts (``is_closed``, ``is_won``, ``close_date`` as ISO text)."""
    has_open = is_customer = False
    latest: tuple[str, bool] | None = None
    for opp in opportunities:
        if not opp.get("is_closed"):
            has_open = True
            continue
        won = bool(opp.get("is_won"))
        is_customer = is_customer or won
        when = str(opp.get("close_date") or "")
        if latest is None or when >= latest[0]:
            latest = (when, won)
    latest_lost = latest is not None and not latest[1]
    return has_open, latest_lost and not has_open, is_customer


def record_state(
    object_type: str,
    status: Mapping[str, Any] | None,
    last_activity: date | None,
    external_id: str,
    opportunity_statuses: Mapping[str, Sequence[Mapping[str, Any]]],
) -> RecordState:
    """A lead's or account's state; an account's from its opportunities' statuses (by account id)."""
    status = status or {}
    has_open = latest_lost = False
    is_customer = bool(status.get("is_customer"))
    if object_type == "account":
        has_open, latest_lost, won = account_context(opportunity_statuses.get(external_id, ()))
        is_customer = is_customer or won
    return RecordState(
        object_type=object_type,
        status=status,
        last_activity=last_activity,
        has_open_pipeline=has_open,
        latest_opportunity_lost=latest_lost,
        is_customer=is_customer,
    )


def cap_per_owner(owners: Iterable[str | None], cap: int | None) -> list[bool]:
    """For flags in order, whether each gets a task under a per-owner cap (None: all of them)."""
    counts: dict[str | None, int] = {}
    allowed: list[bool] = []
    for owner in owners:
        counts[owner] = counts.get(owner, 0) + 1
        allowed.append(cap is None or counts[owner] <= cap)
    return allowed
