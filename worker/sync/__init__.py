"""One sync run: pull → snapshot → score → diff → write → re-engage → run record.

Plain functions (the Celery tasks in ``worker.tasks`` only wrap them), one module per phase:

- ``pull``: a page's snapshots are committed, then the cursor advances past them; a changed record is
  marked ``dirty`` (a new one has no fit, so it is scored anyway);
- ``score``: dirty records (and records scored under an older ICP version) are evaluated in batches by
  the pure ``worker.evaluate.evaluate`` (shared with the revision preview); each batch's fits, flag
  changes, history and the clearing of ``dirty`` commit together. A fit's ``desired`` owned-field
  values are compared with what was last ``written``: only records whose values differ are ``pending``;
- ``write``: pending (and previously failed) records go to the CRM in the connector's batch size;
  each batch's per-record results commit right after the CRM answers (a crash re-sends at most
  the one batch in flight);
- ``followups``: flags are raised and cleared while scoring; follow-up tasks are created afterwards,
  idempotently by flag;
- ``run``: the run record and the order of the phases.

Every step commits as it goes and keeps its pending work in the store, so a run killed at any point
is finished by the next one. The per-record statements (snapshots, fits, history, raised flags, write
results and the batch reads) run through ``worker.store.bulk``: plain SQL on the session's own
connection and transaction, values encoded as SQLAlchemy's column types would (COPY for PostgreSQL's
inserts); the batch reads are keyset scans on indexes in their order (migration 0007).
"""

from worker.sync.counts import RunCounts
from worker.sync.run import NoIcpError, ProgressFn, RunSummary, run_sync

__all__ = ["NoIcpError", "ProgressFn", "RunCounts", "RunSummary", "run_sync"]
