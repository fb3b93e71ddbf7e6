"""Statistics of the analysis (pure: no I/O, no clock; seeded where random).

Proportions and their ratios (Wilson, MOVER), the exact test of over-representation, simultaneous intervals,
the ROC AUC of a score on won and lost deals, and two ways to honour that deals of one account are not
independent: the *design effect* of a clustered win rate, and the *cluster bootstrap* of an AUC (resampling
accounts, not deals).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np

Z95 = 1.959964
#: Resamples of the cluster bootstrap (bounded: the cost is resamples x accounts).
BOOTSTRAP_ROUNDS = 400
BOOTSTRAP_SEED = 20_240_601


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


def wilson_interval(successes: float, n: float, z: float = 1.959964) -> tuple[float, float]:
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


def ratio_interval(
    a: float, n1: float, b: float, n2: float, z: float = 1.959964
) -> tuple[float, float, float]:
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


def design_effect(clusters: Sequence[tuple[float, float]]) -> float:
    """How much the variance of a win rate grows because deals come in accounts.

    ``clusters``: ``(won deals, closed deals)`` per account. The cluster-robust variance of the ratio
    ``Σ won / Σ closed`` over its binomial variance, between 1 (independent deals) and ``Σ n² / Σ n`` (every
    account wins all or nothing: one account counts once). When the rate is 0 or 1 the data cannot tell,
    and the upper bound is used: with one big account, "never won" rests on one account, not its deals.
    """
    n_total = sum(n for _, n in clusters)
    m = sum(1 for _, n in clusters if n > 0)
    if n_total <= 0 or m == 0:
        return 1.0
    worst = sum(n * n for _, n in clusters) / n_total
    if m < 2:
        return max(1.0, worst)
    rate = sum(w for w, _ in clusters) / n_total
    binomial = rate * (1 - rate) / n_total
    if binomial <= 0:
        return max(1.0, worst)
    robust = sum((w - rate * n) ** 2 for w, n in clusters) / (n_total * n_total) * m / (m - 1)
    return min(max(1.0, robust / binomial), max(1.0, worst))


def auc_of_accounts(scored: Sequence[tuple[float, int, int]]) -> float | None:
    """AUC of ``(score, won deals, lost deals)`` per account (every deal takes its account's score)."""
    counts: dict[float, list[int]] = {}
    for score, won, lost in scored:
        c = counts.setdefault(score, [0, 0])
        c[0] += won
        c[1] += lost
    return auc_from_counts(counts)[0]


def cluster_bootstrap_auc(
    scored: Sequence[tuple[float, int, int]],
    *,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile interval of the AUC, resampling *accounts* with replacement (seeded, ``rounds`` resamples).

    ``scored``: ``(score, won deals, lost deals)`` per account. An account with forty deals weighs forty
    deals but is drawn as one unit, so the interval is as wide as the number of accounts warrants. ``None``
    when fewer than two accounts have deals.
    """
    units = [s for s in scored if s[1] + s[2] > 0]
    if len(units) < 2:
        return None
    scores = np.array([s for s, _, _ in units], dtype=float)
    order, rank = np.unique(scores, return_inverse=True)
    won = np.array([w for _, w, _ in units], dtype=float)
    lost = np.array([x for _, _, x in units], dtype=float)
    rng = np.random.default_rng(seed)
    m, groups = len(units), len(order)
    estimates: list[float] = []
    for _ in range(max(1, rounds)):
        pick = rng.integers(0, m, size=m)
        won_at = np.bincount(rank[pick], weights=won[pick], minlength=groups)
        lost_at = np.bincount(rank[pick], weights=lost[pick], minlength=groups)
        auc = _auc_by_rank(won_at, lost_at)
        if auc is not None:
            estimates.append(auc)
    if len(estimates) < 10:
        return None
    lo, hi = np.quantile(estimates, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def _auc_by_rank(won_at: np.ndarray, lost_at: np.ndarray) -> float | None:
    """AUC from won / lost deal counts per score, scores ascending (ties count half)."""
    wins, losses = float(won_at.sum()), float(lost_at.sum())
    if not wins or not losses:
        return None
    below = np.cumsum(lost_at) - lost_at  # lost deals with a lower score
    return float((won_at * (below + 0.5 * lost_at)).sum() / (wins * losses))


__all__ = [
    "BOOTSTRAP_ROUNDS",
    "Z95",
    "auc_from_counts",
    "auc_interval",
    "auc_of_accounts",
    "cluster_bootstrap_auc",
    "design_effect",
    "enrichment_p",
    "json_safe",
    "ratio_interval",
    "roc_auc",
    "wilson_interval",
    "z_for",
]
