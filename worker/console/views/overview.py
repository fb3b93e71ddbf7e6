"""The overview per connection, the runs with their record errors and warnings, the re-engagement queue."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from connectors.files.cells import escape_formula
from worker import quality
from worker.console import actions, charts, data
from worker.console.auth import SignedIn
from worker.console.http import console_of, not_found, render, view
from worker.icp.model import DEFAULT_FALLBACK_TIER, DEFAULT_TIERS, DISQUALIFIED, INSUFFICIENT_DATA
from worker.icp.versions import latest_icp, spec_of

QUEUE_PAGE = 200
CSV_COLUMNS = [
    "connection", "object_type", "id", "name", "owner_id", "state", "kind", "from_tier", "to_tier",
    "icp_version", "reason", "raised_at", "task", "cleared",
]  # fmt: skip


def tier_order(session) -> list[str]:
    current = latest_icp(session)
    if current is not None:
        return list(spec_of(current).tier_names)
    return [*(t for t, _ in DEFAULT_TIERS), DEFAULT_FALLBACK_TIER, DISQUALIFIED, INSUFFICIENT_DATA]


@view("viewer")
def home(request: Request, user: SignedIn) -> Response:
    c = console_of(request)
    configured = [(cfg.name, cfg.crm) for cfg in c.config().connections]
    with c.store.session() as s:
        order = tier_order(s)
        overviews = data.overview(s, configured)
        current = latest_icp(s)
        held = actions.held_versions(s)
    charts_by_conn = {ov.name: charts.tier_bars(ov.tiers, order) for ov in overviews}
    return render(
        request,
        "overview.html",
        user,
        title="Overview",
        overviews=overviews,
        charts=charts_by_conn,
        current=current,
        held=held,
    )


@view("viewer")
def runs(request: Request, user: SignedIn) -> Response:
    c = console_of(request)
    connection = request.query_params.get("connection", "")
    with c.store.session() as s:
        rows = data.list_runs(s, connection or None, 100)
        choices = data.connection_names(s)
    return render(request, "runs.html", user, title="Runs", rows=rows, connection=connection, choices=choices)


@view("viewer")
def run_detail(request: Request, user: SignedIn) -> Response:
    c = console_of(request)
    try:
        run_id = int(request.path_params["run_id"])
    except ValueError:
        return not_found(request, user, "No such run.")
    with c.store.session() as s:
        found = data.get_run(s, run_id)
        if found is None:
            return not_found(request, user, f"No run {run_id}.")
        run, name = found
        errors = data.record_errors(s, run.connection_id) if run.connection_id else []
        report, coverage_version = None, None
        if name is not None:
            current = latest_icp(s)
            spec = spec_of(current) if current else None
            coverage_version = current.number if current else None
            # a re-evaluation reads no data: its quality is that of the last run that pulled
            pulled = run.kind != "reevaluate"
            report = quality.build_report(s, name, run_id=run.id if pulled else None, spec=spec)
    return render(
        request,
        "run.html",
        user,
        title=f"Run {run.id}",
        run=run,
        connection=name,
        errors=errors,
        report=report,
        coverage_version=coverage_version,
    )


def _filter(request: Request) -> data.FlagFilter:
    q = request.query_params
    return data.FlagFilter(
        connection=q.get("connection", ""),
        owner=q.get("owner", ""),
        kind=q.get("kind", ""),
        tier=q.get("tier", ""),
        include_cleared=q.get("all", "") == "1",
    )


@view("viewer")
def reengage(request: Request, user: SignedIn) -> Response:
    c = console_of(request)
    f = _filter(request)
    with c.store.session() as s:
        rows, total = data.flags(s, f, QUEUE_PAGE)
        choices = data.flag_choices(s)
    partial = request.headers.get("hx-request") and not request.headers.get("hx-history-restore-request")
    response = render(
        request,
        "reengage_table.html" if partial else "reengage.html",
        user,
        title="Re-engagement",
        rows=rows,
        total=total,
        f=f,
        choices=choices,
        query=request.url.query,
    )
    response.headers["vary"] = "HX-Request"
    return response


def _csv_lines(request: Request, f: data.FlagFilter) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    yield buf.getvalue()
    with console_of(request).store.session() as s:
        for flag, conn, name in data.iter_flags(s, f):
            buf.seek(0)
            buf.truncate()
            cells = [
                    conn,
                    flag.object_type,
                    flag.external_id,
                    name or "",
                    flag.owner_id or "",
                    flag.state,
                    flag.kind,
                    flag.from_tier,
                    flag.to_tier,
                    flag.to_version,
                    flag.reason,
                    flag.raised_at.isoformat(),
                    flag.task_status,
                    flag.clear_reason or "",
            ]  # fmt: skip
            writer.writerow([escape_formula(str(c)) for c in cells])
            yield buf.getvalue()


@view("viewer")
def reengage_csv(request: Request, user: SignedIn) -> Response:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        _csv_lines(request, _filter(request)),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="reengage-{stamp}.csv"'},
    )


ROUTES = [
    Route("/", home),
    Route("/runs", runs),
    Route("/runs/{run_id}", run_detail),
    Route("/reengage", reengage),
    Route("/reengage.csv", reengage_csv),
]
