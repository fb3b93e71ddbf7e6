"""The CRMs a connection can name: what the worker needs to know of each, and how to build its
connector. Imports lazily: a files-only install never loads the CRM SDKs."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.base import OWNED_API_NAMES, Connector
from connectors.errors import ConfigError
from connectors.limits import Rate, RateLimiter


@dataclass(frozen=True, slots=True)
class CrmEntry:
    """What the worker knows of one CRM before any connector is built."""

    name: str
    #: Records per write request (the connector's default): turns "records to write" into API calls.
    write_batch_size: int
    #: Lead statuses that mean "dismissed" when a connection sets none (compared case-insensitively).
    dismissed_statuses: tuple[str, ...]
    #: Owned field (``connectors.base.OWNED_FIELDS``) -> its API name in this CRM, unless renamed.
    owned_api_names: Mapping[str, str]
    #: The rolling request limits one limiter shared by every worker enforces, from a connection's
    #: options (``worker.ratelimit``); None when the CRM counts something else (Salesforce: a daily
    #: allocation its connector reserves itself; files: nothing).
    rate_limits: Callable[[Mapping[str, Any]], dict[str, Rate]] | None = None
    #: Names the budget a connection draws on, from its credentials (``env_prefix``, ``env``), so that
    #: connections of one app share it; hashed, never a secret. None: the connection's own name.
    budget_name: Callable[[str, Mapping[str, str]], str | None] | None = None


def _hubspot_limits(options: Mapping[str, Any]) -> dict[str, Rate]:
    from connectors.hubspot.ratelimit import shared_limits

    return shared_limits(options)


def _hubspot_budget(env_prefix: str, env: Mapping[str, str]) -> str | None:
    from connectors.hubspot.ratelimit import budget_name

    return budget_name(env_prefix, env)


_SALESFORCE_DISMISSED = ("Closed - Not Converted", "Unqualified", "Disqualified", "Nurture")

#: Every supported CRM, by the name a connection's ``crm`` uses.
CRMS: dict[str, CrmEntry] = {
    "files": CrmEntry("files", 10_000, _SALESFORCE_DISMISSED, OWNED_API_NAMES["files"]),
    "salesforce": CrmEntry("salesforce", 200, _SALESFORCE_DISMISSED, OWNED_API_NAMES["salesforce"]),
    "hubspot": CrmEntry(
        "hubspot",
        100,
        ("UNQUALIFIED", "BAD_TIMING"),
        OWNED_API_NAMES["hubspot"],
        rate_limits=_hubspot_limits,
        budget_name=_hubspot_budget,
    ),
}


def crm_entry(crm: str) -> CrmEntry:
    try:
        return CRMS[crm]
    except KeyError:
        raise ConfigError(f"unknown CRM {crm!r} (expected {', '.join(CRMS)})") from None


def build_connector(
    crm: str,
    options: Mapping[str, Any],
    *,
    env_prefix: str,
    env: Mapping[str, str] | None = None,
    limiter: RateLimiter | None = None,
) -> Connector:
    """``limiter`` replaces a connector's own request pacing, so that several workers share one budget
    per CRM org (``worker.ratelimit``; only CRMs whose entry has ``rate_limits`` take one)."""
    env = os.environ if env is None else env
    if crm == "files":
        from connectors.files import FilesConnector

        return FilesConnector.from_config(dict(options))
    if crm == "salesforce":
        from connectors.salesforce import SalesforceConnector

        return SalesforceConnector.from_config(dict(options), env_prefix=env_prefix, env=env)
    if crm == "hubspot":
        from connectors.hubspot import HubSpotConnector

        seams = {"limiter": limiter} if limiter is not None else {}
        return HubSpotConnector.from_config(dict(options), env_prefix=env_prefix, env=env, **seams)
    raise ConfigError(f"unknown CRM {crm!r} (expected files, salesforce or hubspot)")
