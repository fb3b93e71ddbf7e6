"""Numbers as people read them (pure): human band edges and labels that are never cut.

- ``nice_edges``: quantile edges rounded to round numbers (integers stay integers: no year 1997.5);
- ``fmt_num``: ``1,250,000`` with separators from 10,000 on, years (``year=True``) always as ``2017``;
- ``band_label``: ``500,000,000 to < 1,250,000,000``, ``>= 500``, ``< 75``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from connectors.values import grouped_number


def fmt_num(value: float | None, *, year: bool = False) -> str:
    """``1200`` → ``1200``; ``12000`` → ``12,000``; ``2.5`` → ``2.5``; ``None`` → ``-``; a year as a year."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf"
    if year:
        return str(int(round(value)))
    return grouped_number(value)


def fmt_pct(p: float | None) -> str:
    return "-" if p is None or math.isnan(p) else f"{100 * p:.0f}%"


def fmt_p(p: float) -> str:
    return "1" if p >= 1 else f"{p:.2g}" if p >= 1e-4 else "<1e-4"


def fmt_ratio(r: float | None) -> str:
    if r is None or math.isnan(r):
        return "-"
    return "inf" if math.isinf(r) else f"{r:.2f}"


def nice_number(value: float, tolerance: float, *, integer: bool = False) -> float:
    """The roundest number within ``tolerance`` of ``value`` (steps 5, 2.5, 2, 1 x 10^k, coarsest first);
    ``integer``: only whole numbers."""
    if tolerance <= 0 or value == 0:
        return value
    k = math.floor(math.log10(abs(value))) + 1
    while k > -12:
        for m in (5.0, 2.5, 2.0, 1.0):
            step = m * 10.0**k
            if integer and not step.is_integer():
                continue
            candidate = round(value / step) * step
            if abs(candidate - value) <= tolerance:
                return float(round(candidate, 10))
        k -= 1
        if integer and k < 0:
            break
    return float(round(value)) if integer else value


def nice_edges(values: Sequence[float], bands: int = 4) -> list[float]:
    """Quantile edges of ``values`` (quartiles by default), rounded to human numbers, strictly increasing.

    Each edge may move by at most a quarter of the distance to its neighbouring edge (or to the data's
    minimum and maximum), so rounding never changes the bands' meaning much; whole-number data keeps
    whole-number edges. Edges at or below the minimum (which would make an empty band) are dropped.
    """
    data = sorted(values)
    if len(data) < 2 or data[0] == data[-1]:
        return []
    integer = all(float(v).is_integer() for v in data)
    raw = statistics.quantiles(data, n=bands, method="inclusive")
    points = [data[0], *raw, data[-1]]
    edges: list[float] = []
    for i, edge in enumerate(raw, start=1):
        gap = min(edge - points[i - 1], points[i + 1] - edge)
        rounded = nice_number(edge, 0.25 * gap, integer=integer)
        if rounded <= data[0] or rounded > data[-1] or (edges and rounded <= edges[-1]):
            continue
        edges.append(rounded)
    return edges


def looks_like_year(name: str, values: Sequence[float]) -> bool:
    """An attribute of calendar years: named ``*year*`` or whole numbers between 1800 and 2100."""
    if "year" in name.casefold():
        return True
    return bool(values) and all(float(v).is_integer() and 1800 <= v <= 2100 for v in values)


def band_label(lo: float | None, hi: float | None, *, year: bool = False) -> str:
    if lo is None and hi is None:
        return "any"
    if lo is None:
        return f"< {fmt_num(hi, year=year)}"
    if hi is None:
        return f">= {fmt_num(lo, year=year)}"
    return f"{fmt_num(lo, year=year)} to < {fmt_num(hi, year=year)}"


__all__ = [
    "band_label",
    "fmt_num",
    "fmt_p",
    "fmt_pct",
    "fmt_ratio",
    "looks_like_year",
    "nice_edges",
    "nice_number",
]
