"""Builds the connector a connection's ``crm`` names. Imports lazily: a files-only install never
loads the CRM SDKs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from connectors.base import Connector
from connectors.errors import ConfigError


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
