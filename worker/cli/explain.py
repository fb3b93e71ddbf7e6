"""``icp-worker explain ID`` (why a record has its fit, its history, what would move it) and
``icp-worker history export`` (every change of score or tier, for analysts)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from worker.cli.common import STATE, UserError, handle_errors, out, print_json
from worker.icp.explain import Explanation
from worker.icp.reasons import fmt_points
from worker.store.explain import load_explanation
from worker.store.history_export import ExportError, export_history

history_app = typer.Typer(help="The fit history: every change of score or tier.", no_args_is_help=True)

OBJECTS = ("account", "lead", "opportunity")


def parse_time(text: str, option: str, *, end_of_day: bool) -> datetime:
    """ISO date or date-time (UTC unless it says otherwise); a date alone is the end (``--as-of``) or the
    start (``--since``) of that day."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(
            f"{option} {text!r}: expected a date (2026-11-30) or a date and time (2026-11-30T14:00)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@handle_errors
def explain(
    record_id: str = typer.Argument(..., metavar="ID", help="The record's CRM id."),
    connection: str = typer.Option(None, "--connection", help="The connection (when the id is in several)."),
    object_type: str = typer.Option(None, "--object", help="account, lead or opportunity."),
    as_of: str = typer.Option(None, "--as-of", help="Also say what tier it had then (date or date-time)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Why a record has its score and tier: every criterion, history, and what would lift it."""
    if object_type is not None and object_type not in OBJECTS:
        raise UserError(f"--object {object_type!r}: expected one of {', '.join(OBJECTS)}")
    when = parse_time(as_of, "--as-of", end_of_day=True) if as_of else None
    with STATE.store().session() as s:
        explanation = load_explanation(
            s, record_id, connection=connection, object_type=object_type, as_of=when
        )
    if as_json:
        print_json(explanation.to_dict())
    else:
        render(explanation)


def render(e: Explanation) -> None:
    r, fit = e.record, e.fit
    say = out.print
    say(
        f"[bold]{r.object_type} {r.external_id}[/] {r.name or ''} (connection {r.connection})",
        highlight=False,
    )
    say(
        f"score [bold]{fit.score}[/] · tier [bold]{fit.tier}[/] · coverage {fit.coverage:.0%} · "
        f"ICP v{fit.icp_version} · scored {fit.scored_at:%Y-%m-%d %H:%M} UTC",
        highlight=False,
    )
    if e.carried_from is not None:
        account, name = e.carried_from
        say(f"carries the fit of its account {account} {name or ''}".rstrip(), highlight=False)
    if not e.current:
        say("[yellow]the snapshot changed since it was scored: the next sync rescores it[/]")
    table = Table("criterion", "attribute", "CRM value", "normalised", "read as", "credit", "points", "why")
    for line in e.reasons:
        table.add_row(
            line.key,
            line.attribute,
            _shown(line.raw)[:40],
            _shown(line.normalised)[:40],
            line.value,
            f"{line.credit:g}",
            fmt_points(line.points),
            line.text,
        )
    out.print(table)
    if e.missing:
        say(f"missing: {', '.join(e.missing)}", highlight=False)
    for text in e.disqualifiers:
        say(f"[red]{text}[/]", highlight=False)
    for warning in r.warnings:
        say(f"unreadable CRM value: {warning}", highlight=False, markup=False)
    _render_next(e)
    _render_crm(e)
    _render_history(e)


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple | set):
        return ", ".join(map(str, value))
    return str(value)


def _render_next(e: Explanation) -> None:
    nxt = e.next_tier
    if nxt is None:
        return
    for c in nxt.clearances:
        out.print(f"{c.fired}; clears with {c.clears}", highlight=False, markup=False)
    if nxt.without_disqualifiers is not None:
        score, tier = nxt.without_disqualifiers
        out.print(f"without its disqualifiers: {score} {tier}", highlight=False)
    if nxt.target is None:
        out.print("next tier: already in the top tier")
    elif nxt.moves:
        out.print(f"next tier ({nxt.target}):", highlight=False)
        for move in nxt.moves:
            out.print(f"  {move.text}", highlight=False, markup=False)
    elif not nxt.clearances:
        out.print(f"next tier ({nxt.target}): no single change of one attribute gets there", highlight=False)


def _render_crm(e: Explanation) -> None:
    if e.flag is not None:
        state = "flagged" if e.flag.active else "was flagged"
        out.print(
            f"re-engagement: {state} ({e.flag.kind}) on {e.flag.raised_at:%Y-%m-%d}: {e.flag.reason}",
            highlight=False,
            markup=False,
        )
    elif e.record.object_type != "opportunity":
        out.print("re-engagement: not flagged")
    crm = e.crm
    if crm is None:
        return
    if crm.written is None:
        out.print(f"CRM: never written ({crm.write_status})", highlight=False)
        return
    at = f"{crm.written_at:%Y-%m-%d %H:%M} UTC" if crm.written_at else "?"
    state = "up to date" if crm.up_to_date else f"a write is due ({crm.write_status})"
    out.print(f"CRM: last written {at}, {state}", highlight=False)
    for key, value in crm.written.items():
        out.print(f"  {key}: {value}", highlight=False, markup=False)
    if crm.write_error:
        out.print(f"  last error: {crm.write_error}", highlight=False, markup=False)


def _render_history(e: Explanation) -> None:
    if e.history:
        table = Table("when", "ICP", "run", "from", "to", "why", title="history")
        for h in e.history:
            before = "" if h.previous_tier is None else f"{h.previous_score} {h.previous_tier}"
            run = "" if h.run_id is None else str(h.run_id)
            table.add_row(
                f"{h.at:%Y-%m-%d %H:%M:%S}", f"v{h.icp_version}", run, before, f"{h.score} {h.tier}", h.why
            )
        out.print(table)
    if e.as_of is not None:
        a = e.as_of
        if a.tier is None:
            out.print(f"as of {a.at:%Y-%m-%d %H:%M:%S} UTC: {a.why}", highlight=False)
        else:
            out.print(
                f"as of {a.at:%Y-%m-%d %H:%M:%S} UTC: {a.score} {a.tier} under ICP v{a.icp_version} "
                f"(since {a.since:%Y-%m-%d %H:%M:%S}: {a.why})",
                highlight=False,
                markup=False,
            )
            if a.reasons_text:
                out.print(f"  {a.reasons_text}", highlight=False, markup=False)


@history_app.command("export")
@handle_errors
def history_export(
    output: Path = typer.Option(..., "-o", "--output", help="FILE.csv or FILE.parquet."),
    connection: str = typer.Option(None, "--connection", help="Only this connection."),
    since: str = typer.Option(None, "--since", help="Only changes from this date or date-time on."),
) -> None:
    """Every change of score or tier, one row per change, streamed to CSV or Parquet."""
    start = parse_time(since, "--since", end_of_day=False) if since else None
    try:
        with STATE.store().session() as s:
            count = export_history(s, output, connection=connection, since=start)
    except ExportError as exc:
        raise UserError(str(exc)) from None
    out.print(f"{count:,} history rows written to {output}", highlight=False)


def register(app: Any) -> None:
    app.command("explain")(explain)
    app.add_typer(history_app, name="history")
