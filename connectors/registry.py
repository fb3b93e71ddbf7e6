"""The CRMs a connection can name: what the worker needs to know of each, and how to build its
connector. Imports lazily: a files-only install never loads the CRM SDKs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.base import Connector
from connectors.errors import ConfigError


@dataclass(frozen=True, slots=True)
class CrmEntry:
    """What the worker knows of one CRM before any connector is built."""

    name: str
    #: Records per write request (the connector's default): turns "records to write" into API calls.
    write_batch_size: int
    #: Lead statuses that mean "dismissed" when a connection sets none (compared case-insensitively).
    dismissed_statuses: tuple[str, ...]


_SALESFORCE_DISMISSED = ("Closed - Not Converted", "Unqualified", "Disqualified", "Nurture")

#: Every supported CRM, by the name a connection's ``crm`` uses.
CRMS: dict[str, CrmEntry] = {
    "files": CrmEntry("files", 10_000, _SALESFORCE_DISMISSED),
    "salesforce": CrmEntry("salesforce", 200, _SALESFORCE_DISMISSED),
    "hubspot": CrmEntry("hubspot", 100, ("UNQUALIFIED", "BAD_TIMING")),
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
    limiter: Any = None,
) -> Connector:
    """``limiter`` (``acquire(kind)``/``pause(seconds)``) replaces a connector's own request pacing, so
    that several workers share one budget per CRM org (``worker.ratelimit``)."""
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
