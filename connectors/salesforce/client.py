"""Authentication, the session, the one HTTP seam, and the org's API limits.

Every request this connector makes goes through ``SalesforceClient.call``, which:

* logs in lazily (JWT bearer, username/password/token, or an existing session id) with
  simple-salesforce's ``SalesforceLogin``, or, for a custom ``login_url``, its SOAP login at that URL
  and our own JWT assertion posted to ``{login_url}/services/oauth2/token``; and then drives a
  ``simple_salesforce.Salesforce`` built in "direct" mode, so that *this* class renews an expired
  session (401 ``INVALID_SESSION_ID``) on every path: queries, ``restful`` calls such as
  ``composite/sobjects``, Tooling API and raw session calls;
* refuses a request that would eat into the reserved share of the org's daily API allocation
  (``QuotaExceededError(reserved=True)``), read from ``Sforce-Limit-Info`` on every response;
* retries 5xx, timeouts and dropped connections with exponential backoff and jitter (tenacity, with
  an injectable ``sleep``), but only for requests that are safe to repeat;
* translates simple-salesforce and requests exceptions once into ``connectors.errors`` types whose
  messages never contain a secret.

The client is thread-safe: the connector keeps several requests in flight (sObject Collections writes,
object types pulled in parallel), at most ``max_concurrency`` at once across every thread. Calls are
counted where each HTTP exchange ends, by the kind of the thread's request, under one lock; the reserve
check counts the requests still in flight; and when several requests meet ``INVALID_SESSION_ID`` at
once, the first renews the session and the others wait for it and retry with the new one.
"""

from __future__ import annotations

import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import jwt
import requests
from pydantic import SecretStr
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
)
from simple_salesforce.login import SalesforceLogin, token_login
from simple_salesforce.util import exception_handler
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from connectors.base import ApiUsage
from connectors.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    PermanentError,
    QuotaExceededError,
    RateLimitedError,
    TransientError,
)
from connectors.salesforce.options import SalesforceOptions

log = logging.getLogger("connectors.salesforce")

T = TypeVar("T")

_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")
#: 400 error codes that mean the configuration (a mapping, a field name) cannot work.
_CONFIG_CODES = frozenset(
    {
        "INVALID_FIELD",
        "INVALID_TYPE",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        "NOT_FOUND",
        "API_DISABLED_FOR_ORG",
        "INSUFFICIENT_ACCESS",
        "INSUFFICIENT_ACCESS_OR_READONLY",
    }
)


class QueryLocatorExpired(PermanentError):
    """``INVALID_QUERY_LOCATOR``: the server dropped a query cursor (too old, or more than ten open)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """Secrets of one connection, read from the environment only. ``repr`` shows no value."""

    auth: str
    env_prefix: str
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    consumer_key: SecretStr | None = None
    private_key: SecretStr | None = None
    session_id: SecretStr | None = None

    @classmethod
    def from_env(cls, auth: str, env_prefix: str, env: Mapping[str, str]) -> Credentials:
        """Read what ``auth`` needs; a missing variable raises ``AuthError`` naming it (never a value)."""

        def need(name: str) -> str:
            value = env.get(env_prefix + name)
            if value is None or not value.strip():
                raise AuthError(f"Salesforce auth {auth!r} needs the environment variable {env_prefix}{name}")
            return value.strip()

        if auth == "session":
            return cls(auth, env_prefix, session_id=SecretStr(need("SF_SESSION_ID")))
        if auth == "password":
            # The token may be absent when the org trusts the worker's IP range.
            token = env.get(env_prefix + "SF_SECURITY_TOKEN")
            username = need("SF_USERNAME")
            password = env.get(env_prefix + "SF_PASSWORD")  # not stripped: a password may end in a space
            if not password:
                need("SF_PASSWORD")
            return cls(
                auth,
                env_prefix,
                username=username,
                password=SecretStr(password or ""),
                security_token=SecretStr(token.strip()) if token and token.strip() else None,
            )
        if auth == "jwt":
            username, consumer_key = need("SF_USERNAME"), need("SF_CONSUMER_KEY")
            pem = env.get(env_prefix + "SF_PRIVATE_KEY")
            if not pem or not pem.strip():
                path = env.get(env_prefix + "SF_PRIVATE_KEY_FILE")
                if not path or not path.strip():
                    raise AuthError(
                        f"Salesforce auth 'jwt' needs {env_prefix}SF_PRIVATE_KEY (PEM text) "
                        f"or {env_prefix}SF_PRIVATE_KEY_FILE"
                    )
                try:
                    pem = Path(path.strip()).read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    raise AuthError(
                        f"cannot read the private key file named by {env_prefix}SF_PRIVATE_KEY_FILE"
                    ) from None
            return cls(
                auth,
                env_prefix,
                username=username,
                consumer_key=SecretStr(consumer_key),
                private_key=SecretStr(pem.replace("\\n", "\n")),
            )
        raise ConfigError(f"unknown Salesforce auth {auth!r}")

    def secret_values(self) -> list[str]:
        values = [self.password, self.security_token, self.consumer_key, self.private_key, self.session_id]
        out = [v.get_secret_value() for v in values if v is not None]
        if self.password is not None and self.security_token is not None:
            out.append(self.password.get_secret_value() + self.security_token.get_secret_value())
        return [v for v in out if len(v) >= 4]


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
        for line in secret.splitlines():  # a PEM key may be echoed line by line
            if len(line) >= 16:
                text = text.replace(line, "[redacted]")
    return text


def _error_of(content: Any) -> tuple[str | None, str]:
    """``(errorCode, message)`` of a Salesforce error body (``[{"message", "errorCode"}]``)."""
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return content[0].get("errorCode"), str(content[0].get("message", ""))
    if isinstance(content, dict):
        return (
            content.get("errorCode") or content.get("error"),
            str(content.get("message") or content.get("error_description") or ""),
        )
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content or "")
    return None, text


class SalesforceClient:
    """A logged-in (lazily) Salesforce org, with renewal, retries, limits and call counts."""

    def __init__(
        self,
        options: SalesforceOptions,
        credentials: Credentials,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.options = options
        self.credentials = credentials
        self.sleep = sleep
        self.usage = ApiUsage()
        self._own_session = session is None
        self.session = session or requests.Session()
        self.session.hooks.setdefault("response", []).append(self._on_response)
        self._sf: Salesforce | None = None
        self._secrets = credentials.secret_values()
        #: Guards ``usage`` and ``_in_flight``; held only for counting, never across a request.
        self._lock = threading.Lock()
        #: Held while logging in: one login at a time, the other threads wait for its session.
        self._login_lock = threading.Lock()
        #: Bumped on every new session, so a thread can tell whether its expired session was renewed.
        self._generation = 0
        self._in_flight = 0
        self._slots = threading.BoundedSemaphore(options.max_concurrency)
        self._local = threading.local()  # .kind: the kind of the request this thread is making

    # ------------------------------------------------------------------------------------ plumbing

    @property
    def concurrency(self) -> int:
        """Requests this client keeps in flight at most (``max_concurrency``)."""
        return self.options.max_concurrency

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Count every HTTP exchange (as the kind of the request this thread is making) and read the
        org's daily usage from ``Sforce-Limit-Info``."""
        kind = getattr(self._local, "kind", "other")
        match = _LIMIT_INFO.search(response.headers.get("Sforce-Limit-Info", ""))
        with self._lock:
            self.usage.count(kind)
            if match:
                used, limit = int(match.group(1)), int(match.group(2))
                # Answers of parallel requests arrive in any order: keep the highest usage seen.
                if self.usage.daily_limit != limit or (self.usage.daily_used or 0) < used:
                    self.usage.daily_used, self.usage.daily_limit = used, limit

    def usage_snapshot(self) -> ApiUsage:
        """A copy of ``usage``, consistent even while requests are in flight."""
        with self._lock:
            u = self.usage
            return ApiUsage(calls=dict(u.calls), daily_used=u.daily_used, daily_limit=u.daily_limit)

    def redact(self, text: str) -> str:
        return _redact(text, self._secrets)

    @property
    def can_renew(self) -> bool:
        return self.credentials.auth != "session"

    def _login(self) -> Salesforce:
        opts, cred = self.options, self.credentials
        self._local.kind = "other"
        if cred.auth == "session":
            assert cred.session_id is not None and opts.instance_url is not None
            session_id, instance = cred.session_id.get_secret_value(), opts.instance_url
        else:
            session_id, instance = self._login_request()
            instance = "https://" + instance
        log.info("Salesforce session opened (auth=%s, instance=%s)", cred.auth, instance)
        return Salesforce(
            session_id=session_id,
            instance_url=instance,
            version=opts.api_version,
            session=self.session,
            object_pairs_hook=None,  # plain dicts: json's fastest path
        )

    def _jwt_at(self, login_url: str) -> tuple[str, str]:
        """JWT bearer against any login server (simple-salesforce only knows ``*.salesforce.com``)."""
        cred = self.credentials
        assert cred.consumer_key is not None and cred.private_key is not None
        claims = {
            "iss": cred.consumer_key.get_secret_value(),
            "sub": cred.username,
            "aud": self.options.audience,
            "exp": int(time.time()) + 180,
        }
        assertion = jwt.encode(claims, cred.private_key.get_secret_value(), algorithm="RS256")
        data = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
        session_id, instance = token_login(
            f"{login_url}/services/oauth2/token",
            data,
            "login",
            cred.consumer_key.get_secret_value(),
            None,
            None,
            self.session,
        )
        return str(session_id), str(instance)

    def _login_request(self) -> tuple[str, str]:
        opts, cred = self.options, self.credentials
        domain = opts.login_domain
        try:
            if cred.auth == "jwt" and opts.login_url:
                return self._jwt_at(opts.login_url)
            if cred.auth == "jwt":
                assert cred.consumer_key is not None and cred.private_key is not None
                # The JWT audience is the login server (production or sandbox) even when the token is
                # requested from a My Domain host; simple-salesforce's ``instance_url`` picks that host.
                audience = "test" if opts.is_sandbox else "login"
                return SalesforceLogin(
                    username=cred.username,
                    consumer_key=cred.consumer_key.get_secret_value(),
                    privatekey=cred.private_key.get_secret_value(),
                    domain=audience,
                    instance_url=None if domain in ("login", "test") else domain,
                    sf_version=opts.api_version,
                    session=self.session,
                )
            assert cred.password is not None
            return SalesforceLogin(
                username=cred.username,
                password=cred.password.get_secret_value(),
                security_token=cred.security_token.get_secret_value() if cred.security_token else None,
                domain=domain,
                sf_version=opts.api_version,
                session=self.session,
                scratch_url=opts.login_url,  # the SOAP login goes to {login_url}/services/Soap/u/XX.X
            )
        except SalesforceAuthenticationFailed as exc:
            code = exc.code
            message = self.redact(str(exc.auth_message or ""))[:300]
            # An int code is an HTTP status whose body was neither the token endpoint's JSON nor a SOAP
            # fault (an outage page); no code at all means the same for SOAP.
            if code is None or (isinstance(code, int) and (code >= 500 or code == 429)):
                raise TransientError(f"Salesforce login: HTTP {code}", status=code) from None
            raise AuthError(f"Salesforce login failed ({code}): {message}", code=str(code)) from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise AuthError(
                f"{cred.env_prefix}SF_PRIVATE_KEY is not a usable RSA private key (PEM)"
            ) from None
        except requests.RequestException as exc:
            raise self._transport_error(exc, "login") from None
        except (AttributeError, KeyError):
            raise AuthError("Salesforce login: unexpected response from the token endpoint") from None

    def _check_reserve(self) -> None:
        """Refuse a request that could cross the reserved share (call with ``_lock`` held): the
        requests still in flight count as used, since their answers may each add one."""
        used, limit = self.usage.daily_used, self.usage.daily_limit
        if used is None or not limit:
            return
        allowed = math.floor(limit * (1.0 - self.options.reserve_share))
        if used + self._in_flight + 1 > allowed:
            raise QuotaExceededError(
                f"stopping before the reserved share of the daily API allocation: {used}/{limit} calls used, "
                f"{self.options.reserve_share:.0%} is left to the org's other integrations",
                reserved=True,
            )

    def _transport_error(self, exc: requests.RequestException, what: str) -> ConnectorError:
        name = type(exc).__name__
        request_url = getattr(getattr(exc, "request", None), "url", None)
        domain = self.options.login_domain
        host = (
            urlsplit(request_url).hostname
            if request_url
            else (f"{domain}.salesforce.com" if domain in ("login", "test") else domain)
        )
        if isinstance(exc, requests.Timeout):
            name = f"no answer in time ({name})"
        elif isinstance(exc, requests.ConnectionError):
            name = f"cannot connect ({name})"
        what = f"{what} at {host}" if host else what
        if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.Timeout):
            return TransientError(f"Salesforce {what}: {name}", code="UNREACHABLE")
        if isinstance(
            exc,
            (
                requests.Timeout,
                requests.ConnectionError,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
                requests.JSONDecodeError,
            ),
        ):
            return TransientError(f"Salesforce {what}: {name}")
        return PermanentError(f"Salesforce {what}: {name}")

    def _translate(self, exc: SalesforceError, what: str) -> ConnectorError:
        status = int(exc.status) if str(exc.status).isdigit() else 0
        code, message = _error_of(exc.content)
        message = self.redact(message.strip())[:500]
        text = f"Salesforce {what}: HTTP {status} {code or ''}: {message}".replace(" :", ":")
        if status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
            if "concurrent" in message.lower():  # ConcurrentPerOrgLongTxn: a rolling limit, not the day's
                return RateLimitedError(text, retry_after=None, status=status, code=code)
            return QuotaExceededError(text, reserved=False, status=status, code=code)
        if status == 429:
            return RateLimitedError(text, status=status, code=code)
        if status >= 500:
            return TransientError(text, status=status, code=code)
        if code == "INVALID_QUERY_LOCATOR":
            return QueryLocatorExpired(text, status=status, code=code)
        if code in _CONFIG_CODES:
            return ConfigError(text, status=status, code=code)
        if status == 401:
            return AuthError(text, status=status, code=code)
        return PermanentError(text, status=status, code=code)

    # ------------------------------------------------------------------------------- the seam

    def call(self, kind: str, what: str, fn: Callable[[Salesforce], T], *, retry: bool = True) -> T:
        """Run ``fn(sf)`` (one HTTP request) counted as ``kind``; renew an expired session and, when
        ``retry`` (the request is safe to repeat), retry transient failures with backoff."""
        if not retry:
            return self._attempt(kind, what, fn)
        retrying = Retrying(
            stop=stop_after_attempt(self.options.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(lambda e: isinstance(e, ConnectorError) and e.transient),
            sleep=self.sleep,
            reraise=True,
            before_sleep=self._before_sleep,
        )
        result: T = retrying(self._attempt, kind, what, fn)
        return result

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimitedError) and exc.retry_after:
            return min(float(exc.retry_after), self.options.retry_wait_max)
        # Exponential backoff with full jitter on top (tenacity's wait_exponential_jitter, spelled out
        # because its parameter names differ between tenacity 8 and 9).
        initial, cap = self.options.retry_wait_initial, self.options.retry_wait_max
        wait = initial * 2.0 ** (state.attempt_number - 1) + random.uniform(0, initial)
        return float(min(wait, cap))

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("Salesforce request failed (%s); retry %d in %.1fs", exc, state.attempt_number, wait)

    def _session_now(self) -> tuple[Salesforce, int]:
        """The current session and its generation, logging in first if there is none (one thread
        logs in; the others wait for its session)."""
        with self._login_lock:
            if self._sf is None:
                self._sf = self._login()
                self._generation += 1
            return self._sf, self._generation

    def _renew(self, generation: int, what: str) -> None:
        """Replace the session of ``generation`` after ``INVALID_SESSION_ID``, unless another thread
        already has (then its session is used)."""
        with self._login_lock:
            if self._generation != generation or self._sf is None:
                return
            log.info("Salesforce session expired during %s; re-authenticating", what)
            self._sf = None  # a failed login leaves none: the next request tries again
            self._sf = self._login()
            self._generation += 1

    @contextmanager
    def _slot(self, kind: str) -> Iterator[None]:
        """One of the ``max_concurrency`` request slots, after the reserve check; the thread's
        requests count as ``kind`` meanwhile."""
        self._slots.acquire()
        try:
            with self._lock:
                self._check_reserve()
                self._in_flight += 1
        except BaseException:
            self._slots.release()
            raise
        self._local.kind = kind
        try:
            yield
        finally:
            self._local.kind = "other"
            with self._lock:
                self._in_flight -= 1
            self._slots.release()

    def _attempt(self, kind: str, what: str, fn: Callable[[Salesforce], T]) -> T:
        renewed = False
        while True:
            sf, generation = self._session_now()
            with self._slot(kind):
                try:
                    return fn(sf)
                except SalesforceExpiredSession:
                    pass
                except SalesforceError as exc:
                    raise self._translate(exc, what) from None
                except requests.RequestException as exc:
                    raise self._transport_error(exc, what) from None
            if not self.can_renew:
                raise AuthError(
                    "Salesforce session expired or is invalid, and auth 'session' cannot renew it: set a "
                    f"fresh {self.credentials.env_prefix}SF_SESSION_ID or use auth 'jwt'",
                    status=401,
                    code="INVALID_SESSION_ID",
                )
            if renewed:
                raise AuthError(
                    "Salesforce refused a freshly renewed session", status=401, code="INVALID_SESSION_ID"
                )
            self._renew(generation, what)
            renewed = True

    # ------------------------------------------------------------------------------- requests

    def _query_headers(self) -> dict[str, str]:
        return {"Sforce-Query-Options": f"batchSize={self.options.page_size}"}

    def query(self, soql: str, *, include_deleted: bool = False, kind: str = "read") -> dict[str, Any]:
        """The first batch of a SOQL query (``records``, ``done``, ``nextRecordsUrl``)."""
        timeout = self.options.timeout_seconds
        return self.call(
            kind,
            "query",
            lambda sf: sf.query(
                soql, include_deleted=include_deleted, headers=self._query_headers(), timeout=timeout
            ),
        )

    def query_more(self, next_records_url: str, *, kind: str = "read") -> dict[str, Any]:
        """The next batch of a query, from the previous batch's ``nextRecordsUrl``."""
        timeout = self.options.timeout_seconds
        return self.call(
            kind,
            "query more",
            lambda sf: sf.query_more(
                next_records_url, identifier_is_url=True, headers=self._query_headers(), timeout=timeout
            ),
        )

    def rest(
        self,
        kind: str,
        path: str,
        *,
        method: str = "GET",
        json: Any = None,
        params: Mapping[str, str] | None = None,
        retry: bool = True,
    ) -> Any:
        """A REST call relative to ``/services/data/vXX.X/`` (``None`` for 204 or an empty body)."""
        timeout = self.options.timeout_seconds
        kwargs: dict[str, Any] = {"timeout": timeout}
        if json is not None:
            kwargs["json"] = json
        return self.call(
            kind,
            f"{method} {path}",
            lambda sf: sf.restful(path, params=dict(params) if params else None, method=method, **kwargs),
            retry=retry,
        )

    def raw(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = True,
    ) -> requests.Response:
        """A request relative to ``/services/data/vXX.X/`` whose answer is not (only) JSON: Bulk API CSV
        bodies and their headers. Same renewal, retries and error translation as every other call."""
        timeout = self.options.timeout_seconds

        def send(sf: Salesforce) -> requests.Response:
            merged = {**sf.headers, **(headers or {})}
            response = sf.session.request(
                method,
                sf.base_url + path,
                headers=merged,
                params=params,
                json=json,
                data=data,
                timeout=timeout,
            )
            if response.status_code >= 300:
                exception_handler(response, name=path)
            return response

        return self.call(kind, f"{method} {path}", send, retry=retry)

    def userinfo(self) -> dict[str, Any]:
        """The OpenID Connect user info of the integration user (``user_id``, ``organization_id``)."""

        def get(sf: Salesforce) -> dict[str, Any]:
            url = f"https://{sf.sf_instance}/services/oauth2/userinfo"
            response = sf.session.request(
                "GET", url, headers=sf.headers, timeout=self.options.timeout_seconds
            )
            if response.status_code >= 300:
                exception_handler(response, name="userinfo")
            info: dict[str, Any] = response.json()
            return info

        return self.call("other", "userinfo", get)

    def close(self) -> None:
        hooks = self.session.hooks.get("response", [])
        if self._on_response in hooks:
            hooks.remove(self._on_response)
        if self._own_session:
            self.session.close()
        with self._login_lock:
            self._sf = None
