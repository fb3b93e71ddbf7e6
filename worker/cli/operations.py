"""``icp-worker sync | runs | reengage | fields | db | connections``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from sqlalchemy import select

from connectors.registry import build_connector
from worker.cli.common import STATE, UserError, err, handle_errors, out, print_json, progress_bar
from worker.cli.outcome import error_object, exit_for, failed, print_record_errors, write_records
from worker.errors import describe, endpoint
from worker.evaluate import ordered
from worker.jobs import sync_connection
from worker.locks import LockBusy, connection_lock, redis_url_from_settings
from worker.store.db import migrate
from worker.store.models import Connection, RecordSnapshot, ReengageFlag, SyncRun
from worker.store.states import FlagState, RunKind, RunStatus
from worker.sync import RunSummary
from worker.sync.run import close_abandoned_runs

reengage_app = typer.Typer(help="Records flagged for re-engagement.", no_args_is_help=True)
fields_app = typer.Typer(help="The fit fields this program owns in the CRM.", no_args_is_help=True)
db_app = typer.Typer(help="The snapshot store.", no_args_is_help=True)
connections_app = typer.Typer(help="Configured connections.", no_args_is_help=True)


@handle_errors
def sync(
    connection: str = typer.Option(None, "--connection", help="Connection name (default: all)."),
    full: bool = typer.Option(False, "--full", help="Pull everything, not only changes since the cursor."),
    enqueue: bool = typer.Option(False, "--enqueue", help="Queue the sync for the Celery workers."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Pull and score, write nothing to the CRM: list what the run would write."
    ),
    records: Path = typer.Option(
        None, "--records", dir_okay=False, help="With --dry-run: write the records it would write as CSV."
    ),
    no_score: bool = typer.Option(
        False, "--no-score", help="Only pull and snapshot (no ICP needed, nothing written): for `icp derive`."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Pull, score and write back changed fit fields for one connection or all of them.

    Exit code 1 when a run fails, stops at the API quota, or leaves records unwritten (the first record
    errors are printed)."""
    config = STATE.config()
    names = [connection] if connection else [c.name for c in config.connections]
    if not names:
        raise UserError("no connections configured: write icp-worker.yaml (see the README) or pass --config")
    if records is not None and not dry_run:
        raise UserError("--records lists what a dry run would write: add --dry-run")
    kind = RunKind.FULL if full else RunKind.INCREMENTAL
    if dry_run and no_score:
        raise UserError("--dry-run scores what it pulls: drop --no-score")
    if enqueue and no_score:
        raise UserError("--no-score runs here, not on the workers: drop --enqueue")
    if enqueue:
        if dry_run:
            raise UserError("--dry-run runs in this process: leave out --enqueue")
        _enqueue(names, kind, as_json)
        return
    summaries = []
    for name in names:
        try:
            summaries.append(_run_one(name, kind, dry_run, as_json, score=not no_score))
        except Exception as exc:
            if as_json:  # a failing run prints a JSON error object, then exits as without --json
                print_json({"error": describe(exc), "status": RunStatus.FAILED, "connection": name})
            raise
    if records is not None:
        n = write_records(records, (row for s in summaries for row in s.records))
        err.print(f"{n:,} record(s) the run would write: {records}", highlight=False)
    if as_json:
        print_json([_summary_json(s) for s in summaries])
    else:
        for s in summaries:
            _print_summary(s)
    exit_for(summaries)


def _enqueue(names: list[str], kind: str, as_json: bool) -> None:
    from worker.tasks import enqueue_sync

    ids = [enqueue_sync(STATE.connection(n).name, kind) for n in names]
    if as_json:
        print_json({"queued": dict(zip(names, ids, strict=True))})
    else:
        for n, task_id in zip(names, ids, strict=True):
            out.print(f"queued {kind} sync of {n} (task {task_id})")


def _run_one(name: str, kind: str, dry_run: bool, as_json: bool, *, score: bool = True) -> RunSummary:
    """One in-process run under the connection's lock (the one the workers take: a manual sync never
    overlaps a scheduled one). A run left ``running`` by a process that died is closed as abandoned."""
    store = STATE.store()
    cfg = STATE.connection(name)
    try:
        with (
            connection_lock(name, redis_url=redis_url_from_settings(), kind=kind, task_id="cli"),
            progress_bar(not as_json) as progress,
        ):
            abandoned = close_abandoned_runs(store, name)
            if abandoned and not as_json:
                err.print(
                    f"{name}: {abandoned} earlier run(s) had stopped unfinished; this run resumes their work"
                )
            return sync_connection(store, cfg, kind=kind, progress=progress, dry_run=dry_run, score=score)
    except LockBusy as busy:
        raise UserError(f"{busy}; try again when that run has finished") from None


def _summary_json(s: RunSummary) -> dict[str, Any]:
    data = dict(s.__dict__)
    if failed(s):
        data["error"] = error_object(s)["error"]
    return data


def _print_summary(s: RunSummary) -> None:
    c = s.counts
    pulled = sum(v for k, v in c.items() if k.startswith("pulled_"))
    if s.kind == RunKind.DRY_RUN:
        by_object = Counter(str(r["object_type"]) for r in s.records)
        out.print(
            f"{s.connection}: dry run (run {s.run_id}) pulled {pulled:,}; would write {len(s.records):,} "
            f"record(s) ({', '.join(f'{k} {v:,}' for k, v in by_object.items()) or 'none'}); "
            "nothing written to the CRM"
        )
    else:
        out.print(
            f"{s.connection}: {s.status} (run {s.run_id}) pulled {pulled:,}, scored {c.get('scored', 0):,}, "
            f"written {c.get('written', 0):,}, write errors {c.get('write_errors', 0):,}, "
            f"flags raised {c.get('flags_raised', 0):,}, cleared {c.get('flags_cleared', 0):,} "
            f"in {s.timings.get('total', 0):.1f}s"
        )
    if s.error:
        err.print(f"  {s.error}", highlight=False)
    print_record_errors(s)


@handle_errors
def runs(
    connection: str = typer.Option(None, "--connection"),
    limit: int = typer.Option(20, "--limit"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The run history, newest first, with counts, API calls and errors."""
    with STATE.store().session() as s:
        q = select(SyncRun, Connection.name).outerjoin(Connection, Connection.id == SyncRun.connection_id)
        if connection:
            q = q.where(Connection.name == connection)
        rows = s.execute(q.order_by(SyncRun.id.desc()).limit(limit)).all()
    if as_json:
        print_json(
            [
                {
                    "id": r.id,
                    "connection": name,
                    "kind": r.kind,
                    "status": r.status,
                    "icp_version": r.icp_version,
                    "counts": r.counts,
                    "api_calls": r.api_calls,
                    "timings": r.timings,
                    "error": r.error,
                    "started_at": r.started_at,
                    "finished_at": r.finished_at,
                }
                for r, name in rows
            ]
        )
        return
    table = Table(
        "run",
        "connection",
        "kind",
        "status",
        "ICP",
        "started",
        "pulled",
        "scored",
        "written",
        "errors",
        "seconds",
        "error",
    )
    for r, name in rows:
        c = r.counts or {}
        table.add_row(
            str(r.id),
            name or "-",
            r.kind,
            r.status,
            f"v{r.icp_version}" if r.icp_version else "-",
            r.started_at.strftime("%Y-%m-%d %H:%M"),
            f"{sum(v for k, v in c.items() if k.startswith('pulled_')):,}",
            f"{c.get('scored', 0):,}",
            f"{c.get('written', 0):,}",
            f"{c.get('write_errors', 0):,}",
            f"{(r.timings or {}).get('total', 0):.1f}",
            (r.error or "")[:80],
        )
    out.print(table)


@reengage_app.command("list")
@handle_errors
def reengage_list(
    connection: str = typer.Option(None, "--connection"),
    include_cleared: bool = typer.Option(False, "--all", help="Include cleared flags."),
    limit: int = typer.Option(50, "--limit"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Records flagged for re-engagement, with the reason."""
    with STATE.store().session() as s:
        q = (
            select(ReengageFlag, Connection.name, RecordSnapshot.name)
            .join(Connection, Connection.id == ReengageFlag.connection_id)
            .outerjoin(
                RecordSnapshot,
                (RecordSnapshot.connection_id == ReengageFlag.connection_id)
                & (RecordSnapshot.object_type == ReengageFlag.object_type)
                & (RecordSnapshot.external_id == ReengageFlag.external_id),
            )
        )
        if connection:
            q = q.where(Connection.name == connection)
        if not include_cleared:
            q = q.where(ReengageFlag.state == FlagState.ACTIVE)
        rows = s.execute(q.order_by(ReengageFlag.id.desc()).limit(limit)).all()
    if as_json:
        print_json(
            [
                {
                    "connection": c,
                    "object_type": f.object_type,
                    "id": f.external_id,
                    "name": n,
                    "owner_id": f.owner_id,
                    "state": f.state,
                    "kind": f.kind,
                    "from_tier": f.from_tier,
                    "to_tier": f.to_tier,
                    "icp_version": f.to_version,
                    "reason": f.reason,
                    "raised_at": f.raised_at,
                    "task": f.task_status,
                    "cleared": f.clear_reason,
                }
                for f, c, n in rows
            ]
        )
        return
    table = Table("connection", "record", "name", "owner", "kind", "move", "raised", "task", "reason")
    for f, c, n in rows:
        table.add_row(
            c,
            f"{f.object_type} {f.external_id}",
            n or "",
            f.owner_id or "",
            f.kind,
            f"{f.from_tier} → {f.to_tier}",
            f.raised_at.strftime("%Y-%m-%d"),
            f.task_status,
            f.reason,
        )
    out.print(table)


def _connector_for(name: str):
    cfg = STATE.connection(name)
    return cfg, build_connector(cfg.crm, cfg.options, env_prefix=cfg.env_prefix or "")


@fields_app.command("check")
@handle_errors
def fields_check(connection: str = typer.Option(..., "--connection")) -> None:
    """List the owned fields missing from the CRM (exit code 1 when any is missing)."""
    cfg, connector = _connector_for(connection)
    try:
        missing = connector.check_fields(ordered(cfg.objects))  # type: ignore[arg-type]
    finally:
        connector.close()
    if missing:
        out.print("missing: " + ", ".join(missing))
        raise typer.Exit(1)
    out.print(f"[green]ok[/] every owned field exists on {', '.join(ordered(cfg.objects))}")


@fields_app.command("install")
@handle_errors
def fields_install(connection: str = typer.Option(..., "--connection")) -> None:
    """Create the owned fields (and the permission to edit them); a second run changes nothing."""
    cfg, connector = _connector_for(connection)
    try:
        done = connector.install_fields(ordered(cfg.objects))  # type: ignore[arg-type]
    finally:
        connector.close()
    for line in done:
        out.print(f"created {line}")
    if not done:
        out.print("nothing to do: every owned field is installed")


@db_app.command("upgrade")
@handle_errors
def db_upgrade() -> None:
    """Apply the store's migrations (the deploy's migration step runs this)."""
    store = STATE.store()
    before, after = store.migrated or migrate(store.engine)
    where = endpoint(store.url)
    if before is None:
        done = f"created the store's schema (revision {after}): store is up to date"
    elif before != after:
        done = f"upgraded the store from revision {before} to {after}: store is up to date"
    else:
        done = f"store is up to date (revision {after})"
    out.print(f"{done} in {where}", highlight=False, soft_wrap=True)


@connections_app.command("list")
@handle_errors
def connections_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Configured connections with their schedule."""
    config = STATE.config()
    if as_json:
        print_json([c.model_dump(mode="json", exclude={"options"}) for c in config.connections])
        return
    table = Table("name", "crm", "objects", "schedule", "env prefix")
    for c in config.connections:
        table.add_row(
            c.name,
            c.crm,
            ", ".join(c.objects),
            f"{c.schedule.cron} {c.schedule.timezone}",
            c.env_prefix or "",
        )
    out.print(table)
