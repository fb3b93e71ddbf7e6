"""``icp-worker sync | runs | reengage | fields | db | connections``."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from sqlalchemy import func, select

from connectors.files.cells import escape_formula, format_cell
from connectors.registry import build_connector
from worker.cli.common import (
    STATE,
    UserError,
    err,
    fit_table,
    handle_errors,
    out,
    print_json,
    progress_bar,
)
from worker.cli.outcome import error_object, exit_for, failed, print_record_errors, write_records
from worker.errors import describe, endpoint
from worker.evaluate import ordered
from worker.jobs import sync_connection
from worker.locks import LockBusy, connection_lock, redis_url_from_settings
from worker.quality import run_problems, sync_line
from worker.store.db import migrate
from worker.store.models import Connection, RecordSnapshot, ReengageFlag
from worker.store.states import FlagKind, FlagState, RunKind, RunStatus
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
    as_json: bool = typer.Option(False, "--json", help="Print each run's summary as JSON."),
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
    with STATE.store().session() as session:
        problems = {s.run_id: run_problems(session, s.run_id) for s in summaries}
    if as_json:
        print_json([{**_summary_json(s), "data_problems": problems[s.run_id]} for s in summaries])
    else:
        for s in summaries:
            _print_summary(s, problems[s.run_id])
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


def _print_summary(s: RunSummary, problems: Any) -> None:
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
        err.print(f"  {s.error}", highlight=False, markup=False)
    line = sync_line(s.connection, problems)
    if line:
        out.print(line, highlight=False, markup=False, soft_wrap=True)
    print_record_errors(s)


_FLAG_COLUMNS = ("connection", "object_type", "id", "name", "owner_id", "state", "kind", "from_tier",
                 "to_tier", "icp_version", "reason", "raised_at", "task", "cleared")  # fmt: skip


@reengage_app.command("list")
@handle_errors
def reengage_list(
    connection: str = typer.Option(None, "--connection", help="Only this connection's flags."),
    owner: str = typer.Option(None, "--owner", help="Only records of this owner (the CRM's owner id)."),
    kind: FlagKind = typer.Option(None, "--kind", help="Only flags of this kind."),
    include_cleared: bool = typer.Option(False, "--all", help="Include cleared flags."),
    limit: int = typer.Option(50, "--limit", min=1, help="Show at most this many, newest first."),
    csv_out: Path = typer.Option(
        None, "--csv", dir_okay=False, help="Also write every matching flag (no limit) to this CSV file."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the flags as JSON."),
) -> None:
    """Records flagged for re-engagement, with the reason; says how many more there are than shown."""
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
        if owner:
            q = q.where(ReengageFlag.owner_id == owner)
        if kind:
            q = q.where(ReengageFlag.kind == kind.value)
        if not include_cleared:
            q = q.where(ReengageFlag.state == FlagState.ACTIVE)
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        q = q.order_by(ReengageFlag.id.desc())
        rows = s.execute(q.limit(limit)).all()
        if csv_out is not None:
            written = _write_flags_csv(csv_out, (_flag_dict(f, c, n) for f, c, n in s.execute(q)))
            err.print(f"wrote {written:,} flags to {csv_out}", highlight=False)
    flags = [_flag_dict(f, c, n) for f, c, n in rows]
    more = max(total - len(rows), 0)
    if as_json:  # a list, as before; how many more there are goes to stderr
        print_json(flags)
        if more:
            err.print(f"{more:,} more not shown (of {total:,}): raise --limit or use --csv", highlight=False)
        return
    headers = ["connection", "record", "name", "owner", "kind", "move", "raised", "task", "reason"]
    cells = [
        [f["connection"], f"{f['object_type']} {f['id']}", f["name"] or "", f["owner_id"] or "", f["kind"],
         f"{f['from_tier']} → {f['to_tier']}", f["raised_at"].strftime("%Y-%m-%d"), f["task"], f["reason"]]
        for f in flags
    ]  # fmt: skip
    table, dropped = fit_table(
        headers, cells, wrap=("name", "reason"), drop_order=("task", "raised", "connection", "owner", "name")
    )
    out.print(table)
    if dropped:
        err.print(f"(left out for the terminal's width: {', '.join(dropped)}; see --json)", highlight=False)
    if more:
        out.print(f"{more:,} more not shown (of {total:,}): raise --limit, or write them all with --csv FILE")
    else:
        out.print(f"{total:,} flag{'s' if total != 1 else ''}")


def _flag_dict(f: ReengageFlag, connection: str, name: str | None) -> dict[str, Any]:
    return {
        "connection": connection, "object_type": f.object_type, "id": f.external_id, "name": name,
        "owner_id": f.owner_id, "state": f.state, "kind": f.kind, "from_tier": f.from_tier,
        "to_tier": f.to_tier, "icp_version": f.to_version, "reason": f.reason, "raised_at": f.raised_at,
        "task": f.task_status, "cleared": f.clear_reason,
    }  # fmt: skip


def _write_flags_csv(path: Path, flags: Iterable[dict[str, Any]]) -> int:
    """Every flag as a CSV row (cells escaped against formula injection); the number written."""
    n = 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(_FLAG_COLUMNS)
            for f in flags:
                writer.writerow([escape_formula(format_cell(f[c])) for c in _FLAG_COLUMNS])
                n += 1
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    return n


def _connector_for(name: str):
    cfg = STATE.connection(name)
    return cfg, build_connector(cfg.crm, cfg.options, env_prefix=cfg.env_prefix or "")


@fields_app.command("check")
@handle_errors
def fields_check(
    connection: str = typer.Option(..., "--connection", help="The connection whose CRM to check."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """List the owned fields missing from the CRM (exit code 1 when any is missing)."""
    cfg, connector = _connector_for(connection)
    objects = list(ordered(cfg.objects))
    try:
        missing = connector.check_fields(objects)  # type: ignore[arg-type]
    finally:
        connector.close()
    if as_json:
        print_json(
            {
                "connection": connection,
                "objects": objects,
                "missing": list(missing),
                "ok": not missing,
            }
        )
    elif missing:
        out.print("missing: " + ", ".join(missing))
    else:
        out.print(f"[green]ok[/] every owned field exists on {', '.join(objects)}")
    if missing:
        raise typer.Exit(1)


@fields_app.command("install")
@handle_errors
def fields_install(
    connection: str = typer.Option(..., "--connection", help="The connection whose CRM gets the fields."),
) -> None:
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
def connections_list(
    as_json: bool = typer.Option(False, "--json", help="Print the connections as JSON (options left out)."),
) -> None:
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
