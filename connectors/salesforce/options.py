"""The ``options`` of a Salesforce connection, as written in the connections file.

Secrets are never options: they come from the environment under the connection's ``env_prefix``
(see ``connectors.salesforce.client.Credentials``). Unknown keys are refused so a typo fails fast.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from simple_salesforce.api import DEFAULT_API_VERSION

from connectors.base import OWNED_API_NAMES, OWNED_FIELDS, ObjectType
from connectors.errors import ConfigError

#: Owned field API names by canonical name (``connectors.base.OWNED_API_NAMES``).
DEFAULT_OWNED_FIELDS: dict[str, str] = OWNED_API_NAMES["salesforce"]

_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_CUSTOM_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_]*__c$")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskOptions(_Strict):
    """Fields of the follow-up Tasks this connector creates."""

    status: str = "Not Started"
    priority: str = "Normal"
    #: Keys looked up per SOQL query before creating (each adds a ``Subject LIKE`` clause).
    lookup_batch: int = Field(default=50, ge=1, le=100)


class SalesforceOptions(_Strict):
    """Validated ``options`` of a Salesforce connection."""

    #: ``jwt`` (OAuth 2.0 JWT bearer, the production set-up), ``password`` (username, password and
    #: security token) or ``session`` (an existing session id plus ``instance_url``).
    auth: Literal["jwt", "password", "session"] = "jwt"
    #: ``login`` (production), ``test`` (sandbox) or a My Domain host such as ``acme.my.salesforce.com``.
    domain: str = "login"
    #: Any login server instead of ``domain``, for ``password`` and ``jwt`` auth: a sandbox proxy, a
    #: private endpoint, a test server (``https://sso.acme.example``, optionally with a path). The
    #: SOAP login or the OAuth token request goes to ``{login_url}/services/...``.
    login_url: str | None = None
    #: The JWT ``aud`` claim: Salesforce's login server (``https://login.salesforce.com``, or
    #: ``https://test.salesforce.com`` for a sandbox) unless set; a login URL fronting an Experience
    #: Cloud site needs the site's URL here.
    jwt_audience: str | None = None
    #: ``https://acme.my.salesforce.com``: required for ``session`` auth, ignored otherwise.
    instance_url: str | None = None
    api_version: str = DEFAULT_API_VERSION
    #: Extra mapped fields per object: ``{account: {Tech_Stack__c: tech_stack}}``. They are added to the
    #: standard defaults; mapping a default field to ``null`` drops it.
    fields: dict[ObjectType, dict[str, str | None]] = Field(default_factory=dict)
    #: An Account field whose value says "customer" (e.g. ``Type``), and the values that mean it.
    customer_field: str | None = None
    customer_values: list[str] = Field(
        default_factory=lambda: ["Customer", "Customer - Direct", "Customer - Channel"]
    )
    #: Owned field API names by canonical name; unset names keep ``DEFAULT_OWNED_FIELDS``.
    owned_fields: dict[str, str] = Field(default_factory=dict)
    #: Pull re-reads this many seconds before the cursor (clock skew, long transactions).
    lookback_seconds: int = Field(300, ge=0, le=7 * 86400)
    #: Share of the org's daily API allocation left to its other integrations.
    reserve_share: float = Field(0.2, ge=0.0, lt=1.0)
    #: Records per query batch (``Sforce-Query-Options: batchSize``); Salesforce allows 200..2000.
    page_size: int = Field(2000, ge=200, le=2000)
    #: Seconds to wait for one HTTP response.
    timeout_seconds: float = Field(60.0, gt=0)
    #: Attempts per request on 5xx, timeouts and dropped connections (1: no retry).
    max_attempts: int = Field(5, ge=1, le=20)
    #: Exponential backoff with jitter between attempts: first wait and cap, in seconds.
    retry_wait_initial: float = Field(1.0, ge=0)
    retry_wait_max: float = Field(60.0, ge=0)
    #: Requests in flight at once, across the connection's threads (sObject Collections writes, object
    #: types pulled in parallel, Bulk API calls). Salesforce does not limit concurrent requests shorter
    #: than 20 seconds; of longer ones it refuses more than 25 per org (5 in Developer Edition and trial
    #: orgs) with ``REQUEST_LIMIT_EXCEEDED``, so the default stays under the smallest of those.
    max_concurrency: int = Field(4, ge=1, le=10)
    #: In-run retries of records that failed with ``UNABLE_TO_LOCK_ROW``, and the wait between them.
    lock_retries: int = Field(2, ge=0, le=10)
    lock_retry_wait: float = Field(2.0, ge=0)
    #: Bulk API 2.0 for large volumes: a pull whose query matches more than ``bulk_read_threshold``
    #: records runs as a query job, a write-back of more than ``bulk_write_threshold`` records as an
    #: ingest job; REST below. ``bulk: false`` keeps everything on REST.
    bulk: bool = True
    bulk_read_threshold: int = Field(10_000, ge=0)
    bulk_write_threshold: int = Field(2_000, ge=0)
    #: Records per result set of a query job (``maxRecords``).
    bulk_max_records: int = Field(50_000, ge=2_000, le=1_000_000)
    #: Polling of a job: first wait, doubling up to the cap, and the time after which it is aborted.
    bulk_poll_initial: float = Field(0.5, ge=0)
    bulk_poll_max: float = Field(10.0, ge=0)
    bulk_timeout_seconds: float = Field(1800.0, gt=0)
    #: Permission set that grants the integration user edit access to the owned fields.
    permission_set: str = "ICP_Fit_Worker"
    tasks: TaskOptions = Field(default_factory=TaskOptions)

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        host = v.strip().lower().removeprefix("https://").rstrip("/")
        if host in ("login", "test", "login.salesforce.com", "test.salesforce.com"):
            return host.removesuffix(".salesforce.com")
        if not _HOST.match(host) or not host.endswith(".salesforce.com"):
            raise ValueError(
                "must be 'login', 'test' or a My Domain host ending in .salesforce.com "
                "(for example acme.my.salesforce.com)"
            )
        return host

    @field_validator("login_url", "jwt_audience")
    @classmethod
    def _https_url(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = v.strip().rstrip("/")
        if not re.match(r"^https://[A-Za-z0-9.-]+(:\d+)?(/[A-Za-z0-9._~/-]*)?$", v):
            raise ValueError("must be an https:// URL such as https://sso.acme.example (a path may follow)")
        return v

    @field_validator("instance_url")
    @classmethod
    def _instance_url(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = v.strip().rstrip("/")
        if not re.match(r"^https://[A-Za-z0-9.-]+(:\d+)?$", v):
            raise ValueError("must be an https:// URL with a host only, e.g. https://acme.my.salesforce.com")
        return v

    @field_validator("api_version")
    @classmethod
    def _api_version(cls, v: str) -> str:
        v = v.removeprefix("v")
        if not re.fullmatch(r"\d{2,3}\.0", v):
            raise ValueError("must look like '59.0'")
        return v

    @field_validator("fields")
    @classmethod
    def _mapped_names(
        cls, v: dict[ObjectType, dict[str, str | None]]
    ) -> dict[ObjectType, dict[str, str | None]]:
        for obj, mapping in v.items():
            for api_name, canonical in mapping.items():
                if not _API_NAME.match(api_name):
                    raise ValueError(f"{obj}: {api_name!r} is not a Salesforce field API name")
                if canonical is not None and not re.fullmatch(r"[a-z][a-z0-9_]*", canonical):
                    raise ValueError(
                        f"{obj}.{api_name}: canonical name {canonical!r} must be lower_snake_case"
                    )
        return v

    @field_validator("customer_field")
    @classmethod
    def _customer_field(cls, v: str | None) -> str | None:
        if v is not None and not _API_NAME.match(v):
            raise ValueError(f"{v!r} is not a Salesforce field API name")
        return v

    @field_validator("owned_fields")
    @classmethod
    def _owned(cls, v: dict[str, str]) -> dict[str, str]:
        for canonical, api_name in v.items():
            if canonical not in OWNED_FIELDS:
                raise ValueError(f"unknown owned field {canonical!r} (known: {', '.join(OWNED_FIELDS)})")
            if not _CUSTOM_FIELD.match(api_name):
                raise ValueError(f"{canonical}: {api_name!r} must be a custom field API name ending in __c")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> SalesforceOptions:
        if self.auth == "session" and not self.instance_url:
            raise ValueError("auth 'session' needs instance_url (the org's https:// URL)")
        if self.login_url and self.domain != "login":
            raise ValueError("set either domain or login_url, not both")
        if self.retry_wait_max < self.retry_wait_initial:
            raise ValueError("retry_wait_max must be at least retry_wait_initial")
        names = list(self.owned_api_names.values())
        if len({n.lower() for n in names}) != len(names):
            raise ValueError("owned_fields: two owned fields share one API name")
        return self

    @property
    def owned_api_names(self) -> dict[str, str]:
        """Canonical owned name -> API name, defaults filled in."""
        return {**DEFAULT_OWNED_FIELDS, **self.owned_fields}

    @property
    def login_domain(self) -> str:
        """What simple-salesforce calls ``domain``: the login host without ``.salesforce.com``."""
        return self.domain.removesuffix(".salesforce.com")

    @property
    def is_sandbox(self) -> bool:
        return self.domain == "test" or ".sandbox.my." in self.domain

    @property
    def audience(self) -> str:
        """The JWT ``aud`` claim (see ``jwt_audience``)."""
        if self.jwt_audience:
            return self.jwt_audience
        return "https://test.salesforce.com" if self.is_sandbox else "https://login.salesforce.com"


def parse_options(options: dict[str, Any]) -> SalesforceOptions:
    """Validate ``options``; raise ``ConfigError`` listing every problem with its key path."""
    try:
        return SalesforceOptions.model_validate(options)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(options)"
            problems.append(f"{loc}: {err['msg']}")
        raise ConfigError("invalid Salesforce options: " + "; ".join(problems)) from None
