"""Derive and backtest time: ``python -m benchmarks.derive [--accounts N ...]``.

For each size, a planted synthetic history (``worker.icp.synthetic``; 80% of the accounts with 1-3 closed
deals over four years) is derived with a split date, the draft parsed, and backtested on the later deals
with and without the statistical yardstick (a logistic regression and two cluster bootstraps of 400
rounds). The history is generated outside the timed part. Figures, not a pass/fail test: the last line is
JSON for tooling.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import date
from typing import Any

from worker.icp.backtest import backtest
from worker.icp.derive import derive
from worker.icp.draft import draft_icp_yaml
from worker.icp.spec import parse_icp
from worker.icp.synthetic import synthetic_history

SPLIT = date(2023, 7, 1)


def run(accounts: int) -> dict[str, Any]:
    history = synthetic_history(accounts, seed=4)
    t = time.perf_counter()
    report = derive(history, split_date=SPLIT)
    derive_s = time.perf_counter() - t
    spec = parse_icp(draft_icp_yaml(report), "draft.yaml")
    t = time.perf_counter()
    plain = backtest(spec, history, split_date=SPLIT, with_model=False)
    plain_s = time.perf_counter() - t
    t = time.perf_counter()
    full = backtest(spec, history, split_date=SPLIT)
    full_s = time.perf_counter() - t
    return {
        "accounts": accounts,
        "closed_deals": sum(len(a.deals) for a in history),
        "derive_s": round(derive_s, 2),
        "backtest_s": round(plain_s, 2),
        "backtest_with_model_s": round(full_s, 2),
        "draft_auc": round(plain.auc or 0.0, 3),
        "model_auc": round(full.model_auc or 0.0, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, nargs="+", default=[2_000, 20_000, 100_000])
    args = parser.parse_args(argv)
    rows = [run(n) for n in args.accounts]
    for r in rows:
        print(
            f"{r['accounts']:>8,} accounts ({r['closed_deals']:,} closed deals): "
            f"derive {r['derive_s']:.2f}s, "
            f"backtest {r['backtest_s']:.2f}s, with the statistical model {r['backtest_with_model_s']:.2f}s; "
            f"AUC draft {r['draft_auc']:.3f}, model {r['model_auc']:.3f}"
        )
    print(json.dumps({"benchmark": "derive", "python": platform.python_version(), "runs": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
