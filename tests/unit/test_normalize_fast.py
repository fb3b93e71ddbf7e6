"""The normaliser's fast paths (remembered outcomes, digit strings read with ``int``, flags passed as
bools) against the plain code they replaced, kept here as the reference: same attributes (same values,
types and key order), same problems."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.values import is_missing, short
from worker.normalize import DEFAULT_KINDS, NON_NEGATIVE, NormalizeConfig, ValueProblem
from worker.normalize.countries import REGION_BY_CODE
from worker.normalize.numbers import parse_number
from worker.normalize.records import (
    MEMO_SIZE,
    _is_real,
    _raw_text,
    _to_text,
    normalize_status,
    normalize_values,
)
from worker.normalize.scalars import parse_bool, parse_date


def plain_to_number(value: Any) -> int | float | None:
    x = parse_number(value)
    if x is None or isinstance(x, int):
        return x
    if x.is_integer():
        return int(x)
    return x


def plain_values(
    raw: Mapping[str, Any], config: NormalizeConfig
) -> tuple[dict[str, Any], list[ValueProblem]]:
    attributes: dict[str, Any] = {}
    problems: list[ValueProblem] = []
    converters = dict(config._converters)
    for key, convert in converters.items():
        if convert.__name__ == "_to_number":
            converters[key] = plain_to_number
    try:
        for key, value in raw.items():
            if value is None:
                continue
            convert: Callable[[Any], Any] = converters.get(key, _to_text)
            try:
                result = convert(value)
            except Exception:
                problems.append(ValueProblem(str(key), _raw_text(value)))
                continue
            if result is None:
                continue
            if key in NON_NEGATIVE and _is_real(result) and result < 0:
                problems.append(ValueProblem(str(key), _raw_text(value), "impossible"))
                continue
            attributes[key] = result
    except Exception:
        problems.append(ValueProblem("record", short(raw, 80)))
    country = attributes.get("country")
    if country is not None and "region" not in attributes and isinstance(country, str):
        region = REGION_BY_CODE.get(country)
        if region is not None:
            attributes["region"] = region
    return attributes, problems


def plain_status(status: Mapping[str, Any]) -> tuple[dict[str, Any], list[ValueProblem]]:
    clean: dict[str, Any] = {}
    problems: list[ValueProblem] = []
    for key, value in status.items():
        if value is None or is_missing(value):
            continue
        try:
            if key in {"is_converted", "is_closed", "is_won", "is_customer"}:
                result: Any = parse_bool(value)
            elif key == "amount":
                result = plain_to_number(value)
            elif key == "close_date":
                result = parse_date(value)
            else:
                result = value.strip() if isinstance(value, str) else value
        except ValueError:
            problems.append(ValueProblem(str(key), _raw_text(value)))
            continue
        if result is not None:
            clean[key] = result
    return clean, problems


def typed(value: Any) -> Any:
    """A value with its type, recursively (``1 == 1.0 == True``, but they are different attributes)."""
    if isinstance(value, dict):
        return [(k, typed(v)) for k, v in value.items()]
    if isinstance(value, list):
        return ["list", *(typed(v) for v in value)]
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    return (type(value).__name__, value)


_cells = st.one_of(
    st.sampled_from([
        "", " ", "n/a", "NA", "1,200", " 1200 ", "4200000", "0042", "99999999999999999999",
        "1234567890123456", "٣٤", "-5", "$67.3m", "1.1M", "10-50", "500+", "lots", "1e400", "USA", "us",
        "Holland", "Untied Kingdom",
        "Software", " software ", "a;b;A", "Okta|Slack", "true", "x", "maybe", "2025-12-01", "12/31/2025",
        "soon", "Closed Won",
    ]),
    st.text(max_size=16),
    st.integers(-10**20, 10**20),
    st.floats(),
    st.booleans(),
)  # fmt: skip
_keys = st.sampled_from(sorted({*DEFAULT_KINDS, "renewal", "seats", "segment"}))
CONFIG = dict(
    industry_synonyms={"software": "Computer Software"},
    attribute_kinds={"renewal": "date", "seats": "number"},
)


@settings(max_examples=500, deadline=None)
@given(records=st.lists(st.dictionaries(_keys, _cells, max_size=8), max_size=8))
def test_normalize_values_is_the_plain_normalisation(records):
    config = NormalizeConfig(**CONFIG)  # one config across the records: later ones hit the memo
    for raw in records * 2:
        attributes, problems = normalize_values(raw, config)
        expected_attributes, expected_problems = plain_values(raw, config)
        assert typed(attributes) == typed(expected_attributes)
        assert problems == expected_problems


def test_a_remembered_list_is_not_shared_between_records():
    config = NormalizeConfig()
    first, _ = normalize_values({"tech_stack": "b;a"}, config)
    first["tech_stack"].append("changed")
    second, _ = normalize_values({"tech_stack": "b;a"}, config)
    assert second == {"tech_stack": ["a", "b"]}


def test_the_memo_stays_bounded():
    config = NormalizeConfig()
    for i in range(MEMO_SIZE * 3):
        normalize_values({"employees": str(i), "industry": f"Industry {i}"}, config)
    assert all(len(memo) <= MEMO_SIZE for memo in config._memo.values())
    assert normalize_values({"employees": "17", "industry": " a  b "}, config) == (
        {"employees": 17, "industry": "a b"}, [],
    )  # fmt: skip


_status_keys = st.sampled_from(["lead_status", "is_converted", "account_id", "stage", "is_closed", "is_won",
                                "amount", "close_date", "is_customer"])  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(statuses=st.lists(st.dictionaries(_status_keys, _cells, max_size=9), max_size=6))
def test_normalize_status_is_the_plain_normalisation(statuses):
    for status in statuses * 2:
        clean, problems = normalize_status(status)
        expected_clean, expected_problems = plain_status(status)
        assert typed(clean) == typed(expected_clean)
        assert problems == expected_problems
