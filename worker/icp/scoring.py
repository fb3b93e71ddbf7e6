"""Pure ICP fit scoring: (spec, attributes) → score, tier, coverage and reasons.

No I/O and no clock. The contract is DESIGN.md, "Scoring semantics":

- each criterion gives a credit in [0, 1]; a missing attribute (absent, ``None``, blank text, empty list,
  NaN/inf, anything that cannot be read as the criterion's kind of value) gives 0 and is listed as missing;
- ``score = round_half_up(100 * Σ w·c / Σ w)``; ``coverage = Σ w (criteria with data) / Σ w``;
- a matching disqualifier (never on missing data) gives score 0 and tier ``disqualified``;
- else coverage below ``min_coverage`` gives ``insufficient_data``;
- else the highest tier whose threshold the score reaches, else the fallback tier.

:class:`Scorer` compiles a spec once into per-criterion closures and lookup tables; the :class:`Reason`
objects are immutable and cached per (criterion, value), so scoring a record mostly costs dictionary look-ups.
No input value makes :meth:`Scorer.score` raise.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import partial
from operator import attrgetter
from typing import Any, Literal

from connectors.values import FALSE_WORDS, TRUE_WORDS
from worker.icp.model import DISQUALIFIED, INSUFFICIENT_DATA, Criterion, Disqualifier, IcpSpec

__all__ = ["FitResult", "Reason", "ReasonStatus", "Scorer", "score"]

ReasonStatus = Literal["match", "partial", "miss", "missing", "disqualified"]

#: Entries per criterion in the (value → Reason) cache before it is cleared.
CACHE_LIMIT = 4096
#: Longest text remembered as a cache key (longer values are scored, just not cached).
MAX_CACHED_TEXT = 200
#: Longest value shown in a reason sentence (longer values are cut with "…").
MAX_SHOWN = 40
#: Longest value shown in the compact CRM text (longer values are left out).
MAX_SHOWN_COMPACT = 12

_COLLECTIONS = (list, tuple, set, frozenset)


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a criterion (or disqualifier) gave what it gave.

    ``points`` is on the 0..100 score scale (``100·w·c/Σw``); ``code`` is the criterion or disqualifier key.
    ``brief`` is the fragment used by :meth:`FitResult.compact` (derived from code and points when empty).
    """

    code: str
    credit: float
    points: float
    text: str
    status: ReasonStatus
    brief: str = field(default="", compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "status": self.status,
            "credit": self.credit,
            "points": self.points,
            "text": self.text,
        }


@dataclass(frozen=True, slots=True)
class FitResult:
    score: int
    tier: str
    coverage: float
    reasons: tuple[Reason, ...]

    @property
    def disqualified(self) -> bool:
        return self.tier == DISQUALIFIED

    def reasons_json(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.reasons]

    def compact(self, limit: int = 255) -> str:
        """CRM text of at most ``limit`` characters, most important reasons first.

        ``67 good | industry +30; employees 350 +15; country CA +14; revenue 12M +7.5; missing: tech_stack``.
        Disqualifiers come first, then criteria by points contributed (descending), then the missing ones.
        When the text does not fit it is cut at a reason boundary and ends with " …".
        """
        head = f"{self.score} {self.tier}"
        disq: list[str] = []
        scored: list[Reason] = []
        missing: list[str] = []
        for r in self.reasons:
            status = r.status
            if status == "missing":
                missing.append(r.code)
            elif status == "disqualified":
                disq.append(r.brief or f"disqualified: {r.code}")
            else:
                scored.append(r)
        parts = disq
        for r in sorted(scored, key=_points, reverse=True):  # stable: ties keep the spec's order
            parts.append(r.brief or f"{r.code} {_fmt_points(r.points)}")
        if missing:
            parts.append("missing: " + ", ".join(missing))
        text = f"{head} | {'; '.join(parts)}" if parts else head
        if len(text) <= limit:
            return text
        return _cut(head, parts[: len(parts) - 1] if missing else parts, missing, max(0, int(limit)))


_points = attrgetter("points")


def _cut(head: str, parts: list[str], missing: list[str], limit: int) -> str:
    """Greedy fit of whole parts (then whole missing codes) after ``head``; " …" marks the cut."""
    if len(head) > limit:
        return head[:limit]
    out = head
    sep = " | "
    cut = False
    for part in parts:
        if len(out) + len(sep) + len(part) > limit:
            cut = True
            break
        out += sep + part
        sep = "; "
    if missing and not cut:
        piece = sep + "missing: "
        for code in missing:
            if len(out) + len(piece) + len(code) > limit:
                cut = True
                break
            out += piece + code
            piece = ", "
    if cut and len(out) + 2 <= limit:
        out += " …"
    return out


# ------------------------------------------------------------------------------------ fast construction

# Reasons and results are frozen; building them through the slot descriptors skips the frozen-dataclass
# ``__setattr__`` detour (about twice as fast) and gives exactly the objects ``__init__`` would.
_new = object.__new__
_R_SET = tuple(getattr(Reason, f).__set__ for f in ("code", "credit", "points", "text", "status", "brief"))
_F_SET = tuple(getattr(FitResult, f).__set__ for f in ("score", "tier", "coverage", "reasons"))


def _reason(code: str, credit: float, points: float, text: str, status: ReasonStatus, brief: str) -> Reason:
    obj = _new(Reason)
    for setter, value in zip(_R_SET, (code, credit, points, text, status, brief), strict=True):
        setter(obj, value)
    return obj


_set_score, _set_tier, _set_coverage, _set_reasons = _F_SET


def _fit(score_: int, tier: str, coverage: float, reasons: tuple[Reason, ...]) -> FitResult:
    obj = _new(FitResult)
    _set_score(obj, score_)
    _set_tier(obj, tier)
    _set_coverage(obj, coverage)
    _set_reasons(obj, reasons)
    return obj


# ------------------------------------------------------------------------------------------- formatting


def _fmt_points(points: float) -> str:
    text = f"{points:.1f}"
    if text.endswith(".0"):
        text = text[:-2]
    if text == "-0":
        text = "0"
    return "+" + text


#: digits of an integer ≥ 1M → (digits before the point, suffix): 12345678 → "12.3M"
_UNIT_BY_DIGITS = {
    n: (n - exp, suffix) for exp, suffix in ((6, "M"), (9, "B"), (12, "T")) for n in range(exp + 1, exp + 4)
}


def _fmt_num(x: float | int, *, exact: bool = False) -> str:
    """A short readable number: 350, 1,200, 35,000, 12M, 12.3M, 0.75, 1.23e+30.

    From a million up, a value shows its first three significant digits, cut (never rounded up, so a value
    below a band's bound never looks equal to it); ``exact`` keeps every digit unless nothing is lost.
    """
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        if not x.is_integer():
            return f"{x:,.6g}" if abs(x) < 1e15 else f"{x:.3g}"
        x = int(x)
    return _fmt_int(int(x), exact)


def _fmt_int(x: int, exact: bool = False) -> str:
    if -10_000 < x < 10_000:
        return str(x)
    ax = -x if x < 0 else x
    if ax < 1_000_000:
        return f"{x:,}"
    if ax >= 10**15:
        return _fmt_huge(x)
    digits = str(ax)
    if exact and digits[3:].strip("0"):
        return f"{x:,}"
    whole, suffix = _UNIT_BY_DIGITS[len(digits)]
    decimals = digits[whole:3].rstrip("0")
    text = digits[:whole] + "." + decimals + suffix if decimals else digits[:whole] + suffix
    return "-" + text if x < 0 else text


def _fmt_huge(x: int) -> str:
    """1e+30, 1.23e+400: three significant digits, cut; exact integer arithmetic (no float overflow)."""
    ax = -x if x < 0 else x
    exponent = int(math.log10(ax))
    head = ax // 10 ** (exponent - 2)
    while head >= 1000:  # log10 can be a hair off at exact powers of ten
        exponent += 1
        head = ax // 10 ** (exponent - 2)
    while head < 100:
        exponent -= 1
        head = ax // 10 ** (exponent - 2)
    mantissa = (str(head)[0] + "." + str(head)[1:]).rstrip("0").rstrip(".")
    return f"{'-' if x < 0 else ''}{mantissa}e+{exponent}"


def _shorten(text: str, limit: int = MAX_SHOWN) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _status(credit: float) -> ReasonStatus:
    if credit >= 1.0:
        return "match"
    if credit > 0.0:
        return "partial"
    return "miss"


def _scale(weight: float, total_weight: float) -> float:
    """Points per unit of credit for a criterion: ``100·w/Σw``."""
    return 100.0 * weight / total_weight


def _points_for(scale: float, credit: float) -> float:
    """Points as stored in a Reason: rounded to 6 decimals, so 14.000000000000002 reads 14.0."""
    return round(scale * credit, 6)


def _brief(code: str, shown: str, points: float) -> str:
    if shown and len(shown) <= MAX_SHOWN_COMPACT:
        return f"{code} {shown} {_fmt_points(points)}"
    return f"{code} {_fmt_points(points)}"


def _missing_reason(c: Criterion) -> Reason:
    return Reason(c.key, 0.0, 0.0, f"{c.name} missing", "missing", f"missing: {c.key}")


# ------------------------------------------------------------------------------------ reading values


def _scalar_text(value: Any) -> str | None:
    """Text form of a scalar for categorical matching (stripped, case kept), or None when not usable."""
    if isinstance(value, str):
        text = value.strip()
        return text or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value.bit_length() > 64:
            return None
        return str(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(float(value))
    if isinstance(value, numbers.Real | Decimal):
        return _scalar_text(float(value)) if _finite(value) else None
    return None


def _to_number(value: Any) -> int | float | None:
    """A finite number, or None (bools, NaN, inf, unparsable text and non-numbers are not numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 64:
            return None
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    if isinstance(value, numbers.Real | Decimal) and _finite(value):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _finite(value: numbers.Real | Decimal) -> bool:
    return value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)


def _to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().casefold()
        if text in TRUE_WORDS:
            return True
        if text in FALSE_WORDS:
            return False
    return None


def _members(value: Any) -> Iterable[Any] | None:
    """Members of a multi-valued attribute (a single scalar is a one-member set), None if not a set."""
    if isinstance(value, _COLLECTIONS):
        return value
    if isinstance(value, str | int | float):
        return (value,)
    return None


_BIG_KEY = 2**128


class _BoundedCache(dict):
    """A dict that forgets everything when it reaches ``CACHE_LIMIT`` entries (cheap, and hot keys return).

    Very long texts and huge integers are not remembered, so odd data cannot make a cache big in memory.
    """

    __slots__ = ()

    def put(self, key: Any, value: Any) -> Any:
        t = type(key)
        if (t is str and len(key) > MAX_CACHED_TEXT) or (t is int and not -_BIG_KEY < key < _BIG_KEY):
            return value
        if len(self) >= CACHE_LIMIT:
            self.clear()
        self[key] = value
        return value


# ------------------------------------------------------------------------------------------ compiling

Evaluator = Callable[[Any], Reason]
#: A compiled criterion: its evaluator, and the one Reason object it returns for missing data.
Compiled = tuple[Evaluator, Reason]


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
    missing = _missing_reason(c)
    by_raw = _BoundedCache()  # raw str/int/float value -> Reason
    by_shown = _BoundedCache()  # stripped text -> Reason
    raw_get = by_raw.get

    def build(shown: str) -> Reason:
        reason = by_shown.get(shown)
        if reason is None:
            credit = values.get(shown.casefold(), default)
            points = _points_for(scale, credit)
            text = f"{name} {_shorten(shown)}: {_fmt_points(points)}"
            reason = by_shown.put(
                shown, _reason(code, credit, points, text, _status(credit), _brief(code, shown, points))
            )
        return reason

    def slow(value: Any) -> Reason:
        if isinstance(value, _COLLECTIONS):
            best: tuple[float, str] | None = None
            for member in value:
                shown = _scalar_text(member)
                if shown is None:
                    continue
                credit = values.get(shown.casefold(), default)
                if best is None or credit > best[0]:
                    best = (credit, shown)
            return missing if best is None else build(best[1])
        shown = _scalar_text(value)
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

    return evaluate, missing


def _band_label(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"in {_fmt_num(lo, exact=True)}–{_fmt_num(hi, exact=True)}"
    if lo is not None:
        return f"≥ {_fmt_num(lo, exact=True)}"
    assert hi is not None
    return f"< {_fmt_num(hi, exact=True)}"


def _compile_bands(c: Criterion, scale: float) -> Compiled:
    name, code = c.name, c.key
    missing = _missing_reason(c)
    # (low, high, credit, points, label, reasons by shown value); the last entry catches values in no band
    bands = [
        (
            -math.inf if b.min is None else b.min,
            math.inf if b.max is None else b.max,
            b.credit,
            _points_for(scale, b.credit),
            _band_label(b.min, b.max),
            _BoundedCache(),
        )
        for b in c.bands
    ]
    outside = (-math.inf, math.inf, 0.0, 0.0, "outside the bands", _BoundedCache())
    by_raw = _BoundedCache()
    raw_get, raw_put = by_raw.get, by_raw.put

    def for_number(number: int | float) -> Reason:
        """The Reason for a finite number (never raises)."""
        for band in bands:
            if band[0] <= number < band[1]:
                break
        else:
            band = outside
        _, _, credit, points, label, by_shown = band
        shown = _fmt_int(number) if type(number) is int else _fmt_num(number)
        reason = by_shown.get(shown)
        if reason is None:
            text = f"{name} {shown} {label}: {_fmt_points(points)}"
            reason = by_shown.put(
                shown, _reason(code, credit, points, text, _status(credit), _brief(code, shown, points))
            )
        return reason

    def slow(value: Any) -> Reason:
        number = _to_number(value)
        reason = missing if number is None else for_number(number)
        if type(value) in (str, int, float):
            raw_put(value, reason)
        return reason

    safe = _guarded(slow, missing)

    def evaluate(value: Any) -> Reason:
        t = type(value)
        if t is int or t is float or t is str:
            reason = raw_get(value)
            if reason is not None:
                return reason
            if t is int:
                return raw_put(value, for_number(value))
        return safe(value)

    return evaluate, missing


def _compile_contains_any(c: Criterion, scale: float) -> Compiled:
    name, code, values = c.name, c.key, c.values
    missing = _missing_reason(c)
    listed = list(values)
    shown_list = ", ".join(_shorten(v, 20) for v in listed[:5]) + (", …" if len(listed) > 5 else "")
    none = Reason(code, 0.0, 0.0, f"{name} has none of {shown_list}: +0", "miss", f"{code} +0")
    hits: dict[str, Reason] = {}
    for key, credit in values.items():
        points = _points_for(scale, credit)
        text = f"{name} has {_shorten(key)}: {_fmt_points(points)}"
        hits[key] = Reason(code, credit, points, text, _status(credit), _brief(code, key, points))
    folded = _BoundedCache()  # member text -> casefolded, stripped
    folded_get = folded.get

    def best_of(members: Iterable[Any]) -> Reason:
        best: str | None = None
        best_credit = -1.0
        present = False
        for member in members:
            if type(member) is str:
                key = folded_get(member)
                if key is None:
                    key = folded.put(member, member.strip().casefold())
            else:
                text = _scalar_text(member)
                key = text.casefold() if text is not None else ""
            if not key:
                continue
            present = True
            credit = values.get(key)
            if credit is not None and credit > best_credit:
                best, best_credit = key, credit
        if best is not None:
            return hits[best]
        return none if present else missing

    def slow(value: Any) -> Reason:
        members = _members(value)
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

    return evaluate, missing


def _compile_boolean(c: Criterion, scale: float) -> Compiled:
    name, code = c.name, c.key
    missing = _missing_reason(c)
    by_value: dict[bool, Reason] = {}
    for flag in (True, False):
        credit = c.credit if flag == c.expected else 0.0
        points = _points_for(scale, credit)
        word = "yes" if flag else "no"
        text = f"{name} {word}: {_fmt_points(points)}"
        by_value[flag] = Reason(code, credit, points, text, _status(credit), _brief(code, word, points))
    r_true, r_false = by_value[True], by_value[False]

    def slow(value: Any) -> Reason:
        flag = _to_bool(value)
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

    return evaluate, missing


_COMPILERS: dict[str, Callable[[Criterion, float], Compiled]] = {
    "categorical": _compile_categorical,
    "bands": _compile_bands,
    "contains_any": _compile_contains_any,
    "boolean": _compile_boolean,
}

#: value → the disqualifier's Reason when it fires, else None. Never fires on missing data.
DisqualifierCheck = Callable[[Any], "Reason | None"]


def _compile_disqualifier(d: Disqualifier) -> DisqualifierCheck:
    label = _shorten(d.description or d.key, 60)
    code, attribute = d.key, d.attribute

    def fired(shown: str) -> Reason:
        text = f"disqualified ({label}): {attribute} {_shorten(shown)}"
        return _reason(code, 0.0, 0.0, text, "disqualified", f"disqualified: {code}")

    if d.values is not None:
        listed = d.values

        def check(value: Any) -> Reason | None:
            members = _members(value)
            if members is None:
                return None
            for member in members:
                text = _scalar_text(member)
                if text is not None and text.casefold() in listed:
                    return fired(text)
            return None

        fast_types: tuple[type, ...] = (str,)
    elif d.equals is not None:
        expected = d.equals

        def check(value: Any) -> Reason | None:
            flag = _to_bool(value)
            return fired("yes" if flag else "no") if flag is not None and flag == expected else None

        fast_types = (bool, str)
    else:
        lo = -math.inf if d.min is None else d.min
        hi = math.inf if d.max is None else d.max

        def check(value: Any) -> Reason | None:
            number = _to_number(value)
            return fired(_fmt_num(number)) if number is not None and lo <= number < hi else None

        fast_types = (int, float, str)

    # Most values do not fire: remember the answer per plain value (False = does not fire).
    seen = _BoundedCache()
    seen_get = seen.get

    def safe(value: Any) -> Reason | None:
        if value is None:
            return None
        plain = type(value) in fast_types
        if plain:
            hit = seen_get(value)
            if hit is not None:
                return hit or None
        try:
            reason = check(value)
        except Exception:
            return None
        if plain:
            seen.put(value, reason or False)
        return reason

    return safe


# --------------------------------------------------------------------------------------------- scorer


class Scorer:
    """A spec compiled for fast scoring. Reusable, and safe to share between threads.

    Each criterion becomes an evaluator (value → cached Reason) and each disqualifier a check; the
    per-record work is then generated as one straight-line function (see :func:`_generate_runner`).
    """

    __slots__ = ("spec", "_run", "_weights", "_exact")

    def __init__(self, spec: IcpSpec) -> None:
        if not spec.criteria:
            raise ValueError("an ICP needs at least one criterion")
        self.spec = spec
        self._weights = tuple(float(c.weight) for c in spec.criteria)
        total = 0.0
        for weight in self._weights:  # left to right, exactly as the runner adds covered weights
            total += weight
        compiled = [_COMPILERS[c.type](c, _scale(c.weight, total)) for c in spec.criteria]
        table = []
        for s in range(101):
            tier = spec.fallback_tier
            for name, threshold in spec.tiers:
                if s >= threshold:
                    tier = name
                    break
            table.append(tier)
        self._exact: _BoundedCache = _BoundedCache()
        # Each Reason's points are rounded to 6 decimals (≤ 5e-7 off) and float sums add a little noise:
        # any total this close to a .5 tie is decided in exact arithmetic instead. When every possible
        # points value is exactly its rational value and a short binary fraction (30, 15, 7.5, 0.25...),
        # float sums are exact and no total needs a second look.
        tie = 0.0 if _sums_are_exact(spec) else 1e-6 * (len(compiled) + 1)
        self._run = _generate_runner(
            criteria=[
                (c.attribute, evaluate, missing, weight)
                for c, (evaluate, missing), weight in zip(spec.criteria, compiled, self._weights, strict=True)
            ],
            checks=[(d.attribute, _compile_disqualifier(d)) for d in spec.disqualifiers],
            total_weight=total,
            # coverage < min_coverage  ⇔  covered weight < min_coverage·Σw (with slack for float sums)
            min_covered=spec.min_coverage * total - 1e-9 * total,
            tier_by_score=tuple(table),
            tie=tie,
            exact_score=self._exact_score,
        )

    def score(self, attributes: Mapping[str, Any]) -> FitResult:
        """Score one record's canonical attributes. Never raises, whatever the values."""
        try:
            return self._run(attributes.get)
        except Exception:  # not a Mapping, or one whose get() raises: read it defensively
            return self._run(partial(_safe_get, attributes))

    def _exact_score(self, reasons: tuple[Reason, ...]) -> int:
        """round_half_up(100·Σw·c/Σw) in exact arithmetic, from the decimals the ICP was written with."""
        key = tuple(map(_credit_of, reasons))
        cached = self._exact.get(key)
        if cached is not None:
            return cached
        weights = [Fraction(repr(weight)) for weight in self._weights]
        total = sum(
            (w * Fraction(repr(r.credit)) for w, r in zip(weights, reasons, strict=True)), Fraction(0)
        )
        exact = 100 * total / sum(weights)
        return self._exact.put(key, min(100, max(0, math.floor(exact + Fraction(1, 2)))))


def _generate_runner(
    *,
    criteria: list[tuple[str, Evaluator, Reason, float]],
    checks: list[tuple[str, DisqualifierCheck]],
    total_weight: float,
    min_covered: float,
    tier_by_score: tuple[str, ...],
    tie: float,
    exact_score: Callable[[tuple[Reason, ...]], int],
) -> Callable[[Callable[[str], Any]], FitResult]:
    """One straight-line function ``run(get) -> FitResult`` for a compiled spec.

    Unrolling the per-criterion loop saves about a third of the per-record time. The generated source
    holds only numbered local names (``a0``, ``e0``...): attribute names, evaluators and constants from the
    spec are passed in the namespace, never written into the source. For two criteria and one check::

        def run(get):
            r0 = e0(get(a0))
            r1 = e1(get(a1))
            reasons = (r0, r1,)
            total = r0.points + r1.points
            covered = (w0 if r0 is not m0 else 0.0) + (w1 if r1 is not m1 else 0.0)
            coverage = covered / W
            fired = None
            v = get(d0)
            if v is not None:
                hit = c0(v)
                if hit is not None:
                    fired = (hit,) if fired is None else (*fired, hit)
            if fired is not None:
                return fit(0, DISQUALIFIED, coverage, fired + reasons)
            points = int(total + 0.5)
            # only when float sums can be inexact:
            off = total + 0.5 - points
            if off < TIE or off > 1.0 - TIE:
                points = exact_score(reasons)
            if covered < MIN_COVERED:
                return fit(points, INSUFFICIENT_DATA, coverage, reasons)
            return fit(points, TIERS[points], coverage, reasons)
    """
    namespace: dict[str, Any] = {
        "fit": _fit,
        "DISQUALIFIED": DISQUALIFIED,
        "INSUFFICIENT_DATA": INSUFFICIENT_DATA,
        "W": total_weight,
        "MIN_COVERED": min_covered,
        "TIERS": tier_by_score,
        "TIE": tie,
        "exact_score": exact_score,
    }
    n = len(criteria)
    lines = ["def run(get):"]
    for i, (attribute, evaluate, missing, weight) in enumerate(criteria):
        namespace.update({f"a{i}": attribute, f"e{i}": evaluate, f"m{i}": missing, f"w{i}": weight})
        lines.append(f"    r{i} = e{i}(get(a{i}))")
    lines.append(f"    reasons = ({''.join(f'r{i}, ' for i in range(n))})")
    lines.append(f"    total = {' + '.join(f'r{i}.points' for i in range(n))}")
    lines.append(f"    covered = {' + '.join(f'(w{i} if r{i} is not m{i} else 0.0)' for i in range(n))}")
    lines.append("    coverage = covered / W")
    lines.append("    fired = None")
    for j, (attribute, check) in enumerate(checks):
        namespace.update({f"d{j}": attribute, f"c{j}": check})
        lines += [
            f"    v = get(d{j})",
            "    if v is not None:",
            f"        hit = c{j}(v)",
            "        if hit is not None:",
            "            fired = (hit,) if fired is None else (*fired, hit)",
        ]
    lines += [
        "    if fired is not None:",
        "        return fit(0, DISQUALIFIED, coverage, fired + reasons)",
        "    points = int(total + 0.5)",
    ]
    if tie:
        lines += [
            "    off = total + 0.5 - points",
            "    if off < TIE or off > 1.0 - TIE:",
            "        points = exact_score(reasons)",
        ]
    lines += [
        "    if covered < MIN_COVERED:",
        "        return fit(points, INSUFFICIENT_DATA, coverage, reasons)",
        "    return fit(points, TIERS[points], coverage, reasons)",
    ]
    exec(compile("\n".join(lines), "<icp scorer>", "exec"), namespace)  # noqa: S102 - see the docstring
    return namespace["run"]


def _possible_credits(c: Criterion) -> set[float]:
    return {0.0, c.default, c.credit, *c.values.values(), *(b.credit for b in c.bands)}


def _sums_are_exact(spec: IcpSpec) -> bool:
    """True when float sums of Reason points are exact: every possible points value (as stored) equals
    ``100·w·c/Σw`` exactly and is a binary fraction with few bits (30, 15, 7.5, 0.25...)."""
    total = float(sum(c.weight for c in spec.criteria))
    exact_total = sum(Fraction(repr(float(c.weight))) for c in spec.criteria)
    for c in spec.criteria:
        scale = _scale(c.weight, total)
        for credit in _possible_credits(c):
            exact = 100 * Fraction(repr(float(c.weight))) * Fraction(repr(float(credit))) / exact_total
            if Fraction(_points_for(scale, credit)) != exact or exact.denominator > 2**20:
                return False
    return True


_credit_of = attrgetter("credit")


def _safe_get(attributes: Any, key: str) -> Any:
    try:
        return attributes.get(key)
    except Exception:
        try:
            return attributes[key]
        except Exception:
            return None


_SCORERS: dict[int, tuple[IcpSpec, Scorer]] = {}


def score(spec: IcpSpec, attributes: Mapping[str, Any]) -> FitResult:
    """Score one record (compiles the spec on first use; prefer a :class:`Scorer` in loops)."""
    entry = _SCORERS.get(id(spec))
    if entry is None or entry[0] is not spec:
        if len(_SCORERS) >= 16:
            _SCORERS.clear()
        entry = (spec, Scorer(spec))
        _SCORERS[id(spec)] = entry
    return entry[1].score(attributes)
