"""What would move a record: the smallest single-attribute changes that lift it into the next tier, and
for a disqualified record which disqualifier fired and what would clear it. Pure, no I/O.

Every suggestion is checked by rescoring the record with that one attribute changed, so "employees ≥ 500
would make it best: +15" is true of the ICP version the scorer was built from. The tiers are ranked
``disqualified < insufficient_data < fallback < … < the top tier``; the next tier is the rung above the
record's current one (for ``insufficient_data`` that is any tier at all: enough data to be scored).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from worker.icp.criteria import band_label
from worker.icp.model import DISQUALIFIED, INSUFFICIENT_DATA, Band, Criterion, Disqualifier, IcpSpec
from worker.icp.reasons import FitResult, Reason, fmt_num, fmt_points, shorten
from worker.icp.scoring import Scorer
from worker.icp.spec_criteria import COUNTRY_ATTRIBUTES

__all__ = ["Clearance", "Move", "NextTier", "next_tier", "tier_ladder", "tier_rank"]


@dataclass(frozen=True, slots=True)
class Move:
    """Setting ``attribute`` to ``value`` lifts the record to ``tier`` (``score``), ``gain`` points more."""

    criterion: str
    attribute: str
    value: Any
    condition: str
    tier: str
    score: int
    gain: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "criterion": self.criterion,
            "attribute": self.attribute,
            "value": self.value,
            "condition": self.condition,
            "tier": self.tier,
            "score": self.score,
            "gain": self.gain,
            "text": self.text,
        }


@dataclass(frozen=True, slots=True)
class Clearance:
    """A disqualifier that fired, and what would clear it."""

    disqualifier: str
    attribute: str
    fired: str
    clears: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "disqualifier": self.disqualifier,
            "attribute": self.attribute,
            "fired": self.fired,
            "clears": self.clears,
        }


@dataclass(frozen=True, slots=True)
class NextTier:
    """``target`` is None for a record already in the top tier (then there are no moves); for a
    disqualified record it is the tier it would have with its disqualifiers cleared."""

    current: str
    target: str | None
    moves: tuple[Move, ...] = ()
    clearances: tuple[Clearance, ...] = ()
    #: Disqualified records: the (score, tier) the record would have with every fired disqualifier cleared.
    without_disqualifiers: tuple[int, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        without = self.without_disqualifiers
        return {
            "current": self.current,
            "target": self.target,
            "moves": [m.to_dict() for m in self.moves],
            "clearances": [c.to_dict() for c in self.clearances],
            "without_disqualifiers": None if without is None else {"score": without[0], "tier": without[1]},
        }


def tier_ladder(spec: IcpSpec) -> tuple[str, ...]:
    """Every tier a record can get, lowest first."""
    return (DISQUALIFIED, INSUFFICIENT_DATA, spec.fallback_tier, *(t for t, _ in reversed(spec.tiers)))


def tier_rank(spec: IcpSpec, tier: str) -> int:
    """Position on :func:`tier_ladder` (an unknown tier ranks below everything)."""
    ladder = tier_ladder(spec)
    return ladder.index(tier) if tier in ladder else -1


def next_tier(scorer: Scorer, attributes: Mapping[str, Any], result: FitResult | None = None) -> NextTier:
    """What would lift ``attributes`` (scored by ``scorer``) into the next tier.

    One move per criterion at most: the change of its attribute with the least credit that still lifts the
    record (for bands, among equal credits, the band nearest the current value). Moves are ordered by the
    points they add, smallest first.
    """
    spec = scorer.spec
    result = result if result is not None else scorer.score(attributes)
    ladder = tier_ladder(spec)
    rank = tier_rank(spec, result.tier)
    if result.tier == DISQUALIFIED:
        return _clearances(scorer, attributes, result)
    if rank + 1 >= len(ladder):
        return NextTier(result.tier, None)
    target = ladder[rank + 1]
    reasons = {r.code: r for r in result.reasons if r.status != "disqualified"}
    moves: list[Move] = []
    for criterion in spec.criteria:
        current = reasons.get(criterion.key)
        move = _best_move(scorer, attributes, criterion, current, rank + 1)
        if move is not None:
            moves.append(move)
    moves.sort(key=lambda m: (m.gain, m.criterion))
    return NextTier(result.tier, target, tuple(moves))


# ------------------------------------------------------------------------------------------------ moves


def _best_move(
    scorer: Scorer, attributes: Mapping[str, Any], c: Criterion, current: Reason | None, needed: int
) -> Move | None:
    spec = scorer.spec
    before = current.points if current is not None and current.status != "missing" else 0.0
    credit_now = current.credit if current is not None and current.status != "missing" else -1.0
    for value, condition, _ in _candidates(c, attributes.get(c.attribute), credit_now):
        changed = {**attributes, c.attribute: value}
        rescored = scorer.score(changed)
        if tier_rank(spec, rescored.tier) < needed:
            continue
        after = next(
            (r.points for r in rescored.reasons if r.code == c.key and r.status != "disqualified"), 0.0
        )
        gain = round(after - before, 6)
        if needed == tier_rank(spec, spec.fallback_tier):  # from insufficient_data
            text = f"{condition} would give enough data to score it: {rescored.tier}, {fmt_points(gain)}"
        else:
            text = f"{condition} would make it {rescored.tier}: {fmt_points(gain)}"
        return Move(c.key, c.attribute, value, condition, rescored.tier, rescored.score, gain, text)
    return None


def _candidates(c: Criterion, value: Any, credit_now: float) -> Iterator[tuple[Any, str, float]]:
    """(value to set, condition text, credit) for every change that earns more credit, least credit first."""
    name = c.name
    found: list[tuple[float, float, Any, str]] = []  # (credit, distance, value, condition)
    if c.type == "categorical":
        for key, credit in c.values.items():
            if credit > credit_now:
                found.append((credit, 0.0, _listed_value(c, key), f"{name} {shorten(c.shown(key))}"))
    elif c.type == "contains_any":
        members = _members(value)
        for key, credit in c.values.items():
            if credit > credit_now:
                label = c.shown(key)
                found.append((credit, 0.0, [*members, label], f"{name} has {shorten(label)}"))
    elif c.type == "bands":
        number = _number(value)
        for band in c.bands:
            if band.credit > credit_now:
                target = _inside(band, number)
                distance = 0.0 if number is None else abs(target - number)
                found.append((band.credit, distance, target, f"{name} {band_label(band.min, band.max)}"))
    elif c.type == "boolean" and c.credit > credit_now:
        found.append((c.credit, 0.0, c.expected, f"{name} {'yes' if c.expected else 'no'}"))
    found.sort(key=lambda f: (f[0], f[1]))
    for credit, _, candidate, condition in found:
        yield candidate, condition, credit


def _listed_value(c: Criterion, key: str) -> str:
    """The attribute value that matches a listed key, as a normalised record would hold it."""
    if c.attribute in COUNTRY_ATTRIBUTES:
        return key.upper()
    return c.shown(key)


def _members(value: Any) -> list[Any]:
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)
    if isinstance(value, str) and value.strip():
        return [value]
    return []


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _inside(band: Band, number: float | None) -> float | int:
    """The value of the band nearest ``number`` (its lower bound, or just under its upper bound)."""
    if band.min is not None and (number is None or number < band.min or band.max is None):
        return _plain(band.min)
    if band.max is not None and (number is None or number >= band.max):
        below = band.max - 1 if float(band.max).is_integer() else math.nextafter(band.max, -math.inf)
        if band.min is None or below >= band.min:
            return _plain(below)
        return _plain(band.min)
    return _plain(band.min if band.min is not None else 0.0)


def _plain(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x


# ------------------------------------------------------------------------------------------ disqualifiers


def _clearances(scorer: Scorer, attributes: Mapping[str, Any], result: FitResult) -> NextTier:
    spec = scorer.spec
    fired = [r for r in result.reasons if r.status == "disqualified"]
    by_key = {d.key: d for d in spec.disqualifiers}
    clearances = tuple(
        Clearance(r.code, by_key[r.code].attribute, r.text, _clears(by_key[r.code], r.value))
        for r in fired
        if r.code in by_key
    )
    keep = tuple(d for d in spec.disqualifiers if d.key not in {c.disqualifier for c in clearances})
    cleared = Scorer(replace(spec, disqualifiers=keep)).score(attributes)
    return NextTier(
        DISQUALIFIED,
        cleared.tier,
        clearances=clearances,
        without_disqualifiers=(cleared.score, cleared.tier),
    )


def _clears(d: Disqualifier, shown: str) -> str:
    """What would clear a disqualifier: "industry other than Government", "employees ≥ 10"."""
    if d.values is not None:
        return f"{d.attribute} other than {shorten(shown)}"
    if d.equals is not None:
        return f"{d.attribute} {'no' if d.equals else 'yes'}"
    bounds = []
    if d.min is not None:
        bounds.append(f"< {fmt_num(d.min, exact=True)}")
    if d.max is not None:
        bounds.append(f"≥ {fmt_num(d.max, exact=True)}")
    return f"{d.attribute} {' or '.join(bounds)}"
