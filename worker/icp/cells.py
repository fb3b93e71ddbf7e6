"""Attributes cut into cells: the values, bands or set members that derive counts and the model fits (pure).

One builder per kind of value:

- ``numeric``: bands between quartile edges of the accounts' values, rounded to human numbers;
- ``set`` (``tech_stack``): one cell per member;
- ``categorical``: one cell per value (case-insensitive, shown in its most common spelling);
- ``boolean``: ``true`` and ``false``.

Values seen on fewer than ``min_support`` accounts get no cell of their own (they count as "other").
``Binning.keys`` places any account's value in its cells, so the same cells serve the evidence, the
logistic regression and the draft's criteria.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from worker.icp.bands import band_label, looks_like_year, nice_edges

Kind = Literal["categorical", "numeric", "set", "boolean"]
CellKey = int | str | bool

_SETS = (list, tuple, set, frozenset)


def is_missing(value: Any) -> bool:
    """No data: ``None``, NaN, blank text, an empty list. (Attributes are normalised values: words such as
    "n/a" were read as missing by ``worker.normalize``; a value that survived it, even "null", is data.)"""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str) and not value.strip():
        return True
    return isinstance(value, _SETS) and not value


def kind_of(values: Iterable[Any]) -> Kind:
    kinds: set[str] = set()
    for v in values:
        if isinstance(v, bool):
            kinds.add("boolean")
        elif isinstance(v, int | float):
            kinds.add("numeric")
        elif isinstance(v, _SETS):
            kinds.add("set")
        else:
            kinds.add("categorical")
    if kinds == {"boolean"}:
        return "boolean"
    if kinds == {"numeric"}:
        return "numeric"
    if "set" in kinds:
        return "set"
    return "categorical"


def _fold(value: Any) -> str:
    return str(value).strip().casefold()


@dataclass(frozen=True, slots=True)
class CellSpec:
    """One value, band or member of an attribute."""

    key: CellKey
    label: str
    #: categorical: the value (most common spelling); set: the member; boolean: True/False; numeric: None.
    value: str | bool | None
    band_min: float | None
    band_max: float | None
    #: Position among the attribute's cells (bands: low to high), for adjacency.
    index: int


@dataclass(frozen=True, slots=True)
class Binning:
    """An attribute's cells, and how to place a value in them."""

    attribute: str
    kind: Kind
    cells: tuple[CellSpec, ...]
    edges: tuple[float, ...] = ()
    #: Values seen in fewer than ``min_support`` accounts, lumped together and not tested.
    rare_values: int = 0
    year: bool = False

    def keys(self, value: Any) -> tuple[CellKey, ...]:
        """The cells ``value`` falls in (none for missing data or a rare value)."""
        if is_missing(value):
            return ()
        if self.kind == "numeric":
            try:
                x = float(value)
            except (TypeError, ValueError):
                return ()
            return (bisect.bisect_right(self.edges, x),) if math.isfinite(x) else ()
        known = {c.key for c in self.cells}
        if self.kind == "set":
            members = value if isinstance(value, _SETS) else [value]
            return tuple(sorted({f for m in members if not is_missing(m) and (f := _fold(m)) in known}))
        key: CellKey = bool(value) if self.kind == "boolean" else _fold(value)
        return (key,) if key in known else ()

    def place(self, accounts: Iterable[Mapping[str, Any]]) -> list[tuple[CellKey, ...] | None]:
        """``keys`` of each account's value (``None``: no data), computed once per distinct value."""
        cache: dict[Any, tuple[CellKey, ...] | None] = {}
        out: list[tuple[CellKey, ...] | None] = []
        for attributes in accounts:
            value = attributes.get(self.attribute)
            memo = tuple(value) if isinstance(value, _SETS) else value
            try:
                out.append(cache[memo])
                continue
            except KeyError:
                pass
            except TypeError:  # unhashable: no memo
                out.append(None if is_missing(value) else self.keys(value))
                continue
            placed = None if is_missing(value) else self.keys(value)
            cache[memo] = placed
            out.append(placed)
        return out


def _numeric(attribute: str, values: Sequence[Any], bands: int) -> Binning | str:
    numbers = [float(v) for v in values]
    edges = tuple(nice_edges(numbers, bands))
    if not edges:
        return f"Attribute {attribute!r} has a single value: not analysed."
    year = looks_like_year(attribute, numbers)
    bounds: list[float | None] = [None, *edges, None]
    cells = tuple(
        CellSpec(i, band_label(bounds[i], bounds[i + 1], year=year), None, bounds[i], bounds[i + 1], i)
        for i in range(len(bounds) - 1)
    )
    return Binning(attribute, "numeric", cells, edges, 0, year)


def _members(values: Sequence[Any]) -> tuple[Counter[str], dict[str, Counter[str]]]:
    support: Counter[str] = Counter()
    spelling: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for v in values:
        members = v if isinstance(v, _SETS) else [v]
        folded = set()
        for m in members:
            if is_missing(m):
                continue
            spelling[_fold(m)][str(m).strip()] += 1
            folded.add(_fold(m))
        support.update(folded)
    return support, spelling


def _set(attribute: str, values: Sequence[Any], min_support: int) -> Binning | str:
    support, spelling = _members(values)
    ordered = sorted(support, key=lambda k: (-support[k], k))
    cells = []
    for i, k in enumerate(ordered):
        if support[k] >= min_support:
            label = spelling[k].most_common(1)[0][0]
            cells.append(CellSpec(k, label, label, None, None, i))
    rare = len(ordered) - len(cells)
    return Binning(attribute, "set", tuple(cells), (), rare)


def _categorical(attribute: str, kind: Kind, values: Sequence[Any], min_support: int) -> Binning | str:
    spelling: defaultdict[str, Counter[str]] = defaultdict(Counter)
    support: Counter[CellKey] = Counter()
    for v in values:
        if kind == "boolean":
            support[bool(v)] += 1
        else:
            spelling[_fold(v)][str(v).strip()] += 1
            support[_fold(v)] += 1
    if kind == "categorical" and len(support) > max(50, len(values) // 2):
        return (
            f"Attribute {attribute!r} has {len(support)} distinct values on {len(values)} accounts "
            "(an identifier?): not analysed."
        )
    if len(support) == 1:
        return f"Attribute {attribute!r} has a single value: not analysed."
    ordered = sorted(support, key=lambda k: (-support[k], str(k)))
    cells = []
    for i, k in enumerate(ordered):
        if support[k] < min_support:
            continue
        if isinstance(k, bool):
            cells.append(CellSpec(k, "true" if k else "false", k, None, None, i))
        else:
            label = spelling[str(k)].most_common(1)[0][0]
            cells.append(CellSpec(k, label, label, None, None, i))
    return Binning(attribute, kind, tuple(cells), (), len(ordered) - len(cells))


def bin_attribute(
    attribute: str, values: Sequence[Any], *, min_support: int = 10, bands: int = 4
) -> Binning | str:
    """The cells of one attribute from its accounts' (non-missing) values, or why it is not analysed."""
    if len(values) < 2 * min_support:
        return f"Attribute {attribute!r} is present on only {len(values)} accounts: not analysed."
    kind = kind_of(values)
    built: Binning | str
    if kind == "numeric":
        built = _numeric(attribute, values, bands)
    elif kind == "set":
        built = _set(attribute, values, min_support)
    else:
        built = _categorical(attribute, kind, values, min_support)
    if isinstance(built, Binning) and not built.cells:
        return f"Attribute {attribute!r}: no value is seen on {min_support} or more accounts."
    return built


def bin_attributes(
    accounts: Iterable[Mapping[str, Any]], names: Sequence[str], *, min_support: int = 10, bands: int = 4
) -> tuple[list[Binning], list[str]]:
    """``bin_attribute`` for each name over the accounts' attributes: the binnings and the warnings."""
    present: dict[str, list[Any]] = {n: [] for n in names}
    for attributes in accounts:
        for n in names:
            v = attributes.get(n)
            if not is_missing(v):
                present[n].append(v)
    binnings: list[Binning] = []
    warnings: list[str] = []
    for n in names:
        built = bin_attribute(n, present[n], min_support=min_support, bands=bands)
        if isinstance(built, str):
            warnings.append(built)
        else:
            binnings.append(built)
    return binnings, warnings


__all__ = [
    "Binning",
    "CellKey",
    "CellSpec",
    "Kind",
    "bin_attribute",
    "bin_attributes",
    "is_missing",
    "kind_of",
]
