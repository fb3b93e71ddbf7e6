"""Scoring semantics (docs/scoring.md, "The contract"): table-driven cases plus hypothesis properties."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from worker.icp.model import Band, Criterion, Disqualifier, IcpSpec
from worker.icp.reading import BoundedCache
from worker.icp.scoring import CACHE_LIMIT, FitResult, Reason, Scorer, score
from worker.icp.spec import parse_icp

WORKED_EXAMPLE = """\
name: docs/scoring.md worked example
criteria:
  - {key: industry, attribute: industry, weight: 30, type: categorical,
     values: {Computer Software: 1.0, IT Services: 0.5}}
  - key: employees
    attribute: employees
    weight: 25
    type: bands
    bands: [{min: 500, credit: 1.0}, {min: 200, max: 500, credit: 0.6}]
  - {key: country, attribute: country, weight: 20, type: categorical, values: {US: 1.0, CA: 0.7, MX: 0.7}}
  - key: revenue
    attribute: annual_revenue
    weight: 15
    type: bands
    bands: [{min: 50000000, credit: 1.0}, {min: 10000000, max: 50000000, credit: 0.5}]
  - {key: tech_stack, attribute: tech_stack, weight: 10, type: contains_any, values: [Okta, Salesforce]}
disqualifiers:
  - {key: competitor, attribute: industry, values: [Competitor], description: A competitor}
  - {key: too_small, attribute: employees, max: 10}
  - {key: student, attribute: is_student, equals: true}
"""

SPEC = parse_icp(WORKED_EXAMPLE)
SCORER = Scorer(SPEC)

ACCOUNT = {
    "industry": "Computer Software",
    "employees": 350,
    "country": "CA",  # "Canada", normalised before scoring
    "annual_revenue": 12_000_000,
    "tech_stack": ["HubSpot"],
}


def crit(key: str, weight: float = 10, **kw: Any) -> Criterion:
    kw.setdefault("type", "categorical")
    kw.setdefault("attribute", key)
    return Criterion(key=key, weight=weight, **kw)


def one(criterion: Criterion, **spec_kw: Any) -> Scorer:
    spec_kw.setdefault("min_coverage", 0.0)
    return Scorer(IcpSpec(name="t", criteria=(criterion,), **spec_kw))


# -------------------------------------------------------------------------------------- worked example


def test_design_worked_example():
    result = SCORER.score(ACCOUNT)
    assert result.score == 67
    assert result.tier == "good"
    assert result.coverage == 1.0
    assert [r.code for r in result.reasons] == ["industry", "employees", "country", "revenue", "tech_stack"]
    assert [r.points for r in result.reasons] == pytest.approx([30, 15, 14, 7.5, 0])
    assert [r.credit for r in result.reasons] == [1.0, 0.6, 0.7, 0.5, 0.0]
    assert [r.status for r in result.reasons] == ["match", "partial", "partial", "partial", "miss"]
    assert [r.text for r in result.reasons] == [
        "industry Computer Software: +30",
        "employees 350 in 200–500: +15",
        "country CA: +14",
        "revenue 12M in 10M–50M: +7.5",
        "tech_stack has none of okta, salesforce: +0",
    ]
    assert result.compact() == (
        "67 good | industry Computer Software +30; employees 350 +15; country CA +14; revenue 12M +7.5; "
        "tech_stack +0"
    )


def test_worked_example_with_missing_data_and_the_module_level_function():
    result = score(SPEC, {**ACCOUNT, "tech_stack": None, "annual_revenue": ""})
    assert (result.score, result.tier, result.coverage) == (59, "poor", 0.75)
    assert result.compact() == (
        "59 poor | industry Computer Software +30; employees 350 +15; country CA +14; "
        "missing: revenue, tech_stack"
    )
    assert result.reasons[3] == Reason("revenue", 0.0, 0.0, "revenue missing", "missing")
    assert score(SPEC, ACCOUNT) == SCORER.score(ACCOUNT)


def test_reason_sentence_for_a_top_band():
    result = SCORER.score({**ACCOUNT, "employees": 620})
    assert result.reasons[1].text == "employees 620 ≥ 500: +25"


def test_reasons_json():
    assert SCORER.score(ACCOUNT).reasons_json()[:2] == [
        {
            "code": "industry",
            "status": "match",
            "credit": 1.0,
            "points": 30.0,
            "text": "industry Computer Software: +30",
            "value": "Computer Software",
        },
        {
            "code": "employees",
            "status": "partial",
            "credit": 0.6,
            "points": 15.0,
            "text": "employees 350 in 200–500: +15",
            "value": "350",
        },
    ]


# ------------------------------------------------------------------------------------ rounding, tiers


@pytest.mark.parametrize(
    ("weights", "credits", "expected"),
    [
        ((13, 13), (0.7, 0.15), 43),  # Σ points in floats is 42.49999999999999; exactly 42.5
        ((1, 3), (0.0, 0.7), 53),  # 52.5
        ((3.3, 1.1), (0.67, 0.33), 59),  # 58.5
        ((9, 1), (0.15, 0.2), 16),  # 15.5
        ((0.7, 0.7), (0.85, 0.1), 48),  # 47.5
        ((1, 1), (0.45, 0.8), 63),  # 62.5, where round() would give 62
        ((0.3, 0.3, 3), (0.67, 0.67, 1.0), 95),  # Σ of the (6-decimal) points is 94.499999; exactly 94.5
        ((0.7, 1, 0.1), (0.7, 0.33, 0.35), 48),  # 47.499998999999995; exactly 47.5
        ((3, 0.7, 13, 11, 11, 0.1), (0.45, 0.3, 0.85, 0.15, 0.9, 0.9), 63),  # 62.49999900000001
        ((1, 2), (0.5, 0.0), 17),  # 16.666…
        ((1, 2), (0.0, 0.5), 33),  # 33.333…
        ((1,), (0.0,), 0),
        ((1,), (1.0,), 100),
    ],
)
def test_round_half_up_is_exact(weights, credits, expected):
    criteria = tuple(
        crit(f"c{i}", w, values={"x": c}) for i, (w, c) in enumerate(zip(weights, credits, strict=True))
    )
    scorer = Scorer(IcpSpec(name="t", criteria=criteria))
    assert scorer.score({f"c{i}": "x" for i in range(len(weights))}).score == expected


@pytest.mark.parametrize(
    ("credit", "tier"),
    [
        (1.0, "best"),
        (0.8, "best"),
        (0.79, "good"),
        (0.6, "good"),
        (0.595, "good"),
        (0.594, "poor"),
        (0.0, "poor"),
    ],
)
def test_tier_is_the_highest_threshold_reached(credit, tier):
    assert one(crit("a", values={"x": credit})).score({"a": "x"}).tier == tier


def test_custom_tiers_and_fallback():
    scorer = one(
        crit("a", values={"x": 0.95, "y": 0.5, "z": 0.1}),
        tiers=(("green", 90), ("yellow", 50)),
        fallback_tier="red",
    )
    assert [scorer.score({"a": v}).tier for v in "xyz"] == ["green", "yellow", "red"]


@pytest.mark.parametrize(
    ("attributes", "tier", "coverage"),
    [
        ({"a": "x"}, "insufficient_data", 0.4),  # 40% of the weight has data, below 0.5
        ({"a": "x", "b": "x"}, "poor", 0.5),  # exactly min_coverage is enough (score 50)
        ({"b": "x", "c": "x"}, "good", 0.6),
        ({}, "insufficient_data", 0.0),
    ],
)
def test_min_coverage(attributes, tier, coverage):
    spec = IcpSpec(
        name="t",
        criteria=(
            crit("a", 40, values={"x": 1}),
            crit("b", 10, values={"x": 1}),
            crit("c", 50, values={"x": 1}),
        ),
        min_coverage=0.5,
    )
    result = Scorer(spec).score(attributes)
    assert result.tier == tier
    assert result.coverage == pytest.approx(coverage)


def test_insufficient_data_keeps_the_score_and_reasons():
    result = SCORER.score({"industry": "Computer Software"})
    assert (result.score, result.tier, result.coverage) == (30, "insufficient_data", 0.3)
    assert result.compact() == (
        "30 insufficient_data | industry Computer Software +30; "
        "missing: employees, country, revenue, tech_stack"
    )


# ---------------------------------------------------------------------------------------- missing data

MISSING_VALUES = [
    None,
    "",
    "   ",
    [],
    (),
    set(),
    frozenset(),
    {},
    [None, ""],
    float("nan"),
    float("inf"),
    float("-inf"),
    b"",
    object(),
]


@pytest.mark.parametrize("value", MISSING_VALUES, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("key", ["industry", "employees", "tech_stack"])
def test_missing_values_give_zero_credit_and_are_listed(key, value):
    attribute = {"industry": "industry", "employees": "employees", "tech_stack": "tech_stack"}[key]
    result = SCORER.score({**ACCOUNT, attribute: value})
    reason = next(r for r in result.reasons if r.code == key)
    assert (reason.status, reason.credit, reason.points) == ("missing", 0.0, 0.0)
    assert reason.text == f"{key} missing"
    assert result.coverage < 1.0


def test_absent_attribute_is_missing():
    result = SCORER.score({})
    assert result.score == 0 and result.coverage == 0.0 and result.tier == "insufficient_data"
    assert {r.status for r in result.reasons} == {"missing"}


# ------------------------------------------------------------------------------------- per type

CATEGORICAL = crit(
    "industry", values={"computer software": 1.0, "it services": 0.5, "2020": 0.3, "true": 0.2}, default=0.1
)


@pytest.mark.parametrize(
    ("value", "credit", "status", "text"),
    [
        ("Computer Software", 1.0, "match", "industry Computer Software: +100"),
        ("  computer SOFTWARE ", 1.0, "match", "industry computer SOFTWARE: +100"),
        ("IT Services", 0.5, "partial", "industry IT Services: +50"),
        ("Retail", 0.1, "partial", "industry Retail: +10"),  # the default credit
        (2020, 0.3, "partial", "industry 2020: +30"),
        (2020.0, 0.3, "partial", "industry 2020: +30"),
        (True, 0.2, "partial", "industry true: +20"),
        (["Retail", "IT Services", "Computer Software"], 1.0, "match", "industry Computer Software: +100"),
        ({"Retail", "IT Services"}, 0.5, "partial", "industry IT Services: +50"),
        (("Retail", None, ""), 0.1, "partial", "industry Retail: +10"),
        ("x" * 100, 0.1, "partial", "industry " + "x" * 39 + "…: +10"),
    ],
)
def test_categorical(value, credit, status, text):
    reason = one(CATEGORICAL).score({"industry": value}).reasons[0]
    assert (reason.credit, reason.status, reason.text) == (credit, status, text)


BANDS = crit(
    "employees",
    type="bands",
    bands=(Band(500, None, 1.0), Band(200, 500, 0.6), Band(None, 50, 0.2)),
    values={},
)


@pytest.mark.parametrize(
    ("value", "credit", "text"),
    [
        (500, 1.0, "employees 500 ≥ 500: +100"),  # min inclusive
        (10**30, 1.0, "employees 1e+30 ≥ 500: +100"),
        (10**400, 1.0, "employees 1e+400 ≥ 500: +100"),
        (499.5, 0.6, "employees 499.5 in 200–500: +60"),  # max exclusive
        (200, 0.6, "employees 200 in 200–500: +60"),
        ("350", 0.6, "employees 350 in 200–500: +60"),
        (" 3.5e2 ", 0.6, "employees 350 in 200–500: +60"),
        (Decimal("250"), 0.6, "employees 250 in 200–500: +60"),
        (Fraction(401, 2), 0.6, "employees 200.5 in 200–500: +60"),
        (199, 0.0, "employees 199 outside the bands: +0"),
        (50, 0.0, "employees 50 outside the bands: +0"),
        (49, 0.2, "employees 49 < 50: +20"),
        (-3, 0.2, "employees -3 < 50: +20"),
        (12_345, 1.0, "employees 12,345 ≥ 500: +100"),
    ],
)
def test_bands(value, credit, text):
    reason = one(BANDS).score({"employees": value}).reasons[0]
    assert (reason.credit, reason.text) == (credit, text)


@pytest.mark.parametrize(
    "value", ["1,200", "lots", "nan", "inf", "1e999", True, False, [350], {"n": 350}, b"350", 1j]
)
def test_bands_unreadable_numbers_are_missing(value):
    assert one(BANDS).score({"employees": value}).reasons[0].status == "missing"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (12_000_000, "12M"),
        (12_345_678, "12.3M"),
        (49_999_999, "49.9M"),  # cut, not rounded: never looks like the 50M bound
        (1_000_000, "1M"),
        (999_999, "999,999"),
        (2_500_000_000, "2.5B"),
        (7_000_000_000_000, "7T"),
    ],
)
def test_large_numbers_are_shown_short(value, shown):
    spec = IcpSpec(name="t", criteria=(crit("revenue", type="bands", bands=(Band(0, None, 1.0),)),))
    assert Scorer(spec).score({"revenue": value}).reasons[0].text == f"revenue {shown} ≥ 0: +100"


# Bounds of every precision: whole millions, a bound with all its digits, a power of ten, a fraction.
BAND_BOUNDS = st.sampled_from(
    [50, 500, 50_000_000, 12_345_678, 10**7, 2_500_000_000, 1.5, 999_999_999_999_999, 7 * 10**13]
)


@st.composite
def bounds_and_values(draw):
    bounds = draw(st.lists(BAND_BOUNDS, min_size=1, max_size=3, unique=True))
    near_a_bound = st.sampled_from(bounds).flatmap(lambda b: st.integers(int(b) - 3, int(b) + 3))
    bucket_ends = st.integers(10**6, 10**15).map(lambda n: n - n % 10**5 + 99_999)
    values = draw(
        st.lists(
            st.integers(10**6 - 5, 10**15 + 5) | st.integers(-5, 10_005) | near_a_bound | bucket_ends,
            min_size=2,
            max_size=40,
        )
    )
    return bounds, values


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bounds_and_values())
def test_integers_share_a_reason_only_when_it_is_theirs(case):
    """Small integers keep a Reason each and large ones are looked up by bucket (worker.icp.criteria):
    after any sequence of values, each one's reason is the one a scorer that never saw another value
    gives it."""
    bounds, values = case
    edges = sorted(bounds)
    bands = tuple(Band(lo, hi, 0.25 * (i + 1)) for i, (lo, hi) in enumerate(zip(edges, [*edges[1:], None])))
    spec = IcpSpec(name="t", criteria=(crit("revenue", type="bands", bands=bands),), min_coverage=0.0)
    warm = Scorer(spec)
    for value in values:
        seen = warm.score({"revenue": value}).reasons[0]
        fresh = Scorer(spec).score({"revenue": value}).reasons[0]
        assert (seen.credit, seen.text, seen.brief, seen.value) == (
            fresh.credit,
            fresh.text,
            fresh.brief,
            fresh.value,
        ), value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([{"max": 5}, {"min": 3, "max": 9_999}, {"min": 10_000}, {"min": -2, "max": 0}]),
    st.lists(st.integers(-5, 10_005) | st.sampled_from([True, False, 3.0, "4"]), min_size=2, max_size=40),
)
def test_a_numeric_disqualifier_answers_each_count_as_if_it_were_the_first(bounds, values):
    spec = IcpSpec(
        name="t",
        criteria=(crit("industry"),),
        disqualifiers=(Disqualifier(key="size", attribute="employees", **bounds),),
    )
    warm = Scorer(spec)
    for value in values:
        seen = warm.score({"employees": value})
        fresh = Scorer(spec).score({"employees": value})
        assert (seen.tier, seen.reasons) == (fresh.tier, fresh.reasons), value


def test_criteria_and_disqualifiers_sharing_an_attribute_each_read_it():
    spec = IcpSpec(
        name="t",
        criteria=(
            crit("size", attribute="employees", type="bands", bands=(Band(100, None, 1.0),)),
            crit("big", attribute="employees", type="bands", bands=(Band(1000, None, 1.0),)),
            crit("industry"),
        ),
        disqualifiers=(Disqualifier(key="tiny", attribute="employees", max=5),),
        min_coverage=0.0,
    )
    scorer = Scorer(spec)
    result = scorer.score({"employees": 500})
    assert [(r.code, r.credit) for r in result.reasons] == [("size", 1.0), ("big", 0.0), ("industry", 0.0)]
    assert scorer.score({"employees": 3}).tier == "disqualified"


def test_large_integers_either_side_of_an_exact_bound_keep_their_bands():
    spec = IcpSpec(
        name="t",
        criteria=(crit("revenue", type="bands", bands=(Band(12_345_678, None, 1.0),)),),
        min_coverage=0.0,
    )
    scorer = Scorer(spec)
    above = scorer.score({"revenue": 12_345_678}).reasons[0]
    below = scorer.score({"revenue": 12_345_677}).reasons[0]
    assert (above.credit, above.text) == (1.0, "revenue 12.3M ≥ 12,345,678: +100")
    assert (below.credit, below.text) == (0.0, "revenue 12.3M outside the bands: +0")


CONTAINS = crit("tech_stack", type="contains_any", values={"okta": 1.0, "salesforce": 0.5})


@pytest.mark.parametrize(
    ("value", "credit", "text"),
    [
        (["HubSpot", "OKTA "], 1.0, "tech_stack has okta: +100"),
        ({"salesforce", "hubspot"}, 0.5, "tech_stack has salesforce: +50"),
        (("Salesforce", "Okta"), 1.0, "tech_stack has okta: +100"),
        (frozenset({"Okta"}), 1.0, "tech_stack has okta: +100"),
        ("Okta", 1.0, "tech_stack has okta: +100"),
        (["HubSpot"], 0.0, "tech_stack has none of okta, salesforce: +0"),
        ([["Okta"], "HubSpot"], 0.0, "tech_stack has none of okta, salesforce: +0"),
        ([1, "Okta"], 1.0, "tech_stack has okta: +100"),
    ],
)
def test_contains_any(value, credit, text):
    reason = one(CONTAINS).score({"tech_stack": value}).reasons[0]
    assert (reason.credit, reason.text) == (credit, text)


BOOLEAN = crit("public", type="boolean", attribute="is_public", expected=True, credit=0.8)


@pytest.mark.parametrize(
    ("value", "credit", "status"),
    [
        (True, 0.8, "partial"),
        (False, 0.0, "miss"),
        ("yes", 0.8, "partial"),
        (" TRUE ", 0.8, "partial"),
        ("no", 0.0, "miss"),
        ("false", 0.0, "miss"),
        (1, 0.8, "partial"),
        (0, 0.0, "miss"),
        ("1", 0.8, "partial"),
        ("maybe", 0.0, "missing"),
        (2, 0.0, "missing"),
        ([True], 0.0, "missing"),
    ],
)
def test_boolean(value, credit, status):
    reason = one(BOOLEAN).score({"is_public": value}).reasons[0]
    assert (reason.credit, reason.status) == (credit, status)


def test_boolean_expecting_false():
    scorer = one(crit("private", type="boolean", attribute="is_public", expected=False))
    assert scorer.score({"is_public": False}).reasons[0].text == "private no: +100"
    assert scorer.score({"is_public": True}).reasons[0].text == "private yes: +0"


def test_labels_name_the_criterion_in_sentences_and_codes_stay_keys():
    scorer = one(crit("emp", type="bands", label="head count", bands=(Band(1, None, 1.0),)))
    reason = scorer.score({"emp": 3}).reasons[0]
    assert (reason.code, reason.text) == ("emp", "head count 3 ≥ 1: +100")


# ---------------------------------------------------------------------------------------- disqualifiers


@pytest.mark.parametrize(
    ("attributes", "fired"),
    [
        ({"industry": "competitor"}, ["competitor"]),
        ({"industry": ["Retail", " Competitor"]}, ["competitor"]),
        ({"employees": 9}, ["too_small"]),
        ({"employees": "9.99"}, ["too_small"]),
        ({"employees": 10}, []),  # max exclusive
        ({"employees": -5}, ["too_small"]),
        ({"is_student": "yes"}, ["student"]),
        ({"is_student": False}, []),
        (
            {"industry": "Competitor", "employees": 1, "is_student": True},
            ["competitor", "too_small", "student"],
        ),
        # never on missing data
        ({"industry": None, "employees": None, "is_student": None}, []),
        ({"industry": "", "employees": "", "is_student": ""}, []),
        ({"employees": float("nan")}, []),
        ({"employees": float("-inf")}, []),
        ({"employees": []}, []),
        ({}, []),
    ],
)
def test_disqualifiers(attributes, fired):
    result = SCORER.score({**ACCOUNT, **attributes})
    codes = [r.code for r in result.reasons if r.status == "disqualified"]
    assert codes == fired
    if fired:
        assert (result.score, result.tier) == (0, "disqualified")
        assert result.reasons[0].status == "disqualified"
        assert result.disqualified
    else:
        assert result.tier != "disqualified"


def test_disqualified_beats_insufficient_data_and_compact_puts_it_first():
    result = SCORER.score({"industry": "Competitor"})
    assert (result.score, result.tier) == (0, "disqualified")
    assert result.reasons[0].text == "disqualified (A competitor): industry Competitor"
    assert result.compact() == (
        "0 disqualified | disqualified: competitor; industry Competitor +0; "
        "missing: employees, country, revenue, tech_stack"
    )


def test_disqualifier_range_with_both_bounds():
    spec = IcpSpec(
        name="t",
        criteria=(crit("a", values={"x": 1}),),
        disqualifiers=(Disqualifier(key="mid", attribute="n", min=10, max=20),),
    )
    scorer = Scorer(spec)
    assert [scorer.score({"a": "x", "n": n}).tier for n in (9, 10, 19.9, 20)] == [
        "best",
        "disqualified",
        "disqualified",
        "best",
    ]


# --------------------------------------------------------------------------------------------- compact


def test_compact_orders_by_points_then_missing():
    result = SCORER.score(
        {**ACCOUNT, "industry": "IT Services", "employees": 9000, "tech_stack": ["okta"], "country": None}
    )
    assert (
        result.compact()
        == "58 poor | employees 9000 +25; industry IT Services +15; tech_stack okta +10; revenue 12M +7.5; "
        "missing: country"
    )


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (
            255,
            "67 good | industry Computer Software +30; employees 350 +15; country CA +14; revenue 12M +7.5; "
            "tech_stack +0",
        ),
        (
            98,
            "67 good | industry Computer Software +30; employees 350 +15; country CA +14; revenue 12M +7.5 …",
        ),
        (93, "67 good | industry Computer Software +30; employees 350 +15; country CA +14; revenue 12M +7.5"),
        (92, "67 good | industry Computer Software +30; employees 350 +15; country CA +14 …"),
        (42, "67 good | industry Computer Software +30 …"),
        (41, "67 good | industry Computer Software +30"),
        (21, "67 good …"),
        (9, "67 good …"),
        (8, "67 good"),
        (7, "67 good"),
        (3, "67 "),
        (0, ""),
    ],
)
def test_compact_cuts_at_a_reason_boundary(limit, expected):
    text = SCORER.score(ACCOUNT).compact(limit)
    assert text == expected
    assert len(text) <= limit


def test_compact_cuts_the_missing_list_by_whole_codes():
    result = SCORER.score({"industry": "Computer Software"})
    assert result.compact(88) == (
        "30 insufficient_data | industry Computer Software +30; missing: employees, country …"
    )


def test_compact_of_hand_made_results():
    result = FitResult(
        50,
        "good",
        1.0,
        (
            Reason("a", 0.5, 20.0, "a: +20", "partial"),
            Reason("b", 1.0, 30.0, "b: +30", "match"),
            Reason("c", 0, 0, "c missing", "missing"),
        ),
    )
    assert result.compact() == "50 good | b +30; a +20; missing: c"


# ------------------------------------------------------------------------------------ robustness


class RaisingMapping(Mapping):
    def __getitem__(self, key):
        raise RuntimeError("boom")

    def get(self, key, default=None):
        raise RuntimeError("boom")

    def __iter__(self):
        return iter(())

    def __len__(self):
        return 0


class Weird:
    def __str__(self):
        raise RuntimeError("no str")

    def __float__(self):
        raise RuntimeError("no float")

    def __eq__(self, other):
        raise RuntimeError("no eq")

    __hash__ = None  # type: ignore[assignment]


def test_a_mapping_that_raises_is_all_missing():
    result = SCORER.score(RaisingMapping())
    assert result.tier == "insufficient_data"
    assert {r.status for r in result.reasons} == {"missing"}


@pytest.mark.parametrize(
    "value",
    [
        Weird(),
        [Weird()],
        {"k": Weird()},
        Decimal("NaN"),
        Decimal("sNaN"),
        10**5000,
        -(10**5000),
        "9" * 10_000,
        dt.date(2020, 1, 1),
        range(3),
        bytearray(b"x"),
        [[[[]]]],
        ...,
    ],
    ids=lambda v: type(v).__name__,
)
def test_strange_values_never_raise(value):
    result = SCORER.score(
        dict.fromkeys(
            ("industry", "employees", "country", "annual_revenue", "tech_stack", "is_student"), value
        )
    )
    assert 0 <= result.score <= 100


# ------------------------------------------------------------------------------------------ properties

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(
        ["Computer Software", "it services", "CA", "US", "okta", "Competitor", "350", "yes", "1e999", ""]
    )
    | st.binary(max_size=10)
    | st.decimals(allow_nan=True, allow_infinity=True)
    | st.fractions()
    | st.complex_numbers()
    | st.sampled_from([int, float, str, bytes, dt.date, Decimal, bool]).flatmap(st.from_type)
)
hashables = st.recursive(
    scalars.filter(lambda v: not isinstance(v, Decimal) or not v.is_snan()),
    lambda c: st.frozensets(c, max_size=3) | st.tuples(c, c),
    max_leaves=6,
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=5), children, max_size=3)
        | st.tuples(children, children)
        | st.sets(hashables, max_size=3)
    ),
    max_leaves=10,
)
ATTRIBUTES = ["industry", "employees", "country", "annual_revenue", "tech_stack", "is_student"]
records = st.dictionaries(st.sampled_from(ATTRIBUTES), values, max_size=len(ATTRIBUTES))

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(records)
def test_arbitrary_values_never_raise_and_stay_in_range(attributes):
    result = SCORER.score(attributes)
    assert isinstance(result.score, int) and 0 <= result.score <= 100
    assert 0.0 <= result.coverage <= 1.0
    assert result.tier in SPEC.tier_names
    assert len(result.compact()) <= 255
    for r in result.reasons:
        assert r.status in ("match", "partial", "miss", "missing", "disqualified")
        assert 0.0 <= r.credit <= 1.0
    assert len(result.reasons_json()) == len(result.reasons)


# Awkward decimals (no exact binary form) make float sums land a hair off .5 ties; exactness must hold anyway.
credits_ = st.sampled_from([0.0, 0.1, 0.15, 0.3, 0.33, 0.35, 0.45, 0.67, 0.7, 0.85, 0.9, 1.0]) | st.decimals(
    min_value=0, max_value=1, places=2
).map(float)
weights = st.sampled_from([0.1, 0.3, 0.7, 1, 1.1, 2.2, 3, 3.3, 7, 11, 13]) | st.decimals(
    min_value=Decimal("0.1"), max_value=100, places=1
).map(float)


@st.composite
def specs_and_records(draw):
    """A random categorical ICP (values v0..v3 with random credits) and a record choosing values."""
    n = draw(st.integers(1, 6))
    criteria = []
    record: dict[str, Any] = {}
    for i in range(n):
        table = {f"v{j}": draw(credits_) for j in range(4)}
        criteria.append(crit(f"c{i}", draw(weights), values=table))
        record[f"c{i}"] = draw(st.sampled_from([None, "v0", "v1", "v2", "v3"]))
    spec = IcpSpec(name="t", criteria=tuple(criteria), min_coverage=draw(st.sampled_from([0.0, 0.5, 1.0])))
    return spec, record


def exact_score(spec: IcpSpec, record: Mapping[str, Any]) -> int:
    total = Fraction(0)
    for c in spec.criteria:
        value = record.get(c.attribute)
        if value is not None:
            total += Fraction(repr(c.weight)) * Fraction(repr(c.values[value]))
    exact = 100 * total / sum(Fraction(repr(c.weight)) for c in spec.criteria)
    return math.floor(exact + Fraction(1, 2))


@FAST
@given(specs_and_records())
def test_score_matches_exact_arithmetic(case):
    spec, record = case
    assert Scorer(spec).score(record).score == exact_score(spec, record)


@FAST
@given(specs_and_records(), st.data())
def test_raising_one_criterion_credit_never_lowers_the_score(case, data):
    spec, record = case
    scorer = Scorer(spec)
    before = scorer.score(record)
    i = data.draw(st.integers(0, len(spec.criteria) - 1))
    criterion = spec.criteria[i]
    current = record[criterion.attribute]
    current_credit = 0.0 if current is None else criterion.values[current]
    better = [v for v, c in criterion.values.items() if c >= current_credit]
    assume(better)
    after = scorer.score({**record, criterion.attribute: data.draw(st.sampled_from(better))})
    assert after.score >= before.score
    assert after.coverage >= before.coverage


@FAST
@given(specs_and_records(), st.sampled_from(["Competitor", ["x", "COMPETITOR"], 3, "2.5", True, "yes"]))
def test_a_matching_disqualifier_always_disqualifies(case, dq_value):
    spec, record = case
    spec = IcpSpec(
        name=spec.name,
        criteria=spec.criteria,
        min_coverage=spec.min_coverage,
        disqualifiers=(
            Disqualifier(key="competitor", attribute="dq", values=frozenset({"competitor"})),
            Disqualifier(key="tiny", attribute="dq", max=5),
            Disqualifier(key="flag", attribute="dq", equals=True),
        ),
    )
    result = Scorer(spec).score({**record, "dq": dq_value})
    assert (result.score, result.tier) == (0, "disqualified")
    assert result.reasons[0].status == "disqualified"


@FAST
@given(
    st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,60}", fullmatch=True), min_size=1, max_size=12, unique=True),
    st.text(min_size=1, max_size=80),
    st.integers(0, 300),
    st.data(),
)
def test_compact_never_exceeds_the_limit(keys, tier_name, limit, data):
    assume(tier_name not in ("disqualified", "insufficient_data", "poor"))
    criteria = tuple(crit(k, values={"x" * 30: 1.0, "y": 0.5}) for k in keys)
    spec = IcpSpec(name="t", criteria=criteria, tiers=((tier_name, 0),), min_coverage=0.0)
    record = {k: data.draw(st.sampled_from([None, "x" * 30, "y", "z"])) for k in keys}
    result = Scorer(spec).score(record)
    assert len(result.compact()) <= 255
    text = result.compact(limit)
    assert len(text) <= limit
    assert text == result.compact(1000)[: len(text)] or text.endswith(" …") or len(text) == limit


def test_rounding_sweep_over_awkward_decimals():
    """Thousands of seeded ICPs, many with float sums a hair off a .5 tie: every score is exact."""
    rng = random.Random(20240501)
    awkward_weights = [0.1, 0.3, 0.7, 1, 1.1, 2.2, 3, 3.3, 6, 7, 9, 11, 13]
    awkward_credits = [0.0, 0.1, 0.15, 0.2, 0.3, 0.33, 0.35, 0.45, 0.55, 0.65, 0.67, 0.7, 0.85, 0.9, 1.0]
    for _ in range(3000):
        n = rng.randint(2, 6)
        criteria = tuple(
            crit(f"c{i}", rng.choice(awkward_weights), values={"x": rng.choice(awkward_credits)})
            for i in range(n)
        )
        spec = IcpSpec(name="t", criteria=criteria)
        record = {f"c{i}": "x" for i in range(n)}
        assert Scorer(spec).score(record).score == exact_score(spec, record), spec


def test_attribute_names_are_data_not_code():
    """The scorer generates its per-record function: names from the ICP must never become source code."""
    odd = 'x")\nraise SystemExit("injected")\n#'
    spec = IcpSpec(
        name="t",
        criteria=(crit("a", attribute=odd, values={"y": 1.0}),),
        disqualifiers=(Disqualifier(key="d", attribute=odd + "2", equals=True),),
    )
    scorer = Scorer(spec)
    assert scorer.score({odd: "y"}).score == 100
    assert scorer.score({odd: "y", odd + "2": True}).tier == "disqualified"


@pytest.mark.parametrize("n", [1, 2, 12])
def test_any_number_of_criteria_and_disqualifiers(n):
    criteria = tuple(crit(f"c{i}", i + 1, values={"y": 1.0}) for i in range(n))
    disqualifiers = tuple(Disqualifier(key=f"d{i}", attribute=f"flag{i}", equals=True) for i in range(n))
    scorer = Scorer(IcpSpec(name="t", criteria=criteria, disqualifiers=disqualifiers))
    everything = {f"c{i}": "y" for i in range(n)}
    assert scorer.score(everything) == FitResult(100, "best", 1.0, scorer.score(everything).reasons)
    assert scorer.score({**everything, f"flag{n - 1}": "yes"}).reasons[0].code == f"d{n - 1}"


def test_caches_stay_small_in_memory():
    scorer = Scorer(SPEC)
    for i in range(3):
        long_text = f"{i}" + "x" * 100_000
        result = scorer.score({"industry": long_text, "employees": 10**100 + i, "tech_stack": [long_text]})
        assert result.reasons[0].text == f"industry {i}" + "x" * 38 + "…: +0"
        assert result.reasons[1].text == "employees 1e+100 ≥ 500: +25"
    cache = BoundedCache()
    assert cache.put("x" * 201, 1) == 1 and cache.put(2**200, 2) == 2 and cache.put(-(2**200), 3) == 3
    assert cache == {}
    for n in range(CACHE_LIMIT + 5):
        cache.put(n, n)
    assert len(cache) == 5  # cleared when full, then refilled


def test_compact_keeps_every_value_and_cuts_a_long_one_with_an_ellipsis():
    long_industry = "Information Technology and Services Consulting"
    spec = IcpSpec(
        name="t",
        criteria=(
            crit("industry", 30, values={long_industry.casefold(): 1.0}),
            crit("country", 20, values={"us": 1.0}),
        ),
    )
    result = Scorer(spec).score({"industry": long_industry, "country": "US"})
    # cut to 24 characters with "…" (the space before it dropped); the sentence keeps 40
    assert result.compact() == "100 best | industry Information Technology… +60; country US +40"
    assert result.reasons[0].text == "industry Information Technology and Services Con…: +60"
