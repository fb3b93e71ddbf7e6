"""Scoring throughput: ``python -m benchmarks.scoring [--records N]``.

Scores N synthetic records (default 1,000,000) against a 5-criterion ICP with two disqualifiers, building
every record's reasons and its compact CRM text. Records are generated in chunks outside the timed part.
The value distributions are deliberately varied (revenue and employees take many distinct values, some
values are missing or messy) so that the per-value caches do not flatter the figure. Distinct values
still cost what they cost in a real sync: an employee count below 10,000 is formatted once and kept, a
revenue is looked up by the bucket of values that read the same ("12.3M") in the same band
(``worker.icp.criteria``), text and other values go through the bounded caches.
A figure, not a pass/fail test: the last line is JSON for tooling. ``reference_s`` is how fast the
machine ran Python before and after the scoring (``benchmarks.machine``: lower is faster).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from typing import Any

from benchmarks.machine import reference_seconds
from worker.icp.scoring import Scorer
from worker.icp.spec import parse_icp

ICP = """\
name: Benchmark ICP (the worked example of docs/scoring.md)
tiers: {best: 80, good: 60}
min_coverage: 0.5
criteria:
  - {key: industry, attribute: industry, weight: 30, type: categorical,
     values: {Computer Software: 1.0, IT Services: 0.5}}
  - key: employees
    attribute: employees
    weight: 25
    type: bands
    bands: [{min: 500, credit: 1.0}, {min: 200, max: 500, credit: 0.6}]
  - {key: country, attribute: country, weight: 20, type: categorical, values: {US: 1.0, CA: 0.7, MX: 0.7}}
  - key: revenue
    attribute: annual_revenue
    weight: 15
    type: bands
    bands: [{min: 50000000, credit: 1.0}, {min: 10000000, max: 50000000, credit: 0.5}]
  - {key: tech_stack, attribute: tech_stack, weight: 10, type: contains_any, values: [Okta, Salesforce]}
disqualifiers:
  - {key: competitor, attribute: industry, values: [Competitor Inc Industry]}
  - {key: too_small, attribute: employees, max: 5}
"""

INDUSTRIES = [
    "Computer Software",
    "IT Services",
    "Retail",
    "Banking",
    "Manufacturing",
    "Healthcare",
    "Education",
    "Logistics",
    "Media",
    "Telecommunications",
    "computer software",
    "Competitor Inc Industry",
]
COUNTRIES = ["US", "CA", "MX", "GB", "DE", "FR", "BR", "IN", "AU", "JP", "NL", "ES"]
TECH = ["Okta", "Salesforce", "HubSpot", "Slack", "Zendesk", "Jira", "AWS", "GCP", "Azure", "Snowflake"]


def make_records(rng: random.Random, n: int) -> list[dict[str, Any]]:
    records = []
    for _ in range(n):
        r: dict[str, Any] = {
            "industry": rng.choice(INDUSTRIES),
            "employees": int(rng.lognormvariate(5, 1.5)),
            "country": rng.choice(COUNTRIES),
            "annual_revenue": rng.randrange(0, 200_000_000),
            "tech_stack": rng.sample(TECH, rng.randrange(0, 4)),
        }
        roll = rng.random()
        if roll < 0.10:
            r["annual_revenue"] = None
        elif roll < 0.15:
            r["employees"] = str(r["employees"])
        elif roll < 0.18:
            del r["country"]
        records.append(r)
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    reference = {"before": reference_seconds()}
    scorer = Scorer(parse_icp(ICP, "benchmark.yaml"))
    rng = random.Random(args.seed)
    done = 0
    elapsed = 0.0
    cpu = 0.0
    tiers: dict[str, int] = {}
    compact_chars = 0
    while done < args.records:
        batch = make_records(rng, min(args.chunk, args.records - done))
        score = scorer.score
        start, start_cpu = time.perf_counter(), time.process_time()
        for attributes in batch:
            result = score(attributes)
            text = result.compact()
            compact_chars += len(text)
            tiers[result.tier] = tiers.get(result.tier, 0) + 1
        elapsed += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
        done += len(batch)

    reference["after"] = reference_seconds()
    rate = done / elapsed if elapsed else float("inf")
    cpu_rate = done / cpu if cpu else float("inf")
    print(f"scored {done:,} records in {elapsed:.2f} s: {rate:,.0f} records/s (reasons and compact text)")
    print(
        f"CPU time {cpu:.2f} s: {cpu_rate:,.0f} records per CPU-second (one core; steadier under other load)"
    )
    print(
        f"machine: reference workload {reference['before']:.3f} s before, {reference['after']:.3f} s after"
        " (benchmarks.machine; lower is faster)"
    )
    print(
        json.dumps(
            {
                "benchmark": "scoring",
                "records": done,
                "criteria": len(scorer.spec.criteria),
                "disqualifiers": len(scorer.spec.disqualifiers),
                "seconds": round(elapsed, 3),
                "records_per_s": round(rate),
                "cpu_seconds": round(cpu, 3),
                "records_per_cpu_s": round(cpu_rate),
                "mean_compact_chars": round(compact_chars / done, 1) if done else 0,
                "tiers": dict(sorted(tiers.items())),
                "python": platform.python_version(),
                "reference_s": reference,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
