"""The derive report as text (pure): who counts as best, what was left out and why, the evidence per
attribute, the proposal and the warnings. Labels are never cut: columns widen to the longest one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.icp.bands import fmt_num, fmt_p, fmt_pct, fmt_ratio
from worker.icp.evidence import AttributeEvidence, Cell

if TYPE_CHECKING:
    from worker.icp.derive import DeriveReport

MAX_VALUES = 12


def _header(r: DeriveReport) -> list[str]:
    from worker.icp.derive import MEASURE_WORDS

    src = f" of {r.source}" if r.source else ""
    period = f", deals closed before {r.split_date.isoformat()}" if r.split_date else ""
    lines = [
        f"ICP derivation{src}",
        f"  accounts {r.accounts:,}; with won deals {r.won_accounts:,}; with only lost deals "
        f"{r.lost_only_accounts:,}; closed deals {r.closed_deals:,}{period}",
    ]
    if r.measure == "win_rate":
        lines.append(
            "  evidence: the win rate of the closed deals of accounts with each value; lift = that win "
            "rate / the win rate of all deals (an account's deals count together: intervals use the "
            "design effect)"
        )
    else:
        cut = f" (cut-off {fmt_num(r.best_threshold)})" if r.best_threshold is not None else ""
        lines.append(
            f"  best customers: top {r.top:.0%} by {MEASURE_WORDS.get(r.measure, r.measure)} = "
            f"{r.best_accounts:,} accounts{cut}; lift = share among best / share among all accounts"
        )
    alpha = (1 - r.confidence) / max(1, r.tests) / 2
    lines.append(
        f"  intervals are simultaneous {r.confidence:.0%} over {r.tests} values (z = {r.z:.2f}); reliable = "
        f"interval above 1, p <= {alpha:.1g} and >= {r.min_support} customers with the value"
    )
    if r.in_sample:
        lines.append(
            "  in-sample: the evidence and the draft come from the same deals; pass --split-date to test "
            "the draft on later deals"
        )
    for e in r.excluded:
        lines.append(f"  left out: {e.attribute}: {e.reason} (--include {e.attribute} to analyse it)")
    lines += [f"WARNING: {w}" for w in r.warnings]
    return lines


def _row(r: DeriveReport, c: Cell, width: int) -> str:
    mark = " reliable" if c.reliable else (" red flag" if c.red_flag else "")
    interval = f"[{fmt_ratio(c.lift_lo)}, {fmt_ratio(c.lift_hi)}]"
    if r.measure == "win_rate":
        deals = f"{c.deal_wins:,}/{c.deals:,} ({fmt_pct(c.deal_win_rate)})"
        return (
            f"  {c.label:<{width}} {deals:>18} {c.all:>9,} {f'{c.won} ({fmt_pct(c.win_rate)})':>12} "
            f"{fmt_ratio(c.lift):>6}  {interval:<14} {fmt_p(c.p_value):>8}{mark}"
        )
    return (
        f"  {c.label:<{width}} {f'{c.best} ({fmt_pct(c.p_best)})':>12} "
        f"{f'{c.all} ({fmt_pct(c.p_all)})':>13} {f'{c.lost} ({fmt_pct(c.p_lost)})':>12} "
        f"{fmt_ratio(c.lift):>6}  {interval:<14} {fmt_p(c.p_value):>8}{mark}"
    )


def _attribute(r: DeriveReport, ev: AttributeEvidence, all_cells: bool) -> list[str]:
    width = max([26, *(len(c.label) for c in ev.cells)])
    if r.measure == "win_rate":
        header = (
            f"  {'value':<{width}} {'won/deals':>18} {'accounts':>9} {'won accts':>12} {'lift':>6}  "
            f"{'interval':<14} {'p':>8}"
        )
    else:
        header = (
            f"  {'value':<{width}} {'best':>12} {'all':>13} {'lost-only':>12} {'lift':>6}  "
            f"{'interval':<14} {'p':>8}"
        )
    best = "with won deals" if r.measure == "win_rate" else "best"
    lines = [
        f"{ev.attribute} ({ev.kind}; data on {ev.all_n:,} accounts, {ev.best_n:,} {best}, "
        f"{ev.lost_n:,} lost-only)",
        header,
    ]
    cells = list(ev.cells) if ev.kind == "numeric" else sorted(ev.cells, key=lambda c: -c.lift)
    for shown, c in enumerate(cells):
        if not all_cells and ev.kind != "numeric" and shown >= MAX_VALUES:
            lines.append(f"  ... {len(cells) - shown} more values")
            break
        lines.append(_row(r, c, width))
    if ev.rare_values:
        lines.append(f"  ({ev.rare_values} values seen on fewer than {r.min_support} accounts, not tested)")
    lines.append("")
    return lines


def render_derive_text(report: DeriveReport, *, all_cells: bool = False) -> str:
    """A readable report: the header, the evidence per attribute, the proposal."""
    r = report
    lines = _header(r)
    lines.append("")
    for ev in r.attributes:
        lines += _attribute(r, ev, all_cells)
    if r.criteria:
        lines.append("Proposed criteria (weights and credits from a regularised logistic regression):")
        for cr in r.criteria:
            merged = f"  (also stands for: {', '.join(cr.merged)})" if cr.merged else ""
            credits = ", ".join(f"{pc.cell.label} {pc.credit:g}" for pc in cr.credits)
            lines.append(f"  {cr.attribute:<20} weight {cr.weight:>3}: {credits}{merged}")
    else:
        lines.append("Proposed criteria: none (no reliable pattern).")
    if r.disqualifiers:
        lines.append("Suggested disqualifiers (review: a disqualifier forces score 0):")
        for dq in r.disqualifiers:
            lines.append(f"  {dq.cell.attribute} = {dq.cell.label}: {dq.evidence()}")
    return "\n".join(lines).rstrip() + "\n"


__all__ = ["render_derive_text"]
