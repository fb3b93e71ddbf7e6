"""Publishing ICP versions: immutable, numbered, hashed. Rollback publishes an old version's content anew."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from worker.icp.model import IcpSpec
from worker.icp.spec import icp_content_hash, parse_icp
from worker.store.models import IcpVersion


class UnknownVersionError(LookupError):
    """No ICP version has that number."""


@dataclass(frozen=True)
class Published:
    version: IcpVersion
    spec: IcpSpec
    #: False when the content equals the latest version's: nothing new was stored.
    created: bool


def publish(
    session: Session, text: str, *, filename: str, author: str, note: str, now: datetime | None = None
) -> Published:
    """Validate ``text`` (raises ``IcpValidationError`` before anything is stored) and store it as the
    next version, unless it is identical to the latest one."""
    spec = parse_icp(text, filename)
    digest = icp_content_hash(text)
    latest = latest_icp(session)
    if latest is not None and latest.content_hash == digest:
        return Published(latest, spec, created=False)
    number = (session.scalar(select(func.max(IcpVersion.number))) or 0) + 1
    version = IcpVersion(
        number=number,
        name=spec.name,
        content=text,
        content_hash=digest,
        author=author,
        note=note,
        created_at=now or datetime.now(UTC),
    )
    session.add(version)
    session.flush()
    return Published(version, spec, created=True)


def latest_icp(session: Session) -> IcpVersion | None:
    """The current version: the latest published (None before the first publish)."""
    return session.scalar(select(IcpVersion).order_by(IcpVersion.number.desc()).limit(1))


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


def rollback(session: Session, number: int, *, author: str, now: datetime | None = None) -> Published:
    old = get_version(session, number)
    return publish(
        session, old.content, filename=f"ICP v{number}", author=author, note=f"rollback to v{number}", now=now
    )
