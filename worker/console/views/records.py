"""Records: search by id or name, and a record's page (its fit, reasons, history, re-engagement)."""

from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from worker.console import data
from worker.console.auth import SignedIn
from worker.console.http import console_of, not_found, render, view
from worker.store.models import FitHistory, RecordFit, RecordSnapshot, ReengageFlag


@view("viewer")
def record_search(request: Request, user: SignedIn) -> Response:
    q = request.query_params.get("q", "")
    with console_of(request).store.session() as s:
        rows = data.search_records(s, q) if q.strip() else []
    return render(request, "records.html", user, title="Records", q=q, rows=rows)


@view("viewer")
def record_page(request: Request, user: SignedIn) -> Response:
    p = request.path_params
    with console_of(request).store.session() as s:
        conn = data.connection_by_name(s, p["connection"])
        if conn is None:
            return not_found(request, user, "No such connection.")
        snap = s.scalar(
            select(RecordSnapshot).where(
                RecordSnapshot.connection_id == conn.id,
                RecordSnapshot.object_type == p["object_type"],
                RecordSnapshot.external_id == p["record_id"],
            )
        )
        if snap is None:
            return not_found(request, user, "No such record.")
        fit = s.get(RecordFit, snap.id)
        history = list(
            s.scalars(
                select(FitHistory)
                .where(
                    FitHistory.connection_id == conn.id,
                    FitHistory.object_type == snap.object_type,
                    FitHistory.external_id == snap.external_id,
                )
                .order_by(FitHistory.scored_at.desc(), FitHistory.id.desc())
                .limit(200)
            )
        )
        flags = list(
            s.scalars(
                select(ReengageFlag)
                .where(
                    ReengageFlag.connection_id == conn.id,
                    ReengageFlag.object_type == snap.object_type,
                    ReengageFlag.external_id == snap.external_id,
                )
                .order_by(ReengageFlag.id.desc())
            )
        )
    return render(
        request,
        "record.html",
        user,
        title=snap.name or snap.external_id,
        connection=conn.name,
        snap=snap,
        fit=fit,
        history=history,
        flags=flags,
    )


ROUTES = [
    Route("/records", record_search),
    Route("/records/{connection}/{object_type}/{record_id}", record_page),
]
