"""Errors about the machine rather than the data: a store, broker or Redis that cannot be reached, and the
one-line, word-first text every error is shown with.

``describe(exc)`` is what the command line prints after ``error:``; it never holds a password (URLs are
shown as ``host:port/database``) and never starts with a class name.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from connectors.errors import ConnectorError

__all__ = [
    "KIND_BY_WORDS",
    "ServiceUnavailable",
    "describe",
    "endpoint",
    "reason_of",
    "service_error",
]

#: How a connector error's kind reads at the start of a message.
_KIND_WORDS = {
    "transient": "temporary failure",
    "rate_limited": "rate limited",
    "quota": "API quota",
    "auth": "login failed",
    "config": "configuration",
    "missing_fields": "missing fields",
    "permanent": "refused",
}


#: The same words back to the kind (metrics classify a stored run error by its first words).
KIND_BY_WORDS = {words: kind for kind, words in _KIND_WORDS.items()}


class ServiceUnavailable(Exception):
    """The store, the broker or Redis cannot be reached (or refuses us): fix the machine, exit code 2.

    ``str`` is one line: what, where (never a password) and why, e.g. ``cannot reach the store
    (postgresql at 127.0.0.1:5999, database icp): connection refused``."""

    def __init__(self, what: str, where: str, reason: str, hint: str = "") -> None:
        self.what, self.where, self.reason, self.hint = what, where, reason, hint
        text = f"cannot reach {what} ({where}): {reason}"
        super().__init__(f"{text}; {hint}" if hint else text)


def endpoint(url: str) -> str:
    """``scheme at host:port, database NAME`` of a URL, without user or password."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.split("+", 1)[0] or "url"
        if scheme == "sqlite":
            path = url.split("///", 1)[-1] if "///" in url else parts.path
            return f"sqlite file {path or ':memory:'}"
        host = parts.hostname or "localhost"
        port = parts.port
    except ValueError:
        return "an unreadable URL"
    text = f"{scheme} at {host}:{port}" if port else f"{scheme} at {host}"
    name = parts.path.lstrip("/")
    if name:
        text += f", database {name}"
    return text


_REASONS = (
    (re.compile(r"database \"?([^\"\s]+)\"? does not exist", re.I), "database {0} does not exist"),
    (re.compile(r"password authentication failed|authentication failed|invalid password", re.I),
     "the user name or password was refused"),
    (re.compile(r"role \"?([^\"\s]+)\"? does not exist", re.I), "user {0} does not exist"),
    (re.compile(r"connection refused|error 111|errno 111", re.I), "connection refused (is it running?)"),
    (re.compile(r"timed? ?out|timeout", re.I), "no answer (timed out)"),
    (re.compile(r"name or service not known|nodename nor servname|getaddrinfo failed|could not translate "
                r"host name|temporary failure in name resolution", re.I), "unknown host name"),
    (re.compile(r"unable to open database file", re.I), "cannot open the database file"),
    (re.compile(r"server closed the connection unexpectedly", re.I), "the server closed the connection"),
    (re.compile(r"no route to host|network is unreachable", re.I), "no route to the host"),
)  # fmt: skip


def reason_of(exc: BaseException) -> str:
    """A short, password-free reason from a driver's exception text (refused, timed out, no such database)."""
    text = " ".join(str(getattr(exc, "orig", None) or exc).split())
    for pattern, words in _REASONS:
        match = pattern.search(text)
        if match:
            return words.format(*match.groups())
    first = re.sub(r"\w+://\S+", "<url>", text.split(". ", 1)[0])  # never echo a URL (it may hold a password)
    return first[:160] or type(exc).__name__


def service_error(what: str, url: str, exc: BaseException, hint: str = "") -> ServiceUnavailable:
    """A ``ServiceUnavailable`` for ``what`` (``the store``, ``the broker``, ``Redis``) at ``url``."""
    return ServiceUnavailable(what, endpoint(url), reason_of(exc), hint)


def describe(exc: BaseException) -> str:
    """The one-line message shown after ``error:``: words first, never a class name."""
    if isinstance(exc, ConnectorError):
        words = _KIND_WORDS.get(exc.kind, "CRM error")
        return f"{words}: {exc}"
    args: Any = exc.args
    return str(args[0]) if args and isinstance(args[0], str) else str(exc)
