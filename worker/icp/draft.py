"""The draft ICP as YAML (pure): the shape ``worker.icp.spec`` parses, with the evidence as comments.

A draft is never published by itself; its header says how it was made, whether the evidence is in-sample,
and, when it was written with ``--force`` against the verdict, that too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from worker.icp.bands import fmt_num
from worker.icp.model import DEFAULT_MIN_COVERAGE, DEFAULT_TIERS
from worker.icp.proposal import ProposedCredit, ProposedCriterion, ProposedDisqualifier

if TYPE_CHECKING:
    from worker.icp.derive import DeriveReport


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON's escaping is a subset of YAML's)."""
    return json.dumps(str(text), ensure_ascii=False)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _comment(text: str) -> str:
    return " ".join(str(text).split())


_BASIS = {
    "reliable": "",
    "partial": "partial credit, not yet reliable: ",
    "relative": "below average, credit relative to the lowest value: ",
}


def _note(pc: ProposedCredit) -> str:
    return _comment(_BASIS.get(pc.basis, "") + pc.cell.evidence())


def _header(r: DeriveReport, forced: str | None) -> list[str]:
    from worker.icp.derive import MEASURE_WORDS

    out = []
    if forced:
        out.append(f"# FORCED: written with --force although {_comment(forced)}")
    out += [
        "# DRAFT ICP derived from the CRM's history by `icp-worker icp derive`. Review it before publishing:",
        "# it describes who bought, not who should buy. "
        "Backtest it: `icp-worker icp backtest FILE --connection NAME --split-date DATE`.",
    ]
    if r.source:
        out.append(f"# Source: {_comment(r.source)}")
    period = f"; deals closed before {r.split_date.isoformat()}" if r.split_date else ""
    out.append(
        f"# History: {r.accounts:,} accounts, {r.won_accounts:,} with won deals, "
        f"{r.lost_only_accounts:,} with only lost deals, {r.closed_deals:,} closed deals{period}."
    )
    if r.in_sample:
        out.append(
            "# In-sample: no --split-date, so the draft was not tested on deals it did not learn from."
        )
    if r.measure == "win_rate":
        out.append("# Evidence per value: the win rate of its accounts' closed deals vs all deals (lift).")
    else:
        cut = f" (cut-off {fmt_num(r.best_threshold)})" if r.best_threshold is not None else ""
        out.append(
            f"# Best customers: top {r.top:.0%} of accounts with won deals by "
            f"{MEASURE_WORDS.get(r.measure, r.measure)}: {r.best_accounts:,}{cut}; lift = share among best / "
            "share among all accounts."
        )
    out.append(
        f"# Intervals are simultaneous {r.confidence:.0%} over {r.tests} values. Weights and credits come "
        f"from a logistic regression of winning (L2 penalty {r.l2:g}): the best value of each attribute gets "
        "credit 1."
    )
    out += [f"# Left out: {e.attribute}: {_comment(e.reason)}" for e in r.excluded]
    out += [f"# WARNING: {_comment(w)}" for w in r.warnings]
    return out


def _criterion(cr: ProposedCriterion, key: str) -> list[str]:
    merged = (
        f"; also stands for {', '.join(cr.merged)} (credits nearly the same accounts)" if cr.merged else ""
    )
    out = [
        f"  # {cr.attribute}: model range {cr.evidence:.2f} log-odds -> weight {cr.weight}{merged}",
        f"  - key: {key}",
        f"    attribute: {_q(cr.attribute)}",
        f"    weight: {cr.weight}",
    ]
    if cr.kind == "numeric":
        out += ["    type: bands", "    bands:"]
        for pc in cr.credits:
            c = pc.cell
            parts = [f"min: {_num(c.band_min)}"] if c.band_min is not None else []
            parts += [f"max: {_num(c.band_max)}"] if c.band_max is not None else []
            parts.append(f"credit: {pc.credit:g}")
            out.append(f"      - {{{', '.join(parts)}}}  # {c.label}: {_note(pc)}")
    elif cr.kind == "boolean":
        pc = cr.credits[0]
        out += [
            "    type: boolean",
            f"    expected: {'true' if pc.cell.value else 'false'}  # {_note(pc)}",
            f"    credit: {pc.credit:g}",
        ]
    else:
        out += [f"    type: {'contains_any' if cr.kind == 'set' else 'categorical'}", "    values:"]
        out += [f"      {_q(str(pc.cell.value))}: {pc.credit:g}  # {_note(pc)}" for pc in cr.credits]
        if cr.kind == "categorical":
            out.append("    default: 0")
    return out


def _disqualifier(dq: ProposedDisqualifier, key: str) -> list[str]:
    c = dq.cell
    out = [f"  # {_comment(dq.evidence())}", f"  - key: {key}", f"    attribute: {_q(c.attribute)}"]
    if c.kind == "numeric":
        out += [f"    min: {_num(c.band_min)}"] if c.band_min is not None else []
        out += [f"    max: {_num(c.band_max)}"] if c.band_max is not None else []
    elif c.kind == "boolean":
        out.append(f"    equals: {'true' if c.value else 'false'}")
    else:
        out.append(f"    values: [{_q(str(c.value))}]")
    out.append(f"    description: {_q(f'{c.attribute} {c.label}: rarely wins')}")
    return out


def _unique_keys() -> Callable[[str], str]:
    """Criteria and disqualifiers share one key space."""
    seen: set[str] = set()

    def unique(key: str) -> str:
        candidate, n = key, 2
        while candidate in seen:
            candidate, n = f"{key}_{n}", n + 1
        seen.add(candidate)
        return candidate

    return unique


def draft_icp_yaml(report: DeriveReport, *, name: str | None = None, forced: str | None = None) -> str:
    """The draft ICP as YAML (the shape of ``worker.icp.model``), with the evidence as comments.

    ``forced``: why the verdict advised against writing it (the header then says it was forced). Raises
    ``NoReliablePatternError`` when the report has no reliable criterion.
    """
    from worker.icp.derive import MEASURE_WORDS, NoReliablePatternError

    r = report
    if not r.criteria:
        raise NoReliablePatternError(
            "no reliable pattern: no attribute value predicts winning with confidence, so no draft ICP is "
            "written (see the report's evidence)"
        )
    measure = MEASURE_WORDS.get(r.measure, r.measure)
    basis = measure if r.measure == "win_rate" else f"top {r.top:.0%} by {measure}"
    out = _header(r, forced)
    out.append(f"name: {_q(name or f'Derived ICP ({basis})')}")
    description = (
        f"Derived from {r.closed_deals:,} closed deals of {r.won_accounts + r.lost_only_accounts:,} accounts"
    )
    out.append(f"description: {_q(description + ('; forced' if forced else '') + '; draft.')}")
    tiers = ", ".join(f"{tier}: {minimum}" for tier, minimum in DEFAULT_TIERS)  # the model's defaults
    out += [f"tiers: {{{tiers}}}", f"min_coverage: {DEFAULT_MIN_COVERAGE:g}", "criteria:"]
    unique = _unique_keys()
    for cr in r.criteria:
        out += _criterion(cr, unique(cr.key))
    if r.disqualifiers:
        out += [
            "# Suggested disqualifiers: accounts like these almost never won. "
            "A disqualifier forces score 0 and tier",
            "# `disqualified`: keep only the ones that are real red flags.",
            "disqualifiers:",
        ]
        for dq in r.disqualifiers:
            out += _disqualifier(dq, unique(dq.key))
    return "\n".join(out) + "\n"


__all__ = ["draft_icp_yaml"]
