"""Records: search by id or name, and a record's page: the explanation ``icp-worker explain`` gives (every
criterion with the value read, missing attributes, disqualifiers, what the CRM holds), its history of changes
with their causes, the fit it had on a date, and what would lift it into the next tier."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from worker.console import data
from worker.console.auth import SignedIn
from worker.console.http import console_of, not_found, render, view
from worker.store.explain import NotScoredError, UnknownRecordError, find_record, load_explanation


@view("viewer")
def record_search(request: Request, user: SignedIn) -> Response:
    q = request.query_params.get("q", "")
    with console_of(request).store.session() as s:
        rows = data.search_records(s, q) if q.strip() else []
    return render(request, "records.html", user, title="Records", q=q, rows=rows)


def _as_of(text: str) -> datetime | None:
    """A date (the end of that day, UTC) or a date and time; None when empty or unreadable."""
    value = text.strip()
    if not value:
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time.max, tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@view("viewer")
def record_page(request: Request, user: SignedIn) -> Response:
    p = request.path_params
    as_of_text = request.query_params.get("as_of", "")
    as_of = _as_of(as_of_text)
    explanation, snap = None, None
    with console_of(request).store.session() as s:
        try:
            snap, _ = find_record(s, p["record_id"], p["connection"], p["object_type"])
            explanation = load_explanation(
                s, p["record_id"], connection=p["connection"], object_type=p["object_type"], as_of=as_of
            )
        except UnknownRecordError:
            return not_found(request, user, "No such record.")
        except NotScoredError:
            pass  # the page says so
    return render(
        request,
        "record.html",
        user,
        title=(snap.name if snap is not None else None) or p["record_id"],
        connection=p["connection"],
        snap=snap,
        e=explanation,
        as_of_text=as_of_text,
        as_of_invalid=bool(as_of_text.strip()) and as_of is None,
    )


ROUTES = [
    Route("/records", record_search),
    Route("/records/{connection}/{object_type}/{record_id}", record_page),
]
