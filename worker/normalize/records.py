"""Records: each attribute's kind, its converter, and ``normalize_record`` (pure)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Literal

from connectors.values import MISSING_MAXLEN, MISSING_TOKENS, is_missing, plain_number, short
from worker.normalize.countries import REGION_BY_CODE, normalize_country
from worker.normalize.numbers import finite, number_from_text, parse_number
from worker.normalize.scalars import parse_bool, parse_date, parse_set

# --------------------------------------------------------------------------------------------- records

KINDS: frozenset[str] = frozenset({"text", "number", "integer", "set", "country", "boolean", "date"})

#: Kinds of the canonical attributes; any other attribute is text unless ``attribute_kinds`` says otherwise.
DEFAULT_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "industry": "text",
        "employees": "integer",
        "annual_revenue": "number",
        "country": "country",
        "region": "text",
        "state": "text",
        "founded_year": "integer",
        "funding_stage": "text",
        "tech_stack": "set",
        "is_public": "boolean",
    }
)


def _to_text(value: Any) -> str | None:
    if isinstance(value, str):
        s = value.strip()
        if not s or (len(s) <= MISSING_MAXLEN and s.casefold() in MISSING_TOKENS):
            return None
        return " ".join(s.split())
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return plain_number(finite(value, value))
    raise ValueError("not text")


#: Longest run of decimal digits read with ``int`` directly: every integer of up to 15 digits is exactly a
#: float, so ``int(text)`` is what ``parse_number`` then ``int(x)`` would give (longer ones go through float).
_EXACT_DIGITS = 15


def _to_number(value: Any) -> int | float | None:
    if type(value) is str:  # the commonest cell, "4200000": no float, no exception
        s = value.strip()
        if s.isdecimal() and len(s) <= _EXACT_DIGITS:
            return int(s)
    x = parse_number(value)
    if x is None or isinstance(x, int):
        return x
    if x.is_integer():
        return int(x)
    return x


def _to_integer(value: Any) -> int | None:
    if isinstance(value, str):
        s = value.strip()
        if not s or (len(s) <= MISSING_MAXLEN and s.casefold() in MISSING_TOKENS):
            return None
        try:
            return int(s)
        except ValueError:
            x: float | None = number_from_text(s)
    else:
        x = parse_number(value)
    if x is None or isinstance(x, int):
        return x
    return math.floor(x + 0.5)  # round half up: "17.5" → 18


def _to_country(value: Any) -> str | None:
    if not isinstance(value, str):
        raise ValueError("not a country")
    code = normalize_country(value)
    if code is None and not is_missing(value):
        raise ValueError("unknown country")
    return code


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "text": _to_text,
    "number": _to_number,
    "integer": _to_integer,
    "set": parse_set,
    "country": _to_country,
    "boolean": parse_bool,
    "date": parse_date,
}


def _synonym_key(text: str) -> str:
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class NormalizeConfig:
    """How a connection's attributes are cleaned.

    ``industry_synonyms`` maps a synonym to its canonical industry, matched casefolded with whitespace
    collapsed (each canonical name also matches itself in any case). ``attribute_kinds`` sets or overrides
    the kind of an attribute (one of ``KINDS``); see ``DEFAULT_KINDS``.
    """

    industry_synonyms: Mapping[str, str] = field(default_factory=dict)
    attribute_kinds: Mapping[str, str] = field(default_factory=dict)
    _converters: Mapping[str, Callable[[Any], Any]] = field(init=False, repr=False, compare=False)
    #: What each attribute's text cells came out as (``normalize_values``), per attribute; see ``_outcome``.
    _memo: dict[str, dict[str, Any]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        synonyms = MappingProxyType(dict(self.industry_synonyms))
        kinds = MappingProxyType(dict(self.attribute_kinds))
        bad = sorted(f"{name}: {kind!r}" for name, kind in kinds.items() if kind not in KINDS)
        if bad:
            raise ValueError(f"unknown attribute kind ({', '.join(bad)}); use one of {sorted(KINDS)}")
        object.__setattr__(self, "industry_synonyms", synonyms)
        object.__setattr__(self, "attribute_kinds", kinds)

        table: dict[str, str] = {}
        for canonical in synonyms.values():
            table[_synonym_key(canonical)] = " ".join(canonical.split())
        for synonym, canonical in synonyms.items():
            table[_synonym_key(synonym)] = " ".join(canonical.split())

        def industry(value: Any) -> str | None:
            text = _to_text(value)
            if text is None:
                return None
            return table.get(text.casefold(), text)

        converters = {name: _CONVERTERS[kind] for name, kind in {**DEFAULT_KINDS, **kinds}.items()}
        if converters["industry"] is _to_text and table:
            converters["industry"] = industry
        object.__setattr__(self, "_converters", MappingProxyType(converters))
        object.__setattr__(self, "_memo", {})

    def kind_of(self, attribute: str) -> str:
        """The kind of an attribute under this configuration."""
        return self.attribute_kinds.get(attribute) or DEFAULT_KINDS.get(attribute, "text")


#: Attributes that cannot be negative: a negative value is impossible, left missing, and reported.
NON_NEGATIVE: frozenset[str] = frozenset({"employees", "annual_revenue"})

ProblemKind = Literal["unreadable", "impossible"]


@dataclass(frozen=True, slots=True)
class ValueProblem:
    """One raw value the normaliser left out: ``unreadable`` (no reading of it) or ``impossible`` (read,
    but no real record has it, e.g. a negative head count). ``raw`` is the value as text, cut to 80."""

    attribute: str
    raw: str
    kind: ProblemKind = "unreadable"

    def __str__(self) -> str:
        if self.kind == "impossible":
            return f"{short(self.attribute, 60)}: impossible value {short(self.raw)!r}, left missing"
        return f"{short(self.attribute, 60)}: cannot read {short(self.raw)!r}"


def _raw_text(value: Any) -> str:
    return short(value if isinstance(value, str) else plain_number(value) if _is_real(value) else value, 80)


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


#: Distinct text cells remembered per attribute (``normalize_values``): industries, countries, states and
#: tech stacks repeat across a CRM's records. When full, an attribute's memo starts afresh, so memory stays
#: bounded whatever the number of records.
MEMO_SIZE = 4096
#: An outcome: the value is missing (left out, no problem).
_MISSING = object()
#: The types of the outcomes that are not the attribute's value as it is: ``_MISSING`` (a plain
#: ``object``), a list (kept as a tuple) and a problem.
_SPECIAL = frozenset({object, tuple, ValueProblem})


def _outcome(key: str, value: Any, convert: Callable[[Any], Any]) -> Any:
    """What one raw value becomes: the attribute's value (a list as a tuple, so that a remembered outcome
    cannot be changed through a record's attributes), ``_MISSING`` or a ``ValueProblem``."""
    try:
        result = convert(value)
    except Exception:
        return ValueProblem(str(key), _raw_text(value))
    if result is None:
        return _MISSING
    if key in NON_NEGATIVE and _is_real(result) and result < 0:
        return ValueProblem(str(key), _raw_text(value), "impossible")
    return tuple(result) if type(result) is list else result


def normalize_values(
    raw: Mapping[str, Any], config: NormalizeConfig
) -> tuple[dict[str, Any], list[ValueProblem]]:
    """Clean one record's raw attributes: (attributes, problems). Never raises.

    Attributes are JSON-friendly: integers as ``int``, numbers as ``int`` when integral else ``float``,
    sets as sorted lists, booleans, dates as ISO strings, text stripped with internal whitespace collapsed,
    countries as alpha-2 codes plus a ``region`` attribute (unless the record already has one). Missing
    values are left out. An unreadable value (``'Untied Kingdom'`` as a country) and an impossible one (a
    negative ``employees`` or ``annual_revenue``, see ``NON_NEGATIVE``) are left out, each with a
    ``ValueProblem``: a disqualifier never fires on them.

    The outcome of a text value is remembered per attribute (``MEMO_SIZE``; converters are pure, so it is
    the same outcome): most cells of an export are spellings seen before. Only ``str`` values are
    remembered: ``True`` and ``1`` are equal dictionary keys but not the same cell.
    """
    attributes: dict[str, Any] = {}
    problems: list[ValueProblem] = []
    converters = config._converters
    memos = config._memo
    try:
        for key, value in raw.items():
            if type(value) is str:
                memo = memos.get(key)
                if memo is None:
                    memo = memos[key] = {}
                outcome = memo.get(value, memo)  # the memo itself: not there yet
                if outcome is memo:
                    outcome = _outcome(key, value, converters.get(key, _to_text))
                    if len(memo) >= MEMO_SIZE:
                        memo.clear()
                    memo[value] = outcome
            elif value is None:
                continue
            else:
                outcome = _outcome(key, value, converters.get(key, _to_text))
            if type(outcome) not in _SPECIAL:  # the commonest: the value as it is
                attributes[key] = outcome
            elif type(outcome) is tuple:
                attributes[key] = list(outcome)
            elif type(outcome) is ValueProblem:
                problems.append(outcome)
    except Exception:  # not a mapping after all
        problems.append(ValueProblem("record", short(raw, 80)))
    country = attributes.get("country")
    if country is not None and "region" not in attributes and isinstance(country, str):
        region = REGION_BY_CODE.get(country)
        if region is not None:
            attributes["region"] = region
    return attributes, problems


def normalize_record(raw: Mapping[str, Any], config: NormalizeConfig) -> tuple[dict[str, Any], list[str]]:
    """``normalize_values`` with each problem as a message (``"employees: cannot read 'lots'"``)."""
    attributes, problems = normalize_values(raw, config)
    return attributes, [str(p) for p in problems]


#: Status keys that hold a flag, a number or a date (``connectors.base.STATUS_KEYS``); the rest are text.
_STATUS_FLAGS = frozenset({"is_converted", "is_closed", "is_won", "is_customer"})
_STATUS_NUMBERS = frozenset({"amount"})
_STATUS_DATES = frozenset({"close_date"})


def normalize_status(status: Mapping[str, Any]) -> tuple[dict[str, Any], list[ValueProblem]]:
    """A record's status values, cleaned once when snapshotted: flags as bools (the words of
    ``connectors.values``), ``amount`` as a number, ``close_date`` as an ISO date, text stripped. A value
    that cannot be read is left out with a ``ValueProblem`` (unknown, never guessed)."""
    clean: dict[str, Any] = {}
    problems: list[ValueProblem] = []
    for key, value in status.items():
        if value is None:
            continue
        if type(value) is bool and key in _STATUS_FLAGS:  # as a connector that reads flags hands them over
            clean[key] = value
            continue
        if isinstance(value, str):  # ``is_missing``, and the stripped text kept for a text key
            text = value.strip()
            if not text or (len(text) <= MISSING_MAXLEN and text.casefold() in MISSING_TOKENS):
                continue
        try:
            if key in _STATUS_FLAGS:
                result: Any = parse_bool(value)
            elif key in _STATUS_NUMBERS:
                result = _to_number(value)
            elif key in _STATUS_DATES:
                result = _status_date(value) if type(value) is str else parse_date(value)
            else:
                result = text if isinstance(value, str) else value
        except ValueError:
            problems.append(ValueProblem(str(key), _raw_text(value)))
            continue
        if result is not None:
            clean[key] = result
    return clean, problems


@lru_cache(maxsize=4096)  # dates repeat (a few years of days); failures raise, and are not remembered
def _status_date(value: str) -> str | None:
    return parse_date(value)
