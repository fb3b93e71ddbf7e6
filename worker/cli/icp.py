"""``icp-worker icp ...``: validate, preview, publish, history, diff, rollback, show."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from worker import yamlfile
from worker.cli.analysis import register as register_analysis
from worker.cli.common import STATE, UserError, err, handle_errors, out, print_json, progress_bar
from worker.cli.outcome import exit_for, print_record_errors, write_records
from worker.icp import publishing, versions
from worker.icp.backtest import backtest, render_side_by_side
from worker.icp.preview import ConnectionPreview, preview_connection, tier_order
from worker.icp.publishing import Outcome
from worker.icp.revisions import diff_specs
from worker.icp.spec import load_icp
from worker.icp.validation import refuse
from worker.icp.versions import latest_icp, spec_of
from worker.outbox import existing_store
from worker.store.history import load_history
from worker.store.models import Connection

app = typer.Typer(help="Write, preview, publish and roll back ICP versions.", no_args_is_help=True)


def _author() -> str:
    """Who publishes or decides: ``ICP_WORKER_USER``, else the OS user."""
    from worker.settings import get_settings

    configured = get_settings().icp_worker_user
    if configured:
        return configured
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "unknown"


def _read(file: Path) -> str:
    return yamlfile.read_text(file)  # too large, not UTF-8: YamlFileError naming the line


def print_warnings(warnings) -> None:
    for w in warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False)


@app.command()
@handle_errors
def validate(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="ICP YAML file."),
    as_json: bool = typer.Option(False, "--json", help="Errors and warnings as JSON (same exit code)."),
) -> None:
    """Check an ICP file, against the connections and the stored snapshots too; every problem is
    reported as file:line field: message. Errors exit 2; warnings keep exit 0."""
    from worker.icp.validation import check_text

    text = _read(file)
    store = existing_store()
    if store is None:
        spec, report = check_text(text, str(file), STATE.config().connections)
    else:
        with store.session() as s:
            spec, report = check_text(text, str(file), STATE.config().connections, s)
    if as_json:
        print_json({**report.as_dict(), "name": spec.name})
        if report.errors:
            raise typer.Exit(2)
        return
    if report.errors:
        refuse(report)
    print_warnings(report.warnings)
    out.print(
        f"[green]ok[/] {file}: {spec.name!r}, {len(spec.criteria)} criteria, "
        f"{len(spec.disqualifiers)} disqualifiers, tiers "
        + ", ".join(f"{t} ≥ {s}" for t, s in spec.tiers)
        + f", else {spec.fallback_tier}"
    )


def render_preview(preview: ConnectionPreview, tiers: list[str]) -> None:
    seen = [
        t
        for t in tiers
        if any(preview.transitions.get((t, b)) or preview.transitions.get((b, t)) for b in tiers)
    ]
    table = Table(title=f"{preview.connection}: current tier → proposed tier ({preview.records:,} records)")
    table.add_column("current \\ proposed")
    for t in seen:
        table.add_column(t, justify="right")
    for a in seen:
        table.add_row(a, *[f"{preview.transitions.get((a, b), 0):,}" or "" for b in seen])
    out.print(table)
    written = sum(preview.to_write.values())
    out.print(
        f"records whose fit fields would be written: [bold]{written:,}[/] "
        f"({', '.join(f'{k} {v:,}' for k, v in preview.to_write.items()) or 'none'}); "
        f"about {preview.api_calls:,} {preview.crm} write call(s)"
    )
    out.print(f"re-engagement candidates: [bold]{preview.candidates:,}[/]")
    for c in preview.examples:
        out.print(
            f"  {c.object_type} {c.external_id} {c.name or ''} (owner {c.owner_id or '-'}): {c.reason}",
            highlight=False,
        )


@app.command()
@handle_errors
def preview(
    file: Path = typer.Argument(..., exists=True, dir_okay=False),
    connection: str = typer.Option(None, "--connection", help="Only this connection."),
    examples: int = typer.Option(10, help="Re-engagement examples to show."),
    records: Path = typer.Option(
        None, "--records", dir_okay=False, help="Write every record the publish would write, as CSV."
    ),
    as_json: bool = typer.Option(False, "--json", help="JSON, with every record to write under `rows`."),
) -> None:
    """What publishing FILE would change: tier moves, records to write, re-engagement candidates.

    Computed from the snapshot store: no CRM call. ``--records OUT.csv``: one row per record whose fit
    fields the publish would write (before and after)."""
    proposed = load_icp(file)
    store = STATE.store()
    now = datetime.now(UTC)
    results = []
    with store.session() as s:
        current = latest_icp(s)
        number = versions.next_number(s)  # held and rejected versions keep their numbers
        names = [connection] if connection else [c.name for c in STATE.config().connections]
        for name in names:
            cfg = STATE.connection(name)
            conn = s.query(Connection).filter_by(name=name).one_or_none()
            if conn is None:
                err.print(f"{name}: never synced, nothing to preview")
                continue
            keep_rows = as_json or records is not None
            results.append(preview_connection(s, conn, cfg, proposed, number, now, examples, rows=keep_rows))
        backtests = _backtests(s, current, proposed, names)
    if records is not None:
        n = write_records(records, (row for p in results for row in p.record_rows()))
        err.print(f"{n:,} record(s) the publish would write: {records}", highlight=False)
    if as_json:
        print_json(
            {
                "proposed_version": number,
                "connections": [p.as_dict(tier_order(proposed, p.transitions)) for p in results],
                "rows": [row for p in results for row in p.record_rows()],
            }
        )
        return
    if current:
        changes = diff_specs(spec_of(current), proposed)
        out.print(f"[bold]ICP v{current.number} → proposed v{number}[/]")
        for line in changes or ["(no change in criteria, weights or thresholds)"]:
            out.print(f"  {line}", highlight=False)
    for p in results:
        render_preview(p, tier_order(proposed, p.transitions))
    for text in backtests:
        out.print(text, highlight=False, markup=False)


def _backtests(session, current, proposed, names: list[str]) -> list[str]:
    """Backtests of the current and proposed ICP side by side, where the store has closed deals."""
    texts = []
    for name in names:
        conn = session.query(Connection).filter_by(name=name).one_or_none()
        if conn is None or current is None:
            continue
        history = load_history(session, conn.id)
        if not any(h.closed for h in history):
            continue
        texts.append(
            f"\n[{name}] backtest on closed deals: current v{current.number} | proposed\n"
            + render_side_by_side(backtest(spec_of(current), history), backtest(proposed, history))
        )
    return texts


def _print_outcome(outcome: Outcome, *, source: str) -> None:
    """The one-line result, the impact when held, and how the re-evaluation runs."""
    v = outcome.version
    if outcome.action == "unchanged":
        out.print(f"unchanged: {source} is identical to v{v.number}; nothing published")
    elif outcome.action == "already_held":
        out.print(f"{source} is already held as v{v.number}; nothing published")
    elif outcome.action == "published":
        out.print(f"[green]published[/] ICP v{v.number} ({v.name}) sha256 {v.content_hash[:12]}")
    elif outcome.action == "approved":
        out.print(f"[green]approved[/] held ICP v{v.number} ({v.name}) by {v.decided_by}: it is current now")
    if outcome.held:
        for p in outcome.previews:
            render_preview(p, tier_order(spec_of(v), p.transitions))
        for reason in outcome.reasons or (v.impact or {}).get("reasons", []):
            out.print(f"  {reason}", highlight=False)
        err.print(
            f"held for approval: icp-worker icp approve {v.number} (or icp-worker icp reject {v.number})",
            highlight=False,
        )
    _print_reevaluation(outcome)


def _print_reevaluation(outcome: Outcome) -> None:
    r = outcome.reevaluation
    if r is None:
        return
    if r.mode == "deferred":
        err.print(f"[yellow]{r.message}[/]", highlight=False)
    elif r.mode == "queued":
        out.print(r.message)
    for s in r.runs:
        out.print(
            f"re-evaluated {s.connection}: {s.status}, scored {s.counts.get('scored', 0):,}, "
            f"written {s.counts.get('written', 0):,}, flagged {s.counts.get('flags_raised', 0):,}"
        )
        print_record_errors(s)


def _runs_exit(outcome: Outcome) -> None:
    """Exit 1 when a re-evaluation run of the outcome failed, stopped at the quota or left records."""
    if outcome.reevaluation is not None:
        exit_for(outcome.reevaluation.runs)


def _finish(outcome: Outcome, *, source: str, as_json: bool) -> None:
    print_warnings(outcome.warnings)
    if as_json:
        print_json(outcome.as_dict())
    else:
        _print_outcome(outcome, source=source)
    if outcome.exit_code:
        raise typer.Exit(outcome.exit_code)
    _runs_exit(outcome)


@app.command()
@handle_errors
def publish(
    file: Path = typer.Argument(..., exists=True, dir_okay=False),
    note: str = typer.Option(..., "--note", "-m", help="Why this revision (kept with the version)."),
    author: str = typer.Option(None, "--author", help="Default: ICP_WORKER_USER, else your user name."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Never hold for approval: publish at once."),
    no_reevaluate: bool = typer.Option(False, "--no-reevaluate", help="Store the version only."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Check FILE, then store it as the next ICP version and re-evaluate every connection from its
    snapshots. A version that changes too many tiers is held (exit 3) until `icp approve N`."""
    text = _read(file)
    with progress_bar(not as_json) as progress:
        outcome = publishing.publish_text(
            STATE.store(), STATE.config(), text, filename=str(file), note=note, author=author or _author(),
            yes=yes, reevaluate=not no_reevaluate, progress=progress,
        )  # fmt: skip
    _finish(outcome, source=str(file), as_json=as_json)


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else ""


@app.command("history")
@handle_errors
def history_cmd(as_json: bool = typer.Option(False, "--json", help="Print the versions as JSON.")) -> None:
    """Every version: published, held (waiting for approval), approved and rejected, with who and when."""
    with STATE.store().session() as s:
        rows = versions.history(s)
        current = versions.current_version(s)
    if as_json:
        print_json(
            [
                {
                    "version": v.number,
                    "name": v.name,
                    "status": v.status,
                    "current": current is not None and v.number == current.number,
                    "hash": v.content_hash,
                    "author": v.author,
                    "note": v.note,
                    "created_at": v.created_at.isoformat(),
                    "decided_by": v.decided_by,
                    "decided_at": v.decided_at.isoformat() if v.decided_at else None,
                    "impact": v.impact,
                }
                for v in rows
            ]
        )
        return
    table = Table("version")
    table.add_column("status", no_wrap=True)
    for column in ("name", "published", "decided", "note", "sha256"):
        table.add_column(column, overflow="fold")
    for v in rows:
        status = v.status + (" (current)" if current is not None and v.number == current.number else "")
        decided = f"{_when(v.decided_at)} by {v.decided_by}" if v.decided_at else ""
        table.add_row(
            str(v.number),
            status,
            v.name,
            f"{_when(v.created_at)} by {v.author}",
            decided,
            v.note,
            v.content_hash[:8],
        )
    out.print(table)


@app.command()
@handle_errors
def diff(
    a: int = typer.Argument(..., help="Old version."),
    b: int = typer.Argument(..., help="New version."),
    as_json: bool = typer.Option(False, "--json", help="Print the changes as JSON."),
) -> None:
    """Criteria, weights and thresholds that changed between two versions."""
    with STATE.store().session() as s:
        old, new = spec_of(versions.get_version(s, a)), spec_of(versions.get_version(s, b))
    changes = diff_specs(old, new)
    if as_json:
        print_json({"from": a, "to": b, "changes": changes})
        return
    for line in changes or ["no change"]:
        out.print(line, highlight=False)


@app.command()
@handle_errors
def show(
    number: int = typer.Argument(..., help="Version number."),
    as_json: bool = typer.Option(False, "--json", help="Print the version and its content as JSON."),
) -> None:
    """Print a version's YAML exactly as published."""
    with STATE.store().session() as s:
        v = versions.get_version(s, number)
    if as_json:
        print_json(
            {"version": v.number, "name": v.name, "hash": v.content_hash, "author": v.author, "note": v.note,
             "created_at": v.created_at.isoformat(), "content": v.content}
        )  # fmt: skip
        return
    out.print(v.content, markup=False, highlight=False)


@app.command()
@handle_errors
def rollback(
    number: int = typer.Argument(..., help="Version whose content to publish anew."),
    author: str = typer.Option(None, "--author", help="Default: ICP_WORKER_USER, else your user name."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Never hold for approval: roll back at once."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Publish an old version's content as a new version, then re-evaluate (held like a publish)."""
    with progress_bar(not as_json) as progress:
        outcome = publishing.rollback_version(
            STATE.store(), STATE.config(), number, author=author or _author(), yes=yes, progress=progress
        )
    if outcome.action == "unchanged" and not as_json:
        out.print(f"v{number} is already the current content (v{outcome.version.number}); nothing to do")
        return
    if outcome.action == "published" and not as_json:
        out.print(f"[green]published[/] v{outcome.version.number} with the content of v{number}")
        _print_reevaluation(outcome)
        _runs_exit(outcome)
        return
    _finish(outcome, source=f"v{number}", as_json=as_json)


@app.command()
@handle_errors
def approve(
    number: int = typer.Argument(..., help="The held version."),
    by: str = typer.Option(
        None, "--by", help="Who approves (default: ICP_WORKER_USER, else your user name)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Make a held version current and re-evaluate every connection with it."""
    try:
        with progress_bar(not as_json) as progress:
            outcome = publishing.approve(STATE.store(), STATE.config(), number, by=by or _author(),
                                         progress=progress)  # fmt: skip
    except publishing.ApprovalError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        print_json(outcome.as_dict())
        _runs_exit(outcome)
        return
    v = outcome.version
    out.print(f"[green]approved[/] ICP v{v.number} ({v.name}) by {v.decided_by}: it is current now")
    _print_reevaluation(outcome)
    _runs_exit(outcome)


@app.command()
@handle_errors
def reject(
    number: int = typer.Argument(..., help="The held version."),
    by: str = typer.Option(None, "--by", help="Who rejects (default: ICP_WORKER_USER, else your user name)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Drop a held version: it never scores (it stays in the history as rejected)."""
    try:
        outcome = publishing.reject(STATE.store(), number, by=by or _author())
    except publishing.ApprovalError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        print_json(outcome.as_dict())
        return
    out.print(f"rejected ICP v{outcome.version.number} by {outcome.version.decided_by}; nothing was written")


register_analysis(app)
