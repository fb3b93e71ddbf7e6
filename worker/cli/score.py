"""``icp-worker score``: score a prospect list (a purchased list, event attendees) with no CRM at all."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import typer

from connectors.files.cells import escape_formula
from worker.cli.common import STATE, UserError, err, handle_errors, out, print_json, progress_bar
from worker.icp.scoring import Scorer
from worker.icp.spec import load_icp
from worker.normalize import NormalizeConfig, normalize_record

#: Column headers (lower case, letters and digits only) recognised for each canonical attribute.
ALIASES = {
    "industry": ["industry", "sector", "vertical"],
    "employees": ["employees", "numberofemployees", "employeecount", "headcount", "companysize", "size"],
    "annual_revenue": ["annualrevenue", "revenue"],
    "country": ["country", "billingcountry", "hqcountry", "companycountry"],
    "state": ["state", "billingstate", "province"],
    "founded_year": ["foundedyear", "founded", "yearfounded"],
    "funding_stage": ["fundingstage", "funding", "lastfundingstage"],
    "tech_stack": ["techstack", "techstackc", "technologies", "technology"],
}
OUTPUT_COLUMNS = ["fit_score", "fit_tier", "fit_coverage", "fit_reasons"]


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def column_mapping(headers: list[str], attributes: set[str], explicit: dict[str, str]) -> dict[str, str]:
    """CSV column → canonical attribute: explicit ``--map`` first, then known aliases, then exact names."""
    mapping = {col: attr for col, attr in explicit.items() if col in headers}
    for col in headers:
        if col in mapping:
            continue
        k = _key(col)
        for attr, names in ALIASES.items():
            if k in names and attr not in mapping.values():
                mapping[col] = attr
                break
        else:
            if col in attributes and col not in mapping.values():
                mapping[col] = col
    return mapping


@handle_errors
def score(
    input_csv: Path = typer.Argument(..., exists=True, dir_okay=False, help="Prospect list (CSV)."),
    icp: Path = typer.Option(..., "--icp", exists=True, dir_okay=False, help="ICP YAML file."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the scored CSV."),
    maps: list[str] = typer.Option([], "--map", help="COLUMN=attribute, e.g. --map 'Head count=employees'."),
    connection: str = typer.Option(None, "--connection", help="Use this connection's industry synonyms."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Score every row of INPUT_CSV; the output is the input plus fit score, tier, coverage and reasons."""
    spec = load_icp(icp)
    explicit = {}
    for m in maps:
        if "=" not in m:
            raise UserError(f"--map {m!r}: expected COLUMN=attribute")
        col, attr = m.split("=", 1)
        explicit[col.strip()] = attr.strip()
    synonyms = STATE.connection(connection).industry_synonyms if connection else {}
    norm = NormalizeConfig(industry_synonyms=synonyms)
    scorer = Scorer(spec)
    wanted = {c.attribute for c in spec.criteria} | {d.attribute for d in spec.disqualifiers}
    tiers: Counter[str] = Counter()
    rows = 0
    if output.resolve() == input_csv.resolve():
        raise UserError("the output file must not be the input file")
    with open(input_csv, newline="", encoding="utf-8-sig") as src:
        reader = csv.DictReader(src)
        headers = list(reader.fieldnames or [])
        if not headers:
            raise UserError(f"{input_csv}: no header row")
        clash = [c for c in OUTPUT_COLUMNS if c in headers]
        if clash:
            raise UserError(f"{input_csv}: already has column(s) {', '.join(clash)}; rename them first")
        mapping = column_mapping(headers, wanted, explicit)
        unmapped = sorted(wanted - {a for a in mapping.values()} - {"region"})
        if "country" in mapping.values():
            unmapped = [a for a in unmapped if a != "region"]
        for attr in unmapped:
            err.print(
                f"warning: no column for attribute {attr!r}: every row is missing it "
                f"(use --map COLUMN={attr})"
            )
        output.parent.mkdir(parents=True, exist_ok=True)
        with open(output, "w", newline="", encoding="utf-8") as dst, progress_bar(not as_json) as progress:
            writer = csv.writer(dst)
            writer.writerow([escape_formula(h) for h in headers + OUTPUT_COLUMNS])
            for row in reader:
                raw = {attr: row.get(col) for col, attr in mapping.items()}
                attributes, _ = normalize_record(raw, norm)
                result = scorer.score(attributes)
                tiers[result.tier] += 1
                rows += 1
                writer.writerow(
                    [escape_formula(row.get(h) or "") for h in headers]
                    + [
                        result.score,
                        result.tier,
                        f"{result.coverage:.2f}",
                        escape_formula(result.compact(255)),
                    ]
                )
                if rows % 1000 == 0:
                    progress("score", 1000)
    summary = {"rows": rows, "output": str(output), "tiers": dict(tiers), "columns": mapping}
    if as_json:
        print_json(summary)
    else:
        out.print(
            f"scored {rows:,} rows → {output}: " + ", ".join(f"{t} {n:,}" for t, n in tiers.most_common())
        )
