"""The data-quality report of a connection (``icp-worker quality``; the console shows the same).

``build_report`` reads the store: the records' current attributes (how many have each attribute), one run's
warnings (``run_warnings``: unreadable and impossible values with their most frequent raw values, duplicate
and missing ids, unreadable stamps) and each criterion's coverage under the current ICP. ``summarize``
builds the same figures for a prospect file scored without a CRM (``icp-worker score``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.icp.model import IcpSpec
from worker.store.models import Connection, RecordSnapshot, RunWarning, SyncRun

__all__ = [
    "AttributeQuality",
    "CriterionCoverage",
    "QualityReport",
    "ValueCount",
    "build_report",
    "run_problems",
    "sync_line",
]

#: Most frequent raw values shown per attribute.
TOP_VALUES = 10
#: Object types the ICP scores (opportunities carry their account's fit).
SCORED_OBJECTS = ("account", "lead")
_VALUE_KINDS = ("unreadable", "impossible")


@dataclass(frozen=True, slots=True)
class ValueCount:
    """A raw value (None: other values beyond those counted one by one), how often, and examples."""

    raw: str | None
    count: int
    example_ids: tuple[str, ...] = ()
    places: tuple[str, ...] = ()


@dataclass(slots=True)
class AttributeQuality:
    object_type: str
    attribute: str
    #: Records (of this object type, in the store) with a value for the attribute.
    with_value: int = 0
    unreadable: int = 0
    impossible: int = 0
    #: The most frequent unreadable or impossible raw values (kind in ``ValueCount.raw``'s row).
    values: list[ValueCount] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CriterionCoverage:
    key: str
    attribute: str
    weight: float
    object_type: str
    records: int
    with_value: int

    @property
    def share(self) -> float:
        return self.with_value / self.records if self.records else 0.0


@dataclass(slots=True)
class QualityReport:
    connection: str
    run_id: int | None = None
    run_kind: str | None = None
    run_started: datetime | None = None
    icp_version: int | None = None
    #: Records in the store, by object type.
    records: dict[str, int] = field(default_factory=dict)
    attributes: list[AttributeQuality] = field(default_factory=list)
    duplicate_ids: list[ValueCount] = field(default_factory=list)
    missing_ids: list[ValueCount] = field(default_factory=list)
    unreadable_stamps: list[ValueCount] = field(default_factory=list)
    criteria: list[CriterionCoverage] = field(default_factory=list)
    #: Every problem the run counted, by kind.
    warnings: dict[str, int] = field(default_factory=dict)

    @property
    def unreadable_values(self) -> int:
        return sum(n for kind, n in self.warnings.items() if kind in _VALUE_KINDS)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["run_started"] = self.run_started.isoformat() if self.run_started else None
        data["criteria"] = [{**asdict(c), "share": round(c.share, 4)} for c in self.criteria]
        data["unreadable_values"] = self.unreadable_values
        return data


def _counts(rows: Iterable[RunWarning]) -> list[ValueCount]:
    out = [
        ValueCount(r.raw_value, r.count, tuple(r.example_ids or ()), tuple(r.example_places or ()))
        for r in rows
    ]
    return sorted(out, key=lambda v: (-v.count, v.raw is None, v.raw or ""))


def run_for(session: Session, conn_id: int, run_id: int | None) -> SyncRun | None:
    """Run ``run_id`` of the connection, or its latest run that pulled data (not a re-evaluation)."""
    if run_id is not None:
        run = session.get(SyncRun, run_id)
        if run is None or run.connection_id != conn_id:
            raise LookupError(f"no run {run_id} for this connection")
        return run
    return session.scalars(
        select(SyncRun)
        .where(SyncRun.connection_id == conn_id, SyncRun.kind != "reevaluate")
        .order_by(SyncRun.id.desc())
        .limit(1)
    ).first()


def _attribute_counts(session: Session, conn_id: int) -> tuple[Counter[str], Counter[tuple[str, str]]]:
    records: Counter[str] = Counter()
    present: Counter[tuple[str, str]] = Counter()
    rows = session.execute(
        select(RecordSnapshot.object_type, RecordSnapshot.attributes)
        .where(RecordSnapshot.connection_id == conn_id)
        .execution_options(yield_per=2000)
    )
    for object_type, attributes in rows:
        records[object_type] += 1
        for name, value in (attributes or {}).items():
            if value is not None:
                present[(object_type, name)] += 1
    return records, present


def build_report(
    session: Session, connection: str, *, run_id: int | None = None, spec: IcpSpec | None = None
) -> QualityReport:
    """The quality report of ``connection`` (see the module notes); ``spec`` (the current ICP) adds each
    criterion's coverage."""
    conn = session.scalars(select(Connection).where(Connection.name == connection)).first()
    if conn is None:
        raise LookupError(f"connection {connection!r} has never been synced: nothing to report")
    report = QualityReport(connection=connection)
    run = run_for(session, conn.id, run_id)
    warnings: list[RunWarning] = []
    if run is not None:
        report.run_id, report.run_kind, report.run_started = run.id, run.kind, run.started_at
        report.icp_version = run.icp_version
        warnings = list(session.scalars(select(RunWarning).where(RunWarning.run_id == run.id)))
    records, present = _attribute_counts(session, conn.id)
    report.records = dict(sorted(records.items()))
    kinds: Counter[str] = Counter()
    by_attr: dict[tuple[str, str], list[RunWarning]] = {}
    for w in warnings:
        kinds[w.kind] += w.count
        if w.kind in _VALUE_KINDS:
            by_attr.setdefault((w.object_type, w.field), []).append(w)
    report.warnings = dict(sorted(kinds.items()))
    names = sorted(set(present) | set(by_attr))
    for object_type, name in names:
        rows = by_attr.get((object_type, name), [])
        report.attributes.append(
            AttributeQuality(
                object_type=object_type,
                attribute=name,
                with_value=present.get((object_type, name), 0),
                unreadable=sum(r.count for r in rows if r.kind == "unreadable"),
                impossible=sum(r.count for r in rows if r.kind == "impossible"),
                values=_counts(rows)[:TOP_VALUES],
            )
        )
    report.duplicate_ids = _counts(w for w in warnings if w.kind == "duplicate_id")
    report.missing_ids = _counts(w for w in warnings if w.kind == "missing_id")
    report.unreadable_stamps = _counts(w for w in warnings if w.kind == "unreadable_stamp")
    if spec is not None:
        report.criteria = coverage(spec, records, present)
    return report


def coverage(
    spec: IcpSpec, records: Mapping[str, int], present: Mapping[tuple[str, str], int]
) -> list[CriterionCoverage]:
    """Each criterion's share of records with a value for its attribute, per scored object type."""
    out = []
    for c in spec.criteria:
        for object_type in SCORED_OBJECTS:
            if records.get(object_type):
                out.append(
                    CriterionCoverage(
                        c.key, c.attribute, c.weight, object_type, records[object_type],
                        present.get((object_type, c.attribute), 0),
                    )
                )  # fmt: skip
    return out


def run_problems(session: Session, run_id: int) -> dict[str, int]:
    """Problems a run counted, by kind."""
    counts: Counter[str] = Counter()
    rows = session.execute(select(RunWarning.kind, RunWarning.count).where(RunWarning.run_id == run_id))
    for kind, n in rows:
        counts[kind] += n
    return dict(counts)


_KIND_TEXT = {
    "duplicate_id": ("duplicate id", "duplicate ids"),
    "missing_id": ("record without an id", "records without an id"),
    "unreadable_stamp": ("unreadable stamp", "unreadable stamps"),
}


def sync_line(connection: str, problems: Mapping[str, int]) -> str | None:
    """The line ``sync`` ends with when the data had problems (None when it had none), e.g.
    ``12 values could not be read; icp-worker quality --connection acme``."""
    parts = []
    values = sum(n for kind, n in problems.items() if kind in _VALUE_KINDS)
    if values:
        parts.append(f"{values:,} value{'s' if values != 1 else ''} could not be read")
    for kind, (one, many) in _KIND_TEXT.items():
        n = problems.get(kind, 0)
        if n:
            parts.append(f"{n:,} {one if n == 1 else many}")
    if not parts:
        return None
    return f"{', '.join(parts)}; icp-worker quality --connection {connection}"


def summarize_rows(
    object_type: str,
    problems: Sequence[tuple[str, str, str, str]],
    present: Mapping[str, int],
    rows: int,
    spec: IcpSpec | None = None,
) -> QualityReport:
    """A report for a file scored without a CRM: ``problems`` are (kind, attribute, raw value, place)."""
    from worker.sync.warnings import WarningTally

    tally = WarningTally()
    for kind, name, raw, where in problems:
        tally.add(object_type, kind, name, raw, None, where)
    report = QualityReport(connection="(file)", records={object_type: rows})
    kinds: Counter[str] = Counter()
    grouped: dict[str, list[tuple[str, ValueCount]]] = {}
    for (_obj, kind, name, value), entry in tally.entries.items():
        kinds[kind] += entry.count
        grouped.setdefault(name, []).append((kind, ValueCount(value, entry.count, (), tuple(entry.places))))
    report.warnings = dict(sorted(kinds.items()))
    for name in sorted(set(present) | set(grouped)):
        found = grouped.get(name, [])
        report.attributes.append(
            AttributeQuality(
                object_type,
                name,
                present.get(name, 0),
                unreadable=sum(v.count for k, v in found if k == "unreadable"),
                impossible=sum(v.count for k, v in found if k == "impossible"),
                values=sorted((v for _k, v in found), key=lambda v: -v.count)[:TOP_VALUES],
            )
        )
    if spec is not None:
        keyed = {(object_type, k): v for k, v in present.items()}
        report.criteria = coverage(spec, {object_type: rows}, keyed)
    return report
