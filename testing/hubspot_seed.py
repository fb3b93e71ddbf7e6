"""Fills the fake HubSpot (``testing.hubspot``) with a messy portal (tests and ``benchmarks.sync``).

``seed_hubspot(fake, accounts, rng_seed)`` inserts N companies, about 1.5 deals and 2 contacts per
company, deal->company associations (primary plus unlabeled, as HubSpot stores them), and the kind of
values real portals hold: industries and countries spelled several ways, employee counts as "1,200",
revenue as "12000000" or blank, multi-select tech stacks as "a;b", blanks, "n/a" and "[[unknown]]".
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

from testing.hubspot import DEAL_STAGES, LEAD_STATUS, FakeClock, FakeHubSpot
from worker.demo.sample_crm import COUNTRIES, INDUSTRIES, STACK

WORDS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Wonka",
    "Cyberdyne",
    "Soylent",
    "Tyrell",
    "Massive",
    "Dynamic",
    "Blue",
    "North",
    "Summit",
    "Apex",
    "Bright",
    "Pioneer",
]
SUFFIXES = ["Inc", "LLC", "GmbH", "Ltd", "Corp", "Group", "Labs", "Systems", "Holdings", ""]


def _pick(rng: random.Random, table: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
    roll, acc = rng.random(), 0.0
    for row in table:
        acc += row[-1]
        if roll < acc:
            return row
    return table[-1]


def _employees(rng: random.Random) -> str:
    n = int(math.exp(rng.uniform(1.5, 10.5)))
    style = rng.random()
    if style < 0.08:
        return rng.choice(["", "n/a", "[[unknown]]"])
    if style < 0.25 and n >= 1000:
        return f"{n:,}"
    return str(n)


def _revenue(rng: random.Random) -> str:
    value = int(math.exp(rng.uniform(12, 21)))
    style = rng.random()
    if style < 0.15:
        return ""
    if style < 0.22:
        return f"{value / 1e6:.1f}M"
    if style < 0.30:
        return f"{value:,}"
    return str(value)


def _company(rng: random.Random, i: int) -> dict[str, Any]:
    _, spellings, _ = _pick(rng, INDUSTRIES)
    _, country_spellings, states, _ = _pick(rng, COUNTRIES)
    stack = rng.sample(STACK, k=rng.choice([0, 0, 1, 2, 3]))
    lifecycle = rng.choices(
        ["lead", "salesqualifiedlead", "opportunity", "customer", "evangelist", ""],
        weights=[30, 15, 15, 25, 3, 12],
    )[0]
    return {
        "name": f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.choice(SUFFIXES)}".strip() + f" #{i}",
        "domain": f"company{i}.example.com",
        "industry": rng.choice(spellings),
        "numberofemployees": _employees(rng),
        "annualrevenue": _revenue(rng),
        "country": rng.choice(country_spellings),
        "state": rng.choice(states),
        "founded_year": rng.choice(["", str(rng.randint(1950, 2024)), str(rng.randint(1990, 2024))]),
        "web_technologies": ";".join(stack),
        "lifecyclestage": lifecycle,
        "hubspot_owner_id": str(rng.randint(1, 40)),
        "notes_last_updated": ""
        if rng.random() < 0.3
        else f"2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d}T10:00:00.000Z",
    }


def seed_hubspot(fake: FakeHubSpot, accounts: int, rng_seed: int) -> dict[str, int]:
    """Fill ``fake`` with ``accounts`` companies plus deals, contacts and associations; return counts."""
    rng = random.Random(rng_seed)
    now = fake.now_ms()
    span = 400 * 86_400_000  # stamps over the last ~400 days, some shared (bulk imports)

    def stamps(n: int) -> list[int]:
        out = sorted(now - rng.randrange(span) for _ in range(n))
        for k in range(0, n, 997):  # a few bulk-edit clusters with identical stamps
            for j in range(k, min(n, k + 20)):
                out[j] = out[k]
        return out

    company_ids = fake.seed("companies", (_company(rng, i) for i in range(accounts)), stamps=stamps(accounts))

    deals: list[dict[str, Any]] = []
    owners: list[str] = []
    for cid in company_ids:
        for _ in range(rng.choices([0, 1, 2, 3], weights=[15, 35, 35, 15])[0]):
            stage = rng.choice(DEAL_STAGES)[0]
            deals.append(
                {
                    "dealname": f"Deal for {cid}",
                    "dealstage": stage,
                    "pipeline": "default",
                    "amount": rng.choice(
                        ["", str(rng.randint(1, 500) * 1000), f"{rng.randint(1, 90)}000.50"]
                    ),
                    "closedate": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T00:00:00.000Z",
                    "dealtype": rng.choice(["newbusiness", "existingbusiness", ""]),
                    "hubspot_owner_id": str(rng.randint(1, 40)),
                }
            )
            owners.append(cid)
    deal_ids = fake.seed("deals", deals, stamps=stamps(len(deals)))
    for did, cid in zip(deal_ids, owners, strict=True):
        if rng.random() < 0.03:
            continue  # an orphan deal
        fake.associate("deals", did, "companies", cid, [5, 341], [6, 342])

    contacts: list[dict[str, Any]] = []
    for i in range(accounts * 2):
        _, spellings, _ = _pick(rng, INDUSTRIES)
        _, country_spellings, states, _ = _pick(rng, COUNTRIES)
        contacts.append(
            {
                "firstname": rng.choice(["Ada", "Grace", "Alan", "Linus", "Barbara", "Ken", ""]),
                "lastname": rng.choice(WORDS),
                "email": f"person{i}@example.com",
                "company": rng.choice(WORDS),
                "jobtitle": rng.choice(["CTO", "VP Sales", "Engineer", "", "Head of RevOps"]),
                "industry": rng.choice(spellings),
                "numemployees": rng.choice(["1-5", "25-50", "201-500", "1001-5000", "10000+", ""]),
                "annualrevenue": _revenue(rng),
                "country": rng.choice(country_spellings),
                "state": rng.choice(states),
                "hs_lead_status": rng.choice([*LEAD_STATUS, ""]),
                "lifecyclestage": rng.choice(
                    ["subscriber", "lead", "marketingqualifiedlead", "opportunity", "customer", ""]
                ),
                "hubspot_owner_id": str(rng.randint(1, 40)),
            }
        )
    contact_ids = fake.seed("contacts", contacts, stamps=stamps(len(contacts)))
    for n, ctid in enumerate(contact_ids):
        fake.associate("contacts", ctid, "companies", company_ids[n % len(company_ids)], [1, 279], [2, 280])
    return {"companies": len(company_ids), "deals": len(deal_ids), "contacts": len(contact_ids)}


def change_share(fake: FakeHubSpot, clock: FakeClock, share: float, rng_seed: int = 11) -> int:
    """Modify ``share`` of the companies as users would (a company grows); return how many."""
    rng = random.Random(rng_seed)
    clock.advance(3600)
    ids = fake.stores["companies"].ids
    chosen = rng.sample(ids, k=max(1, int(len(ids) * share)))
    for rid in chosen:
        fake.modify("companies", rid, {"numberofemployees": str(rng.randint(500, 5000))})
    return len(chosen)
