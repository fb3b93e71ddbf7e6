"""Seeds the fake Salesforce (tests, and ``python -m benchmarks.sync --crm salesforce``).

``seed_salesforce`` fills a ``testing.salesforce.FakeSalesforce`` with N accounts, about 1.5
opportunities and 2 leads per account, with the messiness of a real org: the typed fields
(NumberOfEmployees, AnnualRevenue, dates, booleans) hold clean values as Salesforce enforces, while
free-text and unrestricted picklist fields carry what people type: "USA", "U.S." and "United States",
"Software" and "SaaS", "n/a" and "[[unknown]]", blanks, and multi-select tech stacks "Okta;Slack".
``mutate_salesforce`` changes a share of it as a day of sales work would.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

from testing.salesforce import FakeSalesforce
from worker.demo.sample_crm import COUNTRIES, INDUSTRIES, LEAD_STATUSES, STACK, SUFFIX, WORDS

OPEN_STAGES = ["Prospecting", "Qualification", "Needs Analysis", "Proposal/Price Quote", "Negotiation/Review"]
ACCOUNT_TYPES = ["Prospect", "Prospect", "Other", None, "Partner"]
FIRST = ["Ana", "Ben", "Chloé", "Dev", "Eva", "Femi", "Gus", "Hana", "Ivan", "Jo", "Kai", "Lena", "Mo", "Nia"]
LAST = ["Smith", "García", "Nguyen", "Müller", "Okafor", "Rossi", "Tanaka", "Kowalski", "Silva", "Brown"]


def _pick(rng: random.Random, table: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    return rng.choices(table, weights=[row[-1] for row in table])[0]


def _employees(rng: random.Random) -> int | None:
    return None if rng.random() < 0.08 else int(rng.lognormvariate(5.3, 1.5)) + 1


def _revenue(rng: random.Random, employees: int | None) -> float | None:
    if rng.random() < 0.15:
        return None
    return float(round((employees or 50) * rng.uniform(80_000, 250_000), -3))


def _stack(rng: random.Random) -> str | None:
    r = rng.random()
    if r < 0.12:
        return None
    if r < 0.15:
        return rng.choice(["n/a", "[[unknown]]"])
    return ";".join(rng.sample(STACK, rng.randint(1, 4)))


def _activity(rng: random.Random, today: date, stale_share: float) -> date | None:
    r = rng.random()
    if r < 0.10:
        return None
    if r < 0.10 + stale_share:
        return today - timedelta(days=rng.randint(95, 720))
    return today - timedelta(days=rng.randint(0, 80))


def seed_salesforce(fake: FakeSalesforce, accounts: int, rng_seed: int) -> dict[str, int]:
    """Fill ``fake`` with ``accounts`` accounts plus opportunities (~1.5 each) and leads (~2 each);
    deterministic for ``rng_seed``. Adds the custom field ``Tech_Stack__c`` to Account and Lead.
    Returns the number of rows per object."""
    rng = random.Random(rng_seed)
    now = fake.clock()
    today = now.date()
    owners = fake.insert(
        "User",
        ({"Username": f"rep{n}@acme.example", "Name": f"Rep {n}", "IsActive": True} for n in range(1, 25)),
    )
    for sobject in ("Account", "Lead"):
        if "tech_stack__c" not in fake.table(sobject).fields:
            fake.add_field(sobject, "Tech_Stack__c", "multipicklist", 4099)
    # Modification history spread over two years, oldest first, all before the fake's clock.
    oldest = now - timedelta(days=730)
    step = timedelta(days=729) / max(1, accounts)
    plans: list[tuple[datetime, str, str | None, int | None, list[tuple[bool, bool]]]] = []

    def account_rows() -> Iterator[dict[str, Any]]:
        for i in range(accounts):
            industry, spellings, _ = _pick(rng, INDUSTRIES)
            country, cspell, states, _ = _pick(rng, COUNTRIES)
            employees = _employees(rng)
            fit = (
                (0.45 if industry == "Computer Software" else 0.12 if industry == "IT Services" else 0.0)
                + (0.30 if (employees or 0) >= 500 else 0.0)
                + (0.25 if country in ("US", "CA") else 0.0)
            )
            opps = []
            for _ in range(rng.choice([0, 1, 1, 2, 2, 3])):
                closed = rng.random() < 0.75
                opps.append((closed, closed and rng.random() < 0.08 + 0.7 * fit))
            owner = rng.choice(owners)
            stamp = oldest + step * i + timedelta(milliseconds=rng.randint(0, 999))
            name = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.choice(SUFFIX)}"
            plans.append((stamp, owner, name, employees, opps))
            yield {
                "Name": name,
                "Industry": rng.choice(spellings) or None,
                "NumberOfEmployees": employees,
                "AnnualRevenue": _revenue(rng, employees),
                "BillingCountry": rng.choice(cspell) or None,
                "BillingState": rng.choice(states) or None,
                "Tech_Stack__c": _stack(rng),
                "Type": "Customer - Direct" if any(won for _, won in opps) else rng.choice(ACCOUNT_TYPES),
                "OwnerId": owner,
                "LastActivityDate": _activity(rng, today, 0.35),
                "SystemModstamp": stamp,
            }

    account_ids = fake.insert("Account", account_rows())

    def opportunity_rows() -> Iterator[dict[str, Any]]:
        for account_id, (stamp, owner, name, employees, opps) in zip(account_ids, plans, strict=True):
            for closed, won in opps:
                close = (
                    today - timedelta(days=rng.randint(1, 900))
                    if closed
                    else today + timedelta(days=rng.randint(5, 120))
                )
                yield {
                    "Name": f"{name} - {rng.choice(['New', 'Expansion', 'Renewal'])}",
                    "AccountId": account_id,
                    "StageName": ("Closed Won" if won else "Closed Lost")
                    if closed
                    else rng.choice(OPEN_STAGES),
                    "IsClosed": closed,
                    "IsWon": won,
                    "Amount": None
                    if rng.random() < 0.05
                    else round((employees or 100) * rng.uniform(20, 120), -2),
                    "CloseDate": close,
                    "OwnerId": owner,
                    "LastActivityDate": _activity(rng, today, 0.3),
                    "SystemModstamp": stamp + timedelta(seconds=rng.randint(0, 3600)),
                }

    n_opps = len(fake.insert("Opportunity", opportunity_rows()))

    def lead_rows() -> Iterator[dict[str, Any]]:
        for stamp, *_ in plans:
            for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 3, 4])):
                status = _pick(rng, LEAD_STATUSES)[0]
                industry, spellings, _ = _pick(rng, INDUSTRIES)
                country, cspell, states, _ = _pick(rng, COUNTRIES)
                employees = _employees(rng)
                yield {
                    "FirstName": rng.choice(FIRST),
                    "LastName": rng.choice(LAST),
                    "Company": rng.choice([f"{rng.choice(WORDS)} {rng.choice(SUFFIX)}", "[[unknown]]", "n/a"])
                    if rng.random() < 0.04
                    else f"{rng.choice(WORDS)} {rng.choice(SUFFIX)}",
                    "Industry": rng.choice(spellings) or None,
                    "NumberOfEmployees": employees,
                    "AnnualRevenue": _revenue(rng, employees),
                    "Country": rng.choice(cspell) or None,
                    "State": rng.choice(states) or None,
                    "Status": status,
                    "IsConverted": status == "Closed - Converted",
                    "Tech_Stack__c": _stack(rng),
                    "OwnerId": rng.choice(owners),
                    "LastActivityDate": _activity(rng, today, 0.45),
                    "SystemModstamp": stamp + timedelta(seconds=rng.randint(0, 7200)),
                }

    n_leads = len(fake.insert("Lead", lead_rows()))
    return {"Account": len(account_ids), "Opportunity": n_opps, "Lead": n_leads}


def mutate_salesforce(fake: FakeSalesforce, *, share: float = 0.01, rng_seed: int = 11) -> int:
    """Change ``share`` of the accounts and leads as a day of sales work would (companies grow, stacks
    change, leads are worked), each with a new SystemModstamp. Returns how many records changed."""
    rng = random.Random(rng_seed)
    changed = 0
    for sobject in ("Account", "Lead"):
        ids = fake.ids(sobject)
        picked = rng.sample(ids, max(1, round(len(ids) * share))) if ids else []
        changes: dict[str, dict[str, Any]] = {}
        for record_id in picked:
            values: dict[str, Any] = {"NumberOfEmployees": rng.randint(200, 5000)}
            if rng.random() < 0.3:
                values["Tech_Stack__c"] = ";".join(rng.sample(STACK, rng.randint(1, 3)))
            if sobject == "Lead" and rng.random() < 0.2:
                values["Status"] = "Working - Contacted"
            changes[record_id] = values
        fake.modify(sobject, changes)
        changed += len(changes)
    return changed
