"""What the console's buttons do: publish, roll back, approve, reject. Each calls the function the CLI
calls (``worker.icp.publishing``: the same checks, the same hold, the same outbox) and records who did it
and when in the audit log. The one rule of the console's own: an approver does not approve their own
revision unless ``CONSOLE_SELF_APPROVAL`` allows it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.config import WorkerConfig
from worker.icp import publishing, versions
from worker.store.db import Store
from worker.store.models import AuditEvent, IcpVersion

#: Audit actions by the outcome of a publish or rollback.
_PUBLISH_ACTIONS = {"published": "publish", "held": "hold"}


class SelfApprovalError(PermissionError):
    """An approver tried to approve their own revision."""


@dataclass
class Done:
    """What a button did, for the page that follows."""

    number: int
    #: ``published``, ``held``, ``unchanged``, ``already_held``, ``approved``, ``rejected``
    action: str
    reasons: list[str] = field(default_factory=list)
    message: str = ""


def audit(
    session: Session,
    actor: str,
    action: str,
    number: int | None,
    detail: str = "",
    now: datetime | None = None,
) -> None:
    session.add(
        AuditEvent(
            at=now or datetime.now(UTC),
            actor=actor,
            action=action,
            icp_version=number,
            source="console",
            detail=detail,
        )
    )


def _record(store: Store, outcome: publishing.Outcome, actor: str, action: str, detail: str) -> Done:
    number = outcome.version.number
    if action:
        with store.session() as s:
            audit(s, actor, action, number, detail)
    message = outcome.reevaluation.message if outcome.reevaluation else ""
    return Done(number, outcome.action, list(outcome.reasons), message)


def publish_draft(store: Store, config: WorkerConfig, text: str, *, author: str, note: str) -> Done:
    """Publish ``text`` as ``icp publish`` does (checked; held when its impact calls for it)."""
    outcome = publishing.publish_text(store, config, text, filename="draft.yaml", note=note, author=author)
    action = _PUBLISH_ACTIONS.get(outcome.action, "")
    detail = "; ".join(outcome.reasons)  # the note is kept with the version itself
    return _record(store, outcome, author, action, detail)


def rollback_to(store: Store, config: WorkerConfig, number: int, *, author: str) -> Done:
    outcome = publishing.rollback_version(store, config, number, author=author)
    action = {"published": "rollback", "held": "hold"}.get(outcome.action, "")
    return _record(store, outcome, author, action, f"content of v{number}")


def may_approve(version: IcpVersion, approver: str, self_approval: bool) -> bool:
    return self_approval or version.author != approver


def approve_version(store: Store, config: WorkerConfig, number: int, *, by: str, self_approval: bool) -> Done:
    """Make held version ``number`` current (``publishing.approve``); refused for the author's own revision
    unless ``self_approval``."""
    with store.session() as s:
        version = versions.get_version(s, number)
        if not may_approve(version, by, self_approval):
            raise SelfApprovalError(
                f"v{number} is your own revision: another approver must approve it (CONSOLE_SELF_APPROVAL)"
            )
    outcome = publishing.approve(store, config, number, by=by)
    return _record(store, outcome, by, "approve", "")


def reject_version(store: Store, number: int, *, by: str, reason: str) -> Done:
    outcome = publishing.reject(store, number, by=by)
    return _record(store, outcome, by, "reject", reason)


def held_versions(session: Session) -> list[IcpVersion]:
    """Versions waiting for an approver, oldest first."""
    return list(
        session.scalars(
            select(IcpVersion).where(IcpVersion.status == versions.HELD).order_by(IcpVersion.number)
        )
    )


def version_state(version: IcpVersion, current: IcpVersion | None) -> str:
    """``current``, else the version's own status (``published``, ``held``, ``approved``, ``rejected``)."""
    if current is not None and version.number == current.number:
        return "current"
    return str(version.status)
