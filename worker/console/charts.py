"""Charts as SVG markup rendered on the server (pure: no I/O). They read without JavaScript or styles: every
number is written in the picture, colours come from presentation attributes, and each chart has a title and
a text description for screen readers."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

#: Tier colours, best to worst; tiers not listed get grey.
TIER_COLOURS = {
    "best": "#1b7f3b",
    "good": "#6cbf4a",
    "poor": "#e3a33b",
    "disqualified": "#c0392b",
    "insufficient_data": "#9aa3ad",
    "(new)": "#5b7db1",
}
PALETTE = ("#1b7f3b", "#6cbf4a", "#b7d65a", "#e3a33b", "#d9683b", "#c0392b")
FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"


def tier_colour(tier: str, order: Sequence[str] = ()) -> str:
    if tier in TIER_COLOURS:
        return TIER_COLOURS[tier]
    if tier in order:
        return PALETTE[min(list(order).index(tier), len(PALETTE) - 1)]
    return "#9aa3ad"


def _fmt(n: int) -> str:
    return f"{n:,}"


def _text(x: float, y: float, body: str, *, size: int = 12, anchor: str = "start", fill: str = "#1f2933",
          weight: str = "normal") -> str:  # fmt: skip
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" font-family="{FONT}" text-anchor="{anchor}" '
        f'fill="{fill}" font-weight="{weight}">{escape(body)}</text>'
    )


def tier_bars(counts: Mapping[str, Mapping[str, int]], order: Sequence[str], *, width: int = 640) -> Markup:
    """One stacked horizontal bar per object type (tier shares of its records), with counts and a legend."""
    rows = [(obj, tiers) for obj, tiers in counts.items() if sum(tiers.values())]
    tiers = [t for t in order if any(row.get(t) for _, row in rows)]
    tiers += sorted({t for _, row in rows for t in row if row.get(t)} - set(tiers))
    label_w, bar_h, gap, top = 96, 26, 12, 8
    legend_y = top + len(rows) * (bar_h + gap) + 8
    height = legend_y + 22
    bar_w = width - label_w - 70
    desc = "; ".join(
        f"{obj}: " + ", ".join(f"{t} {_fmt(row.get(t, 0))}" for t in tiers if row.get(t)) for obj, row in rows
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="tb-title tb-desc">',
        '<title id="tb-title">Tier distribution</title>',
        f'<desc id="tb-desc">{escape(desc or "no scored records")}</desc>',
    ]
    if not rows:
        parts.append(_text(4, 20, "No scored records yet."))
    for i, (obj, row) in enumerate(rows):
        y = top + i * (bar_h + gap)
        total = sum(row.values())
        parts.append(_text(0, y + bar_h * 0.68, obj, weight="bold"))
        x = float(label_w)
        for t in tiers:
            n = row.get(t, 0)
            if not n:
                continue
            w = bar_w * n / total
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{max(w, 0.5):.1f}" height="{bar_h}" '
                f'fill="{tier_colour(t, order)}">'
                f"<title>{escape(f'{obj} {t}: {_fmt(n)} ({n / total:.0%})')}</title></rect>"
            )
            if w >= 34:
                parts.append(
                    _text(x + w / 2, y + bar_h * 0.68, _fmt(n), size=11, anchor="middle", fill="#ffffff")
                )
            x += w
        parts.append(_text(label_w + bar_w + 6, y + bar_h * 0.68, _fmt(total), size=11, fill="#52606d"))
    x = float(label_w)
    for t in tiers:
        parts.append(
            f'<rect x="{x:.1f}" y="{legend_y}" width="12" height="12" fill="{tier_colour(t, order)}"/>'
        )
        parts.append(_text(x + 16, legend_y + 10.5, t, size=11))
        x += 24 + 7 * len(t)
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape()


def _heat(n: int, peak: int) -> str:
    """White to deep blue, on a log scale (a few moves stay visible next to thousands that stay)."""
    if n <= 0 or peak <= 0:
        return "#ffffff"
    f = math.log1p(n) / math.log1p(peak)
    lo, hi = (239, 245, 251), (8, 69, 148)
    r, g, b = (round(lo[i] + (hi[i] - lo[i]) * f) for i in range(3))
    return f"#{r:02x}{g:02x}{b:02x}"


def transition_heatmap(
    tiers: Sequence[str], matrix: Sequence[Sequence[int]], *, title: str = "Tier transitions", cell: int = 74
) -> Markup:
    """Rows: current tier; columns: proposed tier; each cell the records moving so (diagonal: staying)."""
    n = len(tiers)
    left, top = 128, 96
    width, height = left + n * cell + 90, top + n * cell + 28
    peak = max((v for row in matrix for v in row), default=0)
    moved = sum(v for i, row in enumerate(matrix) for j, v in enumerate(row) if i != j)
    total = sum(v for row in matrix for v in row)
    desc = "; ".join(
        f"{tiers[i]} to {tiers[j]}: {_fmt(v)}" for i, row in enumerate(matrix) for j, v in enumerate(row) if v
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart heatmap" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="hm-title hm-desc">',
        f'<title id="hm-title">{escape(title)}</title>',
        f'<desc id="hm-desc">{escape(desc or "no records")}</desc>',
        _text(left, 14, "proposed tier →", size=11, fill="#52606d"),
        _text(4, top - 8, "current tier ↓", size=11, fill="#52606d"),
    ]
    for j, t in enumerate(tiers):
        x, y = left + j * cell + cell / 2, top - 8
        parts.append(
            f'<g transform="rotate(-30 {x:.1f} {y:.1f})">' + _text(x, y, t, size=11, weight="bold") + "</g>"
        )
    for i, t in enumerate(tiers):
        y = top + i * cell
        parts.append(_text(left - 8, y + cell / 2 + 4, t, size=11, anchor="end", weight="bold"))
        for j in range(n):
            v = matrix[i][j] if i < len(matrix) and j < len(matrix[i]) else 0
            x = left + j * cell
            fill = _heat(v, peak)
            stroke = ' stroke="#1f2933" stroke-width="2"' if i == j else ' stroke="#d5dbe1" stroke-width="1"'
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}"{stroke}>'
                f"<title>{escape(f'{t} → {tiers[j]}: {_fmt(v)}')}</title></rect>"
            )
            if v:
                dark = math.log1p(v) / math.log1p(peak) > 0.55
                parts.append(
                    _text(
                        x + cell / 2,
                        y + cell / 2 + 5,
                        _fmt(v),
                        size=13,
                        anchor="middle",
                        fill="#ffffff" if dark else "#1f2933",
                        weight="bold",
                    )  # fmt: skip
                )
    share = f"{moved / total:.1%}" if total else "0%"
    parts.append(
        _text(
            left,
            top + n * cell + 20,
            f"{_fmt(moved)} of {_fmt(total)} records change tier ({share}); outlined: unchanged",
            size=11,
            fill="#52606d",
        )  # fmt: skip
    )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape()
