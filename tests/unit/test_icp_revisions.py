"""diff_specs: human lines for what an ICP revision changes."""

from __future__ import annotations

import pytest

from worker.icp.revisions import diff_specs
from worker.icp.spec import parse_icp

BASE = """\
name: Mid-market SaaS
tiers: {best: 80, good: 60}
min_coverage: 0.5
criteria:
  - {key: industry, attribute: industry, weight: 30, type: categorical,
     values: {Computer Software: 1.0, IT Services: 0.5}}
  - key: employees
    attribute: employees
    weight: 25
    type: bands
    bands: [{min: 500, credit: 1.0}, {min: 200, max: 500, credit: 0.6}]
  - {key: country, attribute: country, weight: 20, type: categorical, values: {US: 1.0, CA: 0.7}}
  - {key: tech_stack, attribute: tech_stack, weight: 15, type: contains_any, values: [Okta]}
  - {key: public, attribute: is_public, weight: 10, type: boolean}
disqualifiers:
  - {key: competitor, attribute: industry, values: [Competitor]}
  - {key: too_small, attribute: employees, max: 10}
"""


def spec(text: str = BASE):
    return parse_icp(text)


def revised(*replacements: tuple[str, str]):
    text = BASE
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return parse_icp(text)


def test_no_change():
    assert diff_specs(spec(), spec()) == []


@pytest.mark.parametrize(
    ("replacements", "expected"),
    [
        ([("name: Mid-market SaaS", "name: Enterprise")], ["name: Mid-market SaaS → Enterprise"]),
        ([("tiers: {best: 80, good: 60}", "tiers: {best: 75, good: 60}")], ["tier best: threshold 80 → 75"]),
        (
            [("tiers: {best: 80, good: 60}", "tiers: {best: 80, good: 60, fair: 40}")],
            ["tier fair added (≥ 40)", "re-engagement tiers: best, good → best, good, fair"],
        ),
        (
            [("tiers: {best: 80, good: 60}", "tiers: {best: 80}")],
            ["tier good removed (was ≥ 60)", "re-engagement tiers: best, good → best"],
        ),
        ([("min_coverage: 0.5", "min_coverage: 0.7")], ["min_coverage: 0.5 → 0.7"]),
        ([("min_coverage: 0.5", "min_coverage: 0.5\nfallback_tier: red")], ["fallback tier: poor → red"]),
        (
            [("min_coverage: 0.5", "min_coverage: 0.5\nreengage_tiers: [best]")],
            ["re-engagement tiers: best, good → best"],
        ),
        (
            [("weight: 30", "weight: 40")],
            [
                "criterion industry: weight 30 → 40",
                "total weight 100 → 110 (every criterion's share of the score changes)",
            ],
        ),
        (
            [("IT Services: 0.5}", "IT Services: 0.7, Internet: 0.4}")],
            [
                "criterion industry: value 'it services' credit 0.5 → 0.7",
                "criterion industry: value 'internet' added (0.4)",
            ],
        ),
        (
            [("{Computer Software: 1.0, IT Services: 0.5}", "{Computer Software: 1.0}")],
            ["criterion industry: value 'it services' removed (was 0.5)"],
        ),
        (
            [("{min: 200, max: 500, credit: 0.6}", "{min: 100, max: 500, credit: 0.6}")],
            ["criterion employees: bands [200–500: 0.6, ≥ 500: 1] → [100–500: 0.6, ≥ 500: 1]"],
        ),
        (
            [("values: [Okta]", "values: [Okta, Salesforce]")],
            ["criterion tech_stack: value 'salesforce' added (1)"],
        ),
        (
            [("type: boolean}", "type: boolean, expected: false, credit: 0.5}")],
            ["criterion public: expected true → false", "criterion public: credit 1 → 0.5"],
        ),
        (
            [("attribute: is_public", "attribute: listed")],
            ["criterion public: attribute is_public → listed"],
        ),
        (
            [("values: {US: 1.0, CA: 0.7}}", "values: {US: 1.0, CA: 0.7}, default: 0.1}")],
            ["criterion country: default credit 0 → 0.1"],
        ),
        (
            [
                (
                    "  - {key: public, attribute: is_public, weight: 10, type: boolean}\n",
                    "  - {key: public, attribute: is_public, weight: 10, type: boolean}\n"
                    "  - {key: stage, attribute: funding_stage, weight: 10, type: categorical,\n"
                    "     values: [Series A]}\n",
                )
            ],
            [
                "criterion stage added (weight 10, categorical on funding_stage, values series a 1)",
                "total weight 100 → 110 (every criterion's share of the score changes)",
            ],
        ),
        (
            [("  - {key: public, attribute: is_public, weight: 10, type: boolean}\n", "")],
            [
                "criterion public removed (was weight 10, boolean on is_public, true gives 1)",
                "total weight 100 → 90 (every criterion's share of the score changes)",
            ],
        ),
        (
            [("values: [Okta]}", "values: [Okta]}\n    ")],  # formatting only
            [],
        ),
        (
            [("values: [Competitor]}", "values: [Competitor, Rival]}")],
            ["disqualifier competitor: values added rival"],
        ),
        ([("max: 10}", "max: 20}")], ["disqualifier too_small: employees < 10 → employees < 20"]),
        (
            [("  - {key: too_small, attribute: employees, max: 10}\n", "")],
            ["disqualifier too_small removed (was employees < 10)"],
        ),
        (
            [
                (
                    "  - {key: too_small, attribute: employees, max: 10}\n",
                    "  - {key: too_small, attribute: employees, max: 10}\n"
                    "  - {key: student, attribute: is_student, equals: true}\n",
                )
            ],
            ["disqualifier student added (is_student is true)"],
        ),
    ],
)
def test_changes(replacements, expected):
    assert diff_specs(spec(), revised(*replacements)) == expected


def test_type_change_summarises_the_new_criterion():
    new = revised(
        (
            "  - {key: public, attribute: is_public, weight: 10, type: boolean}",
            "  - {key: public, attribute: is_public, weight: 10, type: categorical, values: [yes]}",
        )
    )
    assert diff_specs(spec(), new) == [
        "criterion public: type boolean → categorical (weight 10, categorical on is_public, values yes 1)"
    ]


def test_diff_is_symmetric_in_kind():
    new = revised(("weight: 25", "weight: 35"), ("min_coverage: 0.5", "min_coverage: 0.6"))
    forward, backward = diff_specs(spec(), new), diff_specs(new, spec())
    assert "criterion employees: weight 25 → 35" in forward
    assert "criterion employees: weight 35 → 25" in backward
    assert len(forward) == len(backward)
