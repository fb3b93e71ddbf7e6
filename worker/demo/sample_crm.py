"""A realistic sample CRM, written as Salesforce-style CSV exports (what the files connector reads).

Deterministic for a seed. Values are as messy as real exports: country names, codes and aliases,
"1,200" and "5k" employee counts, "$5m" revenues, "n/a" and "[[unknown]]" blanks, industry synonyms,
multi-select tech stacks "Salesforce;Okta". Wins are planted: software companies with 500+ employees
in North America win far more often, so derive/backtest have something to find.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ACCOUNT_COLUMNS = [
    "Id",
    "Name",
    "Industry",
    "NumberOfEmployees",
    "AnnualRevenue",
    "BillingCountry",
    "BillingState",
    "OwnerId",
    "LastActivityDate",
    "LastModifiedDate",
    "Tech_Stack__c",
    "Type",
]
OPPORTUNITY_COLUMNS = [
    "Id",
    "Name",
    "AccountId",
    "StageName",
    "IsClosed",
    "IsWon",
    "Amount",
    "CloseDate",
    "OwnerId",
    "LastModifiedDate",
]
LEAD_COLUMNS = [
    "Id",
    "Company",
    "Industry",
    "NumberOfEmployees",
    "AnnualRevenue",
    "Country",
    "State",
    "Status",
    "IsConverted",
    "OwnerId",
    "LastActivityDate",
    "LastModifiedDate",
    "Tech_Stack__c",
]

# (canonical industry, messy spellings seen in exports, share)
INDUSTRIES = [
    ("Computer Software", ["Computer Software", "Software", "SaaS", "software "], 0.22),
    ("IT Services", ["IT Services", "Information Technology", "IT services & consulting"], 0.12),
    ("Financial Services", ["Financial Services", "Banking", "Fintech"], 0.12),
    ("Healthcare", ["Healthcare", "Health Care", "Hospital & Health Care"], 0.10),
    ("Manufacturing", ["Manufacturing", "Industrial"], 0.12),
    ("Retail", ["Retail", "E-commerce"], 0.10),
    ("Education", ["Education", "Higher Education"], 0.07),
    ("Government", ["Government", "Public Sector"], 0.05),
    ("Staffing", ["Staffing and Recruiting"], 0.03),
    (None, ["", "n/a", "[[unknown]]", "-"], 0.07),
]
# (alpha-2, messy spellings, states, share)
COUNTRIES = [
    (
        "US",
        ["United States", "USA", "U.S.", "us", "United States of America", "US"],
        ["CA", "NY", "TX", "WA", "MA"],
        0.42,
    ),
    ("CA", ["Canada", "CAN"], ["ON", "BC", "QC"], 0.08),
    ("GB", ["United Kingdom", "UK", "Great Britain", "England"], [""], 0.10),
    ("DE", ["Germany", "Deutschland", "DE"], [""], 0.08),
    ("FR", ["France"], [""], 0.05),
    ("NL", ["Netherlands", "Holland"], [""], 0.03),
    ("BR", ["Brazil", "Brasil"], [""], 0.05),
    ("MX", ["Mexico", "México"], [""], 0.03),
    ("IN", ["India"], [""], 0.06),
    ("AU", ["Australia"], [""], 0.04),
    ("JP", ["Japan"], [""], 0.03),
    (None, ["", "[[unknown]]", "N/A"], [""], 0.03),
]
#: How the sample's industry spellings map to the ICP's industries (a connection's ``industry_synonyms``).
DEMO_SYNONYMS = {
    "Software": "Computer Software",
    "SaaS": "Computer Software",
    "Information Technology": "IT Services",
    "IT services & consulting": "IT Services",
    "Banking": "Financial Services",
    "Fintech": "Financial Services",
    "Health Care": "Healthcare",
    "Hospital & Health Care": "Healthcare",
    "Public Sector": "Government",
    "Higher Education": "Education",
    "E-commerce": "Retail",
    "Industrial": "Manufacturing",
    "Staffing and Recruiting": "Staffing",
}
STACK = [
    "Salesforce",
    "HubSpot",
    "Okta",
    "Slack",
    "Snowflake",
    "Zendesk",
    "Workday",
    "Marketo",
    "AWS",
    "Azure",
]
LEAD_STATUSES = [
    ("Open - Not Contacted", 0.25),
    ("Working - Contacted", 0.20),
    ("Closed - Not Converted", 0.25),
    ("Unqualified", 0.12),
    ("Nurture", 0.08),
    ("Closed - Converted", 0.10),
]
WORDS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Wonka",
    "Gringotts",
    "Oscorp",
    "Aperture",
    "Massive",
    "Blue",
    "North",
    "Pioneer",
    "Summit",
]
SUFFIX = ["Inc", "LLC", "GmbH", "Ltd", "Systems", "Labs", "Group", "Software", "Health", "Partners"]


@dataclass(frozen=True)
class SampleCounts:
    accounts: int
    opportunities: int
    leads: int

    @property
    def total(self) -> int:
        return self.accounts + self.opportunities + self.leads


def _pick(rng: random.Random, table):
    return rng.choices(table, weights=[row[-1] for row in table])[0]


def _employees(rng: random.Random) -> tuple[int | None, str]:
    n = int(rng.lognormvariate(5.3, 1.5)) + 1
    style = rng.random()
    if style < 0.05:
        return None, rng.choice(["", "n/a", "lots", "-"])
    if style < 0.20 and n >= 1000:
        return n, f"{n:,}"
    if style < 0.27 and n >= 1000:
        return round(n / 1000) * 1000, f"{round(n / 1000)}k"
    if style < 0.32:
        return n, f" {n} "
    return n, str(n)


def _revenue(rng: random.Random, employees: int | None) -> str:
    if rng.random() < 0.12:
        return rng.choice(["", "n/a", "N/A", "unknown"])
    base = (employees or 50) * rng.uniform(80_000, 250_000)
    style = rng.random()
    if style < 0.15:
        return f"${base / 1e6:.1f}m"
    if style < 0.30:
        return f"{base / 1e6:.1f}M"
    if style < 0.40:
        return f"{int(base):,}"
    return str(int(base))


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _activity(rng: random.Random, today: date, stale_share: float) -> str:
    r = rng.random()
    if r < 0.10:
        return ""
    if r < 0.10 + stale_share:
        return (today - timedelta(days=rng.randint(95, 720))).isoformat()
    return (today - timedelta(days=rng.randint(0, 80))).isoformat()


def _stack(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return ""
    return ";".join(rng.sample(STACK, rng.randint(1, 4)))


def write_sample_crm(
    folder: Path,
    *,
    accounts: int = 3000,
    seed: int = 7,
    today: date | None = None,
    modified_at: datetime | None = None,
) -> SampleCounts:
    """Write accounts.csv, opportunities.csv and leads.csv into ``folder``."""
    rng = random.Random(seed)
    today = today or date.today()
    base_stamp = modified_at or datetime(today.year, today.month, today.day) - timedelta(days=1)
    folder.mkdir(parents=True, exist_ok=True)
    owners = [f"005{n:012d}" for n in range(1, 13)]
    n_opps = n_leads = 0
    with (
        open(folder / "accounts.csv", "w", newline="", encoding="utf-8") as fa,
        open(folder / "opportunities.csv", "w", newline="", encoding="utf-8") as fo,
        open(folder / "leads.csv", "w", newline="", encoding="utf-8") as fl,
    ):
        wa, wo, wl = csv.writer(fa), csv.writer(fo), csv.writer(fl)
        wa.writerow(ACCOUNT_COLUMNS)
        wo.writerow(OPPORTUNITY_COLUMNS)
        wl.writerow(LEAD_COLUMNS)
        for i in range(accounts):
            acc_id = f"001{i:012d}"
            industry, spellings, _ = _pick(rng, INDUSTRIES)
            country, cspell, states, _ = _pick(rng, COUNTRIES)
            employees, emp_text = _employees(rng)
            name = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.choice(SUFFIX)}"
            owner = rng.choice(owners)
            stamp = _stamp(base_stamp - timedelta(seconds=(accounts - i) * 7))
            # The planted pattern: software, 500+ employees, North America win far more often.
            fit = (
                (0.45 if industry == "Computer Software" else 0.12 if industry == "IT Services" else 0.0)
                + (0.30 if (employees or 0) >= 500 else 0.10 if (employees or 0) >= 200 else 0.0)
                + (0.25 if country in ("US", "CA") else 0.05 if country in ("GB", "DE") else 0.0)
            )
            win_rate = 0.08 + 0.72 * fit
            opps = _opportunities(rng, i, employees, win_rate, today)
            is_customer = any(o[3] for o in opps)
            wa.writerow(
                [
                    acc_id,
                    name,
                    rng.choice(spellings),
                    emp_text,
                    _revenue(rng, employees),
                    rng.choice(cspell),
                    rng.choice(states),
                    owner,
                    _activity(rng, today, 0.35),
                    stamp,
                    _stack(rng),
                    "Customer - Direct" if is_customer else rng.choice(["Prospect", "", "Other"]),
                ]
            )
            for opp_id, stage, closed, won, amount, close in opps:
                wo.writerow(
                    [
                        opp_id,
                        f"{name} - {rng.choice(['New', 'Expansion', 'Renewal'])}",
                        acc_id,
                        stage,
                        str(closed).lower(),
                        str(won).lower(),
                        rng.choice([f"{amount:.0f}", f"{amount:,.2f}"]),
                        close.isoformat(),
                        owner,
                        stamp,
                    ]
                )
                n_opps += 1
            n_leads += _write_leads(rng, wl, i, owners, today, stamp)
    return SampleCounts(accounts, n_opps, n_leads)


def _opportunities(
    rng: random.Random, i: int, employees: int | None, win_rate: float, today: date
) -> list[tuple[str, str, bool, bool, float, date]]:
    """One account's opportunities: (id, stage, closed, won, amount, close date)."""
    opps = []
    for k in range(rng.choice([0, 0, 1, 1, 1, 2, 2, 3])):
        closed = rng.random() < 0.8
        won = closed and rng.random() < win_rate
        close = (
            today - timedelta(days=rng.randint(-60, 900))
            if not closed
            else today - timedelta(days=rng.randint(1, 900))
        )
        stage = (
            ("Closed Won" if won else "Closed Lost")
            if closed
            else rng.choice(["Prospecting", "Qualification", "Proposal/Price Quote", "Negotiation/Review"])
        )
        amount = round((employees or 100) * rng.uniform(20, 120), -2)
        opps.append((f"006{i:010d}{k:02d}", stage, closed, won, amount, close))
    return opps


def _write_leads(rng: random.Random, writer: Any, i: int, owners: list[str], today: date, stamp: str) -> int:
    """Write the leads of account ``i``'s company; returns how many."""
    n = rng.choice([0, 1, 1, 2, 2, 3, 4])
    for k in range(n):
        status = _pick(rng, LEAD_STATUSES)[0]
        _l_industry, l_spell, _ = _pick(rng, INDUSTRIES)
        _l_country, l_cspell, l_states, _ = _pick(rng, COUNTRIES)
        l_emp, l_emp_text = _employees(rng)
        writer.writerow(
            [
                f"00Q{i:010d}{k:02d}",
                f"{rng.choice(WORDS)} {rng.choice(SUFFIX)}",
                rng.choice(l_spell),
                l_emp_text,
                _revenue(rng, l_emp),
                rng.choice(l_cspell),
                rng.choice(l_states),
                status,
                str(status == "Closed - Converted").lower(),
                rng.choice(owners),
                _activity(rng, today, 0.45),
                stamp,
                _stack(rng),
            ]
        )
    return n


def touch_sample_crm(folder: Path, *, share: float = 0.01, seed: int = 11, modified_at: datetime) -> int:
    """Change ``share`` of the accounts and leads in place (employees grow, a stack changes) and bump their
    LastModifiedDate, as an incremental day in a CRM would. Returns how many rows changed."""
    rng = random.Random(seed)
    changed = 0
    for name, emp_col in (("accounts.csv", "NumberOfEmployees"), ("leads.csv", "NumberOfEmployees")):
        path = folder / name
        tmp = path.with_suffix(".tmp")
        with (
            open(path, newline="", encoding="utf-8") as src,
            open(tmp, "w", newline="", encoding="utf-8") as dst,
        ):
            reader = csv.DictReader(src)
            writer = csv.DictWriter(dst, fieldnames=reader.fieldnames or [])
            writer.writeheader()
            for row in reader:
                if rng.random() < share:
                    row[emp_col] = str(rng.randint(200, 5000))
                    row["LastModifiedDate"] = _stamp(modified_at)
                    changed += 1
                writer.writerow(row)
        tmp.replace(path)
    return changed
