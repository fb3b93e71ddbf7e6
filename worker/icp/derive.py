"""Derive a draft ICP from the history of won and lost deals (pure: no I/O, no clock).

The method of the seed articles, made measurable:

1. **Best customers**: accounts with won deals, ranked by a measure (``won_amount`` by default, ``wins`` or
   ``tenure``: days since the first win), the top share (20% by default).
2. **What they have in common**: for every attribute, the share of each value (categorical), band (numeric:
   quartiles of all accounts, edges rounded to human numbers) or member (sets such as ``tech_stack``) among
   the best customers, among all accounts and among accounts with only lost deals. Shares are taken among
   the accounts of a group that have data for the attribute.
3. **How sure we are**: ``lift = share among best / share among all accounts``, with an interval built from
   the two shares' Wilson intervals (MOVER on the log scale, honest with a handful of accounts). The best
   customers are a subset of all accounts, so treating the two shares as independent overstates the
   variance: the interval is conservative. A value is *reliable* when its interval is above 1 *and* the
   exact hypergeometric test of over-representation (the right null for a subset drawn from all accounts)
   agrees. Intervals are *simultaneous*: the confidence (95%) is shared by every value tested (Bonferroni),
   so that forty values tested do not yield two "findings" by chance. A value seen in fewer than
   ``min_support`` best customers is never reliable, whatever its lift.
4. **A draft ICP** (``draft_icp_yaml``): a criterion for every attribute with a reliable value (interval
   above 1); credit in proportion to the log of the lift (the strongest value gets 1.0), partial credit for
   neighbouring bands that are over-represented and for values that are reliable on their own (95%) but not
   among all the values tested; weights in proportion to the evidence (share among best customers x log of
   the lift, summed over the reliable values); a criterion whose credited accounts are 90% inside another's
   (country and region, say) is merged into the stronger one. Suggested disqualifiers: values whose accounts
   almost never win (the win rate's upper bound below half the base account win rate) and that are seen in
   at least ``min_support`` lost-only accounts. Comments carry the evidence.

When no value is reliable, the report says "no reliable pattern" and ``draft_icp_yaml`` *refuses*
(``NoReliablePatternError``) rather than writing a profile that would only encode noise; the CLI prints the
report and writes no file. A draft is never published by itself.
"""

from __future__ import annotations

import bisect
import json
import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Literal

from connectors.values import grouped_number
from worker.icp.outcomes import AccountOutcome

Measure = Literal["won_amount", "wins", "tenure"]
MEASURES: tuple[str, ...] = ("won_amount", "wins", "tenure")
Kind = Literal["categorical", "numeric", "set", "boolean"]

#: Attributes that identify a record rather than describe a company.
DEFAULT_EXCLUDE = frozenset(
    {"name", "account_name", "website", "domain", "phone", "description", "id", "external_id", "email", "url"}
)
OTHER = "(other)"


class NoReliablePatternError(ValueError):
    """The history supports no criterion: a draft would only encode noise."""


# ------------------------------------------------------------------------------------------------ statistics


def z_for(confidence: float, tests: int = 1) -> float:
    """Two-sided normal quantile: ``confidence`` shared by ``tests`` simultaneous intervals (Bonferroni)."""
    alpha = (1.0 - confidence) / max(1, tests)
    return statistics.NormalDist().inv_cdf(1.0 - alpha / 2.0)


def json_safe(obj: Any) -> Any:
    """A report as JSON can carry it: NaN and infinities become null, dates ISO text, tuples lists."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, date):
        return obj.isoformat()
    return obj


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion; ``(0, 1)`` when ``n`` is 0."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    lo = 0.0 if successes <= 0 else max(0.0, centre - half)
    hi = 1.0 if successes >= n else min(1.0, centre + half)
    return (lo, hi)


def ratio_interval(a: int, n1: int, b: int, n2: int, z: float = 1.959964) -> tuple[float, float, float]:
    """``(ratio, lo, hi)`` of two proportions ``(a/n1) / (b/n2)``.

    MOVER on the log scale (Donner & Zou) from the two Wilson intervals: unlike the Wald (Katz) interval it
    stays honest with a handful of accounts. A zero count gives ``lo = 0`` (or ``hi = inf``);
    ``(nan, 0, inf)`` when either group is empty or both counts are zero.
    """
    if n1 <= 0 or n2 <= 0 or (a == 0 and b == 0):
        return (math.nan, 0.0, math.inf)
    p1, p2 = a / n1, b / n2
    l1, u1 = wilson_interval(a, n1, z)
    l2, u2 = wilson_interval(b, n2, z)
    if a == 0:
        return (0.0, 0.0, u1 / l2)
    if b == 0:
        return (math.inf, l1 / u2, math.inf)
    log_ratio = math.log(p1 / p2)
    down = math.sqrt(math.log(p1 / l1) ** 2 + math.log(u2 / p2) ** 2)
    up = math.sqrt(math.log(u1 / p1) ** 2 + math.log(p2 / l2) ** 2)
    return (p1 / p2, math.exp(log_ratio - down), math.exp(log_ratio + up))


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def enrichment_p(k: int, n: int, hits: int, total: int) -> float:
    """Exact one-sided p-value that ``k`` or more of ``n`` accounts drawn from ``total`` (of which ``hits``
    have the value) have it: the hypergeometric upper tail, the right null for a subset (the best customers)
    against the accounts it was drawn from. Counts at or below the expected number give 1.0.
    """
    if n <= 0 or total <= 0 or k <= n * hits / total:
        return 1.0
    top = min(hits, n)
    if k > top:
        return 0.0
    denom = _log_choose(total, n)
    p = 0.0
    for x in range(k, top + 1):
        term = math.exp(_log_choose(hits, x) + _log_choose(total - hits, n - x) - denom)
        p += term
        if term < p * 1e-12:  # past the mode the terms only shrink
            break
    return min(1.0, p)


# --------------------------------------------------------------------------------------------- formatting


def fmt_num(value: float | None) -> str:
    """``1200`` → ``1,200``; ``2.5`` → ``2.5``; ``None`` → ``-``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf"
    return grouped_number(value)


def _fmt_pct(p: float | None) -> str:
    return "-" if p is None or math.isnan(p) else f"{100 * p:.0f}%"


def _fmt_p(p: float) -> str:
    return "1" if p >= 1 else f"{p:.2g}" if p >= 1e-4 else "<1e-4"


def _fmt_ratio(r: float | None) -> str:
    if r is None or math.isnan(r):
        return "-"
    return "inf" if math.isinf(r) else f"{r:.2f}"


def nice_number(value: float, tolerance: float) -> float:
    """The roundest number within ``tolerance`` of ``value`` (steps 5, 2.5, 2, 1 x 10^k, coarsest first)."""
    if tolerance <= 0 or value == 0:
        return value
    k = math.floor(math.log10(abs(value))) + 1
    while k > -12:
        for m in (5.0, 2.5, 2.0, 1.0):
            step = m * 10.0**k
            candidate = round(value / step) * step
            if abs(candidate - value) <= tolerance:
                return float(round(candidate, 10))
        k -= 1
    return value


def nice_edges(values: Sequence[float], bands: int = 4) -> list[float]:
    """Quantile edges of ``values`` (quartiles by default), rounded to human numbers, strictly increasing.

    Each edge may move by at most a quarter of the distance to its neighbouring edge (or to the data's
    minimum and maximum), so rounding never changes the bands' meaning much. Edges at or below the minimum
    (which would make an empty band) are dropped.
    """
    data = sorted(values)
    if len(data) < 2 or data[0] == data[-1]:
        return []
    raw = statistics.quantiles(data, n=bands, method="inclusive")
    points = [data[0], *raw, data[-1]]
    edges: list[float] = []
    for i, edge in enumerate(raw, start=1):
        gap = min(edge - points[i - 1], points[i + 1] - edge)
        rounded = nice_number(edge, 0.25 * gap)
        if rounded <= data[0] or rounded > data[-1] or (edges and rounded <= edges[-1]):
            continue
        edges.append(rounded)
    return edges


def band_label(lo: float | None, hi: float | None) -> str:
    if lo is None and hi is None:
        return "any"
    if lo is None:
        return f"< {fmt_num(hi)}"
    if hi is None:
        return f">= {fmt_num(lo)}"
    return f"{fmt_num(lo)} to < {fmt_num(hi)}"


# ---------------------------------------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class Cell:
    """One value, band or set member of an attribute, and how often it is seen in each group."""

    attribute: str
    kind: Kind
    label: str
    #: categorical: the value (most common spelling); set: the member; boolean: True/False; numeric: None.
    value: str | bool | None
    band_min: float | None
    band_max: float | None
    #: Position among the attribute's cells (bands: low to high), for adjacency.
    index: int
    best: int
    best_n: int
    all: int
    all_n: int
    lost: int
    lost_n: int
    won: int
    won_n: int
    lift: float
    lift_lo: float
    lift_hi: float
    #: Exact one-sided p-value of the over-representation among best customers (hypergeometric).
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

    @property
    def p_best(self) -> float:
        return self.best / self.best_n if self.best_n else math.nan

    @property
    def p_all(self) -> float:
        return self.all / self.all_n if self.all_n else math.nan

    @property
    def p_lost(self) -> float:
        return self.lost / self.lost_n if self.lost_n else math.nan

    def evidence(self) -> str:
        """The counts, lift and interval in one line (used in YAML comments and the text report)."""
        lost = f", lost-only {self.lost}/{self.lost_n} ({_fmt_pct(self.p_lost)})" if self.lost_n else ""
        return (
            f"best {self.best}/{self.best_n} ({_fmt_pct(self.p_best)}) vs all {self.all}/{self.all_n} "
            f"({_fmt_pct(self.p_all)}){lost}; lift {_fmt_ratio(self.lift)} "
            f"[{_fmt_ratio(self.lift_lo)}, {_fmt_ratio(self.lift_hi)}]"
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


@dataclass(frozen=True, slots=True)
class ProposedCredit:
    cell: Cell
    credit: float
    #: ``reliable`` (interval above 1) or ``partial`` (lift above 1, not yet reliable).
    basis: str


@dataclass(frozen=True, slots=True)
class ProposedCriterion:
    attribute: str
    kind: Kind
    weight: int
    evidence: float
    credits: tuple[ProposedCredit, ...]
    #: Attributes dropped because this criterion credits nearly the same accounts.
    merged: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return slug(self.attribute)


@dataclass(frozen=True, slots=True)
class ProposedDisqualifier:
    cell: Cell
    base_win_rate: float

    @property
    def key(self) -> str:
        return slug(f"not_{self.cell.attribute}_{self.cell.label}")

    def evidence(self) -> str:
        c = self.cell
        closed = c.won_n and (c.won + c.lost)
        return (
            f"{c.won} of {closed} accounts with closed deals won (win rate {_fmt_pct(c.win_rate)}, "
            f"at most {_fmt_pct(c.win_rate_hi)}) vs {_fmt_pct(self.base_win_rate)} overall; "
            f"lost-only {c.lost}/{c.lost_n} ({_fmt_pct(c.p_lost)})"
        )


@dataclass(frozen=True, slots=True)
class DeriveReport:
    measure: str
    top: float
    confidence: float
    min_support: int
    split_date: date | None
    as_of: date | None
    accounts: int
    won_accounts: int
    lost_only_accounts: int
    best_accounts: int
    closed_deals: int
    #: The measure's value of the last best customer (the cut-off).
    best_threshold: float | None
    tests: int
    z: float
    attributes: tuple[AttributeEvidence, ...]
    criteria: tuple[ProposedCriterion, ...]
    disqualifiers: tuple[ProposedDisqualifier, ...]
    warnings: tuple[str, ...]
    #: The best customers' account ids, best first.
    best_account_ids: tuple[str, ...] = ()
    source: str | None = None

    @property
    def reliable(self) -> bool:
        return bool(self.criteria)

    @property
    def base_win_rate(self) -> float:
        closed = self.won_accounts + self.lost_only_accounts
        return self.won_accounts / closed if closed else math.nan

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reliable"] = self.reliable
        data["base_win_rate"] = self.base_win_rate
        return json_safe(data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def render_text(self, *, all_cells: bool = False) -> str:
        return render_derive_text(self, all_cells=all_cells)


# ----------------------------------------------------------------------------------------------- deriving


def slug(text: str) -> str:
    s = re.sub(r"[^0-9a-z]+", "_", str(text).casefold()).strip("_")
    s = re.sub(r"_+", "_", s)
    if not s or not s[0].isalpha():
        s = "k_" + s
    return s[:60]


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str) and not value.strip():
        return True
    return isinstance(value, list | tuple | set | frozenset) and not value


def _kind_of(values: Iterable[Any]) -> Kind:
    kinds = set()
    for v in values:
        if isinstance(v, bool):
            kinds.add("boolean")
        elif isinstance(v, int | float):
            kinds.add("numeric")
        elif isinstance(v, list | tuple | set | frozenset):
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


def _rank_key(measure: str, as_of: date | None):
    def key(a: AccountOutcome) -> tuple[float, float, str]:
        if measure == "wins":
            primary: float = a.wins
        elif measure == "tenure":
            primary = a.tenure_days(as_of) if as_of else 0
        else:
            primary = a.won_amount
        return (-primary, -a.won_amount if measure != "won_amount" else -a.wins, a.account_id)

    return key


def _measure_value(measure: str, a: AccountOutcome, as_of: date | None) -> float:
    if measure == "wins":
        return a.wins
    if measure == "tenure":
        return a.tenure_days(as_of) if as_of else 0
    return a.won_amount


def derive(
    history: Iterable[AccountOutcome],
    *,
    measure: str = "won_amount",
    top: float = 0.2,
    split_date: date | None = None,
    as_of: date | None = None,
    confidence: float = 0.95,
    min_support: int = 10,
    bands: int = 4,
    attributes: Sequence[str] | None = None,
    exclude: Iterable[str] = DEFAULT_EXCLUDE,
    merge_overlap: float = 0.9,
    source: str | None = None,
) -> DeriveReport:
    """Find what the best customers have in common; see the module docstring for the method.

    ``split_date``: only deals closed before it count (the rest is kept for a backtest).
    ``as_of``: the reference date of ``tenure`` (default: the last close date in the history, not the clock).
    """
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}")
    if not 0 < top <= 1:
        raise ValueError("top must be a share in (0, 1], e.g. 0.2 for the top 20%")
    accounts = list(history)
    if split_date is not None:
        accounts = [a.restrict(before=split_date) for a in accounts]
    warnings: list[str] = []

    closed_dates = [d.close_date for a in accounts for d in a.deals if d.close_date is not None]
    if as_of is None and closed_dates:
        as_of = max(closed_dates)
    winners = [a for a in accounts if a.wins > 0]
    lost_only = [a for a in accounts if a.lost_only]
    if measure == "won_amount" and winners and not any(a.won_amount > 0 for a in winners):
        warnings.append("No won deal has an amount: best customers are ranked by number of wins instead.")
        measure = "wins"
    ranked = sorted(winners, key=_rank_key(measure, as_of))
    n_best = max(1, round(top * len(ranked))) if ranked else 0
    best = ranked[:n_best]
    threshold = _measure_value(measure, best[-1], as_of) if best else None

    best_ids = {a.account_id for a in best}
    won_ids = {a.account_id for a in winners}
    lost_ids = {a.account_id for a in lost_only}

    # ---- attributes and their kinds
    exclude_set = {e.casefold() for e in exclude}
    names: set[str] = set()
    for a in accounts:
        names.update(a.attributes.keys())
    if attributes is not None:
        chosen = [n for n in attributes if n in names]
        for n in attributes:
            if n not in names:
                warnings.append(f"Attribute {n!r} is not present on any account.")
    else:
        chosen = sorted(n for n in names if n.casefold() not in exclude_set)

    # The groups an account counts in: all, best (a subset of won), won or lost-only.
    groups_of: dict[str, tuple[str, ...]] = {}
    for a in accounts:
        g = ["all"]
        if a.account_id in best_ids:
            g.append("best")
        if a.account_id in won_ids:
            g.append("won")
        elif a.account_id in lost_ids:
            g.append("lost")
        groups_of[a.account_id] = tuple(g)

    evidence_by_attr: list[AttributeEvidence] = []
    pending: list[tuple[str, Kind, list[dict[str, Any]], tuple[float, ...], int, dict[str, int]]] = []
    total_tests = 0
    for attr in chosen:
        present = [(a, v) for a in accounts if not _missing(v := a.attributes.get(attr))]
        if len(present) < 2 * min_support:
            warnings.append(f"Attribute {attr!r} is present on only {len(present)} accounts: not analysed.")
            continue
        kind = _kind_of(v for _, v in present)
        keys_of: dict[str, list[Any]] = {}
        edges: tuple[float, ...] = ()
        cells_meta: list[dict[str, Any]] = []
        rare = 0
        if kind == "numeric":
            edges = tuple(nice_edges([float(v) for _, v in present], bands))
            if not edges:
                warnings.append(f"Attribute {attr!r} has a single value: not analysed.")
                continue
            bounds = [None, *edges, None]
            for i in range(len(bounds) - 1):
                cells_meta.append(
                    {
                        "key": i,
                        "label": band_label(bounds[i], bounds[i + 1]),
                        "value": None,
                        "min": bounds[i],
                        "max": bounds[i + 1],
                        "index": i,
                    }
                )
            for a, v in present:
                x = float(v)
                keys_of[a.account_id] = [bisect.bisect_right(edges, x)]
        elif kind == "set":
            spelling: defaultdict[str, Counter[str]] = defaultdict(Counter)
            for a, v in present:
                members = v if isinstance(v, list | tuple | set | frozenset) else [v]
                folded = set()
                for m in members:
                    if _missing(m):
                        continue
                    f = str(m).strip().casefold()
                    spelling[f][str(m).strip()] += 1
                    folded.add(f)
                keys_of[a.account_id] = sorted(folded)
            support = Counter(k for ks in keys_of.values() for k in ks)
            ordered = sorted(support, key=lambda k: (-support[k], k))
            for i, k in enumerate(ordered):
                if support[k] < min_support:
                    rare += 1
                    continue
                label = spelling[k].most_common(1)[0][0]
                cells_meta.append(
                    {"key": k, "label": label, "value": label, "min": None, "max": None, "index": i}
                )
        else:
            spelling = defaultdict(Counter)
            for a, v in present:
                if kind == "boolean":
                    f: Any = bool(v)
                else:
                    f = str(v).strip().casefold()
                    spelling[f][str(v).strip()] += 1
                keys_of[a.account_id] = [f]
            support = Counter(ks[0] for ks in keys_of.values())
            if kind == "categorical" and len(support) > max(50, len(present) // 2):
                warnings.append(
                    f"Attribute {attr!r} has {len(support)} distinct values on {len(present)} accounts "
                    "(an identifier?): not analysed."
                )
                continue
            if len(support) == 1:
                warnings.append(f"Attribute {attr!r} has a single value: not analysed.")
                continue
            ordered = sorted(support, key=lambda k: (-support[k], str(k)))
            for i, k in enumerate(ordered):
                if support[k] < min_support:
                    rare += 1
                    continue
                label = ("true" if k else "false") if kind == "boolean" else spelling[k].most_common(1)[0][0]
                value = k if kind == "boolean" else label
                cells_meta.append(
                    {"key": k, "label": label, "value": value, "min": None, "max": None, "index": i}
                )
        if not cells_meta:
            warnings.append(f"Attribute {attr!r}: no value is seen on {min_support} or more accounts.")
            continue
        # Count once per account and group.
        group_n = {"all": 0, "best": 0, "lost": 0, "won": 0}
        for meta in cells_meta:
            meta.update(all=0, best=0, lost=0, won=0)
        by_key = {meta["key"]: meta for meta in cells_meta}
        for account_id, ks in keys_of.items():
            groups = groups_of[account_id]
            for g in groups:
                group_n[g] += 1
            for k in ks:
                meta = by_key.get(k)
                if meta is not None:
                    for g in groups:
                        meta[g] += 1
        total_tests += len(cells_meta)
        pending.append((attr, kind, cells_meta, edges, rare, group_n))

    z = z_for(confidence, total_tests)
    alpha = (1.0 - confidence) / max(1, total_tests) / 2.0  # one-sided share of the two-sided level
    base_win = len(winners) / (len(winners) + len(lost_only)) if (winners or lost_only) else math.nan
    for attr, kind, cells_meta, edges, rare, group_n in pending:
        cells: list[Cell] = []
        for m in cells_meta:
            lift, lo, hi = ratio_interval(m["best"], group_n["best"], m["all"], group_n["all"], z)
            vs_lost = ratio_interval(m["best"], group_n["best"], m["lost"], group_n["lost"], z)[0]
            closed = m["won"] + m["lost"]
            win_rate = m["won"] / closed if closed else None
            wr_lo, wr_hi = wilson_interval(m["won"], closed, z)
            p_value = enrichment_p(m["best"], group_n["best"], m["all"], group_n["all"])
            reliable = m["best"] >= min_support and lo > 1.0 and p_value <= alpha
            red_flag = (
                m["lost"] >= min_support
                and closed > 0
                and math.isfinite(base_win)
                and wr_hi < base_win / 2.0
                and not reliable
            )
            cells.append(
                Cell(
                    attribute=attr, kind=kind, label=m["label"], value=m["value"], band_min=m["min"],
                    band_max=m["max"], index=m["index"], best=m["best"], best_n=group_n["best"], all=m["all"],
                    all_n=group_n["all"], lost=m["lost"], lost_n=group_n["lost"], won=m["won"],
                    won_n=group_n["won"], lift=lift, lift_lo=lo, lift_hi=hi, p_value=p_value,
                    lift_vs_lost=vs_lost, win_rate=win_rate, win_rate_lo=wr_lo, win_rate_hi=wr_hi,
                    tested=True, reliable=reliable, red_flag=red_flag,
                )
            )  # fmt: skip
        evidence_by_attr.append(
            AttributeEvidence(
                attribute=attr, kind=kind, all_n=group_n["all"], best_n=group_n["best"],
                lost_n=group_n["lost"], cells=tuple(cells), edges=edges, rare_values=rare,
            )
        )  # fmt: skip

    criteria = _propose_criteria(evidence_by_attr, accounts, merge_overlap, min_support)
    disqualifiers = tuple(
        ProposedDisqualifier(cell=c, base_win_rate=base_win)
        for ev in evidence_by_attr
        for c in ev.cells
        if c.red_flag
    )

    if not accounts:
        warnings.insert(0, "The history is empty: no accounts in the store for this connection.")
    elif not winners:
        warnings.insert(0, "No account has a won deal: there are no best customers to learn from.")
    elif n_best < 30:
        warnings.append(
            f"Only {n_best} best customers: every interval is wide; a longer history or a larger --top helps."
        )
    if not criteria:
        warnings.insert(
            0,
            "No reliable pattern: no attribute value is over-represented among the best customers with "
            f"confidence (every lift interval includes 1, or rests on fewer than {min_support} best "
            "customers). "
            "No draft ICP is proposed.",
        )
    return DeriveReport(
        measure=measure, top=top, confidence=confidence, min_support=min_support, split_date=split_date,
        as_of=as_of, accounts=len(accounts), won_accounts=len(winners), lost_only_accounts=len(lost_only),
        best_accounts=n_best, closed_deals=sum(len(a.deals) for a in accounts), best_threshold=threshold,
        tests=total_tests, z=z, attributes=tuple(evidence_by_attr), criteria=criteria,
        disqualifiers=disqualifiers, warnings=tuple(warnings), source=source,
        best_account_ids=tuple(a.account_id for a in best),
    )  # fmt: skip


def _round_credit(x: float) -> float:
    return max(0.1, min(1.0, round(x, 1)))


def _credits_for(ev: AttributeEvidence, min_support: int) -> list[ProposedCredit]:
    reliable = [c for c in ev.cells if c.reliable]
    if not reliable:
        return []
    if ev.kind == "boolean":
        strongest = max(reliable, key=lambda c: c.lift_lo)
        return [ProposedCredit(strongest, 1.0, "reliable")]
    top_log = max(math.log(c.lift) for c in reliable)
    out: list[ProposedCredit] = []

    def scaled(c: Cell) -> float:
        return math.log(c.lift) / top_log if top_log > 0 else 1.0

    credited_idx = {c.index for c in reliable}
    for c in ev.cells:
        if c.reliable:
            out.append(ProposedCredit(c, _round_credit(scaled(c)), "reliable"))
        elif c.lift > 1.0 and c.best >= min_support:
            if ev.kind == "numeric":
                # A band next to a reliable band, itself over-represented: values change smoothly.
                suggestive = any(abs(c.index - i) == 1 for i in credited_idx)
            else:
                # A value that would be reliable if it were the only one tested (95% on its own).
                suggestive = ratio_interval(c.best, c.best_n, c.all, c.all_n)[1] > 1.0
            partial = 0.5 * scaled(c)
            if suggestive and partial >= 0.05:
                out.append(ProposedCredit(c, _round_credit(min(0.5, partial)), "partial"))
    if ev.kind == "numeric":
        out.sort(key=lambda pc: -(pc.cell.index))
    else:
        out.sort(key=lambda pc: (-pc.credit, -pc.cell.lift))
    return out


def _evidence(credits: Sequence[ProposedCredit]) -> float:
    """Share among best x log of the lift, summed over the reliable credited values.

    Reliability decides *whether* an attribute is a criterion; the size of its effect decides its weight (the
    interval's lower bound would make the weight hinge on the sample size rather than on the effect).
    """
    return sum(pc.cell.p_best * math.log(pc.cell.lift) for pc in credits if pc.basis == "reliable")


def _credited_accounts(
    ev: AttributeEvidence, credits: Sequence[ProposedCredit], accounts: Sequence[AccountOutcome]
):
    """Account ids that the criterion would credit (used to find criteria that say the same thing)."""
    ids = set()
    for a in accounts:
        v = a.attributes.get(ev.attribute)
        if _missing(v):
            continue
        for pc in credits:
            c = pc.cell
            if ev.kind == "numeric":
                x = float(v)
                if (c.band_min is None or x >= c.band_min) and (c.band_max is None or x < c.band_max):
                    ids.add(a.account_id)
            elif ev.kind == "set":
                members = v if isinstance(v, list | tuple | set | frozenset) else [v]
                if any(str(m).strip().casefold() == str(c.value).casefold() for m in members):
                    ids.add(a.account_id)
            elif ev.kind == "boolean":
                if bool(v) == c.value:
                    ids.add(a.account_id)
            elif str(v).strip().casefold() == str(c.value).casefold():
                ids.add(a.account_id)
    return ids


def _propose_criteria(
    evidence: Sequence[AttributeEvidence],
    accounts: Sequence[AccountOutcome],
    merge_overlap: float,
    min_support: int,
) -> tuple[ProposedCriterion, ...]:
    drafts: list[tuple[AttributeEvidence, list[ProposedCredit], float]] = []
    for ev in evidence:
        credits = _credits_for(ev, min_support)
        if credits:
            drafts.append((ev, credits, _evidence(credits)))
    drafts.sort(key=lambda d: -d[2])
    # Merge criteria that credit nearly the same accounts (country and region, revenue and a derived size...).
    kept: list[tuple[AttributeEvidence, list[ProposedCredit], float, set[str], list[str]]] = []
    for ev, credits, strength in drafts:
        credited = _credited_accounts(ev, [pc for pc in credits if pc.basis == "reliable"], accounts)
        twin = None
        for k in kept:
            # One criterion credits (nearly) a subset of the other's accounts: they say the same thing.
            smaller = min(len(credited), len(k[3]))
            if smaller and len(credited & k[3]) / smaller >= merge_overlap:
                twin = k
                break
        if twin is not None:
            twin[4].append(ev.attribute)
            continue
        kept.append((ev, credits, strength, credited, []))
    total = sum(k[2] for k in kept)
    out: list[ProposedCriterion] = []
    for ev, credits, strength, _, merged in kept:
        weight = max(1, round(100 * strength / total)) if total > 0 else 1
        out.append(
            ProposedCriterion(
                attribute=ev.attribute, kind=ev.kind, weight=weight, evidence=strength,
                credits=tuple(credits), merged=tuple(merged),
            )
        )  # fmt: skip
    return tuple(out)


# ------------------------------------------------------------------------------------------- text report


def render_derive_text(report: DeriveReport, *, all_cells: bool = False) -> str:
    """A readable report: who the best customers are, the evidence per attribute, the proposal, warnings."""
    r = report
    lines: list[str] = []
    src = f" of {r.source}" if r.source else ""
    lines.append(f"ICP derivation{src}")
    period = f", deals closed before {r.split_date.isoformat()}" if r.split_date else ""
    lines.append(
        f"  accounts {r.accounts:,}; with won deals {r.won_accounts:,}; with only lost deals "
        f"{r.lost_only_accounts:,}; closed deals {r.closed_deals:,}{period}"
    )
    measure = {
        "won_amount": "won amount",
        "wins": "number of wins",
        "tenure": "tenure (days since first win)",
    }
    lines.append(
        f"  best customers: top {r.top:.0%} by {measure.get(r.measure, r.measure)} = "
        f"{r.best_accounts:,} accounts"
        + (f" (cut-off {fmt_num(r.best_threshold)})" if r.best_threshold is not None else "")
    )
    alpha = (1 - r.confidence) / max(1, r.tests) / 2
    lines.append(
        f"  lift = share among best / share among all accounts; intervals are simultaneous "
        f"{r.confidence:.0%} over {r.tests} values (z = {r.z:.2f})"
    )
    lines.append(
        f"  p = exact test of over-representation among best customers; reliable = interval above 1, "
        f"p <= {alpha:.1g} and >= {r.min_support} best customers"
    )
    for w in r.warnings:
        lines.append(f"WARNING: {w}")
    lines.append("")
    header = (
        f"  {'value':<26} {'best':>12} {'all':>13} {'lost-only':>12} {'lift':>6}  {'interval':<14} {'p':>8}"
    )
    for ev in r.attributes:
        lines.append(
            f"{ev.attribute} ({ev.kind}; data on {ev.all_n:,} accounts, {ev.best_n:,} best, "
            f"{ev.lost_n:,} lost-only)"
        )
        lines.append(header)
        cells = list(ev.cells) if ev.kind == "numeric" else sorted(ev.cells, key=lambda c: -c.lift)
        for shown, c in enumerate(cells):
            if not all_cells and ev.kind != "numeric" and shown >= 12:
                lines.append(f"  ... {len(cells) - shown} more values")
                break
            mark = " reliable" if c.reliable else (" red flag" if c.red_flag else "")
            lines.append(
                f"  {c.label[:26]:<26} {f'{c.best} ({_fmt_pct(c.p_best)})':>12} "
                f"{f'{c.all} ({_fmt_pct(c.p_all)})':>13} {f'{c.lost} ({_fmt_pct(c.p_lost)})':>12} "
                f"{_fmt_ratio(c.lift):>6}  {f'[{_fmt_ratio(c.lift_lo)}, {_fmt_ratio(c.lift_hi)}]':<14} "
                f"{_fmt_p(c.p_value):>8}{mark}"
            )
        if ev.rare_values:
            lines.append(
                f"  ({ev.rare_values} values seen on fewer than {r.min_support} accounts, not tested)"
            )
        lines.append("")
    if r.criteria:
        lines.append("Proposed criteria (weights in proportion to the evidence):")
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


# -------------------------------------------------------------------------------------------- YAML draft


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON's escaping is a subset of YAML's)."""
    return json.dumps(str(text), ensure_ascii=False)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _comment(text: str) -> str:
    return " ".join(str(text).split())


def draft_icp_yaml(report: DeriveReport, *, name: str | None = None) -> str:
    """The draft ICP as YAML (the shape of ``worker.icp.model``), with the evidence as comments.

    Raises ``NoReliablePatternError`` when the report has no reliable criterion.
    """
    r = report
    if not r.criteria:
        raise NoReliablePatternError(
            "no reliable pattern: no attribute value is over-represented among the best customers with "
            "confidence, so no draft ICP is written (see the report's evidence)"
        )
    measure = {"won_amount": "won amount", "wins": "number of wins", "tenure": "tenure"}.get(
        r.measure, r.measure
    )
    title = name or f"Derived ICP (top {r.top:.0%} by {measure})"
    out: list[str] = []
    add = out.append
    add("# DRAFT ICP derived from the CRM's history by `icp-worker icp derive`. Review it before publishing:")
    add(
        "# it describes who bought, not who should buy. "
        "Backtest it: `icp-worker icp backtest FILE --connection NAME`."
    )
    if r.source:
        add(f"# Source: {_comment(r.source)}")
    period = f"; deals closed before {r.split_date.isoformat()}" if r.split_date else ""
    add(
        f"# History: {r.accounts:,} accounts, {r.won_accounts:,} with won deals, "
        f"{r.lost_only_accounts:,} with only lost deals, {r.closed_deals:,} closed deals{period}."
    )
    cutoff = f" (cut-off {fmt_num(r.best_threshold)})" if r.best_threshold is not None else ""
    add(
        f"# Best customers: top {r.top:.0%} of accounts with won deals by {measure}: "
        f"{r.best_accounts:,}{cutoff}."
    )
    add(
        "# Evidence per value: best customers with it / best customers with data, the same among all "
        "accounts and lost-only accounts; lift = share among best / share among all, "
        f"[simultaneous {r.confidence:.0%} interval over {r.tests} values]."
    )
    for w in r.warnings:
        add(f"# WARNING: {_comment(w)}")
    add(f"name: {_q(title)}")
    description = f"Derived from {r.best_accounts} best customers (top {r.top:.0%} by {measure}); draft."
    add(f"description: {_q(description)}")
    add("tiers: {best: 80, good: 60}")
    add("min_coverage: 0.5")
    seen: set[str] = set()

    def unique(key: str) -> str:
        """Criteria and disqualifiers share one key space."""
        candidate, n = key, 2
        while candidate in seen:
            candidate, n = f"{key}_{n}", n + 1
        seen.add(candidate)
        return candidate

    add("criteria:")
    for cr in r.criteria:
        merged = (
            f"; also stands for {', '.join(cr.merged)} (credits nearly the same accounts)"
            if cr.merged
            else ""
        )
        add(f"  # {cr.attribute}: evidence {cr.evidence:.3f} -> weight {cr.weight}{merged}")
        add(f"  - key: {unique(cr.key)}")
        add(f"    attribute: {_q(cr.attribute)}")
        add(f"    weight: {cr.weight}")
        if cr.kind == "numeric":
            add("    type: bands")
            add("    bands:")
            for pc in cr.credits:
                c = pc.cell
                parts = []
                if c.band_min is not None:
                    parts.append(f"min: {_num(c.band_min)}")
                if c.band_max is not None:
                    parts.append(f"max: {_num(c.band_max)}")
                parts.append(f"credit: {pc.credit:g}")
                add(f"      - {{{', '.join(parts)}}}  # {c.label}: {_note(pc)}")
        elif cr.kind == "boolean":
            pc = cr.credits[0]
            add("    type: boolean")
            add(f"    expected: {'true' if pc.cell.value else 'false'}  # {_note(pc)}")
            add(f"    credit: {pc.credit:g}")
        else:
            add(f"    type: {'contains_any' if cr.kind == 'set' else 'categorical'}")
            add("    values:")
            for pc in cr.credits:
                add(f"      {_q(str(pc.cell.value))}: {pc.credit:g}  # {_note(pc)}")
            if cr.kind == "categorical":
                add("    default: 0")
    if r.disqualifiers:
        add(
            "# Suggested disqualifiers: accounts like these almost never won. "
            "A disqualifier forces score 0 and tier"
        )
        add("# `disqualified`: keep only the ones that are real red flags.")
        add("disqualifiers:")
        for dq in r.disqualifiers:
            c = dq.cell
            key = unique(dq.key)
            add(f"  # {_comment(dq.evidence())}")
            add(f"  - key: {key}")
            add(f"    attribute: {_q(c.attribute)}")
            if c.kind == "numeric":
                if c.band_min is not None:
                    add(f"    min: {_num(c.band_min)}")
                if c.band_max is not None:
                    add(f"    max: {_num(c.band_max)}")
            elif c.kind == "boolean":
                add(f"    equals: {'true' if c.value else 'false'}")
            else:
                add(f"    values: [{_q(str(c.value))}]")
            add(f"    description: {_q(f'{c.attribute} {c.label}: rarely wins')}")
    return "\n".join(out) + "\n"


def _note(pc: ProposedCredit) -> str:
    basis = "" if pc.basis == "reliable" else "partial credit, not yet reliable: "
    return _comment(basis + pc.cell.evidence())


def derive_summary(report: DeriveReport) -> Mapping[str, Any]:
    """A short machine-readable summary (for logs and the CLI's JSON output)."""
    return {
        "reliable": report.reliable,
        "best_accounts": report.best_accounts,
        "criteria": {c.attribute: c.weight for c in report.criteria},
        "disqualifiers": [f"{d.cell.attribute}={d.cell.label}" for d in report.disqualifiers],
        "warnings": list(report.warnings),
    }


__all__ = [
    "MEASURES",
    "AttributeEvidence",
    "Cell",
    "DeriveReport",
    "NoReliablePatternError",
    "ProposedCredit",
    "ProposedCriterion",
    "ProposedDisqualifier",
    "derive",
    "derive_summary",
    "draft_icp_yaml",
    "nice_edges",
    "nice_number",
    "ratio_interval",
    "render_derive_text",
    "wilson_interval",
    "z_for",
]
