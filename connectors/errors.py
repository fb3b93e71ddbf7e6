"""One typed error tree for every connector.

Each CRM SDK raises its own exceptions; a connector translates them once, at its boundary, into
one of these. Callers (the sync service, Celery tasks) decide what to do from the class alone::

    ConnectorError                 root; ``transient`` says whether a retry can help
    ├── TransientError             timeouts, 5xx, dropped connections: retry with backoff
    │   └── RateLimitedError       a rolling rate window is full: wait ``retry_after`` seconds, go on
    ├── QuotaExceededError         the daily allocation is used (or reserved): end the run cleanly,
    │                              resume from the cursor in the next window
    ├── AuthError                  bad or revoked credentials: fail once, no retry
    ├── ConfigError                invalid mapping, unreadable field: fail once, no retry
    │   └── MissingFieldsError     owned or mapped fields are absent from the CRM
    └── PermanentError             anything else the CRM will refuse again

All of them pickle (Celery ships them between processes) and none carries a secret in its message.
"""

from __future__ import annotations

from typing import Any


class ConnectorError(Exception):
    """Root of every connector error."""

    transient: bool = False
    kind: str = "error"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:  # keep keyword arguments across pickling
        return (_rebuild, (type(self), self.message, self.__dict__.copy()))

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[ConnectorError], message: str, state: dict[str, Any]) -> ConnectorError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class TransientError(ConnectorError):
    """A failure a retry can fix: timeout, 5xx, dropped connection."""

    transient = True
    kind = "transient"


class RateLimitedError(TransientError):
    """A rolling rate window is exhausted; ``retry_after`` seconds is the server's advice."""

    kind = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class QuotaExceededError(ConnectorError):
    """The daily API allocation is used up or reserved for the org's other integrations."""

    kind = "quota"

    def __init__(self, message: str, *, reserved: bool = False, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.reserved = reserved


class AuthError(ConnectorError):
    """Credentials are missing, wrong or revoked."""

    kind = "auth"


class ConfigError(ConnectorError):
    """The connection's configuration or mapping cannot work against this CRM."""

    kind = "config"


class MissingFieldsError(ConfigError):
    """Fields the run needs are absent or unreadable; ``missing`` lists all of them at once."""

    kind = "missing_fields"

    def __init__(self, message: str, *, missing: list[str] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.missing = list(missing or [])


class PermanentError(ConnectorError):
    """The CRM refused a request and will refuse it again."""

    kind = "permanent"
