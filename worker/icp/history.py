"""What happened to each account: its attributes and its closed deals (pure: the types and the reading of a
deal's status; the store loads them in ``worker.store.history``).

``derive`` and ``backtest`` work on this history:

- accounts: their normalised ``attributes``;
- closed deals: opportunities whose status says ``is_closed`` (or ``is_won``); when the export has neither
  (no IsClosed/IsWon columns), a ``stage`` that says "Closed Won" / "Closed Lost" (or HubSpot's
  ``closedwon`` / ``closedlost``) is read as closed and won / lost.

The attributes are the account's *current* snapshot, not its state when each deal closed: the CRM does not
keep history. A backtest with ``split_date`` therefore measures over-fitting to the deals, not drift of the
attributes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from connectors.values import TRUE_WORDS

#: A closed/won status field may also say so in words.
_TRUE = TRUE_WORDS | {"won", "closed"}
#: A stage that names the outcome, spelled without spaces or punctuation ("Closed Won", "closedwon").
_WON_STAGES = frozenset({"closedwon", "won"})
_LOST_STAGES = frozenset({"closedlost", "lost"})
#: What the history reads to find closed deals (said when it finds none).
CLOSED_DEAL_FIELDS = (
    "the opportunity status keys is_closed / is_won (IsClosed / IsWon columns, HubSpot's closed stages), "
    "or a stage (StageName) saying Closed Won / Closed Lost"
)


@dataclass(frozen=True, slots=True)
class Deal:
    """One closed opportunity."""

    opportunity_id: str
    won: bool
    amount: float | None
    close_date: date | None


@dataclass(frozen=True, slots=True)
class AccountOutcome:
    """An account, its attributes and its closed deals (oldest first)."""

    account_id: str
    attributes: Mapping[str, Any]
    deals: tuple[Deal, ...] = ()
    name: str | None = None

    @property
    def closed(self) -> int:
        """Number of closed deals (truthy when the account has any)."""
        return len(self.deals)

    @property
    def wins(self) -> int:
        return sum(1 for d in self.deals if d.won)

    @property
    def losses(self) -> int:
        return sum(1 for d in self.deals if not d.won)

    @property
    def won_amount(self) -> float:
        return sum(d.amount or 0.0 for d in self.deals if d.won)

    @property
    def first_won(self) -> date | None:
        """Date of the first won deal: the start of the account's tenure as a customer."""
        dates = [d.close_date for d in self.deals if d.won and d.close_date is not None]
        return min(dates) if dates else None

    @property
    def last_close(self) -> date | None:
        dates = [d.close_date for d in self.deals if d.close_date is not None]
        return max(dates) if dates else None

    @property
    def is_customer(self) -> bool:
        return self.wins > 0

    @property
    def lost_only(self) -> bool:
        """Closed deals, none of them won."""
        return bool(self.deals) and self.wins == 0

    def tenure_days(self, as_of: date) -> int:
        first = self.first_won
        return max(0, (as_of - first).days) if first is not None else 0

    def restrict(self, *, before: date | None = None, on_or_after: date | None = None) -> AccountOutcome:
        """The same account with only the deals closed before / on or after a date.

        A deal with no close date cannot be placed on either side of a split and is dropped by either bound.
        """
        if before is None and on_or_after is None:
            return self
        kept = tuple(
            d
            for d in self.deals
            if d.close_date is not None
            and (before is None or d.close_date < before)
            and (on_or_after is None or d.close_date >= on_or_after)
        )
        return replace(self, deals=kept)


# --------------------------------------------------------------------------------------------------- parsing


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().casefold() in _TRUE
    return False


def _as_amount(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            parsed = float(value.replace(",", "").strip())
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def _as_date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            try:
                return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
            except ValueError:
                return None
    return None


def stage_outcome(stage: Any) -> bool | None:
    """``True`` / ``False`` when a stage names a won / lost deal ("Closed Won", "closedlost"), else None."""
    if not isinstance(stage, str):
        return None
    word = re.sub(r"[^0-9a-z]+", "", stage.casefold())
    if word in _WON_STAGES:
        return True
    if word in _LOST_STAGES:
        return False
    return None


def deal_from_status(opportunity_id: str, status: Mapping[str, Any]) -> tuple[str | None, Deal | None]:
    """``(account_id, deal)`` for a closed opportunity's status; ``deal`` is None when it is still open.

    ``is_won`` / ``is_closed`` decide when present; a status without them falls back on the stage's words.
    """
    raw_id = status.get("account_id")
    account_id = str(raw_id) if raw_id else None
    by_stage = stage_outcome(status.get("stage"))
    if "is_won" in status and status.get("is_won") is not None:
        won = _as_bool(status.get("is_won"))
    else:
        won = by_stage is True
    if "is_closed" in status and status.get("is_closed") is not None:
        closed = won or _as_bool(status.get("is_closed"))
    else:
        closed = won or by_stage is not None
    if not closed:
        return account_id, None
    deal = Deal(
        opportunity_id=opportunity_id,
        won=won,
        amount=_as_amount(status.get("amount")),
        close_date=_as_date(status.get("close_date")),
    )
    return account_id, deal


def restrict_history(
    history: Iterable[AccountOutcome], *, before: date | None = None, on_or_after: date | None = None
) -> list[AccountOutcome]:
    """``AccountOutcome.restrict`` over a whole history."""
    return [a.restrict(before=before, on_or_after=on_or_after) for a in history]


__all__ = [
    "CLOSED_DEAL_FIELDS",
    "AccountOutcome",
    "Deal",
    "deal_from_status",
    "restrict_history",
    "stage_outcome",
]
