"""derive: best customers, evidence with intervals, and the draft ICP (pure, on synthetic histories)."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta
from functools import cache

import pytest

from worker.icp.bands import nice_edges, nice_number
from worker.icp.derive import NoReliablePatternError, derive
from worker.icp.draft import draft_icp_yaml
from worker.icp.history import AccountOutcome, Deal
from worker.icp.spec import parse_icp
from worker.icp.stats import enrichment_p, ratio_interval, wilson_interval, z_for
from worker.icp.synthetic import synthetic_history

SPLIT = date(2023, 7, 1)


@cache
def planted() -> list[AccountOutcome]:
    return synthetic_history(2000, seed=4, planted=True)


@cache
def flat() -> list[AccountOutcome]:
    return synthetic_history(2000, seed=1, planted=False)


# ------------------------------------------------------------------------------------------ statistics


def test_wilson_interval_matches_known_values():
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_ratio_interval_holds_the_ratio_and_widens_with_fewer_accounts():
    ratio, lo, hi = ratio_interval(30, 100, 150, 1000)
    assert ratio == pytest.approx(2.0) and lo < 2.0 < hi and lo > 1.0
    _, lo_small, hi_small = ratio_interval(3, 10, 150, 1000)
    assert lo_small < lo and hi_small > hi and lo_small < 1.0  # same lift, five times fewer accounts
    assert ratio_interval(0, 10, 5, 100)[:2] == (0.0, 0.0)
    assert math.isinf(ratio_interval(3, 10, 0, 100)[0])
    assert math.isnan(ratio_interval(1, 0, 1, 10)[0])


def test_enrichment_p_is_the_hypergeometric_upper_tail():
    def brute(k, n, hits, total):
        return sum(
            math.comb(hits, x) * math.comb(total - hits, n - x) for x in range(k, min(hits, n) + 1)
        ) / math.comb(total, n)

    for k, n, hits, total in [(5, 10, 20, 100), (8, 10, 20, 100), (3, 3, 3, 50), (12, 40, 100, 400)]:
        assert enrichment_p(k, n, hits, total) == pytest.approx(brute(k, n, hits, total), rel=1e-9)
    assert enrichment_p(1, 10, 10, 100) == 1.0  # at or below the expected count


def test_simultaneous_intervals_are_wider_than_single_ones():
    assert z_for(0.95) == pytest.approx(1.96, abs=1e-3)
    assert z_for(0.95, 40) > 3.0


def test_band_edges_are_human_numbers():
    rng = random.Random(3)
    employees = [max(1, round(math.exp(rng.gauss(math.log(200), 1.3)))) for _ in range(3000)]
    edges = nice_edges(employees)
    assert len(edges) == 3 and edges == sorted(edges)
    for e in edges:
        assert e == nice_number(e, 0)  # unchanged
        mantissa = e / 10 ** math.floor(math.log10(e))
        assert mantissa in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 7.5, 8, 9), edges
    years = [rng.randint(1960, 2020) for _ in range(2000)]
    assert all(y % 5 == 0 for y in nice_edges(years))
    assert nice_edges([7, 7, 7]) == []


# ------------------------------------------------------------------------------------------ best customers


def _account(aid: str, deals: list[tuple[bool, float, date]], **attributes) -> AccountOutcome:
    return AccountOutcome(
        account_id=aid,
        attributes=attributes or {"industry": "X"},
        deals=tuple(Deal(f"{aid}-{i}", won, amount, day) for i, (won, amount, day) in enumerate(deals)),
    )


def test_best_customers_follow_the_measure():
    history = [
        _account("big", [(True, 100_000, date(2024, 1, 1))]),
        _account("many", [(True, 10_000, date(2024, 2, 1))] * 3),
        _account("old", [(True, 5_000, date(2020, 1, 1))]),
        _account("lost", [(False, 50_000, date(2024, 1, 1))]),
        _account("none", []),
    ]
    best = {
        m: derive(history, measure=m, top=0.34).best_account_ids for m in ("won_amount", "wins", "tenure")
    }
    assert best == {"won_amount": ("big",), "wins": ("many",), "tenure": ("old",)}
    report = derive(history)
    assert (report.accounts, report.won_accounts, report.lost_only_accounts) == (5, 3, 1)
    with pytest.raises(ValueError, match="measure"):
        derive(history, measure="happiness")
    with pytest.raises(ValueError, match="top"):
        derive(history, top=1.5)


def test_split_date_keeps_only_earlier_deals():
    history = planted()
    before = sum(1 for a in history for d in a.deals if d.close_date < SPLIT)
    report = derive(history, split_date=SPLIT)
    assert report.closed_deals == before < sum(len(a.deals) for a in history)
    assert report.split_date == SPLIT


# ----------------------------------------------------------------------------------------- planted pattern


def test_planted_pattern_is_recovered_with_evidence():
    report = derive(planted(), split_date=SPLIT)
    assert report.reliable
    by_attr = {c.attribute: c for c in report.criteria}
    assert {"industry", "employees"} <= set(by_attr)
    assert {"country", "region"} & set(by_attr)
    # Country and region say the same thing: one criterion stands for both.
    assert not {"country", "region"} <= set(by_attr)

    industry = {pc.cell.label: pc for pc in by_attr["industry"].credits}
    assert industry["Computer Software"].credit == 1.0 and industry["Computer Software"].basis == "reliable"
    software = industry["Computer Software"].cell
    assert software.lift_lo > 1.0 and software.best >= report.min_support and software.p_value < 1e-6

    top_band = max(by_attr["employees"].credits, key=lambda pc: pc.credit)
    assert top_band.credit == 1.0 and top_band.cell.band_max is None and 300 <= top_band.cell.band_min <= 700

    location = by_attr.get("region") or by_attr["country"]
    assert any(pc.cell.label in ("North America", "US") for pc in location.credits)

    # Noise attributes stay out.
    assert not {"founded_year", "tech_stack"} & set(by_attr)
    assert sum(c.weight for c in report.criteria) == pytest.approx(100, abs=2)
    # Education almost never wins: a suggested disqualifier.
    assert [(d.cell.attribute, d.cell.label) for d in report.disqualifiers] == [("industry", "Education")]


def test_draft_parses_and_carries_the_evidence():
    report = derive(planted(), split_date=SPLIT, source="connection acme")
    text = draft_icp_yaml(report)
    spec = parse_icp(text, "draft.yaml")
    assert {c.attribute for c in spec.criteria} == {c.attribute for c in report.criteria}
    assert spec.tiers == (("best", 80), ("good", 60)) and spec.min_coverage == 0.5
    industry = next(c for c in spec.criteria if c.attribute == "industry")
    assert industry.type == "categorical" and industry.values["computer software"] == 1.0
    employees = next(c for c in spec.criteria if c.attribute == "employees")
    assert employees.type == "bands" and max(b.credit for b in employees.bands) == 1.0
    assert [d.values for d in spec.disqualifiers] == [frozenset({"education"})]
    assert text.startswith("# DRAFT ICP")
    assert "connection acme" in text
    assert "lift" in text and "best " in text and "vs all " in text
    assert "Computer Software" in text.split("key: industry")[1]


def test_partial_credit_goes_to_the_band_next_to_the_best_one():
    rng = random.Random(1)
    history = []
    for i in range(800):
        employees = rng.randint(1, 1000)
        p = 0.8 if employees >= 750 else 0.45 if employees >= 500 else 0.1
        history.append(
            _account(f"A{i}", [(rng.random() < p, 10_000.0, date(2023, 1, 1))], employees=employees)
        )
    report = derive(history, top=0.5)
    (criterion,) = report.criteria
    top, nxt = criterion.credits
    assert (top.cell.band_min, top.cell.band_max, top.credit, top.basis) == (750, None, 1.0, "reliable")
    assert (nxt.cell.band_min, nxt.cell.band_max, nxt.basis) == (500, 750, "partial")
    assert 0 < nxt.credit <= 0.5 and nxt.cell.lift > 1 and nxt.cell.lift_lo <= 1
    # The lower bands almost never win: suggested disqualifiers with numeric bounds.
    spec = parse_icp(draft_icp_yaml(report), "draft.yaml")
    assert [(b.min, b.max) for b in spec.criteria[0].bands] == [(750, None), (500, 750)]
    assert [(d.min, d.max) for d in spec.disqualifiers] == [(None, 250), (250, 500)]
    assert "partial credit, not yet reliable" in draft_icp_yaml(report)


def test_awkward_values_survive_the_yaml_round_trip():
    rng = random.Random(1)
    values = ["yes", "NO", 'Café "Ünïcode"', "a: b # c", "Ärzte\nund", "-", "[x]", "10", "null"]
    good = {"yes", 'Café "Ünïcode"', "a: b # c", "null"}
    history = []
    for i in range(3000):
        v = rng.choice(values)
        won = rng.random() < (0.8 if v in good else 0.05)
        history.append(_account(f"A{i}", [(won, 1.0, date(2024, 1, 1))], weird=v))
    report = derive(history, top=0.5)
    spec = parse_icp(draft_icp_yaml(report), "draft.yaml")
    assert set(spec.criteria[0].values) == {v.casefold() for v in good}
    keys = [c.key for c in spec.criteria] + [d.key for d in spec.disqualifiers]
    assert len(keys) == len(set(keys))
    assert {v for d in spec.disqualifiers for v in d.values} == {v.casefold() for v in set(values) - good}


def test_set_and_boolean_attributes_become_contains_any_and_boolean_criteria():
    rng = random.Random(5)
    history = []
    for i in range(1500):
        stack = sorted(t for t in ("Okta", "Slack", "AWS") if rng.random() < 0.4)
        public = rng.random() < 0.3
        p = 0.05 + 0.5 * ("Okta" in stack) + 0.3 * public
        deals = [(rng.random() < p, 10_000.0, date(2023, 1, 1))]
        history.append(_account(f"A{i}", deals, tech_stack=stack, is_public=public, industry="Same"))
    report = derive(history, top=0.5)
    by_attr = {c.attribute: c for c in report.criteria}
    assert set(by_attr) == {"tech_stack", "is_public"}
    assert [pc.cell.label for pc in by_attr["tech_stack"].credits if pc.basis == "reliable"] == ["Okta"]
    spec = parse_icp(draft_icp_yaml(report), "draft.yaml")
    types = {c.attribute: c for c in spec.criteria}
    assert types["tech_stack"].type == "contains_any" and "okta" in types["tech_stack"].values
    assert types["is_public"].type == "boolean" and types["is_public"].expected is True
    # "industry" has a single value: nothing to learn, reported as such.
    assert any("industry" in w for w in report.warnings)


# --------------------------------------------------------------------------------------------- no pattern


def test_no_pattern_gives_no_confident_claim_and_no_draft():
    report = derive(flat())
    assert not report.reliable and report.criteria == () and report.disqualifiers == ()
    cells = [c for ev in report.attributes for c in ev.cells]
    assert len(cells) >= 30
    assert all(c.lift_lo <= 1.0 <= c.lift_hi for c in cells)  # every interval includes "no effect"
    assert report.warnings[0].startswith("No reliable pattern")
    assert "No reliable pattern" in report.render_text()
    with pytest.raises(NoReliablePatternError, match="no reliable pattern"):
        draft_icp_yaml(report)


def test_a_pattern_in_five_accounts_is_not_a_law():
    # Five customers, all of them in Biotech (a tenth of the accounts): striking, but five accounts.
    history = [_account(f"W{i}", [(True, 1000.0, date(2024, 1, 1))], industry="Biotech") for i in range(5)]
    history += [_account(f"B{i}", [(False, 1000.0, date(2024, 1, 1))], industry="Biotech") for i in range(5)]
    history += [
        _account(f"L{i}", [(False, 1000.0, date(2024, 1, 1))], industry=f"I{i % 3}") for i in range(90)
    ]
    report = derive(history, top=1.0)
    biotech = next(c for ev in report.attributes for c in ev.cells if c.label == "Biotech")
    assert biotech.best == 5 and biotech.lift == pytest.approx(10.0)
    assert not biotech.reliable and not report.reliable
    assert any("Only 5 best customers" in w for w in report.warnings)


def test_empty_history_says_so():
    report = derive([])
    assert not report.reliable
    assert any("empty" in w for w in report.warnings)
    report = derive([_account("a", [(False, 1.0, date(2024, 1, 1))])])
    assert any("No account has a won deal" in w for w in report.warnings)


def test_identifier_like_attributes_are_not_analysed():
    history = [
        _account(
            f"A{i}", [(i % 2 == 0, 1.0, date(2024, 1, 1) + timedelta(days=i))], vat=f"V{i}", industry="X"
        )
        for i in range(200)
    ]
    report = derive(history)
    assert "vat" not in {ev.attribute for ev in report.attributes}
    assert any("'vat'" in w and "identifier" in w for w in report.warnings)


def test_report_json_is_plain_data():
    import json

    data = json.loads(derive(planted(), split_date=SPLIT).to_json())
    assert data["reliable"] is True and data["split_date"] == SPLIT.isoformat()
    assert {c["attribute"] for c in data["criteria"]} >= {"industry", "employees"}


# ------------------------------------------------------------------------------------------------ leakage


def _leaky_history(n: int = 1200, seed: int = 8) -> list[AccountOutcome]:
    """Software wins more often; ``account_type`` says Customer because an account won; ``segment``
    (an innocent name) is set the same way, but by a CRM admin."""
    rng = random.Random(seed)
    history = []
    for i in range(n):
        industry = rng.choice(["Software", "Retail", "Banking"])
        p = 0.6 if industry == "Software" else 0.2
        deals = [(rng.random() < p, 10_000.0, date(2024, 1, 1) + timedelta(days=i % 300))]
        won = deals[0][0]
        attributes = {
            "industry": industry,
            "account_type": "Customer - Direct" if won else rng.choice(["Prospect", "Other"]),
            "segment": "Key" if won else "Open",
        }
        history.append(_account(f"A{i}", deals, **attributes))
    return history


def test_outcome_attributes_are_left_out_and_the_report_says_why():
    report = derive(_leaky_history())
    analysed = {ev.attribute for ev in report.attributes}
    assert "account_type" not in analysed and "segment" not in analysed
    assert {c.attribute for c in report.criteria} == {"industry"}
    why = {e.attribute: e for e in report.excluded}
    assert why["account_type"].kind == "outcome" and "sales state" in why["account_type"].reason
    # "segment" has an innocent name, but its values separate won from lost accounts: a probable leak.
    assert why["segment"].kind == "leak" and why["segment"].separation >= 0.95
    text = report.render_text()
    assert "left out: account_type" in text and "--include account_type" in text
    assert "left out: segment" in text and "separate won from lost" in text
    assert "# Left out: account_type" in draft_icp_yaml(report)


def test_include_overrides_the_leak_guards():
    report = derive(_leaky_history(), include=["account_type", "Segment"])
    assert {"account_type", "segment"} <= {ev.attribute for ev in report.attributes}
    assert report.excluded == ()


def test_a_strong_genuine_trait_is_not_called_a_leak():
    report = derive(planted(), split_date=SPLIT)
    assert report.excluded == ()
    assert all(ev.separation is None or ev.separation < 0.8 for ev in report.attributes)


# ------------------------------------------------------------------------------------ what predicts winning


def test_weights_follow_the_odds_of_winning_not_the_size_of_the_customer():
    report = derive(planted(), split_date=SPLIT)
    weights = {c.attribute: c.weight for c in report.criteria}
    # The three planted traits carry the profile; none of them is an afterthought (the old ranking by won
    # amount gave industry a weight of 6).
    location = weights.get("region", weights.get("country", 0))
    assert min(weights["industry"], weights["employees"], location) >= 15, weights
    assert report.measure == "win_rate" and report.model_converged is True
    software = next(c for ev in report.attributes for c in ev.cells if c.label == "Computer Software")
    assert software.by_win_rate and software.deal_win_rate > software.base_deal_win_rate


def test_the_old_measures_stay_available():
    for measure in ("won_amount", "wins", "tenure"):
        report = derive(planted(), split_date=SPLIT, measure=measure)
        assert report.measure == measure and report.reliable
        assert not any(c.by_win_rate for ev in report.attributes for c in ev.cells)


def test_many_deals_of_a_few_accounts_are_not_many_witnesses():
    # No attribute predicts winning; big accounts have many deals and their own (random) propensity.
    from worker.icp.synthetic import signalless_history

    history = signalless_history()
    report = derive(history, split_date=date(2017, 9, 15))
    assert not report.reliable and report.warnings[0].startswith("No reliable pattern")
    big = [c for ev in report.attributes if ev.attribute == "employees" for c in ev.cells][-1]
    assert big.design_effect > 3  # dozens of deals per account, correlated within the account
    # Ranking "best customers" by won amount falls for size (the old default): the verdict catches it.
    by_amount = derive(history, split_date=date(2017, 9, 15), measure="won_amount")
    assert by_amount.reliable


def test_small_samples_are_warned_in_words():
    history = [_account(f"W{i}", [(True, 1.0, date(2024, 1, 1))], industry="X") for i in range(40)]
    report = derive(history)
    assert any("Only 40 accounts have closed deals" in w for w in report.warnings)
    assert any("No account has only lost deals" in w for w in report.warnings)


def test_no_closed_deal_says_which_columns_it_looked_for():
    report = derive([AccountOutcome("a", {"industry": "X"}), AccountOutcome("b", {"industry": "Y"})])
    assert "IsClosed" in report.warnings[1] and "Closed Won" in report.warnings[1]


# ------------------------------------------------------------------------------------------------ labels


def test_band_labels_are_whole_and_years_are_years():
    rng = random.Random(2)
    history = []
    for i in range(600):
        revenue = rng.choice([2e8, 6e8, 9e8, 1.3e9, 4e9])
        won = rng.random() < (0.7 if revenue >= 1.25e9 else 0.2)
        history.append(
            _account(f"A{i}", [(won, 1.0, date(2024, 1, 1))], annual_revenue=revenue,
                     founded_year=rng.randint(1990, 2020))
        )  # fmt: skip
    report = derive(history)
    text = report.render_text()
    labels = [c.label for ev in report.attributes for c in ev.cells]
    assert any(" to < 1,250,000,000" in label for label in labels), labels
    for label in labels:
        assert label in text  # never cut
    years = [c.label for ev in report.attributes if ev.attribute == "founded_year" for c in ev.cells]
    assert years and all("," not in y and "." not in y for y in years), years


def test_a_value_that_only_lowers_the_odds_is_no_disqualifier():
    # "Other" industries rarely win (a red flag), but in North America they still do: their accounts keep a
    # credit of 0 on industry instead of a disqualifier's score 0. "Edu" never wins anywhere.
    rng = random.Random(6)
    p = {("Software", "NA"): 0.6, ("Software", "EMEA"): 0.3, ("Other", "NA"): 0.12}
    history = []
    for i in range(8000):
        industry = rng.choices(["Software", "Other", "Edu"], [0.3, 0.55, 0.15])[0]
        region = rng.choice(["NA", "EMEA"])
        won = rng.random() < p.get((industry, region), 0.005)
        history.append(_account(f"A{i}", [(won, 1.0, date(2024, 1, 1))], industry=industry, region=region))
    report = derive(history)
    other = next(c for ev in report.attributes for c in ev.cells if c.label == "Other")
    assert other.red_flag
    assert [(d.cell.attribute, d.cell.label) for d in report.disqualifiers] == [("industry", "Edu")]
    assert {c.attribute for c in report.criteria} == {"industry", "region"}


def test_outcomes_named_by_the_connection_are_left_out():
    history = [
        _account(f"A{i}", [(i % 3 == 0, 1.0, date(2024, 1, 1))], industry=f"I{i % 4}", tier=f"T{i % 5}")
        for i in range(300)
    ]
    report = derive(history, outcomes={"tier": "mapped from Tier__c, the customer field"})
    assert [(e.attribute, e.reason) for e in report.excluded] == [
        ("tier", "mapped from Tier__c, the customer field")
    ]
    assert "tier" not in {ev.attribute for ev in report.attributes}
