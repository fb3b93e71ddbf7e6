"""``icp-worker runs [show N]``: the run history, and one run with its data-quality warnings."""

from __future__ import annotations

from typing import Any

import typer
from sqlalchemy import select

from worker.cli.common import STATE, UserError, err, fit_table, handle_errors, out, print_json
from worker.store.models import Connection, RunWarning, SyncRun

runs_app = typer.Typer(
    help="The run history, newest first (runs show N: one run and its warnings).",
    invoke_without_command=True,
    no_args_is_help=False,
)

#: Columns left out first when the terminal is narrow (numbers and statuses are never cut).
_DROP_ORDER = ("error", "seconds", "kind", "ICP", "started", "connection", "errors", "written")


def _as_dict(r: SyncRun, name: str | None) -> dict[str, Any]:
    return {
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


def _pulled(counts: dict[str, Any]) -> int:
    return sum(v for k, v in counts.items() if k.startswith("pulled_"))


@runs_app.callback()
@handle_errors
def runs(
    ctx: typer.Context,
    connection: str = typer.Option(None, "--connection", help="Only this connection's runs."),
    limit: int = typer.Option(20, "--limit", min=1, help="How many runs, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print the runs as JSON."),
) -> None:
    """The run history, newest first, with counts, API calls and errors."""
    if ctx.invoked_subcommand is not None:
        return
    with STATE.store().session() as s:
        q = select(SyncRun, Connection.name).outerjoin(Connection, Connection.id == SyncRun.connection_id)
        if connection:
            q = q.where(Connection.name == connection)
        rows = s.execute(q.order_by(SyncRun.id.desc()).limit(limit)).all()
    if as_json:
        print_json([_as_dict(r, name) for r, name in rows])
        return
    headers = ["run", "connection", "kind", "status", "ICP", "started", "pulled", "scored", "written",
               "errors", "warnings", "seconds", "error"]  # fmt: skip
    cells = []
    for r, name in rows:
        c = r.counts or {}
        cells.append([
            str(r.id), name or "-", r.kind, r.status, f"v{r.icp_version}" if r.icp_version else "-",
            r.started_at.strftime("%Y-%m-%d %H:%M"), f"{_pulled(c):,}", f"{c.get('scored', 0):,}",
            f"{c.get('written', 0):,}", f"{c.get('write_errors', 0):,}", f"{c.get('warnings', 0):,}",
            f"{(r.timings or {}).get('total', 0):.1f}", r.error or "",
        ])  # fmt: skip
    table, dropped = fit_table(
        headers, cells, drop_order=_DROP_ORDER, wrap=("error",),
        right=("pulled", "scored", "written", "errors", "warnings", "seconds"),
    )  # fmt: skip
    out.print(table)
    if dropped:
        err.print(f"(left out for the terminal's width: {', '.join(dropped)}; see --json)", highlight=False)


@runs_app.command("show")
@handle_errors
def show(
    run_id: int = typer.Argument(..., help="Run number (see icp-worker runs)."),
    as_json: bool = typer.Option(False, "--json", help="Print the run and its warnings as JSON."),
) -> None:
    """One run: status, counts, timings, API calls, error, and the data-quality warnings it recorded."""
    with STATE.store().session() as s:
        row = s.execute(
            select(SyncRun, Connection.name)
            .outerjoin(Connection, Connection.id == SyncRun.connection_id)
            .where(SyncRun.id == run_id)
        ).first()
        if row is None:
            raise UserError(f"no run {run_id} (see icp-worker runs)")
        run, name = row
        warnings = list(
            s.scalars(
                select(RunWarning)
                .where(RunWarning.run_id == run_id)
                .order_by(RunWarning.object_type, RunWarning.kind, RunWarning.field, RunWarning.count.desc())
            )
        )
    listed = [
        {"object_type": w.object_type, "kind": w.kind, "field": w.field, "raw_value": w.raw_value,
         "count": w.count, "example_ids": w.example_ids, "example_places": w.example_places}
        for w in warnings
    ]  # fmt: skip
    if as_json:
        print_json({**_as_dict(run, name), "warnings": listed})
        return
    c = run.counts or {}
    icp = f"v{run.icp_version}" if run.icp_version else "-"
    out.print(
        f"run {run.id} of {name or '-'}: {run.kind}, {run.status}, ICP {icp}, "
        f"started {run.started_at:%Y-%m-%d %H:%M:%S}, {(run.timings or {}).get('total', 0):.1f}s",
        highlight=False,
        markup=False,
    )
    out.print("counts: " + ", ".join(f"{k} {v:,}" for k, v in c.items()), highlight=False, markup=False)
    calls = (run.api_calls or {}).get("calls") or {}
    if calls:
        out.print("API calls: " + ", ".join(f"{k} {v:,}" for k, v in calls.items()), highlight=False)
    if run.error:
        out.print(f"error: {run.error}", highlight=False, markup=False)
    if not warnings:
        out.print("no data-quality warnings")
        return
    cells = []
    for w in warnings:
        examples = [f"{i} at {p}" if i and p and i != w.raw_value else (p or i)
                    for i, p in zip(w.example_ids or [], w.example_places or [], strict=False)]  # fmt: skip
        raw = "(other values)" if w.raw_value is None else repr(w.raw_value)
        shown = ", ".join(e for e in examples if e)
        cells.append([w.object_type, w.kind, w.field, raw, f"{w.count:,}", shown])
    table, _ = fit_table(
        ["object", "kind", "field", "raw value", "count", "examples"], cells,
        wrap=("raw value", "examples"), right=("count",),
    )  # fmt: skip
    out.print(f"data-quality warnings ({sum(w.count for w in warnings):,}):")
    out.print(table)
