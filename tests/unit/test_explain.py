"""Pure explanation parts: why a fit changed, what a re-engagement reason says, history and time travel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from worker.evaluate import Policy, evaluate
from worker.icp.changes import ChangeCause, change_cause, change_note, values_changed
from worker.icp.explain import HistoryRow, RecordData, StoredFit, explain, fit_as_of, history_lines
from worker.icp.spec import parse_icp
from worker.reengage import rise_explanation

from .test_scoring import ACCOUNT, SCORER, SPEC

T0 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)

V1 = parse_icp(
    """\
name: v1
criteria:
  - {key: industry, attribute: industry, weight: 30, type: categorical, values: {Computer Software: 1.0}}
  - key: employees
    attribute: employees
    weight: 25
    type: bands
    bands: [{min: 1000, credit: 1.0}, {min: 500, max: 1000, credit: 0.5}]
"""
)
V2 = parse_icp(
    """\
name: v2
criteria:
  - key: industry
    attribute: industry
    weight: 30
    type: categorical
    values: {Computer Software: 1.0, Financial Services: 0.4}
  - key: employees
    attribute: employees
    weight: 25
    type: bands
    bands: [{min: 500, credit: 1.0}, {min: 200, max: 500, credit: 0.6}]
"""
)


def reasons(spec: Any, attributes: dict[str, Any]) -> list[dict[str, Any]]:
    from worker.icp.scoring import Scorer

    return Scorer(spec).score(attributes).reasons_json()


# -------------------------------------------------------------------------------------- re-engagement


def test_rise_explanation_says_what_the_revision_changed():
    record = {"industry": "Financial Services", "employees": 742}
    text = rise_explanation("poor", "best", 2, reasons(V1, record), reasons(V2, record))
    assert text == (
        "poor → best under ICP v2: employees 742 ≥ 500: +45.5, was +22.7 before ICP v2; "
        "industry Financial Services: +21.8, new in ICP v2"
    )


def test_rise_explanation_says_what_the_data_changed():
    old = reasons(V2, {"industry": "Computer Software", "employees": 350})
    new = reasons(V2, {"industry": "Computer Software", "employees": 742})
    assert rise_explanation("good", "best", 2, old, new) == (
        "good → best under ICP v2: employees 742 ≥ 500: +45.5, was 350"
    )
    missing = reasons(V2, {"industry": "Computer Software"})
    assert rise_explanation("poor", "best", 2, missing, new).endswith(
        "employees 742 ≥ 500: +45.5, was missing"
    )


def test_rise_explanation_without_a_previous_fit_or_with_old_reasons_that_keep_no_value():
    new = reasons(V2, {"industry": "Computer Software", "employees": 742})
    assert rise_explanation("unscored", "best", 2, [], new) == (
        "unscored → best under ICP v2: industry Computer Software: +54.5; employees 742 ≥ 500: +45.5"
    )
    legacy = [{k: v for k, v in r.items() if k != "value"} for r in reasons(V1, {"employees": 742})]
    # the same sentence but for its points: the revision; a different sentence: the reasons cannot tell
    assert change_note(legacy[1], new[1], 2) == ""
    same = {**legacy[1], "text": "employees 742 ≥ 500: +10", "points": 10.0}
    assert change_note(same, new[1], 2) == ", was +10 before ICP v2"


# ---------------------------------------------------------------------------------------------- causes


def test_change_cause():
    a = reasons(V1, {"industry": "Computer Software", "employees": 742})
    b = reasons(V2, {"industry": "Computer Software", "employees": 742})
    c = reasons(V2, {"industry": "Computer Software", "employees": 2000})
    kw: dict[str, Any] = {"had_fit": True, "previous_version": 1, "version": 2}
    assert change_cause(**kw, old_reasons=a, new_reasons=b) is ChangeCause.REVISION
    assert change_cause(**kw, old_reasons=a, new_reasons=c) is ChangeCause.REVISION_AND_DATA
    assert change_cause(**{**kw, "previous_version": 2}, old_reasons=b, new_reasons=c) is ChangeCause.DATA
    assert change_cause(**{**kw, "had_fit": False}, old_reasons=[], new_reasons=b) is ChangeCause.FIRST
    assert change_cause(**kw, old_reasons=a, new_reasons=b, carried=True) is ChangeCause.ACCOUNT
    assert values_changed(a, c) is True and values_changed(a, b) is False
    legacy = [{k: v for k, v in r.items() if k != "value"} for r in a]
    assert values_changed(legacy, c) is None
    assert change_cause(**kw, old_reasons=legacy, new_reasons=c) is ChangeCause.REVISION


@dataclass
class Snap:
    object_type: str = "account"
    external_id: str = "A1"
    attributes: dict[str, Any] | None = None
    status: dict[str, Any] | None = None
    last_activity: date | None = None


@dataclass
class Fit:
    score: int
    tier: str
    coverage: float
    reasons: list[dict[str, Any]]
    reasons_text: str
    icp_version: int
    written: dict[str, Any] | None
    write_status: str
    scored_at: datetime


def _policy(version: int) -> Policy:
    return Policy(
        icp_version=version,
        objects=("account",),
        target_tiers=frozenset({"best", "good"}),
        dismissed_statuses=frozenset(),
        stale_days=90,
        cooloff_days=30,
    )


def test_the_evaluation_records_the_cause_and_the_replaced_fit_in_its_history_entry():
    first = evaluate(Snap(attributes=ACCOUNT), None, scorer=SCORER, policy=_policy(1), now=T0)
    assert first.history is not None and first.history.cause is ChangeCause.FIRST
    assert first.history.reasons_text == first.reasons_text
    fit = Fit(
        first.score,
        first.tier,
        first.coverage,
        list(first.reasons),
        first.reasons_text,
        1,
        None,
        "pending",
        T0,
    )
    grown = evaluate(
        Snap(attributes={**ACCOUNT, "employees": 900}), fit, scorer=SCORER, policy=_policy(1), now=T0
    )
    assert grown.history is not None
    assert (grown.history.cause, grown.history.previous_score, grown.history.previous_version) == (
        ChangeCause.DATA,
        67,
        1,
    )
    from worker.icp.scoring import Scorer

    revised = evaluate(Snap(attributes=ACCOUNT), fit, scorer=Scorer(V2), policy=_policy(2), now=T0)
    assert revised.history is not None and revised.history.cause is ChangeCause.REVISION


# ---------------------------------------------------------------------------------- history, as of


def _rows() -> list[HistoryRow]:
    return [
        HistoryRow(T0, 1, 1, 43, "poor", None),
        HistoryRow(T0 + timedelta(days=10), 2, 2, 65, "good", "poor"),  # written before causes were kept
        HistoryRow(T0 + timedelta(days=20), 2, 5, 81, "best", "good", 65, 2, "data", "81 best | …"),
    ]


def test_history_lines_infer_causes_of_old_entries_and_keep_recorded_ones():
    lines = history_lines(list(reversed(_rows())))
    assert [h.cause for h in lines] == ["first", "revision", "data"]
    assert [h.why for h in lines] == [
        "first score, under ICP v1",
        "ICP revision (v1 → v2)",
        "the record's data changed",
    ]
    assert (lines[1].previous_score, lines[1].previous_version) == (43, 1)


def test_fit_as_of_uses_the_last_change_and_the_runs_since():
    lines = history_lines(_rows())
    assert fit_as_of(T0 - timedelta(seconds=1), lines).tier is None
    then = fit_as_of(T0 + timedelta(days=5), lines)
    assert (then.tier, then.score, then.icp_version, then.since) == ("poor", 43, 1, T0)
    # a v3 run after the last change that left the record as it was: still best, now under v3
    runs = [(T0 + timedelta(days=25), 3), (T0 + timedelta(days=40), 4)]
    later = fit_as_of(T0 + timedelta(days=30), lines, runs)
    assert (later.tier, later.icp_version) == ("best", 3)
    assert later.why == "the record's data changed; unchanged under ICP v3"
    assert later.reasons_text == "81 best | …"


def test_explain_lists_every_criterion_with_raw_and_read_values():
    record = RecordData(
        "demo", "account", "A1", "Acme", {**ACCOUNT, "tech_stack": None, "annual_revenue": "n/a"}
    )
    result = SCORER.score(record.attributes)
    fit = StoredFit(result.score, result.tier, result.coverage, 1, T0, result.compact())
    e = explain(record, fit, SPEC)
    assert e.current and e.missing == ("annual_revenue", "tech_stack")
    assert [(r.key, r.raw, r.value, r.points) for r in e.reasons[:3]] == [
        ("industry", "Computer Software", "Computer Software", 30.0),
        ("employees", 350, "350", 15.0),
        ("country", "CA", "CA", 14.0),
    ]
    data = e.to_dict()
    assert {"score", "tier", "coverage", "icp_version", "reasons", "history"} <= set(data)
    assert data["next_tier"]["target"] == "good"
    stale = explain(record, StoredFit(90, "best", 1.0, 1, T0, ""), SPEC)
    assert not stale.current
