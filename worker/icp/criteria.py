"""A criterion or disqualifier compiled into a closure: value → cached :class:`Reason`. Pure, no I/O.

Each criterion type of the model (:data:`worker.icp.model.CRITERION_TYPES`) has one compiler here;
:func:`compile_criterion` dispatches on the type and mypy checks that every type has one. The reason
sentences ("employees 350 in 200–500: +15") are the ones docs/scoring.md shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Literal, NamedTuple, assert_never

from worker.icp.model import Criterion, Disqualifier
from worker.icp.reading import COLLECTIONS, BoundedCache, members_of, scalar_text, to_bool, to_number
from worker.icp.reasons import (
    Reason,
    brief_of,
    fmt_int,
    fmt_num,
    fmt_points,
    missing_reason,
    new_reason,
    points_for,
    shorten,
    status_of,
)

__all__ = [
    "Compiled",
    "CompiledCheck",
    "DisqualifierCheck",
    "Evaluator",
    "Shortcut",
    "band_label",
    "compile_criterion",
    "compile_disqualifier",
]

Evaluator = Callable[[Any], Reason]
#: A cache the scorer reads before it calls an evaluator or a check (a C-level look-up instead of a
#: Python call, for the values most records have): for a value of exactly this type, the look-up gives
#: the evaluator's (or check's) cached answer, or None when there is none yet and it must be called.
Shortcut = tuple[type, Callable[[Any], Any]]


class Compiled(NamedTuple):
    """A compiled criterion."""

    evaluate: Evaluator
    #: The one Reason object ``evaluate`` returns for missing data.
    missing: Reason
    #: Answers: the Reason ``evaluate`` gives the value.
    shortcut: Shortcut | None = None


#: Integers in [0, SMALL) keep their own answer, never emptied (a bands criterion, a numeric disqualifier).
SMALL = 10_000
#: Integers from LARGE (1M) up to HUGE (10^15) are shown with three significant digits, cut ("12.3M").
LARGE, HUGE = 10**6, 10**15
#: Decimal lengths of the integers in [LARGE, HUGE): 7 to 15 digits, a span each (fewer than 16).
SPANS = 16
#: contains_any: the credit of a member that names no listed value, and of a blank one (below any credit)
PRESENT, BLANK = -1.0, -2.0


def _guarded(slow: Callable[[Any], Reason], missing: Reason) -> Callable[[Any], Reason]:
    def safe(value: Any) -> Reason:
        if value is None:
            return missing
        try:
            return slow(value)
        except Exception:  # never let a strange value escape: it is simply not data
            return missing

    return safe


def _compile_categorical(c: Criterion, scale: float) -> Compiled:
    name, code, values, default = c.name, c.key, c.values, c.default
    missing = missing_reason(c)
    by_raw: BoundedCache[Any, Reason] = BoundedCache()  # raw str/int/float value -> Reason
    by_shown: BoundedCache[str, Reason] = BoundedCache()  # stripped text -> Reason
    raw_get = by_raw.get

    def build(shown: str) -> Reason:
        reason = by_shown.get(shown)
        if reason is None:
            credit = values.get(shown.casefold(), default)
            points = points_for(scale, credit)
            text = f"{name} {shorten(shown)}: {fmt_points(points)}"
            brief = brief_of(code, shown, points)
            reason = by_shown.put(
                shown, new_reason(code, credit, points, text, status_of(credit), brief, shown)
            )
        return reason

    def slow(value: Any) -> Reason:
        if isinstance(value, COLLECTIONS):
            best: tuple[float, str] | None = None
            for member in value:
                shown = scalar_text(member)
                if shown is None:
                    continue
                credit = values.get(shown.casefold(), default)
                if best is None or credit > best[0]:
                    best = (credit, shown)
            return missing if best is None else build(best[1])
        shown = scalar_text(value)
        reason = missing if shown is None else build(shown)
        if type(value) in (str, int, float):
            by_raw.put(value, reason)
        return reason

    safe = _guarded(slow, missing)

    def evaluate(value: Any) -> Reason:
        if type(value) is str:
            reason = raw_get(value)
            if reason is not None:
                return reason
        return safe(value)

    return Compiled(evaluate, missing, (str, raw_get))


def band_label(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"in {fmt_num(lo, exact=True)}–{fmt_num(hi, exact=True)}"
    if lo is not None:
        return f"≥ {fmt_num(lo, exact=True)}"
    assert hi is not None
    return f"< {fmt_num(hi, exact=True)}"


def _compile_bands(c: Criterion, scale: float) -> Compiled:
    name, code = c.name, c.key
    missing = missing_reason(c)
    # (low, high, credit, points, label, reasons by shown value); the last entry catches values in no band
    bands: list[tuple[float, float, float, float, str, BoundedCache[str, Reason]]] = [
        (
            -math.inf if b.min is None else b.min,
            math.inf if b.max is None else b.max,
            b.credit,
            points_for(scale, b.credit),
            band_label(b.min, b.max),
            BoundedCache(),
        )
        for b in c.bands
    ]
    outside: tuple[float, float, float, float, str, BoundedCache[str, Reason]] = (
        -math.inf,
        math.inf,
        0.0,
        0.0,
        "outside the bands",
        BoundedCache(),
    )
    by_raw: BoundedCache[Any, Reason] = BoundedCache()
    raw_get, raw_put = by_raw.get, by_raw.put
    spans = _large_int_spans(c)
    by_bucket: BoundedCache[int, Reason] = BoundedCache()  # (bucket, span) -> Reason
    bucket_get = by_bucket.get

    def for_number(number: int | float) -> Reason:
        """The Reason for a finite number (never raises)."""
        for band in bands:
            if band[0] <= number < band[1]:
                break
        else:
            band = outside
        _, _, credit, points, label, by_shown = band
        shown = fmt_int(number) if type(number) is int else fmt_num(number)
        reason = by_shown.get(shown)
        if reason is None:
            text = f"{name} {shown} {label}: {fmt_points(points)}"
            brief = brief_of(code, shown, points)
            reason = by_shown.put(
                shown, new_reason(code, credit, points, text, status_of(credit), brief, shown)
            )
        return reason

    def slow(value: Any) -> Reason:
        number = to_number(value)
        reason = missing if number is None else for_number(number)
        if type(value) in (str, int, float):
            raw_put(value, reason)
        return reason

    safe = _guarded(slow, missing)

    small: dict[int, Reason] = {}  # counts in [0, SMALL): at most SMALL Reasons, never emptied
    small_get = small.get

    def evaluate(value: Any) -> Reason:
        t = type(value)
        if t is int:
            if 0 <= value < SMALL:  # counts (employees, seats): each one's Reason, kept for good
                reason = small_get(value)
                if reason is None:
                    reason = small[value] = for_number(value)
                return reason
            if LARGE <= value < HUGE:
                # One Reason per bucket (see _large_int_spans): a high-cardinality amount (revenue)
                # costs a floor division and a look-up instead of formatting every distinct value.
                for upper, divisor, span in spans:
                    if value < upper:
                        key = value // divisor * SPANS + span
                        reason = bucket_get(key)
                        if reason is None:
                            reason = by_bucket.put(key, for_number(value))
                        return reason
        if t is int or t is float or t is str:
            reason = raw_get(value)
            if reason is not None:
                return reason
            if t is int:
                return raw_put(value, for_number(value))
        return safe(value)

    return Compiled(evaluate, missing, (int, small_get))


def _large_int_spans(c: Criterion) -> list[tuple[int, int, int]]:
    """How integers in [LARGE, HUGE) share a Reason: ``(upper, divisor, span)`` per decimal length, the
    first span whose ``upper`` exceeds a value holding it; the value's bucket is ``value // divisor`` and
    its cache key ``bucket * SPANS + span``.

    Two integers of the same length and bucket show the same text (``fmt_int`` keeps the first three
    digits of a number of 7 to 15 digits, so a divisor of at most ``10^(digits-3)`` keeps them) and fall
    in the same band (the divisor divides every band bound, so no bound lies inside a bucket). Empty when
    a bound is not a whole number: those bands read every value exactly.
    """
    bounds = [b for band in c.bands for b in (band.min, band.max) if b is not None]
    if not all(float(b).is_integer() for b in bounds):
        return []
    common = 10**12
    while common > 1 and any(int(b) % common for b in bounds):
        common //= 10
    return [
        (10**digits, min(10 ** (digits - 3), common), digits)
        for digits in range(len(str(LARGE)), len(str(HUGE)))
    ]


def _compile_contains_any(c: Criterion, scale: float) -> Compiled:
    name, code, values = c.name, c.key, c.values
    missing = missing_reason(c)
    listed = list(values)
    shown_list = ", ".join(shorten(v, 20) for v in listed[:5]) + (", …" if len(listed) > 5 else "")
    none = Reason(code, 0.0, 0.0, f"{name} has none of {shown_list}: +0", "miss", f"{code} +0")
    hits: dict[str, Reason] = {}
    for key, credit in values.items():
        points = points_for(scale, credit)
        text = f"{name} has {shorten(key)}: {fmt_points(points)}"
        hits[key] = Reason(code, credit, points, text, status_of(credit), brief_of(code, key, points), key)
    # member text -> (credit, key): the listed key it names, or (PRESENT, None) for a value that names
    # none, or (BLANK, None) for blank text
    by_member: BoundedCache[str, tuple[float, str | None]] = BoundedCache()
    member_get = by_member.get

    def classify(member: Any) -> tuple[float, str | None]:
        text = member.strip() if type(member) is str else scalar_text(member)
        key = text.casefold() if text else ""
        if not key:
            entry: tuple[float, str | None] = (BLANK, None)
        else:
            credit = values.get(key)
            entry = (PRESENT, None) if credit is None else (credit, key)
        if type(member) is str:
            by_member.put(member, entry)
        return entry

    def best_of(members: Iterable[Any]) -> Reason:
        best: str | None = None
        best_credit = BLANK
        for member in members:
            entry = member_get(member) if type(member) is str else None
            if entry is None:
                entry = classify(member)
            if entry[0] > best_credit:  # the first of equal credits wins
                best_credit, best = entry
        if best is not None:
            return hits[best]
        return none if best_credit == PRESENT else missing

    def slow(value: Any) -> Reason:
        members = members_of(value)
        return missing if members is None else best_of(members)

    safe = _guarded(slow, missing)

    def evaluate(value: Any) -> Reason:
        t = type(value)
        if t is list or t is set or t is tuple or t is frozenset or t is str:
            try:
                return best_of((value,) if t is str else value)
            except Exception:
                return missing
        return safe(value)

    return Compiled(evaluate, missing)


def _compile_boolean(c: Criterion, scale: float) -> Compiled:
    name, code = c.name, c.key
    missing = missing_reason(c)
    by_value: dict[bool, Reason] = {}
    for flag in (True, False):
        credit = c.credit if flag == c.expected else 0.0
        points = points_for(scale, credit)
        word = "yes" if flag else "no"
        text = f"{name} {word}: {fmt_points(points)}"
        brief = brief_of(code, word, points)
        by_value[flag] = Reason(code, credit, points, text, status_of(credit), brief, word)
    r_true, r_false = by_value[True], by_value[False]

    def slow(value: Any) -> Reason:
        flag = to_bool(value)
        if flag is None:
            return missing
        return r_true if flag else r_false

    safe = _guarded(slow, missing)

    def evaluate(value: Any) -> Reason:
        if value is True:
            return r_true
        if value is False:
            return r_false
        return safe(value)

    return Compiled(evaluate, missing)


def compile_criterion(c: Criterion, scale: float) -> Compiled:
    """The evaluator of a criterion worth ``scale`` points per unit of credit (``100·w/Σw``)."""
    match c.type:
        case "categorical":
            return _compile_categorical(c, scale)
        case "bands":
            return _compile_bands(c, scale)
        case "contains_any":
            return _compile_contains_any(c, scale)
        case "boolean":
            return _compile_boolean(c, scale)
        case _:
            assert_never(c.type)


#: value → the disqualifier's Reason when it fires, else None. Never fires on missing data.
DisqualifierCheck = Callable[[Any], "Reason | None"]


class CompiledCheck(NamedTuple):
    """A compiled disqualifier."""

    check: DisqualifierCheck
    #: Answers: the Reason when the disqualifier fires on the value, False when it does not.
    shortcut: Shortcut


def compile_disqualifier(d: Disqualifier) -> CompiledCheck:
    label = shorten(d.description or d.key, 60)
    code, attribute = d.key, d.attribute

    def fired(shown: str) -> Reason:
        text = f"disqualified ({label}): {attribute} {shorten(shown)}"
        return new_reason(code, 0.0, 0.0, text, "disqualified", f"disqualified: {code}", shown)

    if d.values is not None:
        listed = d.values

        def check(value: Any) -> Reason | None:
            members = members_of(value)
            if members is None:
                return None
            for member in members:
                text = scalar_text(member)
                if text is not None and text.casefold() in listed:
                    return fired(text)
            return None

        fast_types: tuple[type, ...] = (str,)
    elif d.equals is not None:
        expected = d.equals

        def check(value: Any) -> Reason | None:
            flag = to_bool(value)
            return fired("yes" if flag else "no") if flag is not None and flag == expected else None

        fast_types = (bool, str)
    else:
        lo = -math.inf if d.min is None else d.min
        hi = math.inf if d.max is None else d.max

        def check(value: Any) -> Reason | None:
            number = to_number(value)
            return fired(fmt_num(number)) if number is not None and lo <= number < hi else None

        fast_types = (int, float, str)

    # Most values do not fire: remember the answer per plain value (False = does not fire).
    seen: BoundedCache[Any, Reason | Literal[False]] = BoundedCache()
    seen_get = seen.get
    small_end = SMALL if int in fast_types else 0
    small: dict[int, Reason | Literal[False]] = {}
    small_get = small.get

    def safe(value: Any) -> Reason | None:
        if value is None:
            return None
        t = type(value)
        if t is int and 0 <= value < small_end:  # counts: each one's answer, kept for good
            hit = small_get(value)
            if hit is None:
                hit = small[value] = check(value) or False
            return None if hit is False else hit
        plain = t in fast_types
        if plain:
            hit = seen_get(value)
            if hit is not None:
                return None if hit is False else hit
        try:
            reason = check(value)
        except Exception:
            return None
        if plain:
            seen.put(value, reason or False)
        return reason

    return CompiledCheck(safe, (int, small_get) if small_end else (str, seen_get))
