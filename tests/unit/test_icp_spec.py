# ruff: noqa: E501  (exact error strings and YAML snippets read best on one line)
"""ICP YAML → IcpSpec: defaults, normalisation, and one exact ``file:line field: message`` per error."""

from __future__ import annotations

import textwrap

import pytest

from worker.icp import spec_criteria as spec_module
from worker.icp.model import Band
from worker.icp.spec import IcpValidationError, SpecError, icp_content_hash, load_icp, parse_icp

EXAMPLE = """\
name: Mid-market SaaS
description: The worked example of docs/scoring.md
tiers: {best: 80, good: 60}
min_coverage: 0.5
criteria:
  - key: industry
    attribute: industry
    weight: 30
    type: categorical
    values: {Computer Software: 1.0, IT Services: 0.5}
  - key: employees
    attribute: employees
    weight: 25
    type: bands
    bands: [{min: 500, credit: 1.0}, {min: 200, max: 500, credit: 0.6}]
  - key: country
    attribute: country
    weight: 20
    type: categorical
    values: {United States: 1.0, CA: 0.7, mexico: 0.7}
  - key: revenue
    label: annual revenue
    attribute: annual_revenue
    weight: 15
    type: bands
    bands:
      - {min: 50000000, credit: 1.0}
      - {min: 10000000, max: 50000000, credit: 0.5}
  - key: tech_stack
    attribute: tech_stack
    weight: 10
    type: contains_any
    values: [Okta, Salesforce]
  - key: public
    attribute: is_public
    weight: 5
    type: boolean
    expected: false
    credit: 0.5
disqualifiers:
  - key: competitor
    attribute: industry
    values: [Competitor]
    description: A competitor
  - key: too_small
    attribute: employees
    max: 10
  - key: student
    attribute: is_student
    equals: true
  - key: sanctioned
    attribute: country
    values: [North Korea]
"""

# A minimal valid file to build error cases on: 1 name, 2 criteria, 3.. one criterion.
HEAD = """\
name: x
criteria:
  - key: industry
    attribute: industry
    weight: 30
    type: categorical
    values: {Software: 1.0}
"""


def errors(text: str, filename: str = "icp.yaml") -> list[str]:
    with pytest.raises(IcpValidationError) as info:
        parse_icp(textwrap.dedent(text), filename)
    return [str(e) for e in info.value.errors]


# ----------------------------------------------------------------------------------------- valid files


def test_example_parses_with_normalised_values():
    spec = parse_icp(EXAMPLE)
    assert spec.name == "Mid-market SaaS"
    assert spec.description == "The worked example of docs/scoring.md"
    assert [c.key for c in spec.criteria] == [
        "industry",
        "employees",
        "country",
        "revenue",
        "tech_stack",
        "public",
    ]
    industry, employees, country, revenue, tech, public = spec.criteria
    assert industry.values == {"computer software": 1.0, "it services": 0.5}
    assert industry.type == "categorical" and industry.weight == 30.0 and industry.default == 0.0
    assert employees.bands == (Band(500.0, None, 1.0), Band(200.0, 500.0, 0.6))
    assert country.values == {"us": 1.0, "ca": 0.7, "mx": 0.7}
    assert revenue.attribute == "annual_revenue" and revenue.name == "annual revenue"
    assert tech.values == {"okta": 1.0, "salesforce": 1.0}
    assert (public.expected, public.credit) == (False, 0.5)
    competitor, too_small, student, sanctioned = spec.disqualifiers
    assert competitor.values == frozenset({"competitor"}) and competitor.description == "A competitor"
    assert (too_small.min, too_small.max, too_small.values, too_small.equals) == (None, 10.0, None, None)
    assert student.equals is True
    assert sanctioned.values == frozenset({"kp"})
    assert spec.tiers == (("best", 80), ("good", 60))
    assert spec.fallback_tier == "poor"
    assert spec.min_coverage == 0.5
    assert spec.reengage_tiers == ("best", "good")


def test_defaults():
    spec = parse_icp(HEAD)
    assert spec.tiers == (("best", 80), ("good", 60))
    assert spec.fallback_tier == "poor"
    assert spec.min_coverage == 0.5
    assert spec.reengage_tiers == ("best", "good")
    assert spec.disqualifiers == ()
    assert spec.description is None


def test_custom_tiers_default_reengage_to_every_tier_above_the_fallback():
    spec = parse_icp(HEAD + "tiers: {a: 90, b: 70, c: 40}\nfallback_tier: d\nmin_coverage: 0\n")
    assert spec.tiers == (("a", 90), ("b", 70), ("c", 40))
    assert spec.fallback_tier == "d"
    assert spec.reengage_tiers == ("a", "b", "c")
    assert spec.min_coverage == 0.0
    assert parse_icp(HEAD + "reengage_tiers: [best]\n").reengage_tiers == ("best",)


def test_values_are_casefolded_and_stripped_and_lists_give_full_credit():
    spec = parse_icp(
        HEAD
        + """\
  - {key: stage, attribute: funding_stage, weight: 5, type: categorical, values: ["  Series A ", SEED], default: 0.2}
  - {key: year, attribute: founded_year, weight: 5, type: categorical, values: {2020: 0.5}}
"""
    )
    stage, year = spec.criteria[1:]
    assert stage.values == {"series a": 1.0, "seed": 1.0}
    assert stage.default == 0.2
    assert year.values == {"2020": 0.5}


def test_load_icp_reads_a_file_and_names_it_in_errors(tmp_path):
    good = tmp_path / "icp.yaml"
    good.write_text(EXAMPLE, encoding="utf-8")
    assert load_icp(good) == parse_icp(EXAMPLE)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncriteria: []\n", encoding="utf-8")
    with pytest.raises(IcpValidationError) as info:
        load_icp(bad)
    assert str(info.value) == f"{bad}:2 criteria: must not be empty"
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"name: x\n\xff\xfe\n")
    with pytest.raises(IcpValidationError) as info:
        load_icp(binary)
    assert str(info.value) == f"{binary}:2: not valid UTF-8 text"


def test_content_hash_is_sha256_of_the_text():
    assert icp_content_hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert icp_content_hash(EXAMPLE) == icp_content_hash(EXAMPLE)
    assert icp_content_hash(EXAMPLE) != icp_content_hash(EXAMPLE + "\n")


def test_spec_error_str():
    assert str(SpecError("icp.yaml", 14, "criteria[2].weight", "must be > 0")) == (
        "icp.yaml:14 criteria[2].weight: must be > 0"
    )
    assert str(SpecError("icp.yaml", 3, "", "YAML syntax error: x")) == "icp.yaml:3: YAML syntax error: x"


# ------------------------------------------------------------------------------------------ one error

C1 = HEAD + "  - key: employees\n    attribute: employees\n"  # a second criterion starts on line 8

ERROR_CASES: list[tuple[str, str, str]] = [
    # (id, yaml text, the one expected error)
    (
        "yaml syntax",
        "name: x\ncriteria:\n  - a: b: c\n",
        "icp.yaml:3: YAML syntax error: mapping values are not allowed here",
    ),
    (
        "yaml bad indentation",
        "name: x\n  criteria: 1\n",
        "icp.yaml:2: YAML syntax error: mapping values are not allowed here",
    ),
    ("empty file", "", "icp.yaml:1: the file is empty; expected an ICP mapping"),
    ("not a mapping", "- a\n- b\n", "icp.yaml:1: the ICP must be a mapping (got a list)"),
    ("unknown top key", HEAD + "colour: red\n", "icp.yaml:8 colour: unknown key 'colour'"),
    ("duplicate top key", HEAD + "name: y\n", "icp.yaml:8 name: duplicate key 'name'"),
    ("missing name", HEAD.replace("name: x\n", "description: d\n"), "icp.yaml:1 name: missing required key"),
    ("name not text", HEAD.replace("name: x", "name: 5"), "icp.yaml:1 name: must be text (got a number)"),
    ("name empty", HEAD.replace("name: x", "name: '  '"), "icp.yaml:1 name: must not be empty"),
    ("missing criteria", "name: x\n", "icp.yaml:1 criteria: missing required key"),
    ("empty criteria", "name: x\ncriteria: []\n", "icp.yaml:2 criteria: must not be empty"),
    (
        "criteria not a list",
        "name: x\ncriteria: {a: 1}\n",
        "icp.yaml:2 criteria: must be a list (got a mapping)",
    ),
    (
        "criterion not a mapping",
        HEAD + "  - industry\n",
        "icp.yaml:8 criteria[1]: must be a mapping (got text 'industry')",
    ),
    (
        "unknown criterion key",
        HEAD + "    colour: red\n",
        "icp.yaml:8 criteria[0].colour: unknown key 'colour'",
    ),
    (
        "duplicate key inside a criterion",
        HEAD + "    weight: 10\n",
        "icp.yaml:8 criteria[0].weight: duplicate key 'weight'",
    ),
    (
        "missing weight",
        C1 + "    type: bands\n    bands: [{min: 1, credit: 1}]\n",
        "icp.yaml:8 criteria[1].weight: missing required key",
    ),
    (
        "missing attribute",
        HEAD + "  - key: employees\n    weight: 2\n    type: bands\n    bands: [{min: 1, credit: 1}]\n",
        "icp.yaml:8 criteria[1].attribute: missing required key",
    ),
    (
        "missing key",
        HEAD + "  - attribute: employees\n    weight: 2\n    type: bands\n    bands: [{min: 1, credit: 1}]\n",
        "icp.yaml:8 criteria[1].key: missing required key",
    ),
    ("missing type", C1 + "    weight: 2\n", "icp.yaml:8 criteria[1].type: missing required key"),
    ("weight zero", HEAD.replace("weight: 30", "weight: 0"), "icp.yaml:5 criteria[0].weight: must be > 0"),
    (
        "weight negative",
        HEAD.replace("weight: 30", "weight: -3"),
        "icp.yaml:5 criteria[0].weight: must be > 0",
    ),
    (
        "weight not a number",
        HEAD.replace("weight: 30", "weight: heavy"),
        "icp.yaml:5 criteria[0].weight: must be a number (got text 'heavy')",
    ),
    (
        "weight is a boolean",
        HEAD.replace("weight: 30", "weight: true"),
        "icp.yaml:5 criteria[0].weight: must be a number (got true/false)",
    ),
    (
        "weight infinite",
        HEAD.replace("weight: 30", "weight: .inf"),
        "icp.yaml:5 criteria[0].weight: must be a finite number",
    ),
    (
        "unknown type",
        HEAD.replace("type: categorical", "type: range"),
        "icp.yaml:6 criteria[0].type: unknown type 'range' (expected one of: categorical, bands, contains_any, boolean)",
    ),
    (
        "bands on categorical",
        HEAD + "    bands: [{min: 1, credit: 1}]\n",
        "icp.yaml:8 criteria[0].bands: 'bands' does not apply to a categorical criterion (only to bands)",
    ),
    (
        "expected on categorical",
        HEAD + "    expected: true\n",
        "icp.yaml:8 criteria[0].expected: 'expected' does not apply to a categorical criterion (only to boolean)",
    ),
    (
        "default on contains_any",
        HEAD.replace("categorical", "contains_any") + "    default: 0.5\n",
        "icp.yaml:8 criteria[0].default: 'default' does not apply to a contains_any criterion (only to categorical)",
    ),
    (
        "values on bands",
        C1 + "    weight: 2\n    type: bands\n    values: [a]\n    bands: [{min: 1, credit: 1}]\n",
        "icp.yaml:12 criteria[1].values: 'values' does not apply to a bands criterion (only to categorical or contains_any)",
    ),
    (
        "categorical without values",
        HEAD.replace("    values: {Software: 1.0}\n", ""),
        "icp.yaml:3 criteria[0].values: missing required key",
    ),
    (
        "values empty",
        HEAD.replace("{Software: 1.0}", "{}"),
        "icp.yaml:7 criteria[0].values: must not be empty",
    ),
    (
        "values wrong type",
        HEAD.replace("{Software: 1.0}", "Software"),
        "icp.yaml:7 criteria[0].values: must be a mapping of value to credit, or a list (got text 'Software')",
    ),
    (
        "value credit above 1",
        HEAD.replace("Software: 1.0", "Software: 1.5"),
        "icp.yaml:7 criteria[0].values['Software']: must be between 0 and 1",
    ),
    (
        "value credit below 0",
        HEAD.replace("Software: 1.0", "Software: -0.1"),
        "icp.yaml:7 criteria[0].values['Software']: must be between 0 and 1",
    ),
    (
        "value credit not a number",
        HEAD.replace("Software: 1.0", "Software: high"),
        "icp.yaml:7 criteria[0].values['Software']: must be a number (got text 'high')",
    ),
    (
        "duplicate value after casefolding",
        HEAD.replace("{Software: 1.0}", "[Software, ' software']"),
        "icp.yaml:7 criteria[0].values[1]: duplicate value ' software' (same as 'Software')",
    ),
    (
        "empty value",
        HEAD.replace("{Software: 1.0}", "[Software, '']"),
        "icp.yaml:7 criteria[0].values[1]: must not be empty",
    ),
    (
        "value not text",
        HEAD.replace("{Software: 1.0}", "[Software, [a]]"),
        "icp.yaml:7 criteria[0].values[1]: must be text (got a list)",
    ),
    ("default above 1", HEAD + "    default: 2\n", "icp.yaml:8 criteria[0].default: must be between 0 and 1"),
    (
        "unknown country",
        HEAD
        + "  - {key: country, attribute: country, weight: 5, type: categorical, values: {US: 1, Xyz: 0.5}}\n",
        "icp.yaml:8 criteria[1].values['Xyz']: unknown country 'Xyz'",
    ),
    (
        "unknown country in a list",
        HEAD
        + "  - key: country\n    attribute: country\n    weight: 5\n    type: contains_any\n    values:\n      - Canada\n      - Atlantis\n",
        "icp.yaml:14 criteria[1].values[1]: unknown country 'Atlantis'",
    ),
    (
        "same country twice",
        HEAD
        + "  - {key: country, attribute: country, weight: 5, type: categorical, values: [US, United States]}\n",
        "icp.yaml:8 criteria[1].values[1]: duplicate value 'United States' (same as 'US')",
    ),
    (
        "bands missing",
        C1 + "    weight: 2\n    type: bands\n",
        "icp.yaml:8 criteria[1].bands: missing required key",
    ),
    (
        "bands empty",
        C1 + "    weight: 2\n    type: bands\n    bands: []\n",
        "icp.yaml:12 criteria[1].bands: must not be empty",
    ),
    (
        "bands not a list",
        C1 + "    weight: 2\n    type: bands\n    bands: {min: 1}\n",
        "icp.yaml:12 criteria[1].bands: must be a list of bands (got a mapping)",
    ),
    (
        "band inverted",
        C1 + "    weight: 2\n    type: bands\n    bands:\n      - {min: 500, max: 200, credit: 1}\n",
        "icp.yaml:13 criteria[1].bands[0]: min 500 must be < max 200",
    ),
    (
        "band empty range",
        C1 + "    weight: 2\n    type: bands\n    bands:\n      - {min: 200, max: 200, credit: 1}\n",
        "icp.yaml:13 criteria[1].bands[0]: min 200 must be < max 200",
    ),
    (
        "band without bounds",
        C1 + "    weight: 2\n    type: bands\n    bands:\n      - {credit: 1}\n",
        "icp.yaml:13 criteria[1].bands[0]: a band needs min or max",
    ),
    (
        "bands overlapping",
        C1
        + "    weight: 2\n    type: bands\n    bands:\n      - {min: 500, credit: 1}\n      - {min: 200, max: 600, credit: 0.5}\n",
        "icp.yaml:13 criteria[1].bands[0]: overlaps bands[1]",
    ),
    (
        "bands overlapping, both open below",
        C1
        + "    weight: 2\n    type: bands\n    bands:\n      - {max: 10, credit: 1}\n      - {max: 20, credit: 0.5}\n",
        "icp.yaml:14 criteria[1].bands[1]: overlaps bands[0]",
    ),
    (
        "band credit missing",
        C1 + "    weight: 2\n    type: bands\n    bands:\n      - {min: 1}\n",
        "icp.yaml:13 criteria[1].bands[0].credit: missing required key",
    ),
    (
        "band credit above 1",
        C1 + "    weight: 2\n    type: bands\n    bands:\n      - min: 1\n        credit: 1.01\n",
        "icp.yaml:14 criteria[1].bands[0].credit: must be between 0 and 1",
    ),
    (
        "band unknown key",
        C1 + "    weight: 2\n    type: bands\n    bands:\n      - {min: 1, credit: 1, label: big}\n",
        "icp.yaml:13 criteria[1].bands[0].label: unknown key 'label'",
    ),
    (
        "band bound not a number",
        C1 + "    weight: 2\n    type: bands\n    bands:\n      - {min: lots, credit: 1}\n",
        "icp.yaml:13 criteria[1].bands[0].min: must be a number (got text 'lots')",
    ),
    (
        "boolean expected not a bool",
        HEAD + "  - {key: public, attribute: is_public, weight: 5, type: boolean, expected: maybe}\n",
        "icp.yaml:8 criteria[1].expected: must be true or false (got text 'maybe')",
    ),
    (
        "boolean credit above 1",
        HEAD + "  - {key: public, attribute: is_public, weight: 5, type: boolean, credit: 2}\n",
        "icp.yaml:8 criteria[1].credit: must be between 0 and 1",
    ),
    (
        "key pattern",
        HEAD.replace("key: industry", "key: Industry"),
        "icp.yaml:3 criteria[0].key: 'Industry' must match ^[a-z][a-z0-9_]*$",
    ),
    (
        "key with a dash",
        HEAD.replace("key: industry", "key: tech-stack"),
        "icp.yaml:3 criteria[0].key: 'tech-stack' must match ^[a-z][a-z0-9_]*$",
    ),
    (
        "duplicate criterion key",
        HEAD + "  - {key: industry, attribute: sector, weight: 5, type: categorical, values: [a]}\n",
        "icp.yaml:8 criteria[1].key: duplicate key 'industry' (also criteria[0])",
    ),
    (
        "disqualifier key used by a criterion",
        HEAD + "disqualifiers:\n  - {key: industry, attribute: industry, values: [Competitor]}\n",
        "icp.yaml:9 disqualifiers[0].key: duplicate key 'industry' (also criteria[0])",
    ),
    (
        "duplicate disqualifier key",
        HEAD
        + "disqualifiers:\n  - {key: dq, attribute: a, equals: true}\n  - {key: dq, attribute: b, equals: true}\n",
        "icp.yaml:10 disqualifiers[1].key: duplicate key 'dq' (also disqualifiers[0])",
    ),
    (
        "disqualifier with no condition",
        HEAD + "disqualifiers:\n  - key: dq\n    attribute: a\n",
        "icp.yaml:9 disqualifiers[0]: needs exactly one of values, min/max or equals",
    ),
    (
        "disqualifier with two conditions",
        HEAD + "disqualifiers:\n  - key: dq\n    attribute: a\n    values: [x]\n    equals: true\n",
        "icp.yaml:9 disqualifiers[0]: needs exactly one of values, min/max or equals (found values and equals)",
    ),
    (
        "disqualifier min not below max",
        HEAD + "disqualifiers:\n  - {key: dq, attribute: a, min: 10, max: 5}\n",
        "icp.yaml:9 disqualifiers[0]: min 10 must be < max 5",
    ),
    (
        "disqualifier unknown key",
        HEAD + "disqualifiers:\n  - {key: dq, attribute: a, equals: true, weight: 3}\n",
        "icp.yaml:9 disqualifiers[0].weight: unknown key 'weight'",
    ),
    (
        "disqualifier missing attribute",
        HEAD + "disqualifiers:\n  - {key: dq, equals: true}\n",
        "icp.yaml:9 disqualifiers[0].attribute: missing required key",
    ),
    (
        "disqualifier equals not a bool",
        HEAD + "disqualifiers:\n  - {key: dq, attribute: a, equals: 3}\n",
        "icp.yaml:9 disqualifiers[0].equals: must be true or false (got a number)",
    ),
    (
        "disqualifier values not a list",
        HEAD + "disqualifiers:\n  - {key: dq, attribute: a, values: x}\n",
        "icp.yaml:9 disqualifiers[0].values: must be a list (got text 'x')",
    ),
    (
        "disqualifier unknown country",
        HEAD + "disqualifiers:\n  - key: dq\n    attribute: country\n    values: [Narnia]\n",
        "icp.yaml:11 disqualifiers[0].values[0]: unknown country 'Narnia'",
    ),
    (
        "disqualifiers not a list",
        HEAD + "disqualifiers: {a: 1}\n",
        "icp.yaml:8 disqualifiers: must be a list (got a mapping)",
    ),
    (
        "tiers not a mapping",
        HEAD + "tiers: [best, good]\n",
        "icp.yaml:8 tiers: must be a mapping of tier name to minimum score (got a list)",
    ),
    ("tiers empty", HEAD + "tiers: {}\n", "icp.yaml:8 tiers: must name at least one tier"),
    (
        "tiers not descending",
        HEAD + "tiers:\n  best: 60\n  good: 80\n",
        "icp.yaml:10 tiers.good: thresholds must be strictly descending (80 is not below best 60)",
    ),
    (
        "tiers equal thresholds",
        HEAD + "tiers: {best: 60, good: 60}\n",
        "icp.yaml:8 tiers.good: thresholds must be strictly descending (60 is not below best 60)",
    ),
    (
        "tier threshold above 100",
        HEAD + "tiers: {best: 101, good: 60}\n",
        "icp.yaml:8 tiers.best: threshold must be between 0 and 100",
    ),
    (
        "tier threshold below 0",
        HEAD + "tiers: {best: 80, good: -1}\n",
        "icp.yaml:8 tiers.good: threshold must be between 0 and 100",
    ),
    (
        "tier threshold not whole",
        HEAD + "tiers: {best: 80.5, good: 60}\n",
        "icp.yaml:8 tiers.best: threshold must be a whole number (got a number)",
    ),
    (
        "tier name reserved",
        HEAD + "tiers: {best: 80, disqualified: 10}\n",
        "icp.yaml:8 tiers.disqualified: tier name 'disqualified' is reserved",
    ),
    (
        "tier name reserved (insufficient_data)",
        HEAD + "tiers: {insufficient_data: 80}\n",
        "icp.yaml:8 tiers.insufficient_data: tier name 'insufficient_data' is reserved",
    ),
    (
        "tier name duplicated",
        HEAD + "tiers:\n  best: 80\n  best: 70\n",
        "icp.yaml:10 tiers.best: duplicate tier 'best'",
    ),
    (
        "fallback tier duplicates a tier",
        HEAD + "tiers: {best: 80, good: 60}\nfallback_tier: good\n",
        "icp.yaml:9 fallback_tier: tier name 'good' is used twice (as a tier and as the fallback tier)",
    ),
    (
        "default fallback duplicates a tier",
        HEAD + "tiers: {best: 80, poor: 10}\n",
        "icp.yaml:8 tiers: tier name 'poor' is used twice (as a tier and as the fallback tier)",
    ),
    (
        "fallback tier reserved",
        HEAD + "fallback_tier: disqualified\n",
        "icp.yaml:8 fallback_tier: tier name 'disqualified' is reserved",
    ),
    (
        "min_coverage above 1",
        HEAD + "min_coverage: 1.5\n",
        "icp.yaml:8 min_coverage: must be between 0 and 1",
    ),
    (
        "min_coverage below 0",
        HEAD + "min_coverage: -0.1\n",
        "icp.yaml:8 min_coverage: must be between 0 and 1",
    ),
    (
        "min_coverage not a number",
        HEAD + "min_coverage: half\n",
        "icp.yaml:8 min_coverage: must be a number (got text 'half')",
    ),
    (
        "reengage unknown tier",
        HEAD + "reengage_tiers: [best, great]\n",
        "icp.yaml:8 reengage_tiers[1]: unknown tier 'great'",
    ),
    (
        "reengage unknown tier, block list",
        HEAD + "tiers: {a: 90, b: 50}\nreengage_tiers:\n  - a\n  - best\n",
        "icp.yaml:11 reengage_tiers[1]: unknown tier 'best'",
    ),
    (
        "reengage not a list",
        HEAD + "reengage_tiers: best\n",
        "icp.yaml:8 reengage_tiers: must be a list of tier names (got text 'best')",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_each_error_is_reported_with_file_line_and_field(text, expected):
    assert errors(text) == [expected]


def test_errors_name_the_file():
    assert errors("name: x\ncriteria: []\n", filename="icps/v2.yaml") == [
        "icps/v2.yaml:2 criteria: must not be empty"
    ]


def test_every_error_is_reported_at_once_in_line_order():
    text = """\
name: x
tiers: {best: 60, good: 70, disqualified: 10}
colour: red
reengage_tiers: [great]
min_coverage: 2
criteria:
  - key: Industry
    attribute: industry
    weight: 0
    type: categorical
    bands: []
    values: {a: 2}
  - key: emp
    weight: heavy
    type: bands
    bands: [{min: 5, max: 2, credit: 1}, {credit: 1}]
  - key: emp
    attribute: x
    weight: 1
    type: range
disqualifiers:
  - key: dq
    attribute: y
    values: [a]
    max: 3
"""
    with pytest.raises(IcpValidationError) as info:
        parse_icp(text)
    expected = [
        "icp.yaml:2 tiers.good: thresholds must be strictly descending (70 is not below best 60)",
        "icp.yaml:2 tiers.disqualified: tier name 'disqualified' is reserved",
        "icp.yaml:3 colour: unknown key 'colour'",
        "icp.yaml:4 reengage_tiers[0]: unknown tier 'great'",
        "icp.yaml:5 min_coverage: must be between 0 and 1",
        "icp.yaml:7 criteria[0].key: 'Industry' must match ^[a-z][a-z0-9_]*$",
        "icp.yaml:9 criteria[0].weight: must be > 0",
        "icp.yaml:11 criteria[0].bands: 'bands' does not apply to a categorical criterion (only to bands)",
        "icp.yaml:12 criteria[0].values['a']: must be between 0 and 1",
        "icp.yaml:13 criteria[1].attribute: missing required key",
        "icp.yaml:14 criteria[1].weight: must be a number (got text 'heavy')",
        "icp.yaml:16 criteria[1].bands[0]: min 5 must be < max 2",
        "icp.yaml:16 criteria[1].bands[1]: a band needs min or max",
        "icp.yaml:17 criteria[2].key: duplicate key 'emp' (also criteria[1])",
        "icp.yaml:20 criteria[2].type: unknown type 'range' (expected one of: categorical, bands, contains_any, boolean)",
        "icp.yaml:22 disqualifiers[0]: needs exactly one of values, min/max or equals (found values and min/max)",
    ]
    assert [str(e) for e in info.value.errors] == expected
    assert str(info.value) == "\n".join(expected)
    assert all(isinstance(e, SpecError) for e in info.value.errors)


def test_country_normalisation_uses_worker_normalize(monkeypatch):
    calls = []

    def fake(value: str) -> str | None:
        calls.append(value)
        return {"canada": "CA", "usa": "US"}.get(value.casefold())

    monkeypatch.setattr(spec_module, "_normalize_country", fake)
    spec = parse_icp(
        HEAD
        + "  - {key: country, attribute: country, weight: 5, type: categorical, values: {USA: 1, Canada: 0.7}}\n"
    )
    assert spec.criteria[1].values == {"us": 1.0, "ca": 0.7}
    assert calls == ["USA", "Canada"]
    assert errors(
        HEAD + "  - {key: country, attribute: country, weight: 5, type: categorical, values: [Xyz]}\n"
    ) == ["icp.yaml:8 criteria[1].values[0]: unknown country 'Xyz'"]


# --------------------------------------------------------------------------------------------- fuzzing

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from worker.icp.model import IcpSpec  # noqa: E402

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
YAMLISH = st.sampled_from(
    [":", "-", " ", "\n", "[", "]", "{", "}", ",", "'", '"', "#", "&a", "*a", "!!set", "!!binary", "? ", "<<: ", "0", "-1",
     ".nan", "null", "true", "2020-01-01", "weight", "bands", "values", "min", "max", "credit", "key", "type", "\t"]
)  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: x\n? [a, b]\n: 1\ncriteria: []\n",
            ["icp.yaml:2 ('a', 'b'): unknown key \"('a', 'b')\"", "icp.yaml:4 criteria: must not be empty"],
        ),
        (
            "name: !!binary aGk=\ncriteria: 3\n",
            [
                "icp.yaml:1 name: must be text (got bytes)",
                "icp.yaml:2 criteria: must be a list (got a number)",
            ],
        ),
        (
            "name: 2020-01-01\n",
            ["icp.yaml:1 name: must be text (got date)", "icp.yaml:1 criteria: missing required key"],
        ),
    ],
)
def test_odd_yaml_documents(text, expected):
    """Found by fuzzing: complex keys and explicit tags are reported, never crash the parser."""
    assert errors(text) == expected


def test_a_document_the_loader_cannot_build_is_one_error_not_a_crash():
    (error,) = errors("name: !!set x\n")  # ruamel raises AttributeError while building a set from a scalar
    assert error.startswith("icp.yaml:1: YAML error: cannot read the document (")


def check_parse_outcome(text: str) -> None:
    try:
        result = parse_icp(text)
    except IcpValidationError as exc:
        assert exc.errors
        for error in exc.errors:
            assert 1 <= error.line <= text.count("\n") + 2, error
            assert str(error).startswith("icp.yaml:")
    else:
        assert isinstance(result, IcpSpec)


@FUZZ
@given(st.text(max_size=200))
def test_arbitrary_text_gives_a_spec_or_validation_errors(text):
    check_parse_outcome(text)


@FUZZ
@given(st.data())
def test_mutated_example_gives_a_spec_or_validation_errors(data):
    text = EXAMPLE
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        if data.draw(st.booleans()):
            text = text[:at] + data.draw(YAMLISH) + text[at:]
        else:
            text = text[:at] + text[at + data.draw(st.integers(1, 12)) :]
    check_parse_outcome(text)
