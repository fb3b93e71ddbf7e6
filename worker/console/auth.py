"""Console accounts, sign-in sessions and the sign-in rate limit.

Passwords are hashed with argon2id (argon2-cffi's defaults: 64 MiB, 3 passes); the store keeps only the hash.
A session is a random token in a cookie; the store keeps its SHA-256, its expiry and the CSRF token that every
state-changing form of that session must carry. Changing a password or removing a user ends their sessions.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from worker.store.models import ConsoleSession, ConsoleUser

#: Roles, least to most: each may do what the ones before it may.
ROLES = ("viewer", "editor", "approver")
MIN_PASSWORD = 8
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")

_hasher = PasswordHasher()
#: Verified against when the user name is unknown, so an unknown name costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """A request about accounts that cannot be carried out (unknown user, bad role, short password)."""


def role_allows(role: str, needed: str) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")


def get_user(session: Session, name: str) -> ConsoleUser:
    user = session.scalar(select(ConsoleUser).where(ConsoleUser.name == name))
    if user is None:
        raise AccountError(f"no console user {name!r}")
    return user


def add_user(
    session: Session, name: str, role: str, password: str, now: datetime | None = None
) -> ConsoleUser:
    if not NAME_RE.match(name):
        raise AccountError(
            f"invalid user name {name!r}: letters, digits and . _ @ - only, starting with a letter or digit"
        )
    _check_role(role)
    _check_password(password)
    if session.scalar(select(ConsoleUser.id).where(ConsoleUser.name == name)) is not None:
        raise AccountError(f"console user {name!r} exists already (icp-worker users passwd {name} to reset)")
    moment = now or datetime.now(UTC)
    user = ConsoleUser(
        name=name,
        role=role,
        password_hash=_hasher.hash(password),
        created_at=moment,
        password_changed_at=moment,
    )
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[ConsoleUser]:
    return list(session.scalars(select(ConsoleUser).order_by(ConsoleUser.name)))


def remove_user(session: Session, name: str) -> None:
    user = get_user(session, name)
    session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))
    session.delete(user)


def set_password(session: Session, name: str, password: str, now: datetime | None = None) -> None:
    """A new password; every session of that user ends."""
    _check_password(password)
    user = get_user(session, name)
    user.password_hash = _hasher.hash(password)
    user.password_changed_at = now or datetime.now(UTC)
    session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))


def verify_login(session: Session, name: str, password: str) -> ConsoleUser | None:
    """The user when ``password`` is theirs, else None (the same work either way)."""
    user = session.scalar(select(ConsoleUser).where(ConsoleUser.name == name))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


# ------------------------------------------------------------------------------------------------ sessions


@dataclass(frozen=True)
class SignedIn:
    """Who is behind a request, and the CSRF token their forms carry."""

    user_id: int
    name: str
    role: str
    csrf_token: str

    def can(self, needed: str) -> bool:
        return role_allows(self.role, needed)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(session: Session, user: ConsoleUser, minutes: int, now: datetime | None = None) -> str:
    """A new session for ``user``; returns the cookie's token (only its hash is stored)."""
    moment = now or datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < moment))
    session.add(
        ConsoleSession(
            token_hash=token_hash(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=moment,
            expires_at=moment + timedelta(minutes=minutes),
        )
    )
    return token


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def load_session(session: Session, token: str, now: datetime | None = None) -> SignedIn | None:
    if not token:
        return None
    row = session.get(ConsoleSession, token_hash(token))
    if row is None:
        return None
    if _aware(row.expires_at) <= (now or datetime.now(UTC)):
        session.delete(row)
        return None
    user = session.get(ConsoleUser, row.user_id)
    if user is None:
        return None
    return SignedIn(user.id, user.name, user.role, row.csrf_token)


def end_session(session: Session, token: str) -> None:
    session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == token_hash(token)))


# ------------------------------------------------------------------------------------------------ rate limit


class LoginLimiter:
    """Failed sign-ins per key (a user name, a client address) in a sliding window, in this process.

    ``blocked(key)`` gives the seconds until the key may try again (0: now). Memory is bounded: at most
    ``max_keys`` keys, each with at most ``limit`` stamps."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        stamps = self._fails.get(key)
        if stamps is None:
            return deque()
        while stamps and stamps[0] <= now - self.window:
            stamps.popleft()
        if not stamps:
            del self._fails[key]
        return stamps

    def blocked(self, key: str, limit: int | None = None) -> float:
        with self._lock:
            now = self.clock()
            stamps = self._recent(key, now)
            if len(stamps) < (limit or self.limit):
                return 0.0
            return max(0.0, float(stamps[0] + self.window - now))

    def failed(self, key: str, limit: int | None = None) -> None:
        with self._lock:
            now = self.clock()
            if key not in self._fails and len(self._fails) >= self.max_keys:
                # drop the key whose newest failure is oldest
                oldest = min(self._fails, key=lambda k: self._fails[k][-1] if self._fails[k] else 0.0)
                del self._fails[oldest]
            stamps = self._fails.setdefault(key, deque(maxlen=limit or self.limit))
            stamps.append(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._fails.pop(key, None)
