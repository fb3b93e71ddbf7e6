"""next_tier: the single-attribute changes that lift a record, checked by rescoring (hypothesis)."""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.icp.model import DISQUALIFIED, INSUFFICIENT_DATA, IcpSpec
from worker.icp.moves import next_tier, tier_ladder, tier_rank
from worker.icp.scoring import Scorer
from worker.icp.spec import parse_icp

from .test_scoring import ACCOUNT, SCORER, SPEC

DEMO_V2 = parse_icp((resources.files("worker.demo") / "icp_v2.yaml").read_text("utf-8"), "icp_v2.yaml")


def test_a_good_account_gets_a_move_that_rescoring_confirms():
    record = {**ACCOUNT, "employees": 620}  # 30 + 25 + 14 + 7.5 + 0 = 76.5 → 77 good
    result = SCORER.score(record)
    assert (result.score, result.tier) == (77, "good")
    nxt = next_tier(SCORER, record)
    assert nxt.current == "good" and nxt.target == "best"
    assert [m.text for m in nxt.moves] == [
        "country US would make it best: +6",
        "revenue ≥ 50M would make it best: +7.5",
        "tech_stack has Okta would make it best: +10",
    ]
    for move in nxt.moves:
        lifted = SCORER.score({**record, move.attribute: move.value})
        assert lifted.tier == "best" and lifted.score == move.score >= 80


def test_the_smallest_band_that_lifts_is_named():
    # 30 + 15 + 14 + 7.5 + 10 = 76.5: employees 350 → ≥ 500 gives +10 → 87 best
    record = {**ACCOUNT, "tech_stack": ["Okta"]}
    moves = {m.criterion: m for m in next_tier(SCORER, record).moves}
    assert moves["employees"].text == "employees ≥ 500 would make it best: +10"
    assert moves["employees"].value == 500


def test_top_tier_has_no_target_and_poor_records_aim_for_the_next_rung():
    best = {
        **ACCOUNT,
        "employees": 900,
        "country": "US",
        "annual_revenue": 60_000_000,
        "tech_stack": ["okta"],
    }
    assert next_tier(SCORER, best).target is None and next_tier(SCORER, best).moves == ()
    poor = {**ACCOUNT, "industry": "Retail"}  # 0 + 15 + 14 + 7.5 = 36.5 → 37 poor
    nxt = next_tier(SCORER, poor)
    assert nxt.target == "good"
    assert [m.text for m in nxt.moves] == ["industry Computer Software would make it good: +30"]


def test_insufficient_data_moves_fill_a_missing_attribute():
    record = {"industry": "Computer Software"}
    nxt = next_tier(SCORER, record)
    assert nxt.current == INSUFFICIENT_DATA and nxt.target == "poor"
    # coverage 0.3: industry and either employees (0.25) or country (0.2) reach min_coverage 0.5
    assert {m.criterion for m in nxt.moves} == {"employees", "country"}
    assert all("would give enough data to score it" in m.text for m in nxt.moves)


def test_a_disqualified_record_names_the_disqualifier_and_what_clears_it():
    nxt = next_tier(SCORER, {**ACCOUNT, "employees": 5})
    assert nxt.current == DISQUALIFIED
    assert [(c.disqualifier, c.clears) for c in nxt.clearances] == [("too_small", "employees ≥ 10")]
    assert nxt.without_disqualifiers == (52, "poor") and nxt.target == "poor"
    assert SCORER.score({**ACCOUNT, "employees": 10}).tier != DISQUALIFIED
    nxt = next_tier(SCORER, {**ACCOUNT, "industry": "Competitor", "is_student": "yes"})
    assert [(c.disqualifier, c.clears) for c in nxt.clearances] == [
        ("competitor", "industry other than Competitor"),
        ("student", "is_student no"),
    ]
    assert nxt.moves == ()


# ------------------------------------------------------------------------------------------ properties

INDUSTRIES = ["Computer Software", "IT Services", "Financial Services", "Retail", "Government", "Staffing"]
COUNTRIES = ["US", "CA", "MX", "GB", "DE"]
STACK = ["Okta", "Salesforce", "HubSpot", "Slack"]

records = st.fixed_dictionaries(
    {},
    optional={
        "industry": st.sampled_from(INDUSTRIES),
        "employees": st.integers(0, 5000),
        "country": st.sampled_from(COUNTRIES),
        "annual_revenue": st.integers(0, 200_000_000),
        "tech_stack": st.lists(st.sampled_from(STACK), max_size=3, unique=True),
        "is_student": st.booleans(),
    },
)


def _rank(spec: IcpSpec, tier: str) -> int:
    return tier_rank(spec, tier)


@pytest.mark.parametrize("spec", [SPEC, DEMO_V2], ids=["worked-example", "demo-v2"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=records)
def test_every_move_really_lifts_the_tier(spec: IcpSpec, record: dict[str, Any]):
    scorer = Scorer(spec)
    result = scorer.score(record)
    nxt = next_tier(scorer, record)
    if result.tier == DISQUALIFIED:
        assert nxt.moves == () and nxt.clearances
        return
    ladder = tier_ladder(spec)
    if result.tier == ladder[-1]:
        assert nxt.target is None and nxt.moves == ()
        return
    assert nxt.target == ladder[_rank(spec, result.tier) + 1]
    for move in nxt.moves:
        changed = {**record, move.attribute: move.value}
        assert set(changed) - set(record) <= {move.attribute}  # one attribute changed, nothing else
        lifted = scorer.score(changed)
        assert _rank(spec, lifted.tier) >= _rank(spec, nxt.target), move
        assert (lifted.tier, lifted.score) == (move.tier, move.score)


@pytest.mark.parametrize("spec", [SPEC, DEMO_V2], ids=["worked-example", "demo-v2"])
@settings(max_examples=200, deadline=None)
@given(record=records)
def test_a_listed_value_that_lifts_is_never_left_out_and_the_least_one_is_named(
    spec: IcpSpec, record: dict[str, Any]
):
    """Brute force over every listed value of each categorical criterion, independent of next_tier."""
    scorer = Scorer(spec)
    result = scorer.score(record)
    if result.tier in (DISQUALIFIED, tier_ladder(spec)[-1]):
        return
    needed = _rank(spec, result.tier) + 1
    moves = {m.criterion: m for m in next_tier(scorer, record).moves}
    for c in spec.criteria:
        if c.type != "categorical":
            continue
        lifting = []
        for key, credit in c.values.items():
            value = key.upper() if c.attribute == "country" else c.shown(key)
            if _rank(spec, scorer.score({**record, c.attribute: value}).tier) >= needed:
                lifting.append(credit)
        current = next(r for r in result.reasons if r.code == c.key)
        lifting = [credit for credit in lifting if current.status == "missing" or credit > current.credit]
        if not lifting:
            assert c.key not in moves
            continue
        assert c.key in moves
        got = next(
            r for r in scorer.score({**record, c.attribute: moves[c.key].value}).reasons if r.code == c.key
        )
        assert got.credit == min(lifting)
