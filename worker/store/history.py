"""Load the history of won and lost deals from the snapshot store (``record_snapshots`` alone, no CRM call).

- accounts: ``object_type == "account"``, their normalised ``attributes``;
- closed deals: ``object_type == "opportunity"`` whose status reads as closed
  (``worker.icp.history.deal_from_status``), joined to their account by ``status["account_id"]`` (the
  account's ``external_id``).

Both queries are streamed (``yield_per``) and only the needed columns are read, so a store with millions of
snapshots does not become millions of ORM objects. Opportunities whose account is not in the store cannot be
scored and are counted and logged, not silently dropped. No fit is needed: a store synced before any ICP was
published has the same history.
"""

from __future__ import annotations

import logging
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.icp.history import AccountOutcome, Deal, deal_from_status
from worker.store.models import RecordSnapshot

log = logging.getLogger(__name__)

STREAM_BATCH = 1000


def load_history(session: Session, connection_id: int) -> list[AccountOutcome]:
    """Every account of a connection with its closed deals, from the snapshot store (no CRM call).

    Accounts with no closed deal are included: they are part of "all accounts", the baseline of ``derive``.
    """
    deals_by_account: dict[str, list[Deal]] = {}
    opp_rows = session.execute(
        select(RecordSnapshot.external_id, RecordSnapshot.status)
        .where(RecordSnapshot.connection_id == connection_id, RecordSnapshot.object_type == "opportunity")
        .execution_options(yield_per=STREAM_BATCH)
    )
    open_count = 0
    no_account = 0
    for external_id, status in opp_rows:
        account_id, deal = deal_from_status(external_id, status or {})
        if deal is None:
            open_count += 1
            continue
        if account_id is None:
            no_account += 1
            continue
        deals_by_account.setdefault(account_id, []).append(deal)

    accounts: list[AccountOutcome] = []
    acc_rows = session.execute(
        select(RecordSnapshot.external_id, RecordSnapshot.name, RecordSnapshot.attributes)
        .where(RecordSnapshot.connection_id == connection_id, RecordSnapshot.object_type == "account")
        .order_by(RecordSnapshot.external_id)
        .execution_options(yield_per=STREAM_BATCH)
    )
    for external_id, name, attributes in acc_rows:
        deals = deals_by_account.pop(external_id, [])
        deals.sort(key=lambda d: (d.close_date or date.max, d.opportunity_id))
        accounts.append(
            AccountOutcome(account_id=external_id, attributes=attributes or {}, deals=tuple(deals), name=name)
        )

    orphans = sum(len(v) for v in deals_by_account.values())
    if orphans or no_account:
        log.warning(
            "%d closed opportunities left out of the history: %d name an account that is not in the store, "
            "%d name no account",
            orphans + no_account,
            orphans,
            no_account,
        )
    log.debug("history: %d accounts, %d open opportunities skipped", len(accounts), open_count)
    return accounts


__all__ = ["load_history"]
