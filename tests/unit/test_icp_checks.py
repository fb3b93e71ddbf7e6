"""The checks of an ICP file against the connections and the data (worker.icp.checks), and the hold rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.config import ConnectionConfig
from worker.icp.checks import Catalog, DataProfile, check_references, data_warnings, references, value_keys
from worker.icp.hold import hold_reasons, impact_of
from worker.icp.spec import parse_icp
from worker.icp.validation import catalog_for, check_text

FILES = ConnectionConfig(name="exports", crm="files", options={"path": "/x", "out": "/y"})

ICP = """\
name: test
criteria:
  - key: stage
    attribute: {attribute}
    weight: 30
    type: categorical
    values:
      Series A: 1.0
      Series B: 0.5
  - key: region
    attribute: region
    weight: 20
    type: categorical
    values: [{region}, APAC]
  - key: employees
    attribute: employees
    weight: 25
    type: bands
    bands: [{{min: 100, credit: 1.0}}]
disqualifiers:
  - key: gov
    attribute: industry
    values: [Government]
"""


def icp(attribute: str = "funding_stage", region: str = "EMEA") -> str:
    return ICP.format(attribute=attribute, region=region)


def errors(text: str, connections=(FILES,)) -> list[str]:
    _, report = check_text(text, "icp.yaml", list(connections))
    return [str(e) for e in report.errors]


def test_a_clean_file_has_no_error():
    assert errors(icp()) == []


def test_a_misspelled_attribute_is_refused_with_its_line_and_a_hint():
    assert errors(icp("fundng_stage")) == [
        "icp.yaml:4 criteria[0].attribute: unknown attribute 'fundng_stage': neither canonical nor mapped "
        "by any connection (did you mean `funding_stage`?)"
    ]


def test_an_attribute_a_connection_maps_or_kinds_is_known():
    mapped = ConnectionConfig(
        name="m",
        crm="files",
        options={"path": "/x", "out": "/y", "columns": {"account": {"Seg__c": "segment"}}},
    )
    kinded = ConnectionConfig(name="k", crm="salesforce", attribute_kinds={"segment": "text"})
    assert errors(icp("segment")) != []
    assert errors(icp("segment"), [mapped]) == []
    assert errors(icp("segment"), [kinded]) == []


def test_a_connectors_default_mapping_counts_for_its_crm_only():
    hubspot = ConnectionConfig(name="h", crm="hubspot")
    assert errors(icp("job_title"), [hubspot]) == []
    assert "unknown attribute 'job_title'" in errors(icp("job_title"), [FILES])[0]


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("Europe", "(did you mean `EMEA`?)"),
        ("Germany", "Germany is a country, in region `EMEA`"),
        ("Narnia", "one of North America, LATAM, EMEA, APAC"),
    ],
)
def test_a_region_the_normaliser_never_derives_is_refused(value, hint):
    (problem,) = errors(icp(region=value))
    assert problem.startswith(f"icp.yaml:14 criteria[1].values[0]: {value!r} is not a region")
    assert hint in problem


def test_region_names_match_case_insensitively():
    assert errors(icp(region="emea")) == []


def test_region_values_are_free_when_a_connection_maps_region_from_the_crm():
    own = ConnectionConfig(
        name="r", crm="files", options={"path": "/x", "out": "/y", "columns": {"account": {"Reg": "region"}}}
    )
    assert errors(icp(region="Europe"), [own]) == []


def test_a_country_coded_attribute_refuses_values_that_never_match():
    text = (
        "name: t\ncriteria:\n  - key: hq\n    attribute: hq_country\n    weight: 1\n    type: categorical\n"
        "    values: {US: 1, Germany: 0.5, Atlantis: 0.2}\n"
    )
    kinded = ConnectionConfig(name="k", crm="files", options={"path": "/x", "out": "/y"},
                              attribute_kinds={"hq_country": "country"})  # fmt: skip
    found = errors(text, [kinded])
    assert found == [
        "icp.yaml:7 criteria[0].values['Germany']: 'Germany' never matches: hq_country holds ISO country "
        "codes (write DE)",
        "icp.yaml:7 criteria[0].values['Atlantis']: 'Atlantis' is no country, so it never matches: "
        "hq_country holds ISO country codes",
    ]


def test_the_catalog_lists_canonical_and_mapped_names_with_their_kinds():
    cat = catalog_for([ConnectionConfig(name="k", crm="files", options={"path": "/x", "out": "/y"},
                                        attribute_kinds={"hq": "country"})])  # fmt: skip
    assert {"funding_stage", "region", "country", "account_type", "hq"} <= cat.attributes
    assert "id" not in cat.attributes and "lead_status" not in cat.attributes
    assert cat.kinds["hq"] == frozenset({"country"}) and not cat.crm_region


def test_references_keep_the_fields_and_lines_of_the_file():
    refs = references(icp())
    assert [(r.field, r.line) for r in refs] == [
        ("criteria[0].attribute", 4),
        ("criteria[1].attribute", 11),
        ("criteria[2].attribute", 16),
        ("disqualifiers[0].attribute", 22),
    ]
    assert [(v.text, v.field, v.line) for v in refs[0].values] == [
        ("Series A", "criteria[0].values['Series A']", 8),
        ("Series B", "criteria[0].values['Series B']", 9),
    ]


def test_check_references_is_pure_over_a_given_catalog():
    refs = references(icp("segment"))
    assert check_references(refs, Catalog.canonical(), "f.yaml")[0].field == "criteria[0].attribute"
    assert (
        check_references(refs, Catalog(frozenset({"segment", "region", "employees", "industry"})), "f") == []
    )


def test_value_keys_compare_like_the_scorer():
    assert value_keys(" Series A ") == ["series a"]
    assert value_keys(["Okta", "Slack"]) == ["okta", "slack"]
    assert value_keys(True) == ["true"] and value_keys(1200.0) == ["1200"] and value_keys(None) == []


def test_data_warnings_name_unseen_values_uncarried_attributes_and_insufficient_data():
    text = icp()
    spec = parse_icp(text)
    profile = DataProfile(
        records=200,
        carried={"funding_stage": 0, "region": 150, "employees": 180, "industry": 190},
        values={"region": frozenset({"emea", "north america"}), "industry": frozenset({"government"})},
        insufficient=50,
    )
    found = [str(w) for w in data_warnings(references(text), profile, "icp.yaml", spec.min_coverage, 1)]
    assert found == [
        "icp.yaml:1 min_coverage: 50 of 200 records (25%) would be insufficient_data "
        "(less than 50% of the weight has data)",
        "icp.yaml:4 criteria[0].attribute: no record in the store carries 'funding_stage' (0 of 200): "
        "this criterion never earns points",
        "icp.yaml:14 criteria[1].values[1]: no snapshot has region 'APAC' (150 records carry region)",
    ]


def test_no_data_no_warning():
    text = icp()
    assert data_warnings(references(text), DataProfile(0, {}, {}, 0), "f", 0.5) == []


def test_country_values_are_compared_as_codes():
    text = (
        "name: t\ncriteria:\n  - key: c\n    attribute: country\n    weight: 1\n    type: categorical\n"
        "    values: {United States: 1, Canada: 0.5}\n"
    )
    profile = DataProfile(10, {"country": 10}, {"country": frozenset({"us"})}, 0)
    (warning,) = data_warnings(references(text), profile, "f", 0.5)
    assert "'Canada'" in str(warning) and "United States" not in str(warning)


# --------------------------------------------------------------------------------------------- the hold


def test_the_hold_counts_tier_changes_of_scored_records_only():
    transitions = {("good", "best"): 30, ("good", "good"): 60, ("poor", "poor"): 10, ("(new)", "best"): 500}
    impact = impact_of("c", transitions, writes=530, hold_share=0.2, hold_writes=None)
    assert (impact.scored, impact.tier_changes, impact.share) == (100, 30, 0.3)
    assert hold_reasons([impact]) == [
        "c: 30 of 100 scored records (30%) change tier, above the hold share 20%"
    ]
    assert hold_reasons([impact_of("c", transitions, 530, hold_share=0.3, hold_writes=None)]) == []


def test_the_hold_on_writes():
    impact = impact_of("c", {("a", "a"): 10}, writes=1001, hold_share=0.2, hold_writes=1000)
    assert hold_reasons([impact]) == ["c: 1,001 records to write, above the limit 1,000"]
    assert hold_reasons([impact_of("c", {}, 0, hold_share=0.2, hold_writes=None)]) == []


def test_the_bundled_icps_pass_the_checks_on_the_demo_connection():
    bundled = Path(__file__).resolve().parents[2] / "worker" / "demo"
    for name in ("icp_v1.yaml", "icp_v2.yaml"):
        assert errors((bundled / name).read_text(encoding="utf-8")) == []
