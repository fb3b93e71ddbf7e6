"""The validated, in-memory form of an ICP file.

``worker.icp.spec`` builds these from YAML (with file/line errors); ``worker.icp.scoring`` reads them.
They are frozen: a published ICP version never changes.

YAML shape (documented with a full example in the README)::

    name: Mid-market SaaS
    tiers: {best: 80, good: 60}      # descending thresholds; below the lowest: ``fallback_tier`` (poor)
    min_coverage: 0.5
    reengage_tiers: [best, good]      # re-engagement targets (default: every tier above the fallback)
    criteria:
      - key: industry                 # stable reason code
        attribute: industry           # canonical attribute the criterion reads
        weight: 30
        type: categorical             # categorical | bands | contains_any | boolean
        values: {Computer Software: 1.0, IT Services: 0.5}
        default: 0                    # credit for a present value not listed (categorical only)
      - key: employees
        attribute: employees
        weight: 25
        type: bands
        bands: [{min: 500, credit: 1.0}, {min: 200, max: 500, credit: 0.6}]
      - key: tech_stack
        attribute: tech_stack
        weight: 10
        type: contains_any
        values: {Okta: 1.0, Salesforce: 1.0}   # or a list: each 1.0; credit = best match
      - key: public
        attribute: is_public
        weight: 5
        type: boolean
        expected: true
        credit: 1.0
    disqualifiers:
      - key: competitor
        attribute: industry
        values: [Competitor]          # fires when the value (or any member of a set) is listed
        description: A competitor
      - key: too_small
        attribute: employees
        max: 10                       # fires when min <= value < max (either bound may be omitted)
      - key: student
        attribute: is_student
        equals: true
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, get_args

#: The criterion types: defined here once; the spec parser and the scorer's compilers follow this list.
CriterionType = Literal["categorical", "bands", "contains_any", "boolean"]
CRITERION_TYPES: tuple[CriterionType, ...] = get_args(CriterionType)
#: The fields (and YAML keys) each type reads besides ``key``, ``attribute``, ``weight`` and ``label``.
CRITERION_TYPE_FIELDS: dict[CriterionType, tuple[str, ...]] = {
    "categorical": ("values", "default"),
    "bands": ("bands",),
    "contains_any": ("values",),
    "boolean": ("expected", "credit"),
}

DEFAULT_TIERS: tuple[tuple[str, int], ...] = (("best", 80), ("good", 60))
DEFAULT_FALLBACK_TIER = "poor"
#: Below this share of the total weight with data, a record is ``insufficient_data``.
DEFAULT_MIN_COVERAGE = 0.5
DISQUALIFIED = "disqualified"
INSUFFICIENT_DATA = "insufficient_data"
RESERVED_TIERS = frozenset({DISQUALIFIED, INSUFFICIENT_DATA})


def default_reengage_tiers(tiers: Iterable[tuple[str, int]]) -> tuple[str, ...]:
    """Re-engagement targets when an ICP names none: every tier above the fallback tier."""
    return tuple(name for name, _ in tiers)


@dataclass(frozen=True, slots=True)
class Band:
    """Numeric band: ``min`` inclusive, ``max`` exclusive; ``None`` is unbounded."""

    min: float | None
    max: float | None
    credit: float

    def contains(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value < self.max)


@dataclass(frozen=True, slots=True)
class Criterion:
    key: str
    attribute: str
    weight: float
    type: CriterionType
    label: str | None = None
    #: categorical and contains_any: value -> credit. Keys are matched case-insensitively
    #: (and country/region values are normalised to codes when the spec is loaded).
    values: dict[str, float] = field(default_factory=dict)
    #: categorical and contains_any: value -> the value as written in the ICP file ("Computer Software").
    labels: dict[str, str] = field(default_factory=dict, compare=False)
    #: categorical: credit for a present value that is not listed.
    default: float = 0.0
    #: bands: non-overlapping, validated.
    bands: tuple[Band, ...] = ()
    #: boolean: the value that earns ``credit``.
    expected: bool = True
    credit: float = 1.0

    @property
    def name(self) -> str:
        return self.label or self.key

    def shown(self, value: str) -> str:
        """A listed value as the ICP file wrote it (the normalised key when unknown)."""
        return self.labels.get(value, value)


@dataclass(frozen=True, slots=True)
class Disqualifier:
    key: str
    attribute: str
    description: str | None = None
    values: frozenset[str] | None = None  # casefolded
    min: float | None = None
    max: float | None = None
    equals: bool | None = None


@dataclass(frozen=True, slots=True)
class IcpSpec:
    name: str
    criteria: tuple[Criterion, ...]
    disqualifiers: tuple[Disqualifier, ...] = ()
    #: Descending (tier, minimum score) pairs; a score below every threshold gets ``fallback_tier``.
    tiers: tuple[tuple[str, int], ...] = DEFAULT_TIERS
    fallback_tier: str = DEFAULT_FALLBACK_TIER
    min_coverage: float = DEFAULT_MIN_COVERAGE
    reengage_tiers: tuple[str, ...] = default_reengage_tiers(DEFAULT_TIERS)
    description: str | None = None

    @property
    def total_weight(self) -> float:
        return sum(c.weight for c in self.criteria)

    @property
    def tier_names(self) -> tuple[str, ...]:
        """Every tier a record can get, best first."""
        return (*(t for t, _ in self.tiers), self.fallback_tier, DISQUALIFIED, INSUFFICIENT_DATA)
