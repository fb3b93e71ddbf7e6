"""Why a record's fit changed between two scorings: a revision of the ICP, a change of the record's own
data, both, or (for an opportunity) its account's fit. Pure, no I/O.

Reasons are compared as stored (``Reason.to_dict``: ``code``, ``status``, ``points``, ``text``, ``value``).
Reasons stored before the value was kept have no ``value``; then a new version alone is taken as the
cause, and the same version as a change of data (the only thing that can move a score then).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from worker.icp.reasons import fmt_points

__all__ = ["ChangeCause", "change_cause", "change_note", "values_changed"]


class ChangeCause(StrEnum):
    """Why a history entry was written."""

    #: The record's first score.
    FIRST = "first"
    #: A new ICP version scored the same data differently.
    REVISION = "revision"
    #: The record's own data changed (same ICP version).
    DATA = "data"
    #: A new ICP version, and the record's data changed too.
    REVISION_AND_DATA = "revision+data"
    #: An opportunity carrying its account's fit: the account's fit changed.
    ACCOUNT = "account"

    @property
    def sentence(self) -> str:
        return _SENTENCES[self]


_SENTENCES = {
    ChangeCause.FIRST: "first score",
    ChangeCause.REVISION: "ICP revision",
    ChangeCause.DATA: "the record's data changed",
    ChangeCause.REVISION_AND_DATA: "ICP revision, and the record's data changed",
    ChangeCause.ACCOUNT: "its account's fit changed",
}

Reasons = Sequence[Mapping[str, Any]]


def values_changed(old: Reasons, new: Reasons) -> bool | None:
    """Whether any criterion read a different value (None: the old reasons do not say)."""
    before = {r.get("code"): r for r in old if r.get("status") != "disqualified"}
    unknown = False
    for reason in new:
        if reason.get("status") == "disqualified":
            continue
        previous = before.get(reason.get("code"))
        if previous is None:
            continue  # a criterion the old version did not have
        if "value" not in previous or "value" not in reason:
            unknown = True
            continue
        if previous.get("value") != reason.get("value"):
            return True
    return None if unknown else False


def change_cause(
    *,
    had_fit: bool,
    previous_version: int | None,
    version: int,
    old_reasons: Reasons,
    new_reasons: Reasons,
    carried: bool = False,
) -> ChangeCause:
    """The cause of a change of score or tier, from the previous fit and the new one."""
    if not had_fit:
        return ChangeCause.FIRST
    if carried:
        return ChangeCause.ACCOUNT
    if previous_version is None or previous_version == version:
        return ChangeCause.DATA
    if values_changed(old_reasons, new_reasons):
        return ChangeCause.REVISION_AND_DATA
    return ChangeCause.REVISION


def change_note(old: Mapping[str, Any] | None, new: Mapping[str, Any], version: int) -> str:
    """What changed in one criterion's reason: ", new in ICP v2", ", was 350", ", was missing",
    ", was +12.5 before ICP v2", or "" when the stored reasons cannot tell."""
    if old is None:
        return f", new in ICP v{version}"
    if old.get("status") == "missing":
        return ", was missing"
    if "value" in old and "value" in new:
        if old["value"] != new["value"]:
            return f", was {old['value']}" if old["value"] else ""
    elif _without_points(old.get("text")) != _without_points(new.get("text")):
        return ""
    before = float(old.get("points", 0.0) or 0.0)
    if before == 0.0:
        return f", new in ICP v{version}"
    return f", was {fmt_points(before)} before ICP v{version}"


def _without_points(text: Any) -> str:
    return str(text or "").rsplit(": ", 1)[0]
