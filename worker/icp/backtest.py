"""Backtest an ICP on won and lost deals (pure: no I/O, no clock).

Every closed deal is scored by its account's attributes under the ICP, and the report says how well the
score separated won from lost deals:

- **win rate per tier** with its counts and a 95% Wilson interval, and the tier's **lift** over the base win
  rate (the tier's win rate / the win rate of all deals; the lift's interval is the win rate's interval over
  the base);
- **ROC AUC** of the score: the chance that a won deal scores higher than a lost one (ties count half;
  Mann-Whitney). 0.5 is a coin toss;
- **a yardstick**: the AUC of a regularised logistic regression on the ICP's own attributes, trained on the
  deals before the split (``logit.yardstick``): how much signal the rubric leaves on the table;
- a **calibration table**: the win rate by score decile (0-9, 10-19, ..., 90-100);
- the **sample sizes**, and a warning wherever a figure rests on fewer than ``min_deals`` deals (30), on
  fewer than 100 accounts, or when no account has only lost deals.

The unit is the deal: an account with three closed deals counts three times. Deals of one account are not
independent, so the intervals honour the account: the AUC's is a cluster bootstrap (accounts resampled,
seeded, a bounded number of rounds), the win rates' are widened by their design effect.

``split_date``: only deals closed on or after it are judged (derive on deals before it: ``derive(...,
split_date=D)``), which exposes a profile that only memorised its own history. Deals with no close date are
left out of a split backtest and counted.

Disqualified deals score 0 (as the scorer gives them) and count in the AUC as such.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date
from typing import Any

from worker.icp.history import CLOSED_DEAL_FIELDS, AccountOutcome
from worker.icp.logit import yardstick
from worker.icp.model import DISQUALIFIED, INSUFFICIENT_DATA, IcpSpec
from worker.icp.scoring import Scorer
from worker.icp.stats import (
    Z95,
    auc_of_accounts,
    cluster_bootstrap_auc,
    design_effect,
    json_safe,
    wilson_interval,
)

MIN_DEALS = 30
#: Fewer accounts than this behind the judged deals: every figure is fragile (said in words).
FEW_ACCOUNTS = 100


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
    #: The yardstick: a logistic regression on the ICP's attributes, trained before the split.
    model_auc: float | None = None
    model_auc_lo: float | None = None
    model_auc_hi: float | None = None
    model_attributes: tuple[str, ...] = ()

    @property
    def losses(self) -> int:
        return self.deals - self.wins

    def tier(self, name: str) -> RateRow | None:
        return next((t for t in self.tiers if t.label == name), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["losses"] = self.losses
        safe: dict[str, Any] = json_safe(data)
        return safe

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def render_text(self) -> str:
        return render_backtest_text(self)


def _rate_row(label: str, clusters: Sequence[tuple[int, int]], base: float | None, min_deals: int) -> RateRow:
    """Won deals among ``clusters`` (``(won, closed)`` per account); the interval widened by the design
    effect, so that an account's forty deals are not forty independent witnesses."""
    deals = sum(n for _, n in clusters)
    wins = sum(w for w, _ in clusters)
    rate = wins / deals if deals else None
    deff = design_effect([(float(w), float(n)) for w, n in clusters])
    lo, hi = wilson_interval(wins / deff, deals / deff, Z95)
    if rate is None or not base:
        lift = lift_lo = lift_hi = None
    else:
        lift, lift_lo, lift_hi = rate / base, lo / base, hi / base
    return RateRow(label, deals, wins, rate, lo, hi, lift, lift_lo, lift_hi, deals < min_deals)


def decile_label(i: int) -> str:
    return "90-100" if i == 9 else f"{10 * i}-{10 * i + 9}"


@dataclass(frozen=True, slots=True)
class _Judged:
    """One account's deals under judgement and its fit."""

    score: int
    tier: str
    wins: int
    losses: int


def _judge(
    spec: IcpSpec, history: Iterable[AccountOutcome], split_date: date | None
) -> tuple[list[_Judged], int, date | None, date | None]:
    """Every account with judged deals, scored; and the undated deals, the first and last close."""
    scorer = Scorer(spec)
    judged: list[_Judged] = []
    undated = 0
    dates: list[date] = []
    for account in history:
        deals = account.deals
        if not deals:
            continue
        if split_date is not None:
            undated += sum(1 for d in deals if d.close_date is None)
            deals = tuple(d for d in deals if d.close_date is not None and d.close_date >= split_date)
            if not deals:
                continue
        fit = scorer.score(account.attributes)
        wins = sum(1 for d in deals if d.won)
        judged.append(_Judged(fit.score, fit.tier, wins, len(deals) - wins))
        dates += [d.close_date for d in deals if d.close_date is not None]
    return judged, undated, (min(dates) if dates else None), (max(dates) if dates else None)


def _warnings(r: BacktestReport, n_pos: int, n_neg: int, lost_only: int, insufficient: int) -> list[str]:
    warnings: list[str] = []
    when = f" closed on or after {r.split_date.isoformat()}" if r.split_date else ""
    deals, min_deals = r.deals, r.min_deals
    if deals == 0:
        looked = "" if r.split_date else f" (looked for {CLOSED_DEAL_FIELDS})"
        warnings.append(f"No closed deals{when}: nothing to backtest{looked}.")
    elif deals < min_deals:
        warnings.append(f"Only {deals} closed deals{when}: every figure here rests on too few deals.")
    if deals and r.auc is None:
        warnings.append("The AUC needs both won and lost deals.")
    elif r.auc is not None and min(n_pos, n_neg) < 10:
        warnings.append(f"The AUC rests on {n_pos} won and {n_neg} lost deals: too few to trust.")
    if deals and r.accounts < FEW_ACCOUNTS:
        warnings.append(
            f"The deals come from only {r.accounts} accounts: with fewer than {FEW_ACCOUNTS} accounts every "
            "figure is fragile, however many deals they have (intervals resample accounts)."
        )
    if deals and not lost_only:
        warnings.append("No account has only lost deals: nothing shows what a losing account looks like.")
    few_tiers = [f"{t.label} ({t.deals})" for t in r.tiers if 0 < t.deals < min_deals]
    if few_tiers and deals >= min_deals:
        warnings.append(
            f"Tiers with fewer than {min_deals} deals (their win rate is unreliable): {', '.join(few_tiers)}."
        )
    empty = [t.label for t in r.tiers if t.deals == 0 and t.label not in (DISQUALIFIED, INSUFFICIENT_DATA)]
    if empty and deals:
        warnings.append(f"No deal falls in tier(s) {', '.join(empty)}.")
    few_deciles = sum(1 for c in r.calibration if 0 < c.deals < min_deals)
    if few_deciles and deals >= min_deals:
        warnings.append(f"Score deciles with fewer than {min_deals} deals (marked *): {few_deciles}.")
    if deals and insufficient / deals > 0.2:
        warnings.append(
            f"{insufficient / deals:.0%} of the deals' accounts have too little data for this ICP "
            f"({INSUFFICIENT_DATA})."
        )
    if r.undated:
        warnings.append(f"{r.undated} closed deals have no close date and are left out of the split.")
    return warnings


def spec_attributes(spec: IcpSpec) -> tuple[str, ...]:
    """The attributes an ICP reads (criteria, then disqualifiers), once each."""
    names = [c.attribute for c in spec.criteria] + [d.attribute for d in spec.disqualifiers]
    return tuple(dict.fromkeys(names))


def backtest(
    spec: IcpSpec,
    history: Iterable[AccountOutcome],
    *,
    split_date: date | None = None,
    min_deals: int = MIN_DEALS,
    source: str | None = None,
    with_model: bool = True,
) -> BacktestReport:
    """Score the accounts behind closed deals with ``spec``; measure how the score separated won from lost.

    ``with_model``: also fit the yardstick, a logistic regression on the ICP's attributes trained on the
    deals before ``split_date`` (in-sample without one), and report its AUC on the same deals.
    """
    accounts_in = list(history)
    judged, undated, first, last = _judge(spec, accounts_in, split_date)
    deals = sum(j.wins + j.losses for j in judged)
    wins = sum(j.wins for j in judged)
    base_rate = wins / deals if deals else None
    base = _rate_row("all deals", [(j.wins, j.wins + j.losses) for j in judged], base_rate, min_deals)
    present = {j.tier for j in judged}
    order = [t for t in spec.tier_names if t in present or t not in (DISQUALIFIED, INSUFFICIENT_DATA)]
    order += sorted(t for t in present if t not in order)
    tiers = tuple(
        _rate_row(t, [(j.wins, j.wins + j.losses) for j in judged if j.tier == t], base_rate, min_deals)
        for t in order
    )
    calibration = tuple(
        _rate_row(
            decile_label(i),
            [(j.wins, j.wins + j.losses) for j in judged if min(9, max(0, j.score // 10)) == i],
            base_rate,
            min_deals,
        )
        for i in range(10)
    )
    scored = [(float(j.score), j.wins, j.losses) for j in judged]
    auc = auc_of_accounts(scored)
    interval = cluster_bootstrap_auc(scored) if auc is not None else None
    model = yardstick(accounts_in, spec_attributes(spec), split_date=split_date) if with_model else None
    report = BacktestReport(
        icp_name=spec.name, split_date=split_date, deals=deals, wins=wins, accounts=len(judged),
        undated=undated, first_close=first, last_close=last, base=base, tiers=tiers, auc=auc,
        auc_lo=interval[0] if interval else None, auc_hi=interval[1] if interval else None,
        calibration=calibration, min_deals=min_deals, warnings=(), source=source,
        model_auc=model.auc if model else None, model_auc_lo=model.auc_lo if model else None,
        model_auc_hi=model.auc_hi if model else None,
        model_attributes=model.attributes if model else (),
    )  # fmt: skip
    lost_only = sum(1 for j in judged if j.losses and not j.wins)
    insufficient = sum(j.wins + j.losses for j in judged if j.tier == INSUFFICIENT_DATA)
    warnings = _warnings(report, wins, deals - wins, lost_only, insufficient)
    return replace(report, warnings=tuple(warnings))


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


def _model_auc(report: BacktestReport) -> str:
    if report.model_auc is None:
        return "-"
    if report.model_auc_lo is None or report.model_auc_hi is None:
        return f"{report.model_auc:.3f}"
    return f"{report.model_auc:.3f} [{report.model_auc_lo:.3f}-{report.model_auc_hi:.3f}]"


def _yardstick_lines(r: BacktestReport) -> list[str]:
    if not r.model_attributes:
        return []
    trained = f"trained on deals before {r.split_date.isoformat()}" if r.split_date else "in-sample"
    lines = [
        f"  a statistical model on the same data: {_model_auc(r)}   (logistic regression on "
        f"{', '.join(r.model_attributes)}, {trained})"
    ]
    if r.auc is not None and r.model_auc is not None:
        lines.append(f"  your ICP {r.auc:.2f}; a statistical model on the same data {r.model_auc:.2f}")
    return lines


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
    lines += _yardstick_lines(r)
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
    if c.model_auc is not None or p.model_auc is not None:
        row("statistical model AUC", _model_auc(c), _model_auc(p))
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
    "FEW_ACCOUNTS",
    "MIN_DEALS",
    "BacktestReport",
    "RateRow",
    "backtest",
    "render_backtest_text",
    "render_side_by_side",
    "spec_attributes",
]
