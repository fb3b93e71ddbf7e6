"""HubSpot connector.

Build one with ``HubSpotConnector.from_config(options, env_prefix="ACME_", env=None)``.

Secrets come only from the environment (``env`` or ``os.environ``), never from ``options``:

* ``auth: private_app`` (default): ``{prefix}HUBSPOT_ACCESS_TOKEN``.
* ``auth: oauth``: ``{prefix}HUBSPOT_CLIENT_ID``, ``{prefix}HUBSPOT_CLIENT_SECRET`` and
  ``{prefix}HUBSPOT_REFRESH_TOKEN``; the access token is renewed before it expires and once on a 401.

Options (``connectors.hubspot.options.HubSpotOptions``, unknown keys refused): ``host``, ``lead_object``
(``contact`` | ``lead``), ``properties`` (``{object: {hubspot_property: canonical_attribute | null}}``),
``owned_properties``, ``property_group``, ``property_group_label``, ``tiers``,
``mirror_ideal_customer_profile``, ``ideal_customer_profile_options``, ``requests_per_10s`` (100 or 190),
``search_requests_per_second`` (5), ``rate_headroom``, ``list_page_size`` (<= 100),
``search_page_size`` (<= 200), ``write_batch_size`` (<= 100), ``lookback_seconds``, ``connect_timeout``,
``read_timeout``, ``max_attempts``, ``max_rate_limited_waits``, ``follow_up_tasks``, ``task_key_property``,
``task_association_type_ids``, ``token_refresh_margin_seconds``.

Modules: ``client`` (auth, pacing, retries, error translation), ``ratelimit`` (token buckets behind a
two-method interface), ``mapping`` (pure record and value translation), ``pull``, ``write``,
``properties`` (install and checks), ``tasks``, ``connector`` (the protocol).
"""

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.options import HubSpotOptions

__all__ = ["HubSpotConnector", "HubSpotOptions"]
