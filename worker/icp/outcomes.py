"""What happened to each account: its attributes and its closed deals, read from the snapshot store.

``derive`` and ``backtest`` work on this history; it is built from ``record_snapshots`` alone (no CRM call):

- accounts: ``object_type == "account"``, their normalised ``attributes``;
- closed deals: ``object_type == "opportunity"`` whose ``status`` says ``is_closed`` (or ``is_won``), joined
  to their account by ``status["account_id"]`` (the account's ``external_id``).

Both queries are streamed (``yield_per``) and only the needed columns are read, so a store with millions of
snapshots does not become millions of ORM objects. Opportunities whose account is not in the store cannot be
scored and are counted and logged, not silently dropped.

The attributes are the account's *current* snapshot, not its state when each deal closed: the CRM does not
keep history. A backtest with ``split_date`` therefore measures over-fitting to the deals, not drift of the
attributes.

``synthetic_history`` builds a reproducible history with an optional planted pattern, for tests, benchmarks
and demonstrations of ``derive``/``backtest``.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.values import TRUE_WORDS
from worker.store.models import RecordSnapshot

log = logging.getLogger(__name__)

STREAM_BATCH = 1000
#: A closed/won status field may also say so in words.
_TRUE = TRUE_WORDS | {"won", "closed"}


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


def deal_from_status(opportunity_id: str, status: Mapping[str, Any]) -> tuple[str | None, Deal | None]:
    """``(account_id, deal)`` for a closed opportunity's status; ``deal`` is None when it is still open."""
    account_id = status.get("account_id")
    won = _as_bool(status.get("is_won"))
    closed = won or _as_bool(status.get("is_closed"))
    if not closed:
        return (str(account_id) if account_id else None), None
    deal = Deal(
        opportunity_id=opportunity_id,
        won=won,
        amount=_as_amount(status.get("amount")),
        close_date=_as_date(status.get("close_date")),
    )
    return (str(account_id) if account_id else None), deal


# ---------------------------------------------------------------------------------------------------- loading


def load_history(session: Session, connection_id: int) -> list[AccountOutcome]:
    """Every account of a connection with its closed deals, from the snapshot store (no CRM call).

    Accounts with no closed deal are included: they are part of "all accounts", the baseline of ``derive``.
    """
    deals_by_account: dict[str, list[Deal]] = {}
    opp_rows = session.execute(
        select(RecordSnapshot.external_id, RecordSnapshot.status)
        .where(RecordSnapshot.connection_id == connection_id, RecordSnapshot.object_type == "opportunity")
        .execution_options(yield_per=STREAM_BATCH)
    )
    open_count = 0
    no_account = 0
    for external_id, status in opp_rows:
        account_id, deal = deal_from_status(external_id, status or {})
        if deal is None:
            open_count += 1
            continue
        if account_id is None:
            no_account += 1
            continue
        deals_by_account.setdefault(account_id, []).append(deal)

    accounts: list[AccountOutcome] = []
    acc_rows = session.execute(
        select(RecordSnapshot.external_id, RecordSnapshot.name, RecordSnapshot.attributes)
        .where(RecordSnapshot.connection_id == connection_id, RecordSnapshot.object_type == "account")
        .order_by(RecordSnapshot.external_id)
        .execution_options(yield_per=STREAM_BATCH)
    )
    for external_id, name, attributes in acc_rows:
        deals = deals_by_account.pop(external_id, [])
        deals.sort(key=lambda d: (d.close_date or date.max, d.opportunity_id))
        accounts.append(
            AccountOutcome(account_id=external_id, attributes=attributes or {}, deals=tuple(deals), name=name)
        )

    orphans = sum(len(v) for v in deals_by_account.values())
    if orphans or no_account:
        log.warning(
            "%d closed opportunities left out of the history: %d name an account that is not in the store, "
            "%d name no account",
            orphans + no_account,
            orphans,
            no_account,
        )
    log.debug("history: %d accounts, %d open opportunities skipped", len(accounts), open_count)
    return accounts


def restrict_history(
    history: Iterable[AccountOutcome], *, before: date | None = None, on_or_after: date | None = None
) -> list[AccountOutcome]:
    """``AccountOutcome.restrict`` over a whole history."""
    return [a.restrict(before=before, on_or_after=on_or_after) for a in history]


# ------------------------------------------------------------------------------------------ synthetic data

_INDUSTRIES = (
    ("Computer Software", 0.25),
    ("IT Services", 0.12),
    ("Financial Services", 0.14),
    ("Healthcare", 0.12),
    ("Retail", 0.12),
    ("Manufacturing", 0.15),
    ("Education", 0.10),
)
_COUNTRIES = (
    ("US", "North America", 0.40),
    ("CA", "North America", 0.08),
    ("MX", "North America", 0.04),
    ("GB", "EMEA", 0.12),
    ("DE", "EMEA", 0.11),
    ("FR", "EMEA", 0.08),
    ("AU", "APAC", 0.07),
    ("IN", "APAC", 0.06),
    ("BR", "LATAM", 0.04),
)
_TECH = ("Salesforce", "HubSpot", "Okta", "Slack", "AWS", "Azure")
#: Win probability of a deal by the number of planted traits of its account (software, 500+ employees,
#: North America).
_PLANTED_WIN = (0.02, 0.08, 0.50, 0.90)


def synthetic_history(
    n_accounts: int = 2000,
    *,
    seed: int = 7,
    planted: bool = True,
    start: date = date(2021, 1, 1),
    days: int = 4 * 365,
    base_win_rate: float = 0.25,
    deal_share: float = 0.8,
) -> list[AccountOutcome]:
    """A reproducible history of accounts and closed deals.

    ``planted=True``: a deal's win probability rises with the number of planted traits of its account
    (industry "Computer Software", 500 or more employees, a North American country): 2%, 8%, 50%, 90%;
    accounts in "Education" almost never win (1%), a red flag. ``planted=False``: every deal wins with
    ``base_win_rate``, whatever the account. Revenue, founding year and tech stack are noise (revenue follows
    head count).
    """
    rng = random.Random(seed)
    industries, industry_w = zip(*_INDUSTRIES, strict=True)
    countries = [(c, r) for c, r, _ in _COUNTRIES]
    country_w = [w for _, _, w in _COUNTRIES]
    history: list[AccountOutcome] = []
    deal_no = 0
    for i in range(n_accounts):
        industry = rng.choices(industries, industry_w)[0]
        country, region = rng.choices(countries, country_w)[0]
        employees = max(1, round(math.exp(rng.gauss(math.log(200), 1.3))))
        attributes: dict[str, Any] = {
            "industry": industry,
            "employees": employees,
            "annual_revenue": round(employees * 150_000 * math.exp(rng.gauss(0, 0.5)), -3),
            "country": country,
            "region": region,
            "founded_year": rng.randint(1960, 2020),
            "tech_stack": sorted(t for t in _TECH if rng.random() < 0.35),
        }
        if planted:
            traits = (industry == "Computer Software") + (employees >= 500) + (region == "North America")
            p_win = 0.01 if industry == "Education" else _PLANTED_WIN[traits]
        else:
            p_win = base_win_rate
        deals: list[Deal] = []
        if rng.random() < deal_share:
            for _ in range(rng.choice((1, 1, 2, 3))):
                deal_no += 1
                deals.append(
                    Deal(
                        opportunity_id=f"O{deal_no:06d}",
                        won=rng.random() < p_win,
                        amount=round(math.exp(rng.gauss(math.log(20_000), 0.8)), -2),
                        close_date=start + timedelta(days=rng.randrange(days)),
                    )
                )
        deals.sort(key=lambda d: (d.close_date or date.max, d.opportunity_id))
        history.append(
            AccountOutcome(
                account_id=f"A{i:06d}", attributes=attributes, deals=tuple(deals), name=f"Account {i}"
            )
        )
    return history
