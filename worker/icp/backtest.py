"""Backtest an ICP on won and lost deals (pure: no I/O, no clock).

Every closed deal is scored by its account's attributes under the ICP, and the report says how well the
score separated won from lost deals:

- **win rate per tier** with its counts and a 95% Wilson interval, and the tier's **lift** over the base win
  rate (the tier's win rate / the win rate of all deals; the lift's interval is the win rate's interval over
  the base);
- **ROC AUC** of the score: the chance that a won deal scores higher than a lost one (ties count half;
  Mann-Whitney), with a Hanley-McNeil interval. 0.5 is a coin toss;
- a **calibration table**: the win rate by score decile (0-9, 10-19, ..., 90-100);
- the **sample sizes**, and a warning wherever a figure rests on fewer than ``min_deals`` deals (30).

The unit is the deal: an account with three closed deals counts three times. Deals of one account are not
independent, so intervals are somewhat optimistic for accounts with many deals.

``split_date``: only deals closed on or after it are judged (derive on deals before it: ``derive(...,
split_date=D)``), which exposes a profile that only memorised its own history. Deals with no close date are
left out of a split backtest and counted.

Disqualified deals score 0 (as the scorer gives them) and count in the AUC as such.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from worker.icp.derive import json_safe, wilson_interval
from worker.icp.model import DISQUALIFIED, INSUFFICIENT_DATA, IcpSpec
from worker.icp.outcomes import AccountOutcome
from worker.icp.scoring import Scorer

MIN_DEALS = 30
Z95 = 1.959964


@dataclass(frozen=True, slots=True)
class RateRow:
    """Won deals among a group of deals."""

    label: str
    deals: int
    wins: int
    rate: float | None
    lo: float
    hi: float
    #: rate / base win rate (``None`` without deals or without any win overall).
    lift: float | None
    lift_lo: float | None
    lift_hi: float | None
    few: bool

    @property
    def losses(self) -> int:
        return self.deals - self.wins


@dataclass(frozen=True, slots=True)
class BacktestReport:
    icp_name: str
    split_date: date | None
    deals: int
    wins: int
    accounts: int
    #: Deals left out of a split backtest because they have no close date.
    undated: int
    first_close: date | None
    last_close: date | None
    base: RateRow
    tiers: tuple[RateRow, ...]
    auc: float | None
    auc_lo: float | None
    auc_hi: float | None
    calibration: tuple[RateRow, ...]
    min_deals: int
    warnings: tuple[str, ...]
    source: str | None = None

    @property
    def losses(self) -> int:
        return self.deals - self.wins

    def tier(self, name: str) -> RateRow | None:
        return next((t for t in self.tiers if t.label == name), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["losses"] = self.losses
        return json_safe(data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def render_text(self) -> str:
        return render_backtest_text(self)


def _rate_row(label: str, deals: int, wins: int, base: float | None, min_deals: int) -> RateRow:
    rate = wins / deals if deals else None
    lo, hi = wilson_interval(wins, deals, Z95)
    if rate is None or not base:
        lift = lift_lo = lift_hi = None
    else:
        lift, lift_lo, lift_hi = rate / base, lo / base, hi / base
    return RateRow(label, deals, wins, rate, lo, hi, lift, lift_lo, lift_hi, deals < min_deals)


def roc_auc(pairs: Iterable[tuple[float, bool]]) -> tuple[float | None, int, int]:
    """``(auc, wins, losses)``: Mann-Whitney U / (wins x losses), ties counted half; ``None`` without both."""
    counts: dict[float, list[int]] = {}
    for score, won in pairs:
        counts.setdefault(score, [0, 0])[0 if won else 1] += 1
    return auc_from_counts(counts)


def auc_from_counts(counts: Mapping[float, Sequence[int]]) -> tuple[float | None, int, int]:
    """``roc_auc`` from ``score -> (won, lost)`` counts."""
    wins = sum(c[0] for c in counts.values())
    losses = sum(c[1] for c in counts.values())
    if not wins or not losses:
        return None, wins, losses
    u = 0.0
    below = 0  # lost deals with a lower score
    for score in sorted(counts):
        won, lost = counts[score][0], counts[score][1]
        u += won * (below + 0.5 * lost)
        below += lost
    return u / (wins * losses), wins, losses


def auc_interval(auc: float, wins: int, losses: int, z: float = Z95) -> tuple[float, float]:
    """Hanley-McNeil (1982) interval of an AUC."""
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (wins - 1) * (q1 - auc * auc) + (losses - 1) * (q2 - auc * auc)) / (
        wins * losses
    )
    se = math.sqrt(max(0.0, var))
    return max(0.0, auc - z * se), min(1.0, auc + z * se)


def decile_label(i: int) -> str:
    return "90-100" if i == 9 else f"{10 * i}-{10 * i + 9}"


def backtest(
    spec: IcpSpec,
    history: Iterable[AccountOutcome],
    *,
    split_date: date | None = None,
    min_deals: int = MIN_DEALS,
    source: str | None = None,
) -> BacktestReport:
    """Score the accounts behind closed deals with ``spec``; measure how the score separated won from lost."""
    scorer = Scorer(spec)
    tier_counts: dict[str, list[int]] = {}
    decile_counts = [[0, 0] for _ in range(10)]
    by_score: dict[int, list[int]] = {}
    deals = wins = accounts = undated = 0
    first: date | None = None
    last: date | None = None
    for account in history:
        if not account.deals:
            continue
        judged = account.deals
        if split_date is not None:
            undated += sum(1 for d in judged if d.close_date is None)
            judged = tuple(d for d in judged if d.close_date is not None and d.close_date >= split_date)
            if not judged:
                continue
        fit = scorer.score(account.attributes)
        accounts += 1
        counts = tier_counts.setdefault(fit.tier, [0, 0])
        decile = min(9, max(0, fit.score // 10))
        for d in judged:
            deals += 1
            wins += d.won
            counts[0] += 1
            counts[1] += d.won
            decile_counts[decile][0] += 1
            decile_counts[decile][1] += d.won
            by_score.setdefault(fit.score, [0, 0])[0 if d.won else 1] += 1
            if d.close_date is not None:
                first = d.close_date if first is None or d.close_date < first else first
                last = d.close_date if last is None or d.close_date > last else last

    base_rate = wins / deals if deals else None
    base = _rate_row("all deals", deals, wins, base_rate, min_deals)
    order = [t for t in spec.tier_names if t in tier_counts or t not in (DISQUALIFIED, INSUFFICIENT_DATA)]
    order += sorted(t for t in tier_counts if t not in order)
    tiers = tuple(
        _rate_row(t, tier_counts.get(t, [0, 0])[0], tier_counts.get(t, [0, 0])[1], base_rate, min_deals)
        for t in order
    )
    calibration = tuple(
        _rate_row(decile_label(i), n, w, base_rate, min_deals) for i, (n, w) in enumerate(decile_counts)
    )
    auc, n_pos, n_neg = auc_from_counts(by_score)
    auc_lo = auc_hi = None
    if auc is not None:
        auc_lo, auc_hi = auc_interval(auc, n_pos, n_neg)

    warnings: list[str] = []
    when = f" closed on or after {split_date.isoformat()}" if split_date else ""
    if deals == 0:
        warnings.append(f"No closed deals{when}: nothing to backtest.")
    elif deals < min_deals:
        warnings.append(f"Only {deals} closed deals{when}: every figure here rests on too few deals.")
    if deals and auc is None:
        warnings.append("The AUC needs both won and lost deals.")
    elif auc is not None and min(n_pos, n_neg) < 10:
        warnings.append(f"The AUC rests on {n_pos} won and {n_neg} lost deals: too few to trust.")
    few_tiers = [f"{t.label} ({t.deals})" for t in tiers if 0 < t.deals < min_deals]
    if few_tiers and deals >= min_deals:
        warnings.append(
            f"Tiers with fewer than {min_deals} deals (their win rate is unreliable): {', '.join(few_tiers)}."
        )
    empty = [t.label for t in tiers if t.deals == 0 and t.label not in (DISQUALIFIED, INSUFFICIENT_DATA)]
    if empty and deals:
        warnings.append(f"No deal falls in tier(s) {', '.join(empty)}.")
    few_deciles = sum(1 for c in calibration if 0 < c.deals < min_deals)
    if few_deciles and deals >= min_deals:
        warnings.append(f"Score deciles with fewer than {min_deals} deals (marked *): {few_deciles}.")
    insufficient = tier_counts.get(INSUFFICIENT_DATA, [0, 0])[0]
    if deals and insufficient / deals > 0.2:
        warnings.append(
            f"{insufficient / deals:.0%} of the deals' accounts have too little data for this ICP "
            f"({INSUFFICIENT_DATA})."
        )
    if undated:
        warnings.append(f"{undated} closed deals have no close date and are left out of the split.")

    return BacktestReport(
        icp_name=spec.name, split_date=split_date, deals=deals, wins=wins, accounts=accounts, undated=undated,
        first_close=first, last_close=last, base=base, tiers=tiers, auc=auc, auc_lo=auc_lo, auc_hi=auc_hi,
        calibration=calibration, min_deals=min_deals, warnings=tuple(warnings), source=source,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------- rendering


def _pct(p: float | None) -> str:
    return "-" if p is None else f"{100 * p:.1f}%"


def _rate(row: RateRow) -> str:
    if row.rate is None:
        return "-"
    return f"{_pct(row.rate)} [{100 * row.lo:.0f}-{100 * row.hi:.0f}%]"


def _lift(row: RateRow) -> str:
    if row.lift is None:
        return "-"
    return f"{row.lift:.2f}x [{row.lift_lo:.2f}-{row.lift_hi:.2f}]"


def _auc(report: BacktestReport) -> str:
    if report.auc is None:
        return "-"
    return f"{report.auc:.3f} [{report.auc_lo:.3f}-{report.auc_hi:.3f}]"


def render_backtest_text(report: BacktestReport) -> str:
    r = report
    lines: list[str] = []
    src = f" on {r.source}" if r.source else ""
    lines.append(f"Backtest of ICP {r.icp_name!r}{src}")
    period = f"closed on or after {r.split_date.isoformat()}" if r.split_date else "closed"
    span = (
        f" ({r.first_close.isoformat()} to {r.last_close.isoformat()})"
        if r.first_close and r.last_close
        else ""
    )
    lines.append(
        f"  deals {period}: {r.deals:,}{span}, won {r.wins:,}, lost {r.losses:,}; accounts {r.accounts:,}"
    )
    lines.append(f"  base win rate: {_rate(r.base)}")
    lines.append(f"  ROC AUC of the score: {_auc(r)}   (0.5 = no better than chance)")
    lines.append("")
    lines.append(f"  {'tier':<18} {'deals':>7} {'won':>6}  {'win rate [95%]':<22} {'lift over base':<20}")
    for t in r.tiers:
        mark = " *" if t.few and t.deals else ""
        lines.append(f"  {t.label:<18} {t.deals:>7,} {t.wins:>6,}  {_rate(t):<22} {_lift(t):<20}{mark}")
    lines.append("")
    lines.append("  calibration (win rate by score decile)")
    lines.append(f"  {'score':<18} {'deals':>7} {'won':>6}  {'win rate [95%]':<22}")
    for c in r.calibration:
        mark = " *" if c.few and c.deals else ""
        lines.append(f"  {c.label:<18} {c.deals:>7,} {c.wins:>6,}  {_rate(c):<22}{mark}")
    if any(t.few and t.deals for t in (*r.tiers, *r.calibration)):
        lines.append(f"  * fewer than {r.min_deals} deals: unreliable")
    for w in r.warnings:
        lines.append(f"WARNING: {w}")
    return "\n".join(lines) + "\n"


def render_side_by_side(current: BacktestReport, proposed: BacktestReport) -> str:
    """Two backtests in columns (the revision preview): current ICP | proposed ICP | change."""
    c, p = current, proposed
    width = 30
    lines: list[str] = []
    when = ""
    if c.split_date or p.split_date:
        when = f" (deals closed on or after {(c.split_date or p.split_date).isoformat()})"  # type: ignore[union-attr]
    lines.append(f"Backtest on closed deals{when}: current vs proposed ICP")

    def row(label: str, left: str, right: str, change: str = "") -> None:
        lines.append(f"  {label:<24} {left:<{width}} {right:<{width}} {change}".rstrip())

    row("", f"current: {c.icp_name}"[:width], f"proposed: {p.icp_name}"[:width], "change")
    row("closed deals (won)", f"{c.deals:,} ({c.wins:,})", f"{p.deals:,} ({p.wins:,})")
    row("base win rate", _pct(c.base.rate), _pct(p.base.rate))
    change = ""
    if c.auc is not None and p.auc is not None:
        change = f"{p.auc - c.auc:+.3f}"
    row("ROC AUC", _auc(c), _auc(p), change)
    names = [t.label for t in c.tiers] + [
        t.label for t in p.tiers if t.label not in {x.label for x in c.tiers}
    ]
    for name in names:
        ct, pt = c.tier(name), p.tier(name)

        def cell(t: RateRow | None) -> str:
            if t is None or not t.deals:
                return "-"
            mark = "*" if t.few else ""
            return (
                f"{_pct(t.rate)} of {t.deals:,}{mark}, {t.lift:.2f}x"
                if t.lift is not None
                else f"{t.deals:,}"
            )

        delta = ""
        if ct and pt and ct.rate is not None and pt.rate is not None:
            delta = f"{100 * (pt.rate - ct.rate):+.1f} pts"
        row(f"win rate {name}", cell(ct), cell(pt), delta)
    row("calibration", "", "")
    for cc, pc in zip(c.calibration, p.calibration, strict=True):
        row(
            f"  score {cc.label}",
            f"{_pct(cc.rate)} of {cc.deals:,}{'*' if cc.few and cc.deals else ''}" if cc.deals else "-",
            f"{_pct(pc.rate)} of {pc.deals:,}{'*' if pc.few and pc.deals else ''}" if pc.deals else "-",
        )
    lines.append(f"  * fewer than {c.min_deals} deals: unreliable; Nx = lift over the base win rate")
    for w in c.warnings:
        lines.append(f"WARNING (current): {w}")
    for w in p.warnings:
        lines.append(f"WARNING (proposed): {w}")
    return "\n".join(lines) + "\n"


__all__ = [
    "MIN_DEALS",
    "BacktestReport",
    "RateRow",
    "auc_from_counts",
    "auc_interval",
    "backtest",
    "render_backtest_text",
    "render_side_by_side",
    "roc_auc",
]
