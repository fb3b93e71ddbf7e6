"""``icp-worker icp ...``: validate, preview, publish, history, diff, rollback, show."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from worker.cli.analysis import register as register_analysis
from worker.cli.common import STATE, err, handle_errors, out, print_json, progress_bar
from worker.cli.outcome import exit_for, print_record_errors, write_records
from worker.icp import versions
from worker.icp.backtest import backtest, render_side_by_side
from worker.icp.preview import ConnectionPreview, preview_connection, tier_order
from worker.icp.revisions import diff_specs
from worker.icp.spec import load_icp
from worker.icp.versions import latest_icp, spec_of
from worker.jobs import publish_file, reevaluate_all
from worker.store.history import load_history
from worker.store.models import Connection

app = typer.Typer(help="Write, preview, publish and roll back ICP versions.", no_args_is_help=True)


def _author() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "unknown"


@app.command()
@handle_errors
def validate(file: Path = typer.Argument(..., exists=True, dir_okay=False, help="ICP YAML file.")) -> None:
    """Check an ICP file; every error is reported with its line and field."""
    spec = load_icp(file)
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
        number = (current.number + 1) if current else 1
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


@app.command()
@handle_errors
def publish(
    file: Path = typer.Argument(..., exists=True, dir_okay=False),
    note: str = typer.Option(..., "--note", "-m", help="Why this revision (kept with the version)."),
    author: str = typer.Option(None, "--author", help="Default: your user name."),
    no_reevaluate: bool = typer.Option(False, "--no-reevaluate", help="Store the version only."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Store FILE as the next ICP version, then re-evaluate every connection from its snapshots."""
    store = STATE.store()
    published = publish_file(store, file, note=note, author=author or _author())
    v = published.version
    if not published.created:
        out.print(f"unchanged: {file} is identical to v{v.number}; nothing published")
    elif not as_json:
        out.print(f"[green]published[/] ICP v{v.number} ({v.name}) sha256 {v.content_hash[:12]}")
    summaries = []
    if published.created and not no_reevaluate:
        summaries = enqueue_or_run_reevaluation(store, quiet=as_json)
    if as_json:
        print_json(
            {
                "version": v.number,
                "created": published.created,
                "hash": v.content_hash,
                "runs": [s.__dict__ for s in summaries],
            }
        )
    exit_for(summaries)


def enqueue_or_run_reevaluation(store, *, quiet: bool = False):
    """In-process re-evaluation (the embedded default); a worker deployment enqueues it instead."""
    from worker.settings import get_settings

    if get_settings().broker_url():
        from worker.tasks import enqueue_reevaluation

        task_ids = enqueue_reevaluation()
        if not quiet:
            out.print(f"re-evaluation queued: {len(task_ids)} connection(s)")
        return []
    with progress_bar(not quiet) as progress:
        summaries = reevaluate_all(store, STATE.config(), progress=progress)
    for s in [] if quiet else summaries:
        out.print(
            f"re-evaluated {s.connection}: {s.status}, scored {s.counts.get('scored', 0):,}, "
            f"written {s.counts.get('written', 0):,}, flagged {s.counts.get('flags_raised', 0):,}"
        )
        print_record_errors(s)
    return summaries


@app.command("history")
@handle_errors
def history_cmd(as_json: bool = typer.Option(False, "--json", help="Print the versions as JSON.")) -> None:
    """Every published version."""
    with STATE.store().session() as s:
        rows = versions.history(s)
    if as_json:
        print_json(
            [
                {
                    "version": v.number,
                    "name": v.name,
                    "hash": v.content_hash,
                    "author": v.author,
                    "note": v.note,
                    "created_at": v.created_at.isoformat(),
                }
                for v in rows
            ]
        )
        return
    table = Table("version", "name", "published", "author", "note", "sha256")
    for v in rows:
        table.add_row(
            str(v.number),
            v.name,
            v.created_at.strftime("%Y-%m-%d %H:%M"),
            v.author,
            v.note,
            v.content_hash[:12],
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
    author: str = typer.Option(None, "--author", help="Default: your user name."),
) -> None:
    """Publish an old version's content as a new version, then re-evaluate."""
    store = STATE.store()
    with store.session() as s:
        published = versions.rollback(s, number, author=author or _author())
    if not published.created:
        out.print(f"v{number} is already the current content (v{published.version.number}); nothing to do")
        return
    out.print(f"[green]published[/] v{published.version.number} with the content of v{number}")
    exit_for(enqueue_or_run_reevaluation(store))


register_analysis(app)
