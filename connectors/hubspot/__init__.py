"""HubSpot connector: ``HubSpotConnector.from_config(options, env_prefix=..., env=...)``."""

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.options import HubSpotOptions

__all__ = ["HubSpotConnector", "HubSpotOptions"]
