"""Pure ICP fit scoring: (spec, attributes) → score, tier, coverage and reasons.

No I/O and no clock. The contract (what a score, a tier, coverage and a reason mean) is written down in
``docs/scoring.md``, with a map of the data flow and of where each rule lives. In short:

- each criterion gives a credit in [0, 1]; a missing attribute (absent, ``None``, blank text, empty list,
  NaN/inf, anything that cannot be read as the criterion's kind of value) gives 0 and is listed as missing;
- ``score = round_half_up(100 * Σ w·c / Σ w)``; ``coverage = Σ w (criteria with data) / Σ w``;
- a matching disqualifier (never on missing data) gives score 0 and tier ``disqualified``;
- else coverage below ``min_coverage`` gives ``insufficient_data``;
- else the highest tier whose threshold the score reaches, else the fallback tier.

The pieces: :mod:`worker.icp.reasons` (Reason, FitResult, compact CRM text, number formatting),
:mod:`worker.icp.reading` (reading values), :mod:`worker.icp.criteria` (one compiler per criterion type),
this module (the :class:`Scorer`) and :mod:`worker.icp.moves` (what would lift a record's tier).

:class:`Scorer` compiles a spec once into per-criterion closures and lookup tables; the :class:`Reason`
objects are immutable and cached per (criterion, value) — a bands criterion keeps one per count below
10,000 and one per bucket of large integers that read the same ("12.3M", in the same band) — so scoring a
record mostly costs dictionary look-ups.
No input value makes :meth:`Scorer.score` raise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from fractions import Fraction
from functools import partial
from operator import attrgetter
from typing import Any

from worker.icp.criteria import Compiled, CompiledCheck, compile_criterion, compile_disqualifier
from worker.icp.model import DISQUALIFIED, INSUFFICIENT_DATA, Criterion, IcpSpec
from worker.icp.reading import CACHE_LIMIT, BoundedCache
from worker.icp.reasons import FitResult, Reason, ReasonStatus, new_fit, points_for, points_scale

__all__ = ["CACHE_LIMIT", "FitResult", "Reason", "ReasonStatus", "Scorer", "score"]


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
        compiled = [compile_criterion(c, points_scale(c.weight, total)) for c in spec.criteria]
        table: list[str] = []
        for s in range(101):
            tier = spec.fallback_tier
            for name, threshold in spec.tiers:
                if s >= threshold:
                    tier = name
                    break
            table.append(tier)
        self._exact: BoundedCache[tuple[float, ...], int] = BoundedCache()
        # Each Reason's points are rounded to 6 decimals (≤ 5e-7 off) and float sums add a little noise:
        # any total this close to a .5 tie is decided in exact arithmetic instead. When every possible
        # points value is exactly its rational value and a short binary fraction (30, 15, 7.5, 0.25...),
        # float sums are exact and no total needs a second look.
        tie = 0.0 if _sums_are_exact(spec) else 1e-6 * (len(compiled) + 1)
        self._run = _generate_runner(
            criteria=[
                (c.attribute, compiled_criterion, weight)
                for c, compiled_criterion, weight in zip(spec.criteria, compiled, self._weights, strict=True)
            ],
            checks=[(d.attribute, compile_disqualifier(d)) for d in spec.disqualifiers],
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
    criteria: list[tuple[str, Compiled, float]],
    checks: list[tuple[str, CompiledCheck]],
    total_weight: float,
    min_covered: float,
    tier_by_score: tuple[str, ...],
    tie: float,
    exact_score: Callable[[tuple[Reason, ...]], int],
) -> Callable[[Callable[[str], Any]], FitResult]:
    """One straight-line function ``run(get) -> FitResult`` for a compiled spec.

    Unrolling the per-criterion loop saves about a third of the per-record time. The generated source
    holds only numbered local names (``a0``, ``e0``...): attribute names, evaluators and constants from the
    spec are passed in the namespace, never written into the source. Each attribute is read once: a
    disqualifier on an attribute a criterion reads (or a second criterion on it) takes the value read.
    Where a criterion or a check has a shortcut (``worker.icp.criteria.Shortcut``: its cache, for values
    of one type), the cache is read first and the Python function called only when it has no answer.
    For two criteria (the first with a shortcut) and one check on another attribute::

        def run(get):
            x0 = get(a0)
            r0 = s0(x0) if type(x0) is t0 else None
            if r0 is None:
                r0 = e0(x0)
            x1 = get(a1)
            r1 = e1(x1)
            reasons = (r0, r1,)
            total = r0.points + r1.points
            covered = (w0 if r0 is not m0 else 0.0) + (w1 if r1 is not m1 else 0.0)
            coverage = covered / W
            fired = None
            v = get(d0)
            if v is not None:
                hit = l0(v) if type(v) is k0 else None
                if hit is None:
                    hit = c0(v)
                if hit:  # a Reason: it fired (None from the check, False from its cache: it did not)
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
        "fit": new_fit,
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
    read: dict[str, str] = {}  # attribute -> the local holding its value
    for i, (attribute, (evaluate, missing, shortcut), weight) in enumerate(criteria):
        namespace.update({f"a{i}": attribute, f"e{i}": evaluate, f"m{i}": missing, f"w{i}": weight})
        if attribute not in read:
            read[attribute] = f"x{i}"
            lines.append(f"    x{i} = get(a{i})")
        x = read[attribute]
        if shortcut is None:
            lines.append(f"    r{i} = e{i}({x})")
        else:
            namespace.update({f"t{i}": shortcut[0], f"s{i}": shortcut[1]})
            lines += [
                f"    r{i} = s{i}({x}) if type({x}) is t{i} else None",
                f"    if r{i} is None:",
                f"        r{i} = e{i}({x})",
            ]
    lines.append(f"    reasons = ({''.join(f'r{i}, ' for i in range(n))})")
    lines.append(f"    total = {' + '.join(f'r{i}.points' for i in range(n))}")
    lines.append(f"    covered = {' + '.join(f'(w{i} if r{i} is not m{i} else 0.0)' for i in range(n))}")
    lines.append("    coverage = covered / W")
    lines.append("    fired = None")
    for j, (attribute, (check, (kind, look_up))) in enumerate(checks):
        namespace.update({f"d{j}": attribute, f"c{j}": check, f"k{j}": kind, f"l{j}": look_up})
        lines += [
            f"    v = {read[attribute]}" if attribute in read else f"    v = get(d{j})",
            "    if v is not None:",
            f"        hit = l{j}(v) if type(v) is k{j} else None",
            "        if hit is None:",
            f"            hit = c{j}(v)",
            "        if hit:",
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
    run: Callable[[Callable[[str], Any]], FitResult] = namespace["run"]
    return run


def _possible_credits(c: Criterion) -> set[float]:
    return {0.0, c.default, c.credit, *c.values.values(), *(b.credit for b in c.bands)}


def _sums_are_exact(spec: IcpSpec) -> bool:
    """True when float sums of Reason points are exact: every possible points value (as stored) equals
    ``100·w·c/Σw`` exactly and is a binary fraction with few bits (30, 15, 7.5, 0.25...)."""
    total = float(sum(c.weight for c in spec.criteria))
    exact_total = sum(Fraction(repr(float(c.weight))) for c in spec.criteria)
    for c in spec.criteria:
        scale = points_scale(c.weight, total)
        for credit in _possible_credits(c):
            exact = 100 * Fraction(repr(float(c.weight))) * Fraction(repr(float(credit))) / exact_total
            if Fraction(points_for(scale, credit)) != exact or exact.denominator > 2**20:
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
