"""Publishing ICP versions: immutable, numbered, hashed. Rollback publishes an old version's content anew.

A version is ``published`` (or ``approved``, after a hold) and then the newest such version is the
*current* one, the one every run scores with; a ``held`` version waits for ``icp approve``; a
``rejected`` one never scores. ``current_version`` is the one place that picks the current version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from worker.icp.model import IcpSpec
from worker.icp.spec import icp_content_hash, parse_icp
from worker.store.models import IcpVersion
from worker.store.states import SCORING_VERSIONS, VersionStatus

PUBLISHED, HELD = VersionStatus.PUBLISHED, VersionStatus.HELD
APPROVED, REJECTED = VersionStatus.APPROVED, VersionStatus.REJECTED
#: Statuses of versions that score (the newest of them is current).
SCORING_STATUSES = SCORING_VERSIONS


class UnknownVersionError(LookupError):
    """No ICP version has that number."""


@dataclass(frozen=True)
class Published:
    version: IcpVersion
    spec: IcpSpec
    #: False when the content equals the latest version's: nothing new was stored.
    created: bool


def current_version(session: Session) -> IcpVersion | None:
    """The version runs score with: the newest published or approved one (held and rejected ones never)."""
    return session.scalar(
        select(IcpVersion)
        .where(IcpVersion.status.in_(SCORING_STATUSES))
        .order_by(IcpVersion.number.desc())
        .limit(1)
    )


def held_with(session: Session, digest: str) -> IcpVersion | None:
    """A version with this content that still waits for approval."""
    return session.scalar(
        select(IcpVersion)
        .where(IcpVersion.status == HELD, IcpVersion.content_hash == digest)
        .order_by(IcpVersion.number.desc())
        .limit(1)
    )


def next_number(session: Session) -> int:
    """The number the next stored version gets (held and rejected versions keep theirs)."""
    return (session.scalar(select(func.max(IcpVersion.number))) or 0) + 1


def publish(
    session: Session,
    text: str,
    *,
    filename: str,
    author: str,
    note: str,
    now: datetime | None = None,
    status: str = PUBLISHED,
    impact: dict[str, Any] | None = None,
) -> Published:
    """Validate ``text`` (raises ``IcpValidationError`` before anything is stored) and store it as the
    next version (``status`` published or held), unless it is identical to the current one or to a
    version that is held already (``created`` False, that version returned)."""
    spec = parse_icp(text, filename)
    digest = icp_content_hash(text)
    latest = current_version(session)
    if latest is not None and latest.content_hash == digest:
        return Published(latest, spec, created=False)
    held = held_with(session, digest)
    if held is not None:
        return Published(held, spec, created=False)
    version = IcpVersion(
        number=next_number(session),
        name=spec.name,
        content=text,
        content_hash=digest,
        author=author,
        note=note,
        created_at=now or datetime.now(UTC),
        status=status,
        impact=impact,
    )
    session.add(version)
    session.flush()
    return Published(version, spec, created=True)


def latest_icp(session: Session) -> IcpVersion | None:
    """The current version (None before the first publish): the newest published or approved one;
    held and rejected versions never score."""
    return current_version(session)


def spec_of(version: IcpVersion) -> IcpSpec:
    return parse_icp(version.content, f"ICP v{version.number}")


def get_version(session: Session, number: int) -> IcpVersion:
    version = session.scalar(select(IcpVersion).where(IcpVersion.number == number))
    if version is None:
        known = session.scalars(select(IcpVersion.number).order_by(IcpVersion.number)).all()
        raise UnknownVersionError(
            f"no ICP version {number} (published: {', '.join(map(str, known)) or 'none'})"
        )
    return version


def history(session: Session) -> list[IcpVersion]:
    return list(session.scalars(select(IcpVersion).order_by(IcpVersion.number)))


def rollback(
    session: Session,
    number: int,
    *,
    author: str,
    now: datetime | None = None,
    status: str = PUBLISHED,
    impact: dict[str, Any] | None = None,
) -> Published:
    """Publish version ``number``'s content anew (a version that never scored cannot be rolled back to)."""
    old = rollback_source(session, number)
    return publish(
        session,
        old.content,
        filename=f"ICP v{number}",
        author=author,
        note=f"rollback to v{number}",
        now=now,
        status=status,
        impact=impact,
    )


def rollback_source(session: Session, number: int) -> IcpVersion:
    old = get_version(session, number)
    if old.status not in SCORING_STATUSES:
        raise UnknownVersionError(
            f"v{number} is {old.status}: it never scored, so there is nothing to roll back to"
        )
    return old
