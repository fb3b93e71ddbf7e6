"""Follow-up tasks for re-engagement flags, created at most once per ``FollowUpTask.key``.

The key is stored in a task property of our own (``icp_task_key``, installed with the owned fields)
and also shown in the task body. Before creating, the tasks whose keys already exist are found with
one search per 100 keys (``IN`` filter) and left alone, so a retried run, or one that died right after
creating, never makes a second task. Creation is a batch create (100 a request) with the association to
the record in the same request (v4 association types, HUBSPOT_DEFINED: task->company 192,
task->deal 216, task->contact 204).

Task creation is not idempotent on the wire, so a create that fails in a way that may have reached
HubSpot (a 5xx, a timeout) is not retried in-run: it is reported as failed and retryable, and the next
run's key search finds the task if it was in fact created. (HubSpot's search index lags writes by a few
seconds, which is why the retry is left to the next run rather than done at once.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time
from typing import Any

from connectors.base import FollowUpTask, ObjectType, TaskResult
from connectors.errors import PermanentError, TransientError
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.options import HubSpotOptions

#: HUBSPOT_DEFINED association type ids from a task to a record.
TASK_ASSOCIATION_TYPES: dict[str, int] = {"account": 192, "opportunity": 216, "contact": 204}
BATCH = 100


def association_type(object_type: ObjectType, options: HubSpotOptions) -> int | None:
    configured = options.task_association_type_ids.get(object_type)
    if configured is not None:
        return configured
    if object_type == "lead":
        return TASK_ASSOCIATION_TYPES["contact"] if options.lead_object == "contact" else None
    return TASK_ASSOCIATION_TYPES[object_type]


def task_properties(task: FollowUpTask, key_property: str) -> dict[str, str]:
    due = datetime.combine(task.due_date, time(), tzinfo=UTC)
    props = {
        "hs_task_subject": task.subject[:255],
        "hs_task_body": f"{task.description}\n\n[icp follow-up {task.key}]",
        "hs_timestamp": due.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "hs_task_status": "NOT_STARTED",
        "hs_task_type": "TODO",
        key_property: task.key,
    }
    if task.owner_id:
        props["hubspot_owner_id"] = str(task.owner_id)
    return props


class TaskCreator:
    def __init__(self, client: HubSpotClient, options: HubSpotOptions) -> None:
        self.client = client
        self.options = options

    def existing(self, keys: Sequence[str]) -> dict[str, str]:
        """Key -> id of the tasks that already carry one of ``keys``."""
        found: dict[str, str] = {}
        prop = self.options.task_key_property
        api = self.client.api("objects.search")
        for start in range(0, len(keys), BATCH):
            chunk = list(keys[start : start + BATCH])
            after = "0"  # HubSpot's spec requires ``after`` on every search request, the first too
            while True:
                body: dict[str, Any] = {
                    "filterGroups": [
                        {"filters": [{"propertyName": prop, "operator": "IN", "values": chunk}]}
                    ],
                    "properties": [prop],
                    "limit": 200,
                    "after": after,
                }
                answer = self.client.call("read", "search tasks", api.do_search_with_http_info, "tasks", body)
                for task in (answer.body or {}).get("results") or ():
                    key = (task.get("properties") or {}).get(prop)
                    if key:
                        found.setdefault(key, str(task["id"]))
                following = (((answer.body or {}).get("paging") or {}).get("next") or {}).get("after")
                if not following:
                    break
                after = str(following)
        return found

    def create(self, tasks: Sequence[FollowUpTask]) -> list[TaskResult]:
        unique: dict[str, FollowUpTask] = {}
        for task in tasks:
            unique.setdefault(task.key, task)
        existing = self.existing(list(unique))
        outcome: dict[str, TaskResult] = {
            k: TaskResult(k, True, task_id=i, existed=True) for k, i in existing.items()
        }
        to_create: list[tuple[FollowUpTask, dict[str, Any]]] = []
        for key, task in unique.items():
            if key in outcome:
                continue
            type_id = association_type(task.object_type, self.options)
            if type_id is None:
                outcome[key] = TaskResult(
                    key,
                    False,
                    error="no task association type for the Leads object: set task_association_type_ids.lead",
                )
                continue
            to_create.append(
                (
                    task,
                    {
                        "properties": task_properties(task, self.options.task_key_property),
                        "associations": [
                            {
                                "to": {"id": str(task.external_id)},
                                "types": [
                                    {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}
                                ],
                            }
                        ],
                    },
                )
            )
        api = self.client.api("objects.batch")
        for start in range(0, len(to_create), BATCH):
            chunk = to_create[start : start + BATCH]
            try:
                answer = self.client.call(
                    "write",
                    "create tasks",
                    api.create_with_http_info,
                    "tasks",
                    {"inputs": [item for _, item in chunk]},
                    idempotent=False,
                )
            except TransientError as exc:
                for task, _ in chunk:
                    outcome[task.key] = TaskResult(task.key, False, error=f"{exc.message} (retried next run)")
                continue
            except PermanentError as exc:
                for task, _ in chunk:
                    outcome[task.key] = TaskResult(task.key, False, error=exc.message)
                continue
            body = answer.body or {}
            created = {
                (r.get("properties") or {}).get(self.options.task_key_property): str(r["id"])
                for r in body.get("results") or ()
            }
            errors = "; ".join(str(e.get("message")) for e in body.get("errors") or ())
            for task, _ in chunk:
                task_id = created.get(task.key)
                outcome[task.key] = (
                    TaskResult(task.key, True, task_id=task_id)
                    if task_id
                    else TaskResult(task.key, False, error=errors or "not created")
                )
        return [
            outcome[t.key]
            if t is unique[t.key]
            else TaskResult(
                t.key, outcome[t.key].ok, outcome[t.key].task_id, outcome[t.key].error, existed=True
            )
            for t in tasks
        ]
