"""The pieces under derive and backtest: reading a deal's status, the design effect, the cluster bootstrap,
the logistic regression and the verdict (pure)."""

from __future__ import annotations

import math
import random
from datetime import date

import numpy as np
import pytest

from worker.icp.backtest import backtest
from worker.icp.history import AccountOutcome, Deal, deal_from_status
from worker.icp.logit import fit_logistic
from worker.icp.stats import auc_interval, auc_of_accounts, cluster_bootstrap_auc, design_effect
from worker.icp.verdict import judge

SPLIT = date(2024, 1, 1)


@pytest.mark.parametrize(
    ("status", "closed", "won"),
    [
        ({"stage": "Closed Won"}, True, True),
        ({"stage": "Closed Lost"}, True, False),
        ({"stage": "closedwon"}, True, True),
        ({"stage": "closed_lost"}, True, False),
        ({"stage": "Negotiation/Review"}, False, False),
        # The flags decide when the export has them, whatever the stage says.
        ({"stage": "Closed Won", "is_closed": False, "is_won": False}, False, False),
        ({"stage": "Custom", "is_closed": True, "is_won": True}, True, True),
        ({"stage": "Closed Lost", "is_closed": True}, True, False),
    ],
)
def test_a_stage_that_names_the_outcome_is_read_without_flags(status, closed, won):
    account, deal = deal_from_status("o1", {"account_id": "a1", **status})
    assert account == "a1"
    assert (deal is not None) == closed
    if deal is not None:
        assert deal.won is won


def test_design_effect_is_one_for_single_deals_and_grows_with_correlated_accounts():
    rng = random.Random(1)
    singles = [(float(rng.random() < 0.3), 1.0) for _ in range(500)]
    assert design_effect(singles) == pytest.approx(1.0, abs=0.15)
    # 20 accounts of 50 deals each, every account wins all or nothing: one account = one witness.
    clustered = [(50.0 if i % 3 == 0 else 0.0, 50.0) for i in range(20)]
    assert design_effect(clustered) == pytest.approx(50.0, rel=0.06)
    # A rate of 0 cannot show its correlation: the worst case is assumed.
    assert design_effect([(0.0, 40.0), (0.0, 10.0)]) == pytest.approx((1600 + 100) / 50)


def test_cluster_bootstrap_is_seeded_and_as_wide_as_the_accounts_warrant():
    rng = random.Random(4)
    # 30 accounts with 40 deals each: the score says something, but there are only 30 accounts.
    scored = []
    for i in range(30):
        p = rng.random()
        wins = sum(rng.random() < p for _ in range(40))
        scored.append((p + rng.gauss(0, 0.3), wins, 40 - wins))
    auc = auc_of_accounts(scored)
    lo, hi = cluster_bootstrap_auc(scored)
    assert lo < auc < hi
    assert cluster_bootstrap_auc(scored) == (lo, hi)  # seeded
    wins = sum(w for _, w, _ in scored)
    naive_lo, naive_hi = auc_interval(auc, wins, 1200 - wins)
    assert hi - lo > 2 * (naive_hi - naive_lo)  # the deal-level interval pretends 1,200 witnesses
    assert cluster_bootstrap_auc([(1.0, 3, 2)]) is None


def test_logistic_regression_recovers_known_log_odds():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2, size=(4000, 2)).astype(float)
    true = np.array([1.5, -1.0])
    p = 1 / (1 + np.exp(-(-0.5 + x @ true)))
    won = (rng.random(4000) < p).astype(float)
    intercept, beta, iterations, converged = fit_logistic(x, won, np.ones(4000), l2=0.0)
    assert converged and iterations < 15
    assert intercept == pytest.approx(-0.5, abs=0.15)
    assert beta == pytest.approx(true, abs=0.15)
    # The penalty shrinks towards zero.
    _, shrunk, _, _ = fit_logistic(x, won, np.ones(4000), l2=500.0)
    assert all(abs(s) < abs(b) for s, b in zip(shrunk, beta, strict=True))


def _history(n: int, signal: bool, seed: int = 5) -> list[AccountOutcome]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        industry = rng.choice(["A", "B", "C"])
        p = (0.7 if industry == "A" else 0.15) if signal else 0.3
        deals = tuple(
            Deal(
                f"{i}-{k}",
                rng.random() < p,
                1.0,
                date(2023, 1 + k % 12, 1 + k % 27) if k % 2 else date(2024, 3, 1),
            )
            for k in range(rng.randint(1, 3))
        )
        out.append(AccountOutcome(f"A{i}", {"industry": industry}, deals))
    return out


ICP = """
name: Industry A
criteria:
  - {key: industry, attribute: industry, weight: 1, type: categorical, values: {A: 1.0}}
"""


def test_backtest_reports_a_statistical_model_beside_the_icp():
    from worker.icp.spec import parse_icp

    report = backtest(parse_icp(ICP, "icp.yaml"), _history(600, True), split_date=SPLIT)
    assert report.model_attributes == ("industry",)
    assert report.auc > 0.65 and report.model_auc == pytest.approx(report.auc, abs=0.02)
    assert report.model_auc_lo < report.model_auc < report.model_auc_hi
    text = report.render_text()
    assert f"your ICP {report.auc:.2f}; a statistical model on the same data {report.model_auc:.2f}" in text
    assert "trained on deals before 2024-01-01" in text


def test_backtest_warns_about_few_accounts_and_no_lost_only_account():
    from worker.icp.spec import parse_icp

    history = [
        AccountOutcome(
            f"A{i}",
            {"industry": "A" if i % 2 else "B"},
            (Deal(f"{i}a", True, 1.0, SPLIT), Deal(f"{i}b", i % 3 == 0, 1.0, SPLIT)),
        )
        for i in range(60)
    ]
    report = backtest(parse_icp(ICP, "icp.yaml"), history)
    assert any("only 60 accounts" in w and "fewer than 100" in w for w in report.warnings)
    assert any("No account has only lost deals" in w for w in report.warnings)


def test_verdict_in_plain_words():
    from worker.icp.spec import parse_icp

    spec = parse_icp(ICP, "icp.yaml")
    good = backtest(spec, _history(600, True), split_date=SPLIT)
    verdict = judge(good, None, SPLIT)
    assert verdict.ok and verdict.message.startswith("better than chance on deals after 2024-01-01")
    noise = backtest(spec, _history(600, False), split_date=SPLIT)
    verdict = judge(noise, None, SPLIT)
    assert not verdict.ok
    assert verdict.message.startswith("no better than chance on deals after 2024-01-01: no pattern found")
    # As good as the current ICP is not better than it.
    verdict = judge(good, good, SPLIT)
    assert not verdict.ok and "no better than the current ICP 'Industry A'" in verdict.message
    assert math.isclose(verdict.current_auc, good.auc)
