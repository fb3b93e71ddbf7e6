"""Salesforce connector: simple-salesforce over the REST API.

``client`` (auth, session, the HTTP seam, limits) · ``pull`` (SOQL by SystemModstamp, lazy pages) ·
``write`` (sObject Collections) · ``tasks`` (follow-up Tasks, idempotent by key) · ``fields`` (owned
fields: check with describe, install with the Tooling API) · ``mapping`` (fields <-> canonical names)
· ``connector`` (the ``Connector`` they make together).
"""

from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.options import DEFAULT_OWNED_FIELDS, SalesforceOptions

__all__ = ["DEFAULT_OWNED_FIELDS", "SalesforceConnector", "SalesforceOptions"]
