"""connectors.values (one list of true/false words, missing markers, number text) and the normaliser's
structured problems and status values."""

from __future__ import annotations

import pytest

from connectors.files.cells import parse_flag
from connectors.values import FALSE_WORDS, TRUE_WORDS, grouped_number, plain_number, word_to_bool
from worker.normalize import NormalizeConfig, ValueProblem, normalize_status, normalize_values, parse_bool


@pytest.mark.parametrize("word", sorted(TRUE_WORDS))
def test_every_true_word_reads_true_everywhere(word):
    assert word_to_bool(word) is True and parse_flag(f" {word.upper()} ") is True and parse_bool(word) is True


@pytest.mark.parametrize("word", sorted(FALSE_WORDS))
def test_every_false_word_reads_false_everywhere(word):
    assert word_to_bool(word) is False and parse_flag(word) is False and parse_bool(word) is False


def test_true_and_false_words_do_not_overlap():
    assert not TRUE_WORDS & FALSE_WORDS


@pytest.mark.parametrize(
    ("value", "plain", "grouped"),
    [
        (1200, "1200", "1200"),
        (12000.0, "12000", "12,000"),
        (2.5, "2.5", "2.5"),
        (1e20, "1e+20", "100,000,000,000,000,000,000"),
    ],
)
def test_number_text(value, plain, grouped):
    assert plain_number(value) == plain
    assert grouped_number(value) == grouped


def test_negative_head_count_and_revenue_are_impossible_and_left_missing():
    attributes, problems = normalize_values(
        {"employees": "-3", "annual_revenue": -5_000_000, "country": "Untied Kingdom", "founded_year": "-5"},
        NormalizeConfig(),
    )
    assert attributes == {"founded_year": -5}
    assert problems == [
        ValueProblem("employees", "-3", "impossible"),
        ValueProblem("annual_revenue", "-5000000", "impossible"),
        ValueProblem("country", "Untied Kingdom", "unreadable"),
    ]
    assert str(problems[0]) == "employees: impossible value '-3', left missing"
    assert str(problems[2]) == "country: cannot read 'Untied Kingdom'"


def test_status_values_are_normalised_once():
    status, problems = normalize_status(
        {"is_won": "Yes", "is_closed": "1", "is_converted": "maybe", "amount": "$12,000",
         "close_date": "01/31/2026", "stage": "  Closed Won ", "lead_status": "n/a", "account_id": "001A"}
    )  # fmt: skip
    assert status == {"is_won": True, "is_closed": True, "amount": 12000, "close_date": "2026-01-31",
                      "stage": "Closed Won", "account_id": "001A"}  # fmt: skip
    assert problems == [ValueProblem("is_converted", "maybe")]
