"""The draft editor: paste or upload YAML, see each error at its line, preview the impact, publish."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from worker.console import actions, drafts
from worker.console.auth import SignedIn
from worker.console.http import MAX_FORM_BYTES, action, bad_request, console_of, form_text, render, view
from worker.icp.spec import IcpValidationError
from worker.icp.versions import latest_icp
from worker.sync.plan import RECORD_COLUMNS, record_cells


def _check(request: Request, text: str) -> drafts.DraftCheck:
    c = console_of(request)
    with c.store.session() as s:
        return drafts.check_draft(text, c.config().connections, s)


def _draft_text(request: Request, form: FormData) -> drafts.DraftCheck:
    """The uploaded file if one was chosen, else the text area; checked."""
    upload = form.get("upload")
    if isinstance(upload, UploadFile) and upload.filename:
        raw = upload.file.read(MAX_FORM_BYTES + 1)
        if len(raw) > MAX_FORM_BYTES:
            return drafts.DraftCheck("", errors=[drafts.Problem(1, "", "the file is larger than 1 MiB")])
        text, problems = drafts.decode_upload(raw)
        if problems:
            return drafts.DraftCheck(text, errors=problems)
        return _check(request, text)
    return _check(request, form_text(form, "yaml"))


def _editor(request: Request, user: SignedIn, check: drafts.DraftCheck | None, text: str, status: int = 200
            ) -> Response:  # fmt: skip
    if request.headers.get("hx-request") and check:
        # htmx swaps only 2xx answers: the errors are the content of this partial
        return render(request, "draft_check.html", user, title="Draft ICP", check=check, text=text)
    return render(request, "draft.html", user, status=status, title="Draft ICP", check=check, text=text)


@view("editor")
def draft_form(request: Request, user: SignedIn) -> Response:
    c = console_of(request)
    with c.store.session() as s:
        current = latest_icp(s)
        text = current.content if current else ""
    return _editor(request, user, None, text)


@action("editor")
def draft_check(request: Request, user: SignedIn, form: FormData) -> Response:
    check = _draft_text(request, form)
    return _editor(request, user, check, check.text, status=200 if check.ok else 422)


@action("editor")
def draft_preview(request: Request, user: SignedIn, form: FormData) -> Response:
    check = _draft_text(request, form)
    if not check.ok or check.spec is None:
        return _editor(request, user, check, check.text, status=422)
    c = console_of(request)
    with c.store.session() as s:
        preview = drafts.preview_draft(s, c.config(), check.spec)
    return render(
        request, "preview.html", user, title="Preview", check=check, preview=preview, text=check.text
    )


@action("editor")
def draft_records(request: Request, user: SignedIn, form: FormData) -> Response:
    """The records a publish would write, as CSV (the columns of ``icp preview --records``)."""
    check = _check(request, form_text(form, "yaml"))
    if not check.ok or check.spec is None:
        return _editor(request, user, check, check.text, status=422)
    c = console_of(request)
    with c.store.session() as s:
        rows = drafts.record_rows(s, c.config(), check.spec)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(RECORD_COLUMNS)
    writer.writerows(record_cells(row) for row in rows)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="preview-records-{stamp}.csv"'},
    )


@action("editor")
def draft_publish(request: Request, user: SignedIn, form: FormData) -> Response:
    check = _check(request, form_text(form, "yaml"))
    note = form_text(form, "note").strip()
    if not check.ok:
        return _editor(request, user, check, check.text, status=422)
    if not note:
        return bad_request(request, user, "Say why in the note: it is kept with the version.")
    c = console_of(request)
    try:
        done = actions.publish_draft(c.store, c.config(), check.text, author=user.name, note=note)
    except IcpValidationError as exc:
        return bad_request(request, user, str(exc))
    return RedirectResponse(f"/icp/v{done.number}?done={done.action}", status_code=303)


ROUTES = [
    Route("/icp/draft", draft_form, methods=["GET"]),
    Route("/icp/draft/check", draft_check, methods=["POST"]),
    Route("/icp/draft/preview", draft_preview, methods=["POST"]),
    Route("/icp/draft/records.csv", draft_records, methods=["POST"]),
    Route("/icp/draft/publish", draft_publish, methods=["POST"]),
]
