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
3. A value that is not reliable on its own gets at most half credit (``partial``); a value that is a
   suggested disqualifier gets none (the disqualifier scores it 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from worker.icp.cells import Binning, Kind
from worker.icp.evidence import AttributeEvidence, Cell
from worker.icp.history import AccountOutcome
from worker.icp.logit import L2, LogitModel, fit_model

PARTIAL_CAP = 0.5


def slug(text: str) -> str:
    import re

    s = re.sub(r"[^0-9a-z]+", "_", str(text).casefold()).strip("_")
    s = re.sub(r"_+", "_", s)
    if not s or not s[0].isalpha():
        s = "k_" + s
    return s[:60]


@dataclass(frozen=True, slots=True)
class ProposedCredit:
    cell: Cell
    credit: float
    #: ``reliable`` (interval above 1) or ``partial`` (not yet reliable on its own).
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
        from worker.icp.bands import fmt_pct

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


def _credited_accounts(
    binning: Binning, cells: Sequence[Cell], accounts: Sequence[AccountOutcome]
) -> set[str]:
    """Account ids in the reliable cells (used to find criteria that say the same thing)."""
    wanted = {c.index for c in cells}
    index_of = {spec.key: spec.index for spec in binning.cells}
    return {
        a.account_id
        for a in accounts
        if any(index_of.get(k) in wanted for k in binning.keys(a.attributes.get(binning.attribute)))
    }


def select_attributes(
    evidence: Sequence[AttributeEvidence],
    binnings: Sequence[Binning],
    accounts: Sequence[AccountOutcome],
    merge_overlap: float,
) -> list[tuple[AttributeEvidence, Binning, list[str]]]:
    """The attributes with a reliable value, twins merged into the stronger one: (evidence, binning,
    merged names)."""
    by_name = {b.attribute: b for b in binnings}
    candidates = sorted(
        (ev for ev in evidence if any(c.reliable for c in ev.cells)), key=lambda e: -_strength(e)
    )
    kept: list[tuple[AttributeEvidence, Binning, list[str], set[str]]] = []
    for ev in candidates:
        binning = by_name[ev.attribute]
        credited = _credited_accounts(binning, [c for c in ev.cells if c.reliable], accounts)
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


def _credits(ev: AttributeEvidence, model: LogitModel) -> tuple[list[ProposedCredit], float]:
    """The attribute's credits from the model's coefficients, and its range (log-odds)."""
    betas = {c.index: model.coefficient(ev.attribute, _key(c)) for c in ev.cells}
    eligible = [c for c in ev.cells if not c.red_flag]
    if not eligible:
        return [], 0.0
    low = min(0.0, *betas.values())
    top = max(betas[c.index] for c in eligible)
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
        basis = "reliable" if c.reliable else "partial"
        credit = _round_credit(share if c.reliable else min(PARTIAL_CAP, share))
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


def propose_criteria(
    evidence: Sequence[AttributeEvidence],
    binnings: Sequence[Binning],
    accounts: Sequence[AccountOutcome],
    *,
    merge_overlap: float = 0.9,
    l2: float = L2,
) -> tuple[tuple[ProposedCriterion, ...], LogitModel | None]:
    """The draft's criteria (see the module docstring) and the model they were read from."""
    chosen = select_attributes(evidence, binnings, accounts, merge_overlap)
    if not chosen:
        return (), None
    model = fit_model(accounts, [b for _, b, _ in chosen], l2=l2)
    if model is None:
        return (), None
    drafts = []
    for ev, _, merged in chosen:
        credits, span = _credits(ev, model)
        if credits:
            drafts.append((ev, credits, span, merged))
    weights = _weights([d[2] for d in drafts])
    criteria = tuple(
        ProposedCriterion(ev.attribute, ev.kind, w, span, tuple(credits), tuple(merged))
        for (ev, credits, span, merged), w in zip(drafts, weights, strict=True)
    )
    return tuple(sorted(criteria, key=lambda c: -c.weight)), model


def propose_disqualifiers(
    evidence: Sequence[AttributeEvidence], base_win: float
) -> tuple[ProposedDisqualifier, ...]:
    return tuple(ProposedDisqualifier(c, base_win) for ev in evidence for c in ev.cells if c.red_flag)


__all__ = [
    "ProposedCredit",
    "ProposedCriterion",
    "ProposedDisqualifier",
    "propose_criteria",
    "propose_disqualifiers",
    "select_attributes",
    "slug",
]
