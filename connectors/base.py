"""The seam between the sync service and a CRM.

A connector translates: it pulls pages of records with CRM fields already renamed to canonical
attribute names (values still raw: ``worker.normalize`` cleans them in one place for every CRM),
writes batches of owned-field updates, creates follow-up tasks, installs and checks the owned
fields, and reports its API usage. It raises only ``connectors.errors`` types.

Object types are canonical: ``account`` (Salesforce Account, HubSpot company), ``opportunity``
(Opportunity, deal) and ``lead`` (Lead, contact or HubSpot lead).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Protocol, runtime_checkable

ObjectType = Literal["account", "opportunity", "lead"]
OBJECT_TYPES: tuple[ObjectType, ...] = ("account", "opportunity", "lead")

#: The fields this program owns on every enabled object, by canonical name. Nothing else is written.
OWNED_FIELDS: tuple[str, ...] = (
    "fit_score",
    "fit_tier",
    "fit_reasons",
    "icp_version",
    "scored_at",
    "reengage_flag",
    "reengage_reason",
)

#: The owned fields' API names in each CRM, by canonical name: the one map every connector's defaults
#: come from (a connection may rename them in its options). The files connector's re-import columns
#: carry Salesforce's names, so that a re-import file maps onto the Salesforce fields as it is.
OWNED_API_NAMES: dict[str, dict[str, str]] = {
    "salesforce": {
        "fit_score": "ICP_Fit_Score__c",
        "fit_tier": "ICP_Fit_Tier__c",
        "fit_reasons": "ICP_Fit_Reasons__c",
        "icp_version": "ICP_Version__c",
        "scored_at": "ICP_Scored_At__c",
        "reengage_flag": "ICP_Reengage__c",
        "reengage_reason": "ICP_Reengage_Reason__c",
    },
    "hubspot": {
        "fit_score": "icp_fit_score",
        "fit_tier": "icp_fit_tier",
        "fit_reasons": "icp_fit_reasons",
        "icp_version": "icp_version",
        "scored_at": "icp_scored_at",
        "reengage_flag": "icp_reengage",
        "reengage_reason": "icp_reengage_reason",
    },
}
OWNED_API_NAMES["files"] = OWNED_API_NAMES["salesforce"]

#: Status keys a connector fills in ``CrmRecord.status`` (absent keys mean unknown):
#: lead:        lead_status (str), is_converted (bool)
#: opportunity: account_id (str), stage (str), is_closed (bool), is_won (bool), amount (number),
#:              close_date (date)
#: account:     is_customer (bool, optional; otherwise derived from won opportunities)
STATUS_KEYS = (
    "lead_status",
    "is_converted",
    "account_id",
    "stage",
    "is_closed",
    "is_won",
    "amount",
    "close_date",
    "is_customer",
)


@dataclass(slots=True)
class CrmRecord:
    """One CRM record as pulled: canonical attribute names, raw values."""

    object_type: ObjectType
    external_id: str
    raw: dict[str, Any]
    status: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    owner_id: str | None = None
    last_activity: date | None = None
    #: The CRM's modification stamp, ISO 8601 in UTC (``2026-11-23T02:00:00.000Z``): orders pulls.
    modstamp: str = ""


#: Kinds of ``DataProblem`` a connector reports (the normaliser adds ``unreadable`` and ``impossible``).
PROBLEM_KINDS = ("unreadable", "impossible", "duplicate_id", "missing_id", "unreadable_stamp")


@dataclass(slots=True, frozen=True)
class DataProblem:
    """Something in the pulled data that was skipped or left unknown: ``kind`` (see ``PROBLEM_KINDS``),
    the canonical ``field``, the ``raw`` value as text, the record id when there is one and where it is
    (``accounts.csv line 12``). A connector that finds such problems offers ``take_problems()``, which
    returns those found since the last call (the sync service stores them with the run)."""

    kind: str
    field: str
    raw: str
    record_id: str | None = None
    where: str = ""


@dataclass(slots=True)
class Page:
    """A page of records and the cursor to resume after it (commit the page, then store the cursor)."""

    records: list[CrmRecord]
    cursor: str | None


@dataclass(slots=True, frozen=True)
class FitUpdate:
    """Owned-field values for one record, keyed by names in ``OWNED_FIELDS``."""

    external_id: str
    fields: dict[str, Any]


@dataclass(slots=True, frozen=True)
class WriteResult:
    """The CRM's answer for one record of a write batch."""

    external_id: str
    ok: bool
    error_code: str | None = None
    error_message: str | None = None
    #: A lock or a passing fault: try again on the next run (the connector already retried in-run).
    retryable: bool = False
    #: The field the CRM refused, when it says (an API name, or an owned field's canonical name).
    field: str | None = None


@dataclass(slots=True, frozen=True)
class FollowUpTask:
    """A follow-up task for a record's owner. ``key`` is unique per re-engagement flag: the
    connector must never create a second task with the same key (look it up before creating)."""

    key: str
    object_type: ObjectType
    external_id: str
    owner_id: str | None
    subject: str
    description: str
    due_date: date


@dataclass(slots=True, frozen=True)
class TaskResult:
    key: str
    ok: bool
    task_id: str | None = None
    error: str | None = None
    #: True when a task with this key already existed and none was created.
    existed: bool = False


@dataclass(slots=True)
class ApiUsage:
    """API calls made by this connector instance, by kind, plus the CRM's own daily figures if known."""

    calls: dict[str, int] = field(default_factory=lambda: {"read": 0, "write": 0, "other": 0})
    daily_used: int | None = None
    daily_limit: int | None = None

    def count(self, kind: str, n: int = 1) -> None:
        self.calls[kind] = self.calls.get(kind, 0) + n

    def as_dict(self) -> dict[str, Any]:
        return {"calls": dict(self.calls), "daily_used": self.daily_used, "daily_limit": self.daily_limit}


@runtime_checkable
class RunAware(Protocol):
    """A connector that keeps what each run wrote apart (the files connector: ``OUT/run-<id>/``)."""

    def start_run(self, run_id: int) -> None:
        """Called once, before anything of the run ``run_id`` is written."""


@runtime_checkable
class Connector(Protocol):
    """What the sync service needs from a CRM.

    Two optional attributes let the sync service keep requests in flight: ``parallel_pulls = True``
    (the object types may be pulled at once, from several threads: ``pull`` is thread-safe) and
    ``records_per_write_call`` (hand ``write`` that many records at a time, which it sends as several
    batches in parallel; default ``write_batch_size``).
    """

    crm: str
    #: Records per write request the CRM allows (Salesforce 200, HubSpot 100).
    write_batch_size: int

    def check_fields(self, object_types: Sequence[ObjectType]) -> list[str]:
        """Owned fields that are missing, as ``object.field`` strings (empty when all exist)."""

    def install_fields(self, object_types: Sequence[ObjectType]) -> list[str]:
        """Create the owned fields that are missing; return what was created (empty on a re-run)."""

    def pull(self, object_type: ObjectType, since: str | None) -> Iterator[Page]:
        """Pages of records modified at or after ``since`` (minus the connector's look-back),
        ascending by modification stamp; ``since=None`` pulls everything. Lazy: one page in memory."""

    def write(self, object_type: ObjectType, updates: Sequence[FitUpdate]) -> list[WriteResult]:
        """Write owned fields; one result per update, in order. Raises only for whole-run failures."""

    def create_tasks(self, tasks: Sequence[FollowUpTask]) -> list[TaskResult]:
        """Create follow-up tasks idempotently by ``FollowUpTask.key``."""

    def usage(self) -> ApiUsage:
        """API usage so far."""

    def close(self) -> None:
        """Release sessions and files."""
