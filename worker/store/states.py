"""Every state the store keeps, defined once.

The columns hold the plain strings (``StrEnum`` members are ``str``: they compare equal to what the
store hands back and serialise to JSON as their value), so these names never change the schema.
"""

from __future__ import annotations

from enum import StrEnum


class WriteStatus(StrEnum):
    """``record_fits.write_status``: whether the CRM holds the fit's desired owned values."""

    PENDING = "pending"  # a write is due
    OK = "ok"  # the CRM holds what the fit wants
    ERROR = "error"  # the last write failed: kept, and retried first by the next run


class FlagState(StrEnum):
    """``reengage_flags.state``."""

    ACTIVE = "active"
    CLEARED = "cleared"


class FlagKind(StrEnum):
    """``reengage_flags.kind``: why the record was flagged."""

    DISMISSED = "dismissed"  # a dismissed lead, or an account whose last deal was lost
    STALE = "stale"  # no activity for the connection's stale_days
    BACKLOG = "backlog"  # already fit a target tier when the connection was first synced


class TaskStatus(StrEnum):
    """``reengage_flags.task_status``: the flag's follow-up task."""

    NONE = "none"  # not wanted (tasks off, or the flag cleared before its task)
    DUE = "due"
    CREATED = "created"
    CAPPED = "capped"  # over the per-owner cap of its run
    ERROR = "error"


class RunStatus(StrEnum):
    """``sync_runs.status``."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"  # finished, some records or tasks failed
    FAILED = "failed"
    QUOTA_RESERVED = "quota_reserved"  # stopped at the share of the daily quota kept for others
    QUOTA_EXCEEDED = "quota_exceeded"  # the CRM refused: daily quota used up
    SKIPPED = "skipped"  # another run held the connection's lock


class RunKind(StrEnum):
    """``sync_runs.kind``."""

    INCREMENTAL = "incremental"  # pull what changed since the cursor
    FULL = "full"  # pull everything
    REEVALUATE = "reevaluate"  # no pull: re-score the snapshots under the latest ICP
    DRY_RUN = "dry_run"  # pull and score; nothing written to the CRM, no fit marked written


#: Kinds a run can be asked for (a dry run is asked for with ``--dry-run``).
SYNC_KINDS: tuple[RunKind, ...] = (RunKind.INCREMENTAL, RunKind.FULL, RunKind.REEVALUATE)
#: Run statuses after which the run is over with records (or tasks) not written.
INCOMPLETE: frozenset[RunStatus] = frozenset(
    {RunStatus.PARTIAL, RunStatus.QUOTA_RESERVED, RunStatus.QUOTA_EXCEEDED, RunStatus.FAILED}
)


class VersionStatus(StrEnum):
    """``icp_versions.status``: whether a version scores."""

    PUBLISHED = "published"  # current when it is the newest scoring version
    HELD = "held"  # waits for ``icp approve`` (its impact exceeded the hold): never scores meanwhile
    APPROVED = "approved"  # was held, then approved: scores like a published one
    REJECTED = "rejected"  # was held, then rejected: never scores


#: Versions that score; the newest of them is the current one.
SCORING_VERSIONS: tuple[VersionStatus, ...] = (VersionStatus.PUBLISHED, VersionStatus.APPROVED)


class RequestStatus(StrEnum):
    """``reevaluation_requests.status``: a re-evaluation the publish outbox owes a connection."""

    PENDING = "pending"  # not handed to a worker yet (no broker, or it was down)
    QUEUED = "queued"  # a task was sent to the broker
    DONE = "done"  # a run scored the connection under that version or a newer one
