"""Why a record has the fit it has: the explanation ``icp-worker explain`` prints (and the console shows).
Pure, no I/O: the store loader (:mod:`worker.store.explain`) reads the rows and calls :func:`explain`.

An explanation holds the current fit (score, tier, coverage, ICP version), one line per criterion (the
attribute as the snapshot holds it, the value the criterion read, credit, points, sentence), the missing
attributes, the disqualifiers that fired, the account whose fit an opportunity carries, the
re-engagement flag, what was last written to the CRM, the history of changes with their causes,
:func:`worker.icp.moves.next_tier`, and on request the fit as it was at a given time (:func:`fit_as_of`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from worker.icp.changes import ChangeCause
from worker.icp.model import IcpSpec
from worker.icp.moves import NextTier, next_tier
from worker.icp.scoring import Scorer

__all__ = [
    "AsOf",
    "CrmState",
    "CriterionLine",
    "Explanation",
    "FlagInfo",
    "HistoryLine",
    "HistoryRow",
    "RecordData",
    "StoredFit",
    "explain",
    "fit_as_of",
    "history_lines",
]


@dataclass(frozen=True, slots=True)
class RecordData:
    """A record as snapshotted: ``attributes`` are the canonical, normalised values; ``raw`` the CRM's own
    text of those whose normalised value reads differently ("USA" for ``US``)."""

    connection: str
    object_type: str
    external_id: str
    name: str | None
    attributes: Mapping[str, Any]
    warnings: Sequence[str] = ()
    parent_id: str | None = None
    pulled_at: datetime | None = None
    raw: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredFit:
    score: int
    tier: str
    coverage: float
    icp_version: int
    scored_at: datetime
    reasons_text: str
    reasons: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True, slots=True)
class CrmState:
    """What the CRM was last written (None: never) and what it should hold."""

    written: Mapping[str, Any] | None
    written_at: datetime | None
    desired: Mapping[str, Any]
    write_status: str
    write_error: str | None = None

    @property
    def up_to_date(self) -> bool:
        if self.written is None:
            return False
        return {k: v for k, v in self.written.items() if k != "icp_version"} == {
            k: v for k, v in self.desired.items() if k != "icp_version"
        }


@dataclass(frozen=True, slots=True)
class FlagInfo:
    active: bool
    kind: str | None = None
    reason: str | None = None
    raised_at: datetime | None = None
    from_tier: str | None = None
    to_tier: str | None = None


@dataclass(frozen=True, slots=True)
class CriterionLine:
    key: str
    name: str
    attribute: str
    weight: float
    #: The value as the CRM gave it ("USA", "$67.3m"); the normalised value when that reads the same.
    raw: Any
    #: The attribute as the snapshot holds it (normalised when pulled); None when absent.
    normalised: Any
    #: The value as the criterion read it ("12M", "CA", "yes"); empty when missing.
    value: str
    credit: float
    points: float
    status: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "attribute": self.attribute,
            "weight": self.weight,
            "raw": self.raw,
            "normalised": self.normalised,
            "value": self.value,
            "credit": self.credit,
            "points": self.points,
            "status": self.status,
            "text": self.text,
        }


@dataclass(frozen=True, slots=True)
class HistoryLine:
    """One change of score or tier."""

    at: datetime
    icp_version: int
    run_id: int | None
    score: int
    tier: str
    previous_score: int | None
    previous_tier: str | None
    previous_version: int | None
    cause: str
    why: str
    reasons_text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "icp_version": self.icp_version,
            "run_id": self.run_id,
            "from": None
            if self.previous_tier is None
            else {"score": self.previous_score, "tier": self.previous_tier},
            "to": {"score": self.score, "tier": self.tier},
            "previous_version": self.previous_version,
            "cause": self.cause,
            "why": self.why,
            "reasons_text": self.reasons_text,
        }


@dataclass(frozen=True, slots=True)
class AsOf:
    """The fit a record had at ``at``: ``tier`` None when it had not been scored yet."""

    at: datetime
    tier: str | None
    score: int | None
    icp_version: int | None
    since: datetime | None
    why: str
    reasons_text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "tier": self.tier,
            "score": self.score,
            "icp_version": self.icp_version,
            "since": None if self.since is None else self.since.isoformat(),
            "why": self.why,
            "reasons_text": self.reasons_text,
        }


@dataclass(frozen=True, slots=True)
class Explanation:
    record: RecordData
    fit: StoredFit
    reasons: tuple[CriterionLine, ...]
    missing: tuple[str, ...]
    disqualifiers: tuple[str, ...]
    history: tuple[HistoryLine, ...]
    next_tier: NextTier | None
    crm: CrmState | None = None
    flag: FlagInfo | None = None
    #: An opportunity carrying its account's fit: the account's id and name.
    carried_from: tuple[str, str | None] | None = None
    #: False when the snapshot changed since it was scored (the next sync rescores it).
    current: bool = True
    as_of: AsOf | None = None

    def to_dict(self) -> dict[str, Any]:
        r, fit = self.record, self.fit
        carried = self.carried_from
        return {
            "connection": r.connection,
            "object_type": r.object_type,
            "id": r.external_id,
            "name": r.name,
            "score": fit.score,
            "tier": fit.tier,
            "coverage": fit.coverage,
            "icp_version": fit.icp_version,
            "scored_at": fit.scored_at.isoformat(),
            "reasons_text": fit.reasons_text,
            "reasons": [line.to_dict() for line in self.reasons],
            "missing": list(self.missing),
            "disqualifiers": list(self.disqualifiers),
            "warnings": list(r.warnings),
            "carried_from": None if carried is None else {"id": carried[0], "name": carried[1]},
            "current": self.current,
            "reengage": None if self.flag is None else _flag_dict(self.flag),
            "crm": None if self.crm is None else _crm_dict(self.crm),
            "history": [h.to_dict() for h in self.history],
            "next_tier": None if self.next_tier is None else self.next_tier.to_dict(),
            "as_of": None if self.as_of is None else self.as_of.to_dict(),
        }


def _flag_dict(flag: FlagInfo) -> dict[str, Any]:
    return {
        "active": flag.active,
        "kind": flag.kind,
        "reason": flag.reason,
        "raised_at": None if flag.raised_at is None else flag.raised_at.isoformat(),
        "from_tier": flag.from_tier,
        "to_tier": flag.to_tier,
    }


def _crm_dict(crm: CrmState) -> dict[str, Any]:
    return {
        "written": None if crm.written is None else dict(crm.written),
        "written_at": None if crm.written_at is None else crm.written_at.isoformat(),
        "write_status": crm.write_status,
        "write_error": crm.write_error,
        "up_to_date": crm.up_to_date,
    }


# ------------------------------------------------------------------------------------------- building


def explain(
    record: RecordData,
    fit: StoredFit,
    spec: IcpSpec,
    *,
    history: Sequence[HistoryLine] = (),
    scored: RecordData | None = None,
    crm: CrmState | None = None,
    flag: FlagInfo | None = None,
    carried_name: str | None = None,
    as_of: AsOf | None = None,
) -> Explanation:
    """Explain ``fit`` (scored under ``spec``, the spec of ``fit.icp_version``).

    ``scored`` is the record whose attributes the fit comes from when that is another record (an
    opportunity carries its account's fit); the criterion lines are rebuilt by rescoring those
    attributes under ``spec``.
    """
    source = scored if scored is not None else record
    scorer = Scorer(spec)
    result = scorer.score(source.attributes)
    by_code = {r.code: r for r in result.reasons if r.status != "disqualified"}
    lines = tuple(
        CriterionLine(
            key=c.key,
            name=c.name,
            attribute=c.attribute,
            weight=c.weight,
            raw=source.raw.get(c.attribute, source.attributes.get(c.attribute)),
            normalised=source.attributes.get(c.attribute),
            value=by_code[c.key].value,
            credit=by_code[c.key].credit,
            points=by_code[c.key].points,
            status=by_code[c.key].status,
            text=by_code[c.key].text,
        )
        for c in spec.criteria
    )
    return Explanation(
        record=record,
        fit=fit,
        reasons=lines,
        missing=tuple(line.attribute for line in lines if line.status == "missing"),
        disqualifiers=tuple(r.text for r in result.reasons if r.status == "disqualified"),
        history=tuple(history),
        next_tier=next_tier(scorer, source.attributes, result),
        crm=crm,
        flag=flag,
        carried_from=(scored.external_id, carried_name) if scored is not None else None,
        current=(result.score, result.tier) == (fit.score, fit.tier),
        as_of=as_of,
    )


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """A fit history entry as stored (``cause`` empty on entries written before it was recorded)."""

    at: datetime
    icp_version: int
    run_id: int | None
    score: int
    tier: str
    previous_tier: str | None
    previous_score: int | None = None
    previous_version: int | None = None
    cause: str = ""
    reasons_text: str = ""


def history_lines(rows: Sequence[HistoryRow]) -> tuple[HistoryLine, ...]:
    """The history in time order, each entry with its cause (inferred from the entry before it when the
    entry predates recorded causes: another ICP version is a revision, the same one a change of data)."""
    out: list[HistoryLine] = []
    previous: HistoryRow | None = None
    for row in sorted(rows, key=lambda r: r.at):
        prev_version = row.previous_version
        prev_score = row.previous_score
        if previous is not None:
            prev_version = prev_version if prev_version is not None else previous.icp_version
            prev_score = prev_score if prev_score is not None else previous.score
        cause = row.cause or _inferred_cause(row, previous)
        out.append(
            HistoryLine(
                at=row.at,
                icp_version=row.icp_version,
                run_id=row.run_id,
                score=row.score,
                tier=row.tier,
                previous_score=prev_score,
                previous_tier=row.previous_tier,
                previous_version=prev_version,
                cause=cause,
                why=_why(cause, prev_version, row.icp_version),
                reasons_text=row.reasons_text,
            )
        )
        previous = row
    return tuple(out)


def _inferred_cause(row: HistoryRow, previous: HistoryRow | None) -> str:
    if row.previous_tier is None and previous is None:
        return ChangeCause.FIRST.value
    if previous is not None and previous.icp_version != row.icp_version:
        return ChangeCause.REVISION.value
    return ChangeCause.DATA.value


def _why(cause: str, previous_version: int | None, version: int) -> str:
    try:
        known = ChangeCause(cause)
    except ValueError:
        return cause
    if known is ChangeCause.FIRST:
        return f"first score, under ICP v{version}"
    if known in (ChangeCause.REVISION, ChangeCause.REVISION_AND_DATA) and previous_version is not None:
        return f"{known.sentence} (v{previous_version} → v{version})"
    return known.sentence


def fit_as_of(
    at: datetime,
    history: Sequence[HistoryLine],
    runs: Sequence[tuple[datetime, int]] = (),
) -> AsOf:
    """The fit a record had at ``at``: the last change at or before it, under the ICP version of the
    last change or of the last finished run of its connection before ``at``, whichever is later (a
    run re-scores every record scored under an older version, so after it the record was under it).
    ``runs`` are (finished_at, icp_version)."""
    before = [h for h in history if h.at <= at]
    if not before:
        return AsOf(at, None, None, None, None, "not scored yet at that time")
    last = max(before, key=lambda h: h.at)
    version, version_since = last.icp_version, last.at
    for finished_at, run_version in runs:
        if version_since < finished_at <= at:
            version, version_since = run_version, finished_at
    why = last.why
    if version != last.icp_version:
        why = f"{why}; unchanged under ICP v{version}"
    return AsOf(at, last.tier, last.score, version, last.at, why, last.reasons_text)
