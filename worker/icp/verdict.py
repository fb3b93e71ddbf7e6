"""Is the draft worth writing? The plain-words verdict of a backtest on later deals (pure).

A draft learnt from the deals before the split is judged on the deals on or after it:

- its AUC's 95% interval (a cluster bootstrap over accounts) includes 0.5: **no better than chance**, no
  pattern found;
- or its AUC is not above the current ICP's on the same deals: **no better than the current ICP**;
- otherwise it is worth reviewing, and the verdict says by how much, beside the statistical yardstick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from worker.icp.backtest import BacktestReport


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    #: The verdict in plain words (one sentence, for the terminal and the draft's header).
    message: str
    draft_auc: float | None
    current_auc: float | None
    model_auc: float | None


def _interval(r: BacktestReport) -> str:
    if r.auc_lo is None or r.auc_hi is None:
        return ""
    return f", 95% interval {r.auc_lo:.2f} to {r.auc_hi:.2f}"


def judge(draft: BacktestReport, current: BacktestReport | None, split_date: date) -> Verdict:
    """The verdict on ``draft`` after ``split_date`` (beside ``current``, the published ICP, if any)."""
    when = f"on deals after {split_date.isoformat()}"
    cur = current.auc if current is not None else None
    model = draft.model_auc

    def verdict(ok: bool, message: str) -> Verdict:
        return Verdict(ok, message, draft.auc, cur, model)

    if draft.auc is None:
        return verdict(
            False, f"no verdict possible {when}: they need both won and lost deals; no pattern found"
        )
    if draft.auc_lo is None or draft.auc_lo <= 0.5:
        return verdict(
            False, f"no better than chance {when}: no pattern found (AUC {draft.auc:.2f}{_interval(draft)})"
        )
    if current is not None and cur is not None and draft.auc <= cur:
        return verdict(
            False,
            f"no better than the current ICP {current.icp_name!r} {when} (AUC {draft.auc:.2f} vs {cur:.2f}): "
            "keep the current ICP",
        )
    parts = [f"better than chance {when}: AUC {draft.auc:.2f}{_interval(draft)}"]
    if cur is not None:
        parts.append(f"the current ICP {cur:.2f}")
    if model is not None:
        parts.append(f"a statistical model on the same data {model:.2f}")
    return verdict(True, "; ".join(parts))


__all__ = ["Verdict", "judge"]
