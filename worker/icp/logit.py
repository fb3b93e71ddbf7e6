"""A regularised logistic regression of winning on binned attributes (pure; numpy).

Each closed deal is a trial won or lost; its account's cells (``worker.icp.cells``) are the features, one
0/1 column per cell, missing data or a rare value a row of zeros. Deals of an account share one row, with
its counts of won and closed deals (a binomial row: the same fit as one row per deal, far smaller).

The fit is Newton's method (iteratively reweighted least squares) with an L2 penalty ``l2`` on every
coefficient but the intercept: a Normal(0, 1/l2) prior on each cell's log-odds, so a cell seen on a handful
of accounts cannot get a huge weight, and the one-hot columns of an attribute need no reference cell.
Bounded: at most ``max_iter`` steps (it converges in a few).

Used twice: ``derive`` turns the coefficients into the rubric's weights and credits, and ``backtest``
reports the model's AUC beside the ICP's as a yardstick ("a statistical model on the same data").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from worker.icp.cells import Binning, CellKey, bin_attributes
from worker.icp.history import AccountOutcome
from worker.icp.stats import auc_of_accounts, cluster_bootstrap_auc

L2 = 1.0
MAX_ITER = 50


@dataclass(frozen=True, slots=True)
class LogitModel:
    binnings: tuple[Binning, ...]
    #: (attribute, cell key) of each column, in order.
    columns: tuple[tuple[str, CellKey], ...]
    intercept: float
    coefficients: tuple[float, ...]
    iterations: int
    converged: bool

    def coefficient(self, attribute: str, key: CellKey) -> float:
        for (a, k), beta in zip(self.columns, self.coefficients, strict=True):
            if a == attribute and k == key:
                return beta
        return 0.0

    def log_odds(self, attributes: Mapping[str, object]) -> float:
        """The model's log-odds of winning a deal of an account with these attributes."""
        beta = dict(zip(self.columns, self.coefficients, strict=True))
        eta = self.intercept
        for b in self.binnings:
            eta += sum(beta.get((b.attribute, k), 0.0) for k in b.keys(attributes.get(b.attribute)))
        return eta

    def scores(self, accounts: Sequence[Mapping[str, object]]) -> list[float]:
        """``log_odds`` of many accounts (each distinct value placed once)."""
        beta = dict(zip(self.columns, self.coefficients, strict=True))
        out = [self.intercept] * len(accounts)
        for b in self.binnings:
            for i, keys in enumerate(b.place(accounts)):
                out[i] += sum(beta.get((b.attribute, k), 0.0) for k in keys or ())
        return out


def fit_logistic(
    x: np.ndarray, won: np.ndarray, trials: np.ndarray, *, l2: float = L2, max_iter: int = MAX_ITER
) -> tuple[float, np.ndarray, int, bool]:
    """``(intercept, coefficients, iterations, converged)`` of a binomial logistic regression with an L2
    penalty on the coefficients (not the intercept), by Newton-Raphson."""
    rows, cols = x.shape
    design = np.hstack([np.ones((rows, 1)), x])
    penalty = np.full(cols + 1, l2)
    penalty[0] = 0.0
    total = float(trials.sum())
    rate = min(max(float(won.sum()) / total, 1e-6), 1 - 1e-6) if total else 0.5
    beta = np.zeros(cols + 1)
    beta[0] = np.log(rate / (1 - rate))
    for step in range(1, max_iter + 1):
        eta = np.clip(design @ beta, -30, 30)
        p = 1.0 / (1.0 + np.exp(-eta))
        gradient = design.T @ (won - trials * p) - penalty * beta
        weights = trials * p * (1 - p)
        hessian = (design * weights[:, None]).T @ design + np.diag(penalty) + 1e-9 * np.eye(cols + 1)
        delta = np.linalg.solve(hessian, gradient)
        beta = beta + delta
        if float(np.max(np.abs(delta))) < 1e-8:
            return float(beta[0]), beta[1:], step, True
    return float(beta[0]), beta[1:], max_iter, False


def design_matrix(
    binnings: Sequence[Binning],
    columns: Sequence[tuple[str, CellKey]],
    placed: Mapping[str, Sequence[tuple[CellKey, ...] | None]],
    rows: Sequence[int],
) -> np.ndarray:
    """0/1 columns for the accounts at positions ``rows`` of ``placed`` (``Binning.place`` per attribute)."""
    where = {c: i for i, c in enumerate(columns)}
    x = np.zeros((len(rows), len(columns)))
    for b in binnings:
        cells = placed[b.attribute]
        for r, i in enumerate(rows):
            for key in cells[i] or ():
                j = where.get((b.attribute, key))
                if j is not None:
                    x[r, j] = 1.0
    return x


def fit_model(
    accounts: Sequence[AccountOutcome],
    binnings: Sequence[Binning],
    *,
    l2: float = L2,
    placed: Mapping[str, Sequence[tuple[CellKey, ...] | None]] | None = None,
) -> LogitModel | None:
    """The model of winning on ``binnings`` from the accounts' closed deals; ``None`` without both won and
    lost deals. ``placed``: the accounts' cells per attribute when already known (``Binning.place``)."""
    attrs = [a.attributes for a in accounts]
    known = dict(placed or {})
    for b in binnings:
        if b.attribute not in known:
            known[b.attribute] = b.place(attrs)
    closed = [i for i, a in enumerate(accounts) if a.deals]
    won = np.array([accounts[i].wins for i in closed], dtype=float)
    trials = np.array([len(accounts[i].deals) for i in closed], dtype=float)
    if not closed or won.sum() == 0 or won.sum() == trials.sum():
        return None
    columns = tuple((b.attribute, c.key) for b in binnings for c in b.cells)
    x = design_matrix(binnings, columns, known, closed)
    intercept, beta, iterations, converged = fit_logistic(x, won, trials, l2=l2)
    return LogitModel(
        tuple(binnings), columns, intercept, tuple(float(b) for b in beta), iterations, converged
    )


@dataclass(frozen=True, slots=True)
class Yardstick:
    """The AUC of a logistic regression on the ICP's attributes, on the deals the backtest judges."""

    attributes: tuple[str, ...]
    auc: float | None
    auc_lo: float | None
    auc_hi: float | None
    #: Trained before the split and judged after it (``False``: trained and judged on the same deals).
    out_of_sample: bool


def yardstick(
    history: Sequence[AccountOutcome],
    attributes: Sequence[str],
    *,
    split_date: date | None = None,
    min_support: int = 10,
    l2: float = L2,
) -> Yardstick:
    """Fit on the deals closed before ``split_date`` (all deals without one), judge on those on or after."""
    names = tuple(dict.fromkeys(attributes))
    train = [a.restrict(before=split_date) for a in history] if split_date else list(history)
    test = [a.restrict(on_or_after=split_date) for a in history] if split_date else list(history)
    binnings, _ = bin_attributes([a.attributes for a in train], names, min_support=min_support)
    model = fit_model(train, binnings, l2=l2) if binnings else None
    if model is None:
        return Yardstick(names, None, None, None, split_date is not None)
    judged = [a for a in test if a.deals]
    scored = [
        (eta, a.wins, a.losses)
        for eta, a in zip(model.scores([a.attributes for a in judged]), judged, strict=True)
    ]
    auc = auc_of_accounts(scored)
    interval = cluster_bootstrap_auc(scored) if auc is not None else None
    lo, hi = interval if interval else (None, None)
    return Yardstick(names, auc, lo, hi, split_date is not None)


__all__ = ["L2", "LogitModel", "Yardstick", "design_matrix", "fit_logistic", "fit_model", "yardstick"]
