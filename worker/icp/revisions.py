"""What changed between two ICP versions, as short human lines (pure).

``diff_specs(old, new)`` lists, in a stable order: the name and description, tiers (thresholds, added,
removed, fallback), min_coverage, re-engagement tiers, criteria (added, removed, then per criterion:
attribute, type, label, weight, values and credits, default, bands, boolean expectation), the total weight
(it rescales every criterion's points), and disqualifiers (added, removed, changed). No change: ``[]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from connectors.values import grouped_number
from worker.icp.model import Band, Criterion, Disqualifier, IcpSpec

__all__ = ["diff_specs"]


def _num(x: float | int | None) -> str:
    if x is None:
        return "none"
    if isinstance(x, float) and not x.is_integer():
        return f"{x:g}"
    return grouped_number(x)


def _band(b: Band) -> str:
    if b.min is not None and b.max is not None:
        rng = f"{_num(b.min)}–{_num(b.max)}"
    elif b.min is not None:
        rng = f"≥ {_num(b.min)}"
    else:
        rng = f"< {_num(b.max)}"
    return f"{rng}: {_num(b.credit)}"


def _bands(bands: Iterable[Band]) -> str:
    ordered = sorted(bands, key=lambda b: float("-inf") if b.min is None else b.min)
    return "[" + ", ".join(_band(b) for b in ordered) + "]" if ordered else "[]"


def _criterion_summary(c: Criterion) -> str:
    detail = f"weight {_num(c.weight)}, {c.type} on {c.attribute}"
    if c.type in ("categorical", "contains_any"):
        detail += ", values " + ", ".join(f"{k} {_num(v)}" for k, v in c.values.items())
    elif c.type == "bands":
        detail += ", bands " + _bands(c.bands)
    else:
        detail += f", {'true' if c.expected else 'false'} gives {_num(c.credit)}"
    return detail


def _condition(d: Disqualifier) -> str:
    if d.values is not None:
        return f"{d.attribute} in {', '.join(sorted(d.values))}"
    if d.equals is not None:
        return f"{d.attribute} is {'true' if d.equals else 'false'}"
    parts = []
    if d.min is not None:
        parts.append(f"{d.attribute} ≥ {_num(d.min)}")
    if d.max is not None:
        parts.append(f"{d.attribute} < {_num(d.max)}")
    return " and ".join(parts) or f"{d.attribute} (any value)"


def _values_diff(prefix: str, old: dict[str, float], new: dict[str, float]) -> list[str]:
    lines = []
    for value in new:
        if value not in old:
            lines.append(f"{prefix}: value '{value}' added ({_num(new[value])})")
        elif old[value] != new[value]:
            lines.append(f"{prefix}: value '{value}' credit {_num(old[value])} → {_num(new[value])}")
    for value in old:
        if value not in new:
            lines.append(f"{prefix}: value '{value}' removed (was {_num(old[value])})")
    return lines


def _criterion_diff(old: Criterion, new: Criterion) -> list[str]:
    prefix = f"criterion {new.key}"
    lines = []
    if old.attribute != new.attribute:
        lines.append(f"{prefix}: attribute {old.attribute} → {new.attribute}")
    if old.type != new.type:
        lines.append(f"{prefix}: type {old.type} → {new.type} ({_criterion_summary(new)})")
        if old.weight != new.weight:
            lines.append(f"{prefix}: weight {_num(old.weight)} → {_num(new.weight)}")
        return lines
    if old.label != new.label:
        lines.append(f"{prefix}: label {old.label or '(none)'} → {new.label or '(none)'}")
    if old.weight != new.weight:
        lines.append(f"{prefix}: weight {_num(old.weight)} → {_num(new.weight)}")
    if new.type in ("categorical", "contains_any"):
        lines.extend(_values_diff(prefix, old.values, new.values))
    if new.type == "categorical" and old.default != new.default:
        lines.append(f"{prefix}: default credit {_num(old.default)} → {_num(new.default)}")
    if new.type == "bands" and _bands(old.bands) != _bands(new.bands):
        lines.append(f"{prefix}: bands {_bands(old.bands)} → {_bands(new.bands)}")
    if new.type == "boolean":
        if old.expected != new.expected:
            lines.append(f"{prefix}: expected {str(old.expected).lower()} → {str(new.expected).lower()}")
        if old.credit != new.credit:
            lines.append(f"{prefix}: credit {_num(old.credit)} → {_num(new.credit)}")
    return lines


def _disqualifier_diff(old: Disqualifier, new: Disqualifier) -> list[str]:
    prefix = f"disqualifier {new.key}"
    lines = []
    if _condition(old) != _condition(new):
        if old.values is not None and new.values is not None and old.attribute == new.attribute:
            added, removed = sorted(new.values - old.values), sorted(old.values - new.values)
            if added:
                lines.append(f"{prefix}: values added {', '.join(added)}")
            if removed:
                lines.append(f"{prefix}: values removed {', '.join(removed)}")
        else:
            lines.append(f"{prefix}: {_condition(old)} → {_condition(new)}")
    if (old.description or "") != (new.description or ""):
        lines.append(f"{prefix}: description changed")
    return lines


def diff_specs(old: IcpSpec, new: IcpSpec) -> list[str]:
    """Human lines describing what ``new`` changes relative to ``old`` (empty when nothing does)."""
    lines: list[str] = []
    if old.name != new.name:
        lines.append(f"name: {old.name} → {new.name}")
    if (old.description or "") != (new.description or ""):
        lines.append("description changed")

    old_tiers, new_tiers = dict(old.tiers), dict(new.tiers)
    for name, threshold in new.tiers:
        if name not in old_tiers:
            lines.append(f"tier {name} added (≥ {threshold})")
        elif old_tiers[name] != threshold:
            lines.append(f"tier {name}: threshold {old_tiers[name]} → {threshold}")
    for name, threshold in old.tiers:
        if name not in new_tiers:
            lines.append(f"tier {name} removed (was ≥ {threshold})")
    if old.fallback_tier != new.fallback_tier:
        lines.append(f"fallback tier: {old.fallback_tier} → {new.fallback_tier}")
    if old.min_coverage != new.min_coverage:
        lines.append(f"min_coverage: {_num(old.min_coverage)} → {_num(new.min_coverage)}")
    if tuple(old.reengage_tiers) != tuple(new.reengage_tiers):
        lines.append(
            f"re-engagement tiers: {', '.join(old.reengage_tiers) or '(none)'} → "
            f"{', '.join(new.reengage_tiers) or '(none)'}"
        )

    lines.extend(_keyed_diff("criterion", old.criteria, new.criteria, _criterion_summary, _criterion_diff))
    if old.total_weight != new.total_weight:
        lines.append(
            f"total weight {_num(old.total_weight)} → {_num(new.total_weight)} "
            "(every criterion's share of the score changes)"
        )

    lines.extend(
        _keyed_diff("disqualifier", old.disqualifiers, new.disqualifiers, _condition, _disqualifier_diff)
    )
    return lines


def _keyed_diff(
    kind: str,
    old: Sequence[Any],
    new: Sequence[Any],
    summary: Callable[[Any], str],
    changes: Callable[[Any, Any], list[str]],
) -> list[str]:
    """Lines for items (criteria or disqualifiers) added, removed or changed, matched by key."""
    before = {item.key: item for item in old}
    after = {item.key: item for item in new}
    lines = [f"{kind} {key} added ({summary(item)})" for key, item in after.items() if key not in before]
    lines += [
        f"{kind} {key} removed (was {summary(item)})" for key, item in before.items() if key not in after
    ]
    for key, item in after.items():
        if key in before:
            lines.extend(changes(before[key], item))
    return lines
