"""Reproducible histories of accounts and closed deals, for tests, benchmarks and demonstrations of
``derive`` / ``backtest`` (pure: no I/O, seeded).

- ``synthetic_history``: an optional planted pattern (software, 500+ employees, North America win).
- ``signalless_history``: no pattern at all, but accounts of very different sizes and deal counts, and a win
  propensity per account drawn at random: the trap where "bigger accounts have more deals" looks like signal.
"""

from __future__ import annotations

import math
import random
from datetime import date, timedelta
from typing import Any

from worker.icp.history import AccountOutcome, Deal

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


def signalless_history(
    n_accounts: int = 150, *, seed: int = 3, start: date = date(2015, 1, 1), days: int = 4 * 365
) -> list[AccountOutcome]:
    """Accounts from 5 to 200,000 employees whose deal count grows with their size (1 to ~150 deals), each
    with its own win propensity (Beta(2, 3), mean 0.4) drawn independently of every attribute."""
    rng = random.Random(seed)
    industries = [name for name, _ in _INDUSTRIES]
    history: list[AccountOutcome] = []
    deal_no = 0
    for i in range(n_accounts):
        employees = max(5, min(200_000, round(math.exp(rng.uniform(math.log(5), math.log(200_000))))))
        country, region = rng.choice([(c, r) for c, r, _ in _COUNTRIES])
        attributes: dict[str, Any] = {
            "industry": rng.choice(industries),
            "employees": employees,
            "annual_revenue": round(employees * 120_000 * math.exp(rng.gauss(0, 0.4)), -3),
            "country": country,
            "region": region,
            "founded_year": rng.randint(1950, 2015),
        }
        propensity = rng.betavariate(2, 3)
        n_deals = max(1, min(150, round(math.log10(employees) ** 2.2 * math.exp(rng.gauss(0, 0.5)))))
        deals = []
        for _ in range(n_deals):
            deal_no += 1
            deals.append(
                Deal(f"N{deal_no:06d}", rng.random() < propensity, round(rng.uniform(1e3, 5e4), -2),
                     start + timedelta(days=rng.randrange(days)))
            )  # fmt: skip
        deals.sort(key=lambda d: (d.close_date or date.max, d.opportunity_id))
        history.append(AccountOutcome(f"N{i:05d}", attributes, tuple(deals), name=f"Account {i}"))
    return history


__all__ = ["signalless_history", "synthetic_history"]
