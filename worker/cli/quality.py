"""``icp-worker quality``: what the data got wrong, per connection and run (``worker.quality`` builds it)."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table
from sqlalchemy import select

from worker.cli.common import STATE, UserError, handle_errors, out, print_json
from worker.icp.versions import latest_icp, spec_of
from worker.quality import QualityReport, ValueCount, build_report
from worker.store.models import Connection


def _examples(v: ValueCount, limit: int = 3) -> str:
    where = []
    for i, p in zip(v.example_ids, v.places, strict=False):
        if i and p and i != v.raw:
            where.append(f"{i} at {p}")
        elif p or i:
            where.append(p or i)
    return f" ({', '.join(where[:limit])})" if where else ""


def _value(v: ValueCount) -> str:
    raw = "other values" if v.raw is None else repr(v.raw)
    return f"{raw} ×{v.count:,}{_examples(v)}"


def render(report: QualityReport) -> None:
    """The report as tables and lines on stdout (numbers never cut)."""
    records = ", ".join(f"{k} {n:,}" for k, n in report.records.items()) or "none"
    run = (
        f"run {report.run_id} ({report.run_kind}, {report.run_started:%Y-%m-%d %H:%M})"
        if report.run_id and report.run_started
        else "no pulling run yet"
    )
    out.print(f"[bold]{report.connection}[/]: {run}; records in the store: {records}", highlight=False)
    table = Table("object", "attribute", "with a value", "unreadable", "impossible", "most frequent problems")
    for column in table.columns[:2]:
        column.no_wrap = True
    for column in table.columns[2:5]:
        column.justify = "right"
    table.columns[5].overflow = "fold"
    for a in report.attributes:
        table.add_row(
            a.object_type, a.attribute, f"{a.with_value:,}", f"{a.unreadable:,}", f"{a.impossible:,}",
            "; ".join(_value(v) for v in a.values),
        )  # fmt: skip
    out.print(table)
    for title, values in (
        ("duplicate ids (the last row wins)", report.duplicate_ids),
        ("records without an id (skipped)", report.missing_ids),
        ("unreadable stamps", report.unreadable_stamps),
    ):
        if values:
            total = sum(v.count for v in values)
            shown = "; ".join(_value(v) if v.raw else f"×{v.count:,}{_examples(v, 5)}" for v in values[:10])
            out.print(f"{title}: {total:,}: {shown}", highlight=False, markup=False)
    if report.criteria:
        out.print(f"criterion coverage under ICP v{report.icp_version or '?'}:", highlight=False)
        for c in report.criteria:
            out.print(
                f"  {c.key} ({c.attribute}, weight {c.weight:g}) on {c.object_type}: "
                f"{c.with_value:,} of {c.records:,} ({c.share:.0%})",
                highlight=False,
            )


@handle_errors
def quality(
    connection: str = typer.Option(None, "--connection", help="Only this connection (default: every one)."),
    run: int = typer.Option(None, "--run", help="This run's warnings (default: the latest run that pulled)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Per attribute: records with a value, unreadable and impossible values (the most frequent, with
    example ids), duplicate and missing ids, unreadable stamps, and each criterion's coverage."""
    with STATE.store().session() as s:
        if connection:
            names = [connection]
        else:
            names = list(s.scalars(select(Connection.name).order_by(Connection.name)))
        if not names:
            raise UserError("no connection has been synced yet: run icp-worker sync first")
        if run is not None and len(names) != 1:
            raise UserError("--run needs --connection (run numbers belong to one connection)")
        current = latest_icp(s)
        spec = spec_of(current) if current else None
        reports = [build_report(s, name, run_id=run, spec=spec) for name in names]
        if current is not None:
            for r in reports:
                r.icp_version = current.number
    if as_json:
        data: dict[str, Any] = {"connections": [r.as_dict() for r in reports]}
        print_json(data)
        return
    for r in reports:
        render(r)
