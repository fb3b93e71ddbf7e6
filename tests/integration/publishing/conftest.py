"""The fixtures of the CLI and real-Celery tests, for the publishing tests: ``env`` (a files connection
on the demo's sample CRM, embedded store) and ``stack`` (Redis broker, PostgreSQL store, worker processes)."""

from tests.integration.test_celery import stack  # noqa: F401
from tests.integration.test_cli import env  # noqa: F401
