"""The console's pages, one module per area; :func:`routes` lists them all."""

from __future__ import annotations

from starlette.routing import BaseRoute


def routes() -> list[BaseRoute]:
    from worker.console.views import draft, overview, records, signin, versions

    return [*signin.ROUTES, *overview.ROUTES, *versions.ROUTES, *draft.ROUTES, *records.ROUTES]
