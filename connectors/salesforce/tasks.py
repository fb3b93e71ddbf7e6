"""Follow-up Tasks for re-engagement flags, created at most once per ``FollowUpTask.key``.

The key is hashed to a short token and embedded in the Subject as ``[icp:0123456789abcdef]``: Subject
is filterable in SOQL (Description, a long text area, is not), so before creating anything the
connector looks the tokens up (``queryAll``, so a task a rep deleted is not created again). A run that
died right after Salesforce created a task finds it on the next run. A create request is never
blindly repeated: after a transient failure the tokens are looked up again first, because the failed
request may have been carried out.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from simple_salesforce.format import format_soql

from connectors.base import FollowUpTask, TaskResult
from connectors.errors import TransientError
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.options import TaskOptions
from connectors.salesforce.write import COLLECTION_LIMIT

log = logging.getLogger("connectors.salesforce")

SUBJECT_MAX = 255
DESCRIPTION_MAX = 32_000
_TOKEN = re.compile(r"\[icp:([0-9a-f]{16})\]")


def task_token(key: str) -> str:
    """A stable 16-hex-digit token for a task key (fits any Subject, needs no SOQL escaping)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def task_subject(subject: str, token: str) -> str:
    """``subject`` with the token marker at the end, cut so the whole fits Salesforce's 255 characters."""
    marker = f"[icp:{token}]"
    room = SUBJECT_MAX - len(marker) - 1
    text = " ".join(subject.split())
    if len(text) > room:
        text = text[: room - 1] + "…"
    return f"{text} {marker}"


def token_of(subject: str | None) -> str | None:
    match = _TOKEN.search(subject or "")
    return match.group(1) if match else None


def _batches(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def find_existing(client: SalesforceClient, tokens: Sequence[str], batch: int) -> dict[str, str]:
    """token -> Task id, for tokens that already have a Task (deleted ones included)."""
    found: dict[str, str] = {}
    for chunk in _batches(list(tokens), batch):
        where = " OR ".join(format_soql("Subject LIKE {}", f"%[icp:{token}]%") for token in chunk)
        result: dict[str, Any] = client.query(
            f"SELECT Id, Subject FROM Task WHERE {where}", include_deleted=True
        )
        while True:
            for row in result.get("records") or ():
                token = token_of(row.get("Subject"))
                if token and token not in found:
                    found[token] = row["Id"]
            if result.get("done", True) or not result.get("nextRecordsUrl"):
                break
            result = client.query_more(result["nextRecordsUrl"])
    return found


def _task_record(task: FollowUpTask, token: str, options: TaskOptions) -> dict[str, Any]:
    record: dict[str, Any] = {
        "attributes": {"type": "Task"},
        "Subject": task_subject(task.subject, token),
        "Description": (task.description or "")[:DESCRIPTION_MAX],
        "ActivityDate": task.due_date.isoformat(),
        "Status": options.status,
        "Priority": options.priority,
    }
    record["WhoId" if task.object_type == "lead" else "WhatId"] = task.external_id
    if task.owner_id:
        record["OwnerId"] = task.owner_id
    return record


def create_tasks(
    client: SalesforceClient,
    tasks: Sequence[FollowUpTask],
    *,
    options: TaskOptions,
    max_attempts: int,
    backoff: Callable[[int], float],
    sleep: Callable[[float], None],
) -> list[TaskResult]:
    """Create the tasks that do not exist yet; one result per task, in order."""
    tokens = [task_token(t.key) for t in tasks]
    first_of: dict[str, FollowUpTask] = {}
    for token, task in zip(tokens, tasks, strict=True):
        first_of.setdefault(token, task)
    existed = find_existing(client, list(first_of), options.lookup_batch)
    created: dict[str, str] = {}
    failed: dict[str, str] = {}
    todo = [token for token in first_of if token not in existed]
    attempt = 1
    while todo:
        try:
            for start in range(0, len(todo), COLLECTION_LIMIT):
                chunk = todo[start : start + COLLECTION_LIMIT]
                payload = {
                    "allOrNone": False,
                    "records": [_task_record(first_of[t], t, options) for t in chunk],
                }
                answer = (
                    client.rest("write", "composite/sobjects", method="POST", json=payload, retry=False) or []
                )
                for token, save in zip(chunk, answer, strict=False):
                    if save.get("success"):
                        created[token] = save["id"]
                    else:
                        errors = save.get("errors") or [{}]
                        failed[token] = f"{errors[0].get('statusCode')}: {errors[0].get('message')}"
            todo = []
        except TransientError as exc:
            if attempt >= max_attempts:
                raise
            wait = backoff(attempt)
            log.warning("creating follow-up tasks failed (%s); looking them up again in %.1fs", exc, wait)
            sleep(wait)
            attempt += 1
            left = [t for t in todo if t not in created and t not in failed]
            again = find_existing(client, left, options.lookup_batch)
            existed.update({t: again[t] for t in left if t in again})
            todo = [t for t in left if t not in again]

    results: list[TaskResult] = []
    for token, task in zip(tokens, tasks, strict=True):
        if token in created and first_of[token] is task:
            results.append(TaskResult(task.key, True, task_id=created[token]))
        elif token in created:
            results.append(TaskResult(task.key, True, task_id=created[token], existed=True))
        elif token in existed:
            results.append(TaskResult(task.key, True, task_id=existed[token], existed=True))
        else:
            results.append(TaskResult(task.key, False, error=failed.get(token, "not created")))
    return results
