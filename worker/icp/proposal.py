"""From evidence to a rubric: which attributes become criteria, their weights and credits (pure).

1. **Which attributes**: those with at least one *reliable* value (``evidence``); an attribute whose
   credited accounts are 90% inside another's (country and region, revenue and head count) is merged into the
   stronger one, so one criterion stands for both.
2. **Weights and credits from the data**: a regularised logistic regression of winning on the kept
   attributes' cells (``logit``). Per attribute, a cell's credit is its coefficient's distance above the
   attribute's lowest level (missing data and unlisted values count as the model's zero), over the
   attribute's range; the attribute's weight is that range (in log-odds) as a share of all ranges. So the
   rubric's score is, up to rounding, the model's log-odds: a readable profile that keeps the model's
   ranking of accounts. Credits are rounded to 0.1, weights to whole numbers summing to 100.
3. A value above average but not reliably so gets at most half credit (``partial``), a hedge against
   noise; values below average keep the model's credit relative to the attribute's lowest level.
4. **Disqualifiers**: a red flag (its accounts almost never win, ``evidence``) is suggested as a
   disqualifier only when the model says that even an account with that value and the best value of every
   other criterion wins less than half as often as the average deal: a value that only lowers the odds (a
   region where software companies still win) is left to the credits. A disqualifier's value gets no credit
   and does not set the attribute's lowest level.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from worker.icp.bands import fmt_pct
from worker.icp.cells import Binning, CellKey, Kind
from worker.icp.evidence import AttributeEvidence, Cell
from worker.icp.history import AccountOutcome
from worker.icp.logit import L2, LogitModel, fit_model

PARTIAL_CAP = 0.5


def slug(text: str) -> str:
    s = re.sub(r"[^0-9a-z]+", "_", str(text).casefold()).strip("_")
    s = re.sub(r"_+", "_", s)
    if not s or not s[0].isalpha():
        s = "k_" + s
    return s[:60]


@dataclass(frozen=True, slots=True)
class ProposedCredit:
    cell: Cell
    credit: float
    #: ``reliable`` (interval above 1), ``partial`` (above average, not yet reliable: at most half credit)
    #: or ``relative`` (at or below average: the model's credit over the attribute's lowest level).
    basis: str
    #: The cell's coefficient in the model (log-odds of winning, relative to missing data).
    coefficient: float = 0.0


@dataclass(frozen=True, slots=True)
class ProposedCriterion:
    attribute: str
    kind: Kind
    weight: int
    #: The attribute's range in the model (log-odds between its best and its lowest level).
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
        closed = c.won + c.lost
        return (
            f"{c.won} of {closed} accounts with closed deals won (win rate {fmt_pct(c.win_rate)}, "
            f"at most {fmt_pct(c.win_rate_hi)}) vs {fmt_pct(self.base_win_rate)} overall; "
            f"lost-only {c.lost}/{c.lost_n} ({fmt_pct(c.p_lost)})"
        )


def _strength(ev: AttributeEvidence) -> float:
    """Share among best x log of the lift over the reliable values: orders the attributes for merging."""
    return sum(c.p_best * math.log(c.lift) for c in ev.cells if c.reliable and c.lift > 0)


Placed = Mapping[str, Sequence[tuple[CellKey, ...] | None]]


def _credited_accounts(binning: Binning, cells: Sequence[Cell], placed: Placed) -> set[int]:
    """Positions of the accounts in the reliable cells (used to find criteria that say the same thing)."""
    wanted = {c.index for c in cells}
    index_of = {spec.key: spec.index for spec in binning.cells}
    return {
        i
        for i, keys in enumerate(placed[binning.attribute])
        if any(index_of.get(k) in wanted for k in keys or ())
    }


def select_attributes(
    evidence: Sequence[AttributeEvidence],
    binnings: Sequence[Binning],
    placed: Placed,
    merge_overlap: float,
) -> list[tuple[AttributeEvidence, Binning, list[str]]]:
    """The attributes with a reliable value, twins merged into the stronger one: (evidence, binning,
    merged names)."""
    by_name = {b.attribute: b for b in binnings}
    candidates = sorted(
        (ev for ev in evidence if any(c.reliable for c in ev.cells)), key=lambda e: -_strength(e)
    )
    kept: list[tuple[AttributeEvidence, Binning, list[str], set[int]]] = []
    for ev in candidates:
        binning = by_name[ev.attribute]
        credited = _credited_accounts(binning, [c for c in ev.cells if c.reliable], placed)
        twin = None
        for k in kept:
            smaller = min(len(credited), len(k[3]))
            if smaller and len(credited & k[3]) / smaller >= merge_overlap:
                twin = k
                break
        if twin is not None:
            twin[2].append(ev.attribute)
            continue
        kept.append((ev, binning, [], credited))
    return [(ev, b, merged) for ev, b, merged, _ in kept]


def _round_credit(x: float) -> float:
    return max(0.0, min(1.0, round(x, 1)))


def _credits(
    ev: AttributeEvidence, model: LogitModel, barred: frozenset[tuple[str, int]]
) -> tuple[list[ProposedCredit], float]:
    """The attribute's credits from the model's coefficients, and its range (log-odds). ``barred``: cells
    that are disqualifiers (they score 0 anyway, and do not set the attribute's lowest level)."""
    eligible = [c for c in ev.cells if (ev.attribute, c.index) not in barred]
    if not eligible:
        return [], 0.0
    betas = {c.index: model.coefficient(ev.attribute, _key(c)) for c in eligible}
    low = min(0.0, *betas.values())
    top = max(betas.values())
    span = top - low
    if span <= 1e-9:
        return [], 0.0
    if ev.kind == "boolean":
        strongest = max(eligible, key=lambda c: betas[c.index])
        return [ProposedCredit(strongest, 1.0, "reliable" if strongest.reliable else "partial",
                               betas[strongest.index])], span  # fmt: skip
    out: list[ProposedCredit] = []
    for c in eligible:
        share = (betas[c.index] - low) / span
        # Above average but not yet reliably so: at most half credit (a hedge against noise).
        hedged = not c.reliable and c.lift > 1.0
        basis = "reliable" if c.reliable else "partial" if hedged else "relative"
        credit = _round_credit(min(PARTIAL_CAP, share) if hedged else share)
        if credit >= 0.1:
            out.append(ProposedCredit(c, credit, basis, betas[c.index]))
    if ev.kind == "numeric":
        out.sort(key=lambda pc: -pc.cell.index)
    else:
        out.sort(key=lambda pc: (-pc.credit, -pc.cell.lift))
    return out, span


def _key(cell: Cell) -> int | str | bool:
    if cell.kind == "numeric":
        return cell.index
    if cell.kind == "boolean":
        return bool(cell.value)
    return str(cell.value).strip().casefold()


def _weights(spans: Sequence[float]) -> list[int]:
    """Whole-number weights in proportion to the spans, summing to 100 (largest remainders)."""
    total = sum(spans)
    if total <= 0:
        return [1 for _ in spans]
    raw = [100 * s / total for s in spans]
    weights = [max(1, math.floor(r)) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: -(raw[i] - math.floor(raw[i]))):
        if sum(weights) >= 100:
            break
        weights[i] += 1
    return weights


def _best_case(model: LogitModel, attribute: str, cell: Cell) -> float:
    """The model's win probability of a deal of an account with ``cell``'s value and the best value (or
    no data) of every other attribute: how well the value's accounts can do at best."""
    eta = model.intercept + model.coefficient(attribute, _key(cell))
    for b in model.binnings:
        if b.attribute != attribute:
            eta += max(0.0, *(model.coefficient(b.attribute, c.key) for c in b.cells))
    return 1.0 / (1.0 + math.exp(-eta))


def _hopeless(
    ev: AttributeEvidence,
    binnings: Sequence[Binning],
    accounts: Sequence[AccountOutcome],
    model: LogitModel | None,
    l2: float,
    placed: Placed,
) -> list[Cell]:
    """The red flags of ``ev`` whose accounts rarely win even at best (below half the base deal win rate)."""
    flags = [c for c in ev.cells if c.red_flag]
    if not flags or model is None:
        return flags
    if ev.attribute not in {b.attribute for b in model.binnings}:
        extra = [b for b in binnings if b.attribute == ev.attribute]
        model = fit_model(accounts, [*model.binnings, *extra], l2=l2, placed=placed) or model
    base = flags[0].base_deal_win_rate
    if not math.isfinite(base):
        return flags
    return [c for c in flags if _best_case(model, ev.attribute, c) < base / 2.0]


@dataclass(frozen=True, slots=True)
class Proposal:
    criteria: tuple[ProposedCriterion, ...]
    disqualifiers: tuple[ProposedDisqualifier, ...]
    #: The model the weights and credits were read from (``None`` without a criterion).
    model: LogitModel | None


def propose(
    evidence: Sequence[AttributeEvidence],
    binnings: Sequence[Binning],
    accounts: Sequence[AccountOutcome],
    base_win: float,
    placed: Placed,
    *,
    merge_overlap: float = 0.9,
    l2: float = L2,
) -> Proposal:
    """The draft's criteria and disqualifiers (see the module docstring), and the model behind them.

    A suggested disqualifier is a red flag (``evidence``) whose accounts rarely win even with the best value
    of every other criterion: a value that only lowers the odds is left to the criteria's credits.
    """
    chosen = select_attributes(evidence, binnings, placed, merge_overlap)
    model = fit_model(accounts, [b for _, b, _ in chosen], l2=l2, placed=placed) if chosen else None
    flagged = [c for ev in evidence for c in _hopeless(ev, binnings, accounts, model, l2, placed)]
    disqualifiers = tuple(ProposedDisqualifier(c, base_win) for c in flagged)
    if model is None:
        return Proposal((), disqualifiers, None)
    barred = frozenset((c.attribute, c.index) for c in flagged)
    drafts = []
    for ev, _, merged in chosen:
        credits, span = _credits(ev, model, barred)
        if credits:
            drafts.append((ev, credits, span, merged))
    weights = _weights([d[2] for d in drafts])
    criteria = tuple(
        ProposedCriterion(ev.attribute, ev.kind, w, span, tuple(credits), tuple(merged))
        for (ev, credits, span, merged), w in zip(drafts, weights, strict=True)
    )
    return Proposal(tuple(sorted(criteria, key=lambda c: -c.weight)), disqualifiers, model)


__all__ = [
    "ProposedCredit",
    "ProposedCriterion",
    "ProposedDisqualifier",
    "Proposal",
    "propose",
    "select_attributes",
    "slug",
]
