"""The options of a HubSpot connection (the ``options:`` block of a connection in the config file).

Secrets are never options: they come from the environment (see ``connectors.hubspot.client``).
Unknown keys are refused, so a typo fails at start-up with the key's name rather than being ignored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.base import OBJECT_TYPES, OWNED_API_NAMES, OWNED_FIELDS, ObjectType

#: Where each canonical owned field lives in HubSpot unless ``owned_properties`` renames it.
DEFAULT_OWNED_PROPERTIES: dict[str, str] = OWNED_API_NAMES["hubspot"]

#: Every tier a record can get under the default ICP, best first (``IcpSpec.tier_names``).
DEFAULT_TIERS: tuple[str, ...] = ("best", "good", "poor", "disqualified", "insufficient_data")

#: HubSpot spellings accepted as keys of ``properties`` and ``task_association_type_ids``.
_OBJECT_ALIASES: dict[str, ObjectType] = {
    "account": "account",
    "company": "account",
    "companies": "account",
    "opportunity": "opportunity",
    "deal": "opportunity",
    "deals": "opportunity",
    "lead": "lead",
    "leads": "lead",
    "contact": "lead",
    "contacts": "lead",
}


def canonical_object_type(name: str) -> ObjectType:
    """``companies``/``company``/``account`` -> ``account`` and so on; ValueError for anything else."""
    try:
        return _OBJECT_ALIASES[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown object type {name!r} (use one of {', '.join(OBJECT_TYPES)})") from None


class HubSpotOptions(BaseModel):
    """Validated options of one HubSpot connection."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: ``private_app`` reads ``{prefix}HUBSPOT_ACCESS_TOKEN``; ``oauth`` reads the client id, secret and
    #: refresh token (``{prefix}HUBSPOT_CLIENT_ID``, ``..._CLIENT_SECRET``, ``..._REFRESH_TOKEN``).
    auth: Literal["private_app", "oauth"] = "private_app"
    #: API base URL; tests point it at the fake server.
    host: str = "https://api.hubapi.com"
    #: What the canonical ``lead`` is in this portal: contacts, or the Leads object (Sales Hub Pro+).
    lead_object: Literal["contact", "lead"] = "contact"
    #: Extra or overriding mappings ``{object: {hubspot_property: canonical_attribute}}`` on top of the
    #: defaults in ``connectors.hubspot.mapping``; map a default property to ``null`` to drop it.
    properties: dict[str, dict[str, str | None]] = Field(default_factory=dict)
    #: Owned canonical field -> HubSpot property name (missing keys keep their defaults).
    owned_properties: dict[str, str] = Field(default_factory=dict)
    property_group: str = "icp_fit"
    property_group_label: str = "ICP fit"
    #: Options of the tier enumeration property (``IcpSpec.tier_names``), best first.
    tiers: tuple[str, ...] = DEFAULT_TIERS
    #: Also write the tier into the standard company property ``hs_ideal_customer_profile``.
    mirror_ideal_customer_profile: bool = False
    #: Explicit tier -> ``hs_ideal_customer_profile`` option; unset tiers map by rank onto the options the
    #: portal has (best -> first option, good -> second, ...); tiers left over clear the property.
    ideal_customer_profile_options: dict[str, str] = Field(default_factory=dict)
    #: The portal's rolling limit: 100 (Free/Starter) or 190 (Professional/Enterprise) per 10 seconds.
    requests_per_10s: int = Field(100, ge=1, le=1000)
    #: The search endpoints' own limit (HubSpot documents five requests per second per account).
    search_requests_per_second: int = Field(5, ge=1, le=100)
    #: Share of each limit left unused. None by default: HubSpot counts the 10-second window per app, and
    #: the pacer already spaces requests so that a quarter second of network jitter stays inside it
    #: (``connectors.hubspot.ratelimit``); raise it when something else spends this app's budget.
    rate_headroom: float = Field(0.0, ge=0.0, lt=1.0)
    #: Page sizes: the list endpoint allows 100, search 200, batch writes 100.
    list_page_size: int = Field(100, ge=1, le=100)
    search_page_size: int = Field(200, ge=1, le=200)
    write_batch_size: int = Field(100, ge=1, le=100)
    #: Seconds subtracted from ``since`` on incremental pulls (search indexing lag, clock skew).
    lookback_seconds: int = Field(300, ge=0)
    #: Per-request timeout (connect, read) in seconds.
    connect_timeout: float = Field(10.0, gt=0)
    read_timeout: float = Field(60.0, gt=0)
    #: In-run retries of a transient failure (5xx, timeout, dropped connection) per request.
    max_attempts: int = Field(5, ge=1, le=20)
    #: Most requests in flight at once (the connector sizes its pool from the rate and the latency).
    max_concurrency: int = Field(8, ge=1, le=32)
    #: In-run waits after a rolling-window 429 before giving up with ``RateLimitedError``.
    max_rate_limited_waits: int = Field(20, ge=0)
    #: Follow-up tasks are enabled: ``install_fields`` creates the task key property and
    #: ``check_fields`` reports it missing.
    follow_up_tasks: bool = True
    #: The task property that stores ``FollowUpTask.key`` (searched before creating a task).
    task_key_property: str = "icp_task_key"
    #: HUBSPOT_DEFINED association type ids task -> record (task->company 192, ->deal 216, ->contact 204).
    #: The Leads object has no documented default here: set ``lead`` when ``lead_object: lead``.
    task_association_type_ids: dict[str, int] = Field(default_factory=dict)
    #: Renew an OAuth access token this many seconds before it expires.
    token_refresh_margin_seconds: int = Field(300, ge=0)

    @field_validator("properties")
    @classmethod
    def _known_objects(cls, v: dict[str, dict[str, str | None]]) -> dict[str, dict[str, str | None]]:
        out: dict[str, dict[str, str | None]] = {}
        for key, mapping in v.items():
            obj = canonical_object_type(key)
            out.setdefault(obj, {}).update(mapping)
        return out

    @field_validator("task_association_type_ids")
    @classmethod
    def _known_task_objects(cls, v: dict[str, int]) -> dict[str, int]:
        return {canonical_object_type(k): int(t) for k, t in v.items()}

    @field_validator("owned_properties")
    @classmethod
    def _owned_keys(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(OWNED_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown owned field(s) {', '.join(unknown)} (known: {', '.join(OWNED_FIELDS)})"
            )
        return v

    @field_validator("host")
    @classmethod
    def _http_host(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("host must be an http(s) URL such as https://api.hubapi.com")
        return v.rstrip("/")

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v or len(set(v)) != len(v):
            raise ValueError("tiers must be a non-empty list of distinct names")
        return v

    @model_validator(mode="after")
    def _distinct_owned_names(self) -> HubSpotOptions:
        names = list(self.owned_map().values())
        if len(set(names)) != len(names):
            raise ValueError("owned_properties must map each owned field to a distinct HubSpot property")
        return self

    def owned_map(self) -> dict[str, str]:
        """Canonical owned field -> HubSpot property name, defaults filled in."""
        return {**DEFAULT_OWNED_PROPERTIES, **self.owned_properties}
