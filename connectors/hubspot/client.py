"""The one place that talks HTTP to HubSpot: auth, pacing, retries and error translation.

Every request goes through ``HubSpotClient.call``, which

* renews an OAuth access token shortly before it expires, and once on a 401;
* waits for the pacer (``connectors.hubspot.ratelimit``) so that the portal's rolling windows hold;
* runs the ``hubspot-api-client`` operation with ``_preload_content=False`` and parses the JSON itself
  (faster than the generated models for 100,000 records, and it keeps the rate-limit headers);
* translates every failure into ``connectors.errors``: the SDK has one ``ApiException`` class per
  generated package, so failures are told apart by ``.status``, ``.headers`` and ``.body``, never by
  class; urllib3's own errors (``MaxRetryError`` after its connect retries, ``ProtocolError``, timeouts:
  urllib3 never retries a POST that may have reached the server) become ``TransientError``;
* retries transient failures with exponential backoff and jitter (tenacity) when the operation is
  idempotent, and waits out rolling-window 429s as the server advises (``TEN_SECONDLY_ROLLING``: its
  ``Retry-After`` or interval; ``SECONDLY``, the search limit: about a second, whatever the interval
  header says, since that header describes the 10-second window); a ``DAILY`` 429 ends the run with
  ``QuotaExceededError``. The wait is a ``pause`` of the shared limiter, so every request in flight in
  this process (and, with the Redis limiter, in every worker) slows down, not only the one refused.

The client is thread-safe: the connector keeps several requests in flight (``concurrency()`` threads,
sized from the portal's rate and the latency observed here), each admitted by the same limiter, and
never more than ``max_concurrency`` at once (page chains, associations reads and overlapping write calls
together).

No secret is ever put into a log line or an error message: messages are built from the status,
HubSpot's error ``category`` and its ``message`` only.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from hubspot import Client as SdkClient
from tenacity import RetryCallState, Retrying, retry_if_exception
from tenacity.wait import wait_exponential, wait_random
from urllib3.util.retry import Retry

from connectors.base import ApiUsage
from connectors.errors import (
    AuthError,
    ConnectorError,
    PermanentError,
    QuotaExceededError,
    RateLimitedError,
    TransientError,
)
from connectors.hubspot.options import HubSpotOptions
from connectors.hubspot.ratelimit import RateLimiter, RequestPacer, spacing

log = logging.getLogger(__name__)

ROLLING_POLICIES = frozenset({"TEN_SECONDLY_ROLLING", "SECONDLY", "SECONDLY_ROLLING"})
#: Latency assumed before the first answer is timed (seconds), and the weight of each new sample.
DEFAULT_LATENCY = 0.3
LATENCY_WEIGHT = 0.2


@dataclass(frozen=True, slots=True)
class Credentials:
    """Secrets read from the environment. ``repr`` shows which ones are set, never their values."""

    access_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{k}=<set>"
            for k in ("access_token", "client_id", "client_secret", "refresh_token")
            if getattr(self, k)
        )
        return f"Credentials({shown})"

    @classmethod
    def from_env(cls, auth: str, env_prefix: str, env: Mapping[str, str]) -> Credentials:
        """Read the variables ``auth`` needs; ``AuthError`` names every missing variable (not values)."""
        names = (
            ["HUBSPOT_ACCESS_TOKEN"]
            if auth == "private_app"
            else ["HUBSPOT_CLIENT_ID", "HUBSPOT_CLIENT_SECRET", "HUBSPOT_REFRESH_TOKEN"]
        )
        values = {n: (env.get(env_prefix + n) or "").strip() for n in names}
        missing = [env_prefix + n for n, v in values.items() if not v]
        if missing:
            raise AuthError(
                f"HubSpot {auth} credentials missing: set {', '.join(missing)} in the environment",
                code="MISSING_CREDENTIALS",
            )
        if auth == "private_app":
            return cls(access_token=values["HUBSPOT_ACCESS_TOKEN"])
        return cls(
            client_id=values["HUBSPOT_CLIENT_ID"],
            client_secret=values["HUBSPOT_CLIENT_SECRET"],
            refresh_token=values["HUBSPOT_REFRESH_TOKEN"],
        )


@dataclass(slots=True)
class Response:
    """A parsed HubSpot answer."""

    status: int
    body: Any
    headers: Mapping[str, str]


class InvalidValuesError(PermanentError):
    """A whole-batch 400 ``VALIDATION_ERROR`` naming property values the portal refuses.

    ``problems`` holds HubSpot's per-property records (``name``, ``error`` such as ``INVALID_OPTION``,
    ``message``), read from the JSON list in the error message: they say which value was wrong, so the
    writer can set aside exactly the inputs that carry it instead of bisecting the batch."""

    def __init__(self, message: str, *, problems: list[dict[str, Any]], **kw: Any) -> None:
        super().__init__(message, **kw)
        self.problems = problems

    def invalid_options(self) -> set[tuple[str, str]]:
        """``(property, value)`` pairs refused as ``INVALID_OPTION`` (the value opens HubSpot's message:
        ``platinum was not one of the allowed options: [...]``)."""
        pairs = set()
        for problem in self.problems:
            text = str(problem.get("message") or "")
            marker = text.find(" was not one of the allowed options")
            if problem.get("error") == "INVALID_OPTION" and problem.get("name") and marker > 0:
                pairs.add((str(problem["name"]), text[:marker]))
        return pairs


_PROBLEMS_PREFIX = "Property values were not valid: "


def _problems(message: str) -> list[dict[str, Any]]:
    """HubSpot's property-validation records from a 400 message, or an empty list."""
    start = message.find(_PROBLEMS_PREFIX)
    if start < 0:
        return []
    try:
        problems = json.loads(message[start + len(_PROBLEMS_PREFIX) :])
    except ValueError:
        return []
    if not isinstance(problems, list):
        return []
    return [p for p in problems if isinstance(p, dict)]


class _Unauthorized(Exception):
    """Internal: a 401 the client may cure by renewing the OAuth token (``renewals``: how many renewals
    there had been when the refused request went, so that requests in flight renew it once)."""

    def __init__(self, error: AuthError, renewals: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.renewals = renewals


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    try:
        value = headers.get(name)
        if value is None:
            value = headers.get(name.lower())
    except AttributeError:
        return None
    return None if value is None else str(value)


def _parse_body(raw: Any) -> Any:
    if raw is None:
        return None
    if isinstance(raw, bytes | bytearray):
        raw = raw.decode("utf-8", "replace")
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return {"message": str(raw)[:300]}


def translate_api_exception(exc: Any, *, what: str) -> ConnectorError:
    """Turn an SDK ``ApiException`` (any generated package's) into one of our errors."""
    status = int(getattr(exc, "status", 0) or 0)
    headers = getattr(exc, "headers", None)
    body = _parse_body(getattr(exc, "body", None))
    info = body if isinstance(body, dict) else {}
    category = info.get("category") or info.get("errorType") or info.get("status")
    message = str(info.get("message") or getattr(exc, "reason", "") or "no message")[:500]
    code = str(category) if category else None
    text = f"HubSpot {what}: HTTP {status}" + (f" {category}" if category else "") + f": {message}"
    if status == 429:
        policy = str(info.get("policyName") or "")
        if policy == "DAILY":
            err: ConnectorError = QuotaExceededError(text, status=status, code="DAILY")
            return err
        retry_after = _retry_after(headers, policy)
        return RateLimitedError(text, retry_after=retry_after, status=status, code=policy or code)
    if status == 401:
        return AuthError(text, status=status, code=code)
    if status == 403:
        return AuthError(text, status=status, code=code or "FORBIDDEN")
    if status == 0 or status >= 500 or status in (408, 423):
        return TransientError(text, status=status or None, code=code)
    problems = _problems(str(info.get("message") or "")) if status == 400 else []
    if problems:
        return InvalidValuesError(text, problems=problems, status=status, code=code)
    return PermanentError(text, status=status, code=code)


def _retry_after(headers: Any, policy: str) -> float:
    if policy.startswith("SECONDLY"):
        # The search limit is per second; the interval header (10,000 ms) belongs to the portal window.
        return 1.0
    value = _header(headers, "Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
    interval = _header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
    if interval:
        try:
            return max(0.1, float(interval) / 1000.0)
        except ValueError:
            pass
    return 1.0 if policy.startswith("SECONDLY") else 10.0


class HubSpotClient:
    """Authenticated, paced, retrying access to the SDK's API objects."""

    def __init__(
        self,
        options: HubSpotOptions,
        credentials: Credentials,
        *,
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        urllib3_retry: Retry | None = None,
    ) -> None:
        self.options = options
        self._credentials = credentials
        self._clock = clock
        self._sleep = sleep
        self.limiter: RateLimiter = limiter or RequestPacer(
            options.requests_per_10s,
            options.search_requests_per_second,
            headroom=options.rate_headroom,
            clock=clock,
            sleep=sleep,
        )
        self.usage = ApiUsage()
        #: Last ``X-HubSpot-RateLimit-*`` figures seen (max, remaining, interval, daily...).
        self.rate_headers: dict[str, int] = {}
        self.rate_limited_waits = 0
        self.token_refreshes = 0
        #: Seconds per request, smoothed (the pool of requests in flight is sized from it).
        self.latency = DEFAULT_LATENCY
        self._lock = threading.Lock()
        self._token_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(options.max_concurrency)
        self._refresh_token = credentials.refresh_token
        self._expires_at: float | None = None
        # urllib3 may retry only what cannot have reached the server (connects); everything else is ours.
        retry = urllib3_retry or Retry(
            total=2, connect=2, read=0, status=0, other=0, redirect=0, raise_on_status=False
        )
        self._sdk = SdkClient(access_token=credentials.access_token, retry=retry, host=options.host)
        self._apis: dict[str, Any] = {}
        self._timeout = (options.connect_timeout, options.read_timeout)

    # -- SDK access ---------------------------------------------------------------------------------

    def api(self, name: str) -> Any:
        """A cached SDK API object: ``objects.basic``, ``objects.search``, ``objects.batch``,
        ``properties.core``, ``properties.groups``, ``pipelines``, ``associations.batch``, ``oauth.tokens``.

        The SDK's discovery builds a new connection pool on every attribute access; caching keeps one."""
        with self._lock:
            return self._api(name)

    def _api(self, name: str) -> Any:
        api = self._apis.get(name)
        if api is None:
            crm = self._sdk.crm
            factories: dict[str, Callable[[], Any]] = {
                "objects.basic": lambda: crm.objects.basic_api,
                "objects.search": lambda: crm.objects.search_api,
                "objects.batch": lambda: crm.objects.batch_api,
                "properties.core": lambda: crm.properties.core_api,
                "properties.groups": lambda: crm.properties.groups_api,
                "pipelines": lambda: crm.pipelines.pipelines_api,
                "associations.batch": lambda: crm.associations.v4.batch_api,
                "oauth.tokens": lambda: self._sdk.oauth.tokens_api,
            }
            api = factories[name]()
            self._apis[name] = api
        return api

    def concurrency(self) -> int:
        """Requests to keep in flight: enough to use the portal's rate at the latency seen so far
        (rate x latency, plus a quarter for jitter, plus one), at most ``max_concurrency``."""
        rate = 1.0 / spacing(self.options.requests_per_10s, 10.0, self.options.rate_headroom)
        wanted = math.ceil(rate * self.latency * 1.25) + 1
        return max(1, min(self.options.max_concurrency, wanted))

    def count(self, kind: str, n: int = 1) -> None:
        """Count ``n`` requests of ``kind`` in ``usage`` (thread-safe)."""
        with self._lock:
            self.usage.count(kind, n)

    def close(self) -> None:
        """Close the cached SDK clients' connection pools."""
        for api in self._apis.values():
            pool = getattr(api.api_client.rest_client, "pool_manager", None)
            if pool is not None:
                pool.clear()
        self._apis.clear()

    def _set_access_token(self, token: str) -> None:
        self._sdk.access_token = token
        for api in self._apis.values():
            api.api_client.configuration.access_token = token

    # -- OAuth --------------------------------------------------------------------------------------

    @property
    def uses_oauth(self) -> bool:
        return self.options.auth == "oauth"

    def _ensure_token(self) -> None:
        if not self.uses_oauth:
            return
        margin = self.options.token_refresh_margin_seconds
        with self._token_lock:  # one renewal for all the threads that find the token old
            if self._expires_at is None or self._clock() >= self._expires_at - margin:
                self.refresh_access_token()

    def refresh_access_token(self) -> None:
        """Trade the refresh token for a new access token (HubSpot may rotate the refresh token)."""
        creds = self._credentials
        api = self.api("oauth.tokens")
        self.limiter.acquire("other")
        self.count("other")
        try:
            # _preload_content=False also keeps the SDK from logging the token response at DEBUG level.
            raw = api.create_with_http_info(
                grant_type="refresh_token",
                client_id=creds.client_id,
                client_secret=creds.client_secret,
                refresh_token=self._refresh_token,
                _preload_content=False,
                _request_timeout=self._timeout,
            )
            body = self._read(raw)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransientError(
                f"HubSpot OAuth token refresh: connection failed ({type(exc).__name__})"
            ) from None
        except Exception as exc:  # noqa: BLE001 - the SDK's ApiException classes differ per package
            if not hasattr(exc, "status"):
                raise
            err = translate_api_exception(exc, what="OAuth token refresh")
            if isinstance(err, PermanentError | AuthError):
                raise AuthError(
                    f"{err.message} (check the client id, secret and refresh token)",
                    status=err.status,
                    code=err.code,
                ) from None
            raise err from None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise AuthError("HubSpot OAuth token refresh: no access token in the answer", code="OAUTH")
        if body.get("refresh_token"):
            self._refresh_token = body["refresh_token"]
        self._expires_at = self._clock() + float(body.get("expires_in") or 1800)
        self._set_access_token(token)
        self.token_refreshes += 1
        log.info("hubspot: OAuth access token renewed (expires in %ss)", body.get("expires_in"))

    # -- requests -----------------------------------------------------------------------------------

    @staticmethod
    def _read(raw: Any) -> Any:
        try:
            data = raw.data
        finally:
            release = getattr(raw, "release_conn", None)
            if release:
                release()
        return _parse_body(data)

    def _note_headers(self, headers: Any) -> None:
        for name, key in (
            ("X-HubSpot-RateLimit-Max", "max"),
            ("X-HubSpot-RateLimit-Remaining", "remaining"),
            ("X-HubSpot-RateLimit-Interval-Milliseconds", "interval_ms"),
            ("X-HubSpot-RateLimit-Daily", "daily"),
            ("X-HubSpot-RateLimit-Daily-Remaining", "daily_remaining"),
            ("X-HubSpot-RateLimit-Secondly", "secondly"),
            ("X-HubSpot-RateLimit-Secondly-Remaining", "secondly_remaining"),
        ):
            value = _header(headers, name)
            if value is not None:
                try:
                    self.rate_headers[key] = int(value)
                except ValueError:
                    continue
        daily, left = self.rate_headers.get("daily"), self.rate_headers.get("daily_remaining")
        if daily is not None:
            self.usage.daily_limit = daily
            if left is not None:
                self.usage.daily_used = daily - left

    def _once(
        self, kind: str, what: str, op: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Response:
        self._ensure_token()
        renewals = self.token_refreshes
        try:
            with self._slots:  # at most ``max_concurrency`` requests in flight, whoever sends them
                self.limiter.acquire("search" if what.startswith("search") else kind)
                self.count(kind)
                started = time.perf_counter()
                raw = op(*args, _preload_content=False, _request_timeout=self._timeout, **kwargs)
                status = int(raw.status)
                headers = raw.headers
                body = self._read(raw)
                self._observe(time.perf_counter() - started)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # MaxRetryError (urllib3 gave up connecting), ProtocolError (connection dropped), timeouts.
            raise TransientError(f"HubSpot {what}: connection failed ({type(exc).__name__})") from None
        except Exception as exc:  # noqa: BLE001 - matched on .status, whatever the generated class
            if not hasattr(exc, "status"):
                raise
            self._note_headers(getattr(exc, "headers", None))
            err = translate_api_exception(exc, what=what)
            if isinstance(err, AuthError) and err.status == 401:
                raise _Unauthorized(err, renewals) from None
            raise err from None
        self._note_headers(headers)
        return Response(status, body, headers)

    def _observe(self, seconds: float) -> None:
        with self._lock:
            self.latency += LATENCY_WEIGHT * (seconds - self.latency)

    def call(
        self, kind: str, what: str, op: Callable[..., Any], *args: Any, idempotent: bool = True, **kwargs: Any
    ) -> Response:
        """Run one SDK operation (``op`` is a ``*_with_http_info`` method) and return its parsed answer.

        ``kind`` is ``read``, ``write`` or ``other`` (for usage); ``what`` names the request in errors
        and starts with ``search`` for the search endpoints (their own rate limit).
        Raises only ``connectors.errors`` types."""
        refreshed = False
        transient_failures = 0
        waits = 0

        def retry_wanted(exc: BaseException) -> bool:
            nonlocal refreshed, transient_failures, waits
            if isinstance(exc, _Unauthorized):
                if self.uses_oauth and not refreshed:
                    refreshed = True
                    return True
                return False
            if isinstance(exc, RateLimitedError):
                waits += 1
                return waits <= self.options.max_rate_limited_waits
            if isinstance(exc, TransientError) and idempotent:
                transient_failures += 1
                return transient_failures < self.options.max_attempts
            return False

        backoff = wait_exponential(multiplier=0.5, max=30.0) + wait_random(0, 0.5)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Unauthorized):
                with self._token_lock:  # unless another request in flight has renewed it meanwhile
                    if self.token_refreshes == exc.renewals:
                        self.refresh_access_token()
                return 0.0
            if isinstance(exc, RateLimitedError):
                seconds = float(exc.retry_after or 1.0)
                with self._lock:
                    self.rate_limited_waits += 1
                log.warning("hubspot: %s; waiting %.1fs", exc.message, seconds)
                self.limiter.pause(seconds)
                return 0.0  # the pacer sleeps before the next request
            seconds = backoff(state)
            log.warning("hubspot: %s; retry in %.1fs", exc, seconds)
            return seconds

        retrying = Retrying(
            retry=retry_if_exception(retry_wanted), wait=wait, sleep=self._sleep, reraise=True
        )
        try:
            return retrying(self._once, kind, what, op, args, kwargs)
        except _Unauthorized as exc:
            raise exc.error from None
