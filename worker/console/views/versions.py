"""ICP versions: the history (author, note, who approved), each version's YAML, a diff between any two,
roll back."""

from __future__ import annotations

import difflib

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from worker.console import actions, data
from worker.console.auth import SignedIn
from worker.console.http import action, bad_request, console_of, not_found, render, view
from worker.icp import versions
from worker.icp.revisions import diff_specs
from worker.icp.spec import IcpValidationError
from worker.icp.versions import latest_icp, spec_of

#: What the page says after a button was pressed (fixed texts: nothing from the query string is shown).
DONE = {
    "published": "Published: this is the current version; its re-evaluation has run or is queued (see Runs).",
    "rolled-back": "Rolled back: this version carries the old content and is current (see Runs).",
    "unchanged": "Nothing published: the content is identical to this version.",
    "held": "Held for approval: nothing is written until an approver approves it.",
    "approved": "Approved: this is the current version; its re-evaluation has run or is queued (see Runs).",
    "rejected": "Rejected: this version will never be published.",
}


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@view("viewer")
def version_list(request: Request, user: SignedIn) -> Response:
    c = console_of(request)
    with c.store.session() as s:
        rows = list(reversed(versions.history(s)))
        current = latest_icp(s)
        events = data.audit_for(s)
        held = actions.held_versions(s)
    return render(
        request,
        "versions.html",
        user,
        title="ICP versions",
        rows=rows,
        current=current,
        events=events,
        held=held,
    )


@view("viewer")
def version_show(request: Request, user: SignedIn) -> Response:
    c = console_of(request)
    number = _int(request.path_params["number"])
    with c.store.session() as s:
        try:
            version = versions.get_version(s, number or 0)
        except versions.UnknownVersionError as exc:
            return not_found(request, user, str(exc))
        current = latest_icp(s)
        events = data.audit_for(s, [version.number]).get(version.number, [])
        numbers = [v.number for v in versions.history(s)]
    return render(
        request,
        "version.html",
        user,
        title=f"ICP v{version.number}",
        version=version,
        current=current,
        events=events,
        numbers=numbers,
        lines=version.content.splitlines(),
        done=DONE.get(request.query_params.get("done", ""), ""),
    )


@view("viewer")
def version_diff(request: Request, user: SignedIn) -> Response:
    c = console_of(request)
    a, b = _int(request.query_params.get("a")), _int(request.query_params.get("b"))
    with c.store.session() as s:
        numbers = [v.number for v in versions.history(s)]
        if a is None or b is None:
            if len(numbers) < 2:
                return render(request, "diff.html", user, title="Diff", numbers=numbers, a=None, b=None,
                              changes=[], text_diff=[])  # fmt: skip
            a, b = numbers[-2], numbers[-1]
        try:
            old, new = versions.get_version(s, a), versions.get_version(s, b)
        except versions.UnknownVersionError as exc:
            return not_found(request, user, str(exc))
        old_text, new_text = old.content, new.content
        try:
            changes = diff_specs(spec_of(old), spec_of(new))
        except IcpValidationError:
            changes = ["(a version no longer validates: only the text diff is shown)"]
    text_diff = list(
        difflib.unified_diff(old_text.splitlines(), new_text.splitlines(), f"v{a}", f"v{b}", lineterm="", n=3)
    )
    return render(
        request, "diff.html", user, title=f"v{a} → v{b}", numbers=numbers, a=a, b=b, changes=changes,
        text_diff=text_diff,
    )  # fmt: skip


@action("approver")
def version_rollback(request: Request, user: SignedIn, form: FormData) -> Response:
    c = console_of(request)
    number = _int(request.path_params["number"])
    if number is None:
        return not_found(request, user, "No such version.")
    try:
        outcome = actions.rollback_to(c.store, c.config(), number, author=user.name)
    except versions.UnknownVersionError as exc:
        return not_found(request, user, str(exc))
    except IcpValidationError as exc:
        return bad_request(request, user, f"v{number} no longer validates: {exc}")
    done = "rolled-back" if outcome.created else "unchanged"
    return RedirectResponse(f"/icp/v{outcome.number}?done={done}", status_code=303)


ROUTES = [
    Route("/icp", version_list),
    Route("/icp/diff", version_diff),
    Route("/icp/v{number}", version_show),
    Route("/icp/v{number}/rollback", version_rollback, methods=["POST"]),
]
