"""The evidence per cell: how often a value is seen among the best customers, how often its deals win (pure).

Two yardsticks, chosen by the measure:

- ``win_rate`` (the default, what a backtest judges): the win rate of the closed deals of accounts with the
  value over the win rate of all closed deals with data (the *lift*). Deals of one account are not
  independent (a big account with forty deals is one account, not forty witnesses): the counts are divided
  by the cell's design effect (``stats.design_effect``) before the interval and the test, so an effect
  carried by a few accounts stays uncertain however many deals they have. The test compares the value's
  win rate with the other accounts' (one-sided, normal approximation on the effective counts).
- ``won_amount``, ``wins``, ``tenure``: the share of the value among the best customers (the top share by
  the measure) over its share among all accounts, with the exact hypergeometric test of
  over-representation (the right null for a subset drawn from all accounts).

Intervals are simultaneous over every value tested (Bonferroni), and a value seen on fewer than
``min_support`` customers is never *reliable*, whatever its lift. A *red flag* is a value whose accounts
almost never win (their win rate's upper bound below half the base account win rate) on at least
``min_support`` lost-only accounts.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from worker.icp.bands import fmt_num, fmt_pct, fmt_ratio
from worker.icp.cells import Binning, CellKey, CellSpec, Kind
from worker.icp.history import AccountOutcome
from worker.icp.stats import design_effect, enrichment_p, ratio_interval, wilson_interval


@dataclass(frozen=True, slots=True)
class Cell:
    """One value, band or set member of an attribute, and how often it is seen in each group."""

    attribute: str
    kind: Kind
    label: str
    value: str | bool | None
    band_min: float | None
    band_max: float | None
    index: int
    #: Accounts with the value among the best customers, all accounts, lost-only and won accounts; ``*_n``
    #: the accounts of the group with data for the attribute.
    best: int
    best_n: int
    all: int
    all_n: int
    lost: int
    lost_n: int
    won: int
    won_n: int
    #: The measure's lift (deal win rate over the base, or share among best over share among all).
    lift: float
    lift_lo: float
    lift_hi: float
    #: One-sided p-value of the lift being above 1.
    p_value: float
    #: Share among best / share among lost-only accounts (``nan`` without lost-only accounts).
    lift_vs_lost: float
    #: Accounts with closed deals and this value: share that won at least once, and its interval.
    win_rate: float | None
    win_rate_lo: float
    win_rate_hi: float
    tested: bool
    reliable: bool
    red_flag: bool
    #: Closed and won deals of the accounts with the value, all deals with data, and the design effect.
    deals: int = 0
    deal_wins: int = 0
    deals_n: int = 0
    deal_wins_n: int = 0
    design_effect: float = 1.0
    #: ``True`` when ``lift`` is the deal win rate's (``win_rate`` measure).
    by_win_rate: bool = False

    @property
    def p_best(self) -> float:
        return self.best / self.best_n if self.best_n else math.nan

    @property
    def p_all(self) -> float:
        return self.all / self.all_n if self.all_n else math.nan

    @property
    def p_lost(self) -> float:
        return self.lost / self.lost_n if self.lost_n else math.nan

    @property
    def deal_win_rate(self) -> float:
        return self.deal_wins / self.deals if self.deals else math.nan

    @property
    def base_deal_win_rate(self) -> float:
        return self.deal_wins_n / self.deals_n if self.deals_n else math.nan

    def evidence(self) -> str:
        """The counts, lift and interval in one line (used in YAML comments and the text report)."""
        interval = f"lift {fmt_ratio(self.lift)} [{fmt_ratio(self.lift_lo)}, {fmt_ratio(self.lift_hi)}]"
        if self.by_win_rate:
            return (
                f"won {fmt_num(self.deal_wins)} of {fmt_num(self.deals)} deals "
                f"({fmt_pct(self.deal_win_rate)}) "
                f"of {fmt_num(self.all)} accounts vs all {fmt_num(self.deals_n)} deals "
                f"({fmt_pct(self.base_deal_win_rate)}); {interval}"
            )
        lost = f", lost-only {self.lost}/{self.lost_n} ({fmt_pct(self.p_lost)})" if self.lost_n else ""
        return (
            f"best {self.best}/{self.best_n} ({fmt_pct(self.p_best)}) vs all {self.all}/{self.all_n} "
            f"({fmt_pct(self.p_all)}){lost}; {interval}"
        )


@dataclass(frozen=True, slots=True)
class AttributeEvidence:
    attribute: str
    kind: Kind
    #: Accounts with data for the attribute, per group.
    all_n: int
    best_n: int
    lost_n: int
    cells: tuple[Cell, ...]
    #: Bands' edges (numeric only).
    edges: tuple[float, ...] = ()
    #: Values seen in fewer than ``min_support`` accounts, lumped together and not tested.
    rare_values: int = 0
    #: How nearly the values separate won from lost-only accounts (account AUC; see ``leakage``).
    separation: float | None = None


@dataclass(frozen=True, slots=True)
class Groups:
    """Which accounts are best customers, won at least once, or only lost."""

    best: frozenset[str]
    won: frozenset[str]
    lost: frozenset[str]


@dataclass(slots=True)
class _Tally:
    """Counts of one cell (or of a whole attribute's accounts with data)."""

    all: int = 0
    best: int = 0
    won: int = 0
    lost: int = 0
    deals: int = 0
    deal_wins: int = 0
    clusters: list[tuple[float, float]] = field(default_factory=list)

    def add(self, r: Row) -> None:
        self.all += 1
        self.best += r.best
        self.won += r.won
        self.lost += r.lost
        if r.deals:
            self.deals += r.deals
            self.deal_wins += r.wins
            self.clusters.append((float(r.wins), float(r.deals)))


@dataclass(frozen=True, slots=True)
class Row:
    """One account as the evidence counts it: its groups, and its won and closed deals."""

    best: bool
    won: bool
    lost: bool
    wins: int
    deals: int


def rows_of(accounts: Sequence[AccountOutcome], groups: Groups) -> list[Row]:
    return [
        Row(a.account_id in groups.best, a.account_id in groups.won, a.account_id in groups.lost, a.wins,
            len(a.deals))
        for a in accounts
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Settings:
    by_win_rate: bool
    z: float
    #: One-sided level each test must reach (the simultaneous confidence's share).
    alpha: float
    min_support: int
    base_win: float


def tally(
    binning: Binning, placed: Sequence[tuple[CellKey, ...] | None], rows: Sequence[Row]
) -> tuple[_Tally, dict[CellKey, _Tally]]:
    """The attribute's totals (accounts with data) and each cell's counts; ``placed``: each account's
    cells (``Binning.place``), aligned with ``rows``."""
    total = _Tally()
    by_key: dict[CellKey, _Tally] = {c.key: _Tally() for c in binning.cells}
    for keys, row in zip(placed, rows, strict=True):
        if keys is None:
            continue
        total.add(row)
        for k in keys:
            by_key[k].add(row)
    return total, by_key


def _win_rate_lift(t: _Tally, total: _Tally, s: Settings) -> tuple[float, float, float, float, float]:
    """``(lift, lo, hi, p, design effect)`` of the cell's deal win rate over the base."""
    deff = design_effect(t.clusters)
    base_deff = design_effect(total.clusters)
    w, n = t.deal_wins / deff, t.deals / deff
    wb, nb = total.deal_wins / base_deff, total.deals / base_deff
    lift, lo, hi = ratio_interval(w, n, wb, nb, s.z)
    rest_w, rest_n = total.deal_wins - t.deal_wins, total.deals - t.deals
    p_value = 1.0
    if t.deals > 0 and rest_n > 0:
        rate = total.deal_wins / total.deals
        se = math.sqrt(max(rate * (1 - rate), 1e-12) * (deff / t.deals + base_deff / rest_n))
        diff = t.deal_wins / t.deals - rest_w / rest_n
        p_value = 1.0 - statistics.NormalDist().cdf(diff / se)
    return lift, lo, hi, p_value, deff


def make_cell(binning: Binning, spec: CellSpec, t: _Tally, total: _Tally, s: Settings) -> Cell:
    """One cell's statistics under the settings' measure."""
    deff = 1.0
    if s.by_win_rate:
        lift, lo, hi, p_value, deff = _win_rate_lift(t, total, s)
    else:
        lift, lo, hi = ratio_interval(t.best, total.best, t.all, total.all, s.z)
        p_value = enrichment_p(t.best, total.best, t.all, total.all)
    vs_lost = ratio_interval(t.best, total.best, t.lost, total.lost, s.z)[0]
    closed = t.won + t.lost
    win_rate = t.won / closed if closed else None
    wr_lo, wr_hi = wilson_interval(t.won, closed, s.z)
    reliable = t.best >= s.min_support and lo > 1.0 and p_value <= s.alpha
    red_flag = (
        t.lost >= s.min_support
        and closed > 0
        and math.isfinite(s.base_win)
        and wr_hi < s.base_win / 2.0
        and not reliable
    )
    return Cell(
        attribute=binning.attribute, kind=binning.kind, label=spec.label, value=spec.value,
        band_min=spec.band_min, band_max=spec.band_max, index=spec.index, best=t.best, best_n=total.best,
        all=t.all, all_n=total.all, lost=t.lost, lost_n=total.lost, won=t.won, won_n=total.won, lift=lift,
        lift_lo=lo, lift_hi=hi, p_value=p_value, lift_vs_lost=vs_lost, win_rate=win_rate, win_rate_lo=wr_lo,
        win_rate_hi=wr_hi, tested=True, reliable=reliable, red_flag=red_flag, deals=t.deals,
        deal_wins=t.deal_wins, deals_n=total.deals, deal_wins_n=total.deal_wins, design_effect=deff,
        by_win_rate=s.by_win_rate,
    )  # fmt: skip


def attribute_evidence(
    binning: Binning,
    placed: Sequence[tuple[CellKey, ...] | None],
    rows: Sequence[Row],
    settings: Settings,
    separation: float | None = None,
) -> AttributeEvidence:
    total, by_key = tally(binning, placed, rows)
    cells = tuple(make_cell(binning, c, by_key[c.key], total, settings) for c in binning.cells)
    return AttributeEvidence(
        attribute=binning.attribute, kind=binning.kind, all_n=total.all, best_n=total.best,
        lost_n=total.lost, cells=cells, edges=binning.edges, rare_values=binning.rare_values,
        separation=separation,
    )  # fmt: skip


__all__ = [
    "AttributeEvidence",
    "Cell",
    "Groups",
    "Row",
    "Settings",
    "attribute_evidence",
    "make_cell",
    "rows_of",
    "tally",
]
