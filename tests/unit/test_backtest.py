"""backtest: win rate per tier, lift, ROC AUC, calibration, warnings; derive, then backtest later deals."""

from __future__ import annotations

import itertools
import json
import random
from datetime import date
from functools import cache

import pytest

from worker.icp.backtest import backtest, render_side_by_side
from worker.icp.derive import derive
from worker.icp.draft import draft_icp_yaml
from worker.icp.history import AccountOutcome, Deal
from worker.icp.spec import parse_icp
from worker.icp.stats import auc_interval, roc_auc
from worker.icp.synthetic import synthetic_history

SPLIT = date(2023, 7, 1)

#: An ICP that ignores industry, size and location: founding year and tech stack (noise in these histories).
PLAIN = """
name: Plain
criteria:
  - key: founded
    attribute: founded_year
    weight: 50
    type: bands
    bands: [{min: 2000, credit: 1.0}, {min: 1985, max: 2000, credit: 0.5}]
  - key: stack
    attribute: tech_stack
    weight: 50
    type: contains_any
    values: [Okta, Salesforce]
"""

SIZE = """
name: Size
tiers: {best: 80, good: 60}
criteria:
  - key: employees
    attribute: employees
    weight: 1
    type: bands
    bands: [{min: 500, credit: 1.0}, {min: 100, max: 500, credit: 0.6}]
disqualifiers:
  - key: edu
    attribute: industry
    values: [Education]
"""


@cache
def planted() -> list[AccountOutcome]:
    return synthetic_history(2000, seed=4, planted=True)


@cache
def flat() -> list[AccountOutcome]:
    return synthetic_history(2000, seed=1, planted=False)


def _acc(aid: str, outcomes: list[bool], day: date | None = date(2024, 1, 1), **attributes) -> AccountOutcome:
    deals = tuple(Deal(f"{aid}-{i}", won, 1000.0, day) for i, won in enumerate(outcomes))
    return AccountOutcome(aid, attributes, deals)


# ------------------------------------------------------------------------------------------------- AUC


def _brute_auc(pairs):
    pos = [s for s, w in pairs if w]
    neg = [s for s, w in pairs if not w]
    return sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)) / (
        len(pos) * len(neg)
    )


def test_roc_auc_is_mann_whitney_with_ties():
    assert roc_auc([(1, False), (2, False), (3, True), (4, True)])[0] == 1.0
    assert roc_auc([(1, True), (2, False)])[0] == 0.0
    assert roc_auc([(5, True), (5, False), (5, True)])[0] == 0.5
    rng = random.Random(2)
    pairs = [(rng.randint(0, 10), rng.random() < 0.4) for _ in range(300)]
    auc, wins, losses = roc_auc(pairs)
    assert auc == pytest.approx(_brute_auc(pairs))
    assert wins + losses == 300
    assert roc_auc([(1, True)])[0] is None
    lo, hi = auc_interval(auc, wins, losses)
    assert lo < auc < hi


# ------------------------------------------------------------------------------------------- small, by hand


def test_tiers_rates_lift_calibration_and_warnings_by_hand():
    spec = parse_icp(SIZE, "size.yaml")
    history = [
        _acc("big", [True, True, True, False], employees=900, industry="Software"),  # 100 → best
        _acc("mid", [True, False, False, False], employees=200, industry="Software"),  # 60 → good
        _acc("small", [False, False], employees=20, industry="Software"),  # 0 → poor
        _acc("edu", [True, False], employees=5000, industry="Education"),  # disqualified
        _acc("nodata", [False], industry="Retail"),  # insufficient_data
        _acc("prospect", [], employees=900, industry="Software"),  # no closed deal: not judged
    ]
    report = backtest(spec, history)
    assert (report.deals, report.wins, report.accounts) == (13, 5, 5)
    assert report.base.rate == pytest.approx(5 / 13)
    rows = {t.label: t for t in report.tiers}
    assert [t.label for t in report.tiers] == ["best", "good", "poor", "disqualified", "insufficient_data"]
    assert (rows["best"].deals, rows["best"].wins) == (4, 3)
    assert rows["best"].lift == pytest.approx((3 / 4) / (5 / 13))
    assert rows["best"].lo < 0.75 < rows["best"].hi
    assert (rows["disqualified"].deals, rows["insufficient_data"].deals) == (2, 1)
    assert all(t.few for t in report.tiers)  # every tier rests on fewer than 30 deals
    deciles = {c.label: c.deals for c in report.calibration}
    assert deciles["90-100"] == 4 and deciles["60-69"] == 4 and deciles["0-9"] == 5
    assert any("Only 13 closed deals" in w for w in report.warnings)
    assert any("AUC rests on 5 won and 8 lost" in w for w in report.warnings)
    text = report.render_text()
    assert "best" in text and "WARNING" in text and "ROC AUC" in text
    data = json.loads(report.to_json())
    assert data["deals"] == 13 and data["tiers"][0]["label"] == "best"


def test_split_date_judges_only_later_deals_and_counts_undated_ones():
    spec = parse_icp(SIZE, "size.yaml")
    history = [
        AccountOutcome(
            "a",
            {"employees": 900},
            (
                Deal("1", True, 1.0, date(2023, 1, 1)),
                Deal("2", False, 1.0, date(2023, 9, 1)),
                Deal("3", True, 1.0, None),
            ),
        )
    ]
    report = backtest(spec, history, split_date=SPLIT)
    assert (report.deals, report.wins, report.undated) == (1, 0, 1)
    assert report.first_close == date(2023, 9, 1)
    assert any("no close date" in w for w in report.warnings)


def test_no_closed_deals_is_a_warning_not_a_crash():
    report = backtest(parse_icp(PLAIN, "plain.yaml"), [_acc("a", [])])
    assert report.deals == 0 and report.auc is None and report.base.rate is None
    assert report.warnings[0].startswith("No closed deals")
    report.render_text()
    json.loads(report.to_json())


# ------------------------------------------------------------------------------- derive → backtest, planted


def test_draft_from_earlier_deals_beats_a_plain_icp_on_later_deals():
    history = planted()
    draft = parse_icp(draft_icp_yaml(derive(history, split_date=SPLIT)), "draft.yaml")
    proposed = backtest(draft, history, split_date=SPLIT)
    current = backtest(parse_icp(PLAIN, "plain.yaml"), history, split_date=SPLIT)
    assert proposed.deals == current.deals > 500
    assert proposed.auc > 0.75
    assert proposed.auc_lo > current.auc_hi  # not a close call
    assert 0.4 < current.auc < 0.6
    best = proposed.tier("best")
    assert best.rate > proposed.base.rate and best.lift_lo > 1.5
    assert proposed.tier("poor").lift < 1
    # Calibration rises with the score: top decile with deals wins more often than the bottom one.
    filled = [c for c in proposed.calibration if c.deals]
    assert filled[-1].rate > filled[0].rate
    print(f"\nplanted: AUC draft {proposed.auc:.3f} vs plain {current.auc:.3f}")

    side = render_side_by_side(current, proposed)
    assert "current: Plain" in side and "proposed: Derived ICP" in side
    assert "ROC AUC" in side and f"{proposed.auc - current.auc:+.3f}" in side
    assert "win rate best" in side and "score 90-100" in side


def test_no_pattern_backtests_near_chance():
    history = flat()
    report = backtest(parse_icp(PLAIN, "plain.yaml"), history)
    assert report.deals > 2000
    assert abs(report.auc - 0.5) < 0.05 and report.auc_lo < 0.5 < report.auc_hi
    for tier in report.tiers:
        if tier.deals >= 30:
            assert tier.lift_lo < 1 < tier.lift_hi
    print(f"\nno pattern: AUC {report.auc:.3f}")
