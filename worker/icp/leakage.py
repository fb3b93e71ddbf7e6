"""Attributes that record an outcome instead of predicting one (pure).

An account's type ("Customer - Direct"), its lifecycle stage ("customer"), a lead status or anything mapped
from a won/lost or customer field is set *because* the account won: a profile built on it scores past wins,
not future fits, and its backtest looks brilliant for the wrong reason. Two guards, both overridden by
naming the attribute in ``include``:

- by name: ``outcome_reason`` recognises the sales-state attributes the connectors map (``account_type``,
  ``lifecycle_stage``, ``lead_status``, ``is_customer``, ...);
- by data: ``separation`` measures how nearly an attribute's values split the accounts that won from those
  that only lost (the AUC of the values' own win rates, account by account); at ``LEAK_AUC`` (0.95) or above
  it is a probable leak. Genuine firmographics rarely come near: the demo's strongest trait (industry) is
  about 0.6.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from worker.icp.cells import CellKey
from worker.icp.stats import auc_of_accounts

LEAK_AUC = 0.95

#: Whole attribute names that hold a sales state (Salesforce Account.Type, HubSpot lifecyclestage, ...).
OUTCOME_NAMES = frozenset(
    {
        "type",
        "account_type",
        "accounttype",
        "customer",
        "customer_status",
        "customer_type",
        "is_customer",
        "lifecycle_stage",
        "lifecyclestage",
        "lead_status",
        "hs_lead_status",
        "status",
        "stage",
        "deal_stage",
        "dealstage",
        "is_won",
        "is_closed",
        "is_converted",
        "converted",
        "won",
        "lost",
        "churned",
    }
)
#: Words that mark a name as a sales state wherever they appear (``customer_since``, ``won_deals``).
OUTCOME_WORDS = frozenset(
    {"customer", "customers", "lifecycle", "lifecyclestage", "won", "lost", "churn", "churned", "converted",
     "wins", "losses", "closedwon", "closedlost"}
)  # fmt: skip


def outcome_reason(name: str) -> str | None:
    """Why ``name`` looks like a sales state or an outcome, or ``None``."""
    folded = name.strip().casefold()
    words = [w for w in re.split(r"[^0-9a-z]+", folded) if w]
    if folded in OUTCOME_NAMES or "_".join(words) in OUTCOME_NAMES:
        return "records a sales state (set because an account won, lost or bought), not a cause of winning"
    hit = next((w for w in words if w in OUTCOME_WORDS), None)
    if hit is not None:
        return f"its name says {hit!r}: it records an outcome, not a cause of winning"
    return None


def separation(
    placed: Sequence[tuple[CellKey, ...] | None], won: Sequence[bool | None], min_accounts: int = 1
) -> float | None:
    """How well an attribute's values alone tell accounts that won from accounts that only lost: the AUC
    (accounts, not deals) of each account's best cell win rate. ``placed``: each account's cells
    (``Binning.place``); ``won``: whether it won, ``None`` without closed deals. ``None`` with fewer than
    ``min_accounts`` accounts of either kind (with data)."""
    wins: dict[CellKey, int] = {}
    seen: dict[CellKey, int] = {}
    kept: list[tuple[tuple[CellKey, ...], bool]] = []
    for keys, winner in zip(placed, won, strict=True):
        if not keys or winner is None:
            continue
        kept.append((keys, winner))
        for k in keys:
            seen[k] = seen.get(k, 0) + 1
            wins[k] = wins.get(k, 0) + winner
    winners = sum(1 for _, w in kept if w)
    if min(winners, len(kept) - winners) < max(1, min_accounts):
        return None
    scored = [(max(wins[k] / seen[k] for k in keys), int(w), int(not w)) for keys, w in kept]
    return auc_of_accounts(scored)


__all__ = ["LEAK_AUC", "OUTCOME_NAMES", "OUTCOME_WORDS", "outcome_reason", "separation"]
