"""Derive a draft ICP from the history of won and lost deals (pure: no I/O, no clock).

1. **No leakage**: attributes that record an outcome or a sales state (account type, lifecycle stage, lead
   status, ...) are left out, and so is any attribute whose values nearly separate the accounts that won
   from those that only lost (``leakage``); the report says which and why. ``include`` names the ones to
   keep anyway.
2. **Evidence per value** (``evidence``): by default the win rate of the closed deals of accounts with the
   value over the base win rate, the quantity a backtest judges (``measure="win_rate"``); or, with
   ``won_amount`` / ``wins`` / ``tenure``, the share of the value among the best customers (the top share
   by that measure) over its share among all accounts. Intervals are simultaneous over every value tested
   and honour that deals of one account are not independent.
3. **A draft ICP** (``proposal``, ``draft.draft_icp_yaml``): the attributes with a reliable value, with
   weights and credits read from a regularised logistic regression of winning on their cells; suggested
   disqualifiers for values whose accounts almost never win.

``split_date`` keeps only the deals closed before it (the CLI backtests the draft on the rest before
writing it). Without it the evidence is in-sample, and the report says so. When no value is reliable, the
report says "no reliable pattern" and ``draft_icp_yaml`` refuses (``NoReliablePatternError``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Literal

from worker.icp.cells import Binning, bin_attributes
from worker.icp.evidence import AttributeEvidence, Cell, Groups, Row, Settings, attribute_evidence, rows_of
from worker.icp.history import CLOSED_DEAL_FIELDS, AccountOutcome
from worker.icp.leakage import LEAK_AUC, outcome_reason, separation
from worker.icp.logit import L2
from worker.icp.proposal import (
    Placed,
    ProposedCredit,
    ProposedCriterion,
    ProposedDisqualifier,
    propose,
)
from worker.icp.stats import json_safe, z_for

Measure = Literal["win_rate", "won_amount", "wins", "tenure"]
MEASURES: tuple[str, ...] = ("win_rate", "won_amount", "wins", "tenure")
MEASURE_WORDS = {
    "win_rate": "win rate of closed deals",
    "won_amount": "won amount",
    "wins": "number of wins",
    "tenure": "tenure (days since first win)",
}
#: Attributes that identify a record rather than describe a company.
DEFAULT_EXCLUDE = frozenset(
    {"name", "account_name", "website", "domain", "phone", "description", "id", "external_id", "email", "url"}
)
#: Fewer accounts with closed deals than this: every figure is fragile (said in words).
FEW_ACCOUNTS = 100


class NoReliablePatternError(ValueError):
    """The history supports no criterion: a draft would only encode noise."""


@dataclass(frozen=True, slots=True)
class Exclusion:
    """An attribute left out of the derivation, and why."""

    attribute: str
    reason: str
    #: ``outcome`` (by name), ``leak`` (its values nearly separate won from lost) or ``identifier``.
    kind: str
    separation: float | None = None


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
    #: The measure's value of the last best customer (the cut-off; ``None`` for ``win_rate``).
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
    excluded: tuple[Exclusion, ...] = ()
    #: The L2 penalty of the model the weights come from, and whether its fit converged.
    l2: float = L2
    model_converged: bool | None = None

    @property
    def reliable(self) -> bool:
        return bool(self.criteria)

    @property
    def in_sample(self) -> bool:
        return self.split_date is None

    @property
    def base_win_rate(self) -> float:
        closed = self.won_accounts + self.lost_only_accounts
        return self.won_accounts / closed if closed else math.nan

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reliable"] = self.reliable
        data["in_sample"] = self.in_sample
        data["base_win_rate"] = self.base_win_rate
        safe: dict[str, Any] = json_safe(data)
        return safe

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def render_text(self, *, all_cells: bool = False) -> str:
        from worker.icp.derive_text import render_derive_text

        return render_derive_text(self, all_cells=all_cells)


# ----------------------------------------------------------------------------------------------- steps


def _measure_value(measure: str, a: AccountOutcome, as_of: date | None) -> float:
    if measure == "wins":
        return a.wins
    if measure == "tenure":
        return a.tenure_days(as_of) if as_of else 0
    return a.won_amount


def _best_customers(
    winners: Sequence[AccountOutcome], measure: str, top: float, as_of: date | None
) -> tuple[list[AccountOutcome], float | None]:
    """The top share of the accounts with won deals by the measure (``win_rate``: all of them)."""
    if measure == "win_rate":
        return sorted(winners, key=lambda a: (-a.wins, -a.won_amount, a.account_id)), None

    def key(a: AccountOutcome) -> tuple[float, float, str]:
        tie = -a.won_amount if measure != "won_amount" else -a.wins
        return (-_measure_value(measure, a, as_of), tie, a.account_id)

    ranked = sorted(winners, key=key)
    n_best = max(1, round(top * len(ranked))) if ranked else 0
    best = ranked[:n_best]
    return best, (_measure_value(measure, best[-1], as_of) if best else None)


def _candidate_names(
    accounts: Sequence[AccountOutcome],
    attributes: Sequence[str] | None,
    exclude: Iterable[str],
    include: frozenset[str],
    warnings: list[str],
    outcomes: Mapping[str, str],
) -> tuple[list[str], list[Exclusion]]:
    names: set[str] = set()
    for a in accounts:
        names.update(a.attributes.keys())
    if attributes is not None:
        for n in attributes:
            if n not in names:
                warnings.append(f"Attribute {n!r} is not present on any account.")
        return [n for n in attributes if n in names], []
    exclude_set = {e.casefold() for e in exclude}
    chosen: list[str] = []
    excluded: list[Exclusion] = []
    for n in sorted(names):
        if n.casefold() in exclude_set and n.casefold() not in include:
            continue
        reason = outcomes.get(n) or outcome_reason(n)
        if reason is not None and n.casefold() not in include:
            excluded.append(Exclusion(n, reason, "outcome"))
            continue
        chosen.append(n)
    return chosen, excluded


def _drop_leaks(
    binnings: list[Binning],
    placed: Placed,
    rows: Sequence[Row],
    include: frozenset[str],
    leak_auc: float,
    min_support: int,
) -> tuple[list[Binning], list[Exclusion], dict[str, float | None]]:
    """Binnings whose values nearly separate won from lost-only accounts are left out (unless included).
    The check needs ``min_support`` accounts of each kind: five customers cannot show a leak."""
    kept: list[Binning] = []
    leaks: list[Exclusion] = []
    seps: dict[str, float | None] = {}
    won = [r.won if (r.won or r.lost) else None for r in rows]
    for b in binnings:
        sep = separation(placed[b.attribute], won, min_support)
        seps[b.attribute] = sep
        if sep is not None and sep >= leak_auc and b.attribute.casefold() not in include:
            reason = (
                f"its values alone separate won from lost accounts almost perfectly (AUC {sep:.2f}): "
                "probably set because of the outcome"
            )
            leaks.append(Exclusion(b.attribute, reason, "leak", sep))
        else:
            kept.append(b)
    return kept, leaks, seps


def _sample_warnings(
    accounts: Sequence[AccountOutcome],
    winners: int,
    lost_only: int,
    n_best: int,
    measure: str,
    min_support: int,
) -> list[str]:
    out: list[str] = []
    closed_accounts = winners + lost_only
    if not accounts:
        return ["The history is empty: no accounts in the store for this connection."]
    if not any(a.deals for a in accounts):
        return [f"No closed deal in the history: looked for {CLOSED_DEAL_FIELDS}."]
    if not winners:
        return ["No account has a won deal: there are no best customers to learn from."]
    if closed_accounts < FEW_ACCOUNTS:
        out.append(
            f"Only {closed_accounts} accounts have closed deals: with fewer than {FEW_ACCOUNTS} every figure "
            "rests on too few accounts, however many deals they have."
        )
    if not lost_only:
        out.append("No account has only lost deals: nothing shows what a losing account looks like.")
    if n_best < 30:
        who = " (accounts with won deals)" if measure == "win_rate" else ""
        out.append(
            f"Only {n_best} best customers{who}: every interval is wide; a longer history"
            + (" helps." if measure == "win_rate" else " or a larger --top helps.")
        )
    return out


def _no_pattern_warning(min_support: int) -> str:
    return (
        "No reliable pattern: no attribute value predicts winning with confidence (every lift interval "
        f"includes 1, or rests on fewer than {min_support} customers). No draft ICP is proposed."
    )


def derive(
    history: Iterable[AccountOutcome],
    *,
    measure: str = "win_rate",
    top: float = 0.2,
    split_date: date | None = None,
    as_of: date | None = None,
    confidence: float = 0.95,
    min_support: int = 10,
    bands: int = 4,
    attributes: Sequence[str] | None = None,
    exclude: Iterable[str] = DEFAULT_EXCLUDE,
    include: Iterable[str] = (),
    outcomes: Mapping[str, str] | None = None,
    merge_overlap: float = 0.9,
    leak_auc: float = LEAK_AUC,
    l2: float = L2,
    source: str | None = None,
) -> DeriveReport:
    """Find what predicts winning; see the module docstring for the method.

    ``split_date``: only deals closed before it count (the rest is kept for a backtest).
    ``as_of``: the reference date of ``tenure`` (default: the last close date in the history, not the clock).
    ``include``: attributes to analyse even when they look like outcomes or leaks. ``outcomes``: more
    attributes known to hold an outcome (the connection maps them from a customer field), with why.
    """
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}")
    if not 0 < top <= 1:
        raise ValueError("top must be a share in (0, 1], e.g. 0.2 for the top 20%")
    accounts = [a.restrict(before=split_date) for a in history] if split_date else list(history)
    warnings: list[str] = []
    closed_dates = [d.close_date for a in accounts for d in a.deals if d.close_date is not None]
    if as_of is None and closed_dates:
        as_of = max(closed_dates)
    winners = [a for a in accounts if a.wins > 0]
    lost_only = [a for a in accounts if a.lost_only]
    if measure == "won_amount" and winners and not any(a.won_amount > 0 for a in winners):
        warnings.append("No won deal has an amount: best customers are ranked by number of wins instead.")
        measure = "wins"
    best, threshold = _best_customers(winners, measure, top, as_of)
    groups = Groups(
        frozenset(a.account_id for a in best),
        frozenset(a.account_id for a in winners),
        frozenset(a.account_id for a in lost_only),
    )
    included = frozenset(n.casefold() for n in include)
    names, excluded = _candidate_names(accounts, attributes, exclude, included, warnings, outcomes or {})
    binnings, bin_warnings = bin_attributes(
        [a.attributes for a in accounts], names, min_support=min_support, bands=bands
    )
    warnings += bin_warnings
    rows = rows_of(accounts, groups)
    attrs = [a.attributes for a in accounts]
    placed = {b.attribute: b.place(attrs) for b in binnings}
    binnings, leaks, seps = _drop_leaks(binnings, placed, rows, included, leak_auc, min_support)
    excluded += leaks
    tests = sum(len(b.cells) for b in binnings)
    z = z_for(confidence, tests)
    base_win = len(winners) / (len(winners) + len(lost_only)) if (winners or lost_only) else math.nan
    settings = Settings(
        measure == "win_rate", z, (1.0 - confidence) / max(1, tests) / 2.0, min_support, base_win
    )
    evidence = [
        attribute_evidence(b, placed[b.attribute], rows, settings, seps.get(b.attribute)) for b in binnings
    ]
    proposal = propose(evidence, binnings, accounts, base_win, placed, merge_overlap=merge_overlap, l2=l2)
    criteria, disqualifiers, model = proposal.criteria, proposal.disqualifiers, proposal.model
    sample = _sample_warnings(accounts, len(winners), len(lost_only), len(best), measure, min_support)
    warnings = [*sample[:1], *warnings, *sample[1:]] if sample else warnings
    if not criteria:
        warnings.insert(0, _no_pattern_warning(min_support))
    return DeriveReport(
        measure=measure, top=top, confidence=confidence, min_support=min_support, split_date=split_date,
        as_of=as_of, accounts=len(accounts), won_accounts=len(winners), lost_only_accounts=len(lost_only),
        best_accounts=len(best), closed_deals=sum(len(a.deals) for a in accounts), best_threshold=threshold,
        tests=tests, z=z, attributes=tuple(evidence), criteria=criteria, disqualifiers=disqualifiers,
        warnings=tuple(warnings), best_account_ids=tuple(a.account_id for a in best), source=source,
        excluded=tuple(excluded), l2=l2, model_converged=model.converged if model else None,
    )  # fmt: skip


def derive_summary(report: DeriveReport) -> Mapping[str, Any]:
    """A short machine-readable summary (for logs and the CLI's JSON output)."""
    return {
        "reliable": report.reliable,
        "in_sample": report.in_sample,
        "best_accounts": report.best_accounts,
        "criteria": {c.attribute: c.weight for c in report.criteria},
        "disqualifiers": [f"{d.cell.attribute}={d.cell.label}" for d in report.disqualifiers],
        "excluded": {e.attribute: e.reason for e in report.excluded},
        "warnings": list(report.warnings),
    }


__all__ = [
    "DEFAULT_EXCLUDE",
    "MEASURES",
    "AttributeEvidence",
    "Cell",
    "DeriveReport",
    "Exclusion",
    "NoReliablePatternError",
    "ProposedCredit",
    "ProposedCriterion",
    "ProposedDisqualifier",
    "derive",
    "derive_summary",
]
