"""What a score is made of: :class:`Reason` and :class:`FitResult`, their compact CRM text, and the
number and points formatting every reason sentence uses. Pure, no I/O.

The sentences and the compact text are part of the scoring contract (docs/scoring.md): the compact form
keeps each reason's value (cut with "…" past :data:`MAX_SHOWN_COMPACT` characters), orders the reasons by
points and stays within the CRM field's 255 characters.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Literal, overload

import orjson

from worker.icp.model import DISQUALIFIED, Criterion

__all__ = [
    "MAX_SHOWN",
    "MAX_SHOWN_COMPACT",
    "EncodedReasons",
    "FitResult",
    "Reason",
    "ReasonStatus",
    "brief_of",
    "encoded_or_none",
    "fmt_int",
    "fmt_num",
    "fmt_points",
    "missing_reason",
    "new_fit",
    "new_reason",
    "points_for",
    "points_scale",
    "shorten",
    "status_of",
]

ReasonStatus = Literal["match", "partial", "miss", "missing", "disqualified"]

#: Longest value shown in a reason sentence (longer values are cut with "…").
MAX_SHOWN = 40
#: Longest value shown in the compact CRM text (longer values are cut with "…").
MAX_SHOWN_COMPACT = 24


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a criterion (or disqualifier) gave what it gave.

    ``points`` is on the 0..100 score scale (``100·w·c/Σw``); ``code`` is the criterion or disqualifier key.
    ``brief`` is the fragment used by :meth:`FitResult.compact` (derived from code and points when empty);
    ``value`` is the value as the criterion read it and shows it ("Computer Software", "350", "12M", "yes";
    empty when missing).
    """

    code: str
    credit: float
    points: float
    text: str
    status: ReasonStatus
    brief: str = field(default="", compare=False, repr=False)
    value: str = field(default="", compare=False, repr=False)
    #: ``to_dict`` as JSON text, once it was asked for (``json``): the criteria hand out the same Reason
    #: for the same value, so most records' reasons are encoded once for many records.
    _json: str = field(default="", compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "status": self.status,
            "credit": self.credit,
            "points": self.points,
            "text": self.text,
            "value": self.value,
        }

    def json(self) -> str:
        """``to_dict`` as compact JSON text (as the store encodes it)."""
        text = self._json
        if not text:
            text = orjson.dumps(self.to_dict()).decode()
            object.__setattr__(self, "_json", text)
        return text


@dataclass(frozen=True, slots=True)
class FitResult:
    score: int
    tier: str
    coverage: float
    reasons: tuple[Reason, ...]

    @property
    def disqualified(self) -> bool:
        return self.tier == DISQUALIFIED

    def reasons_json(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.reasons]

    def encoded_reasons(self) -> EncodedReasons:
        """``reasons_json`` as the store holds it: the JSON text (each reason's encoded once), decoded
        only if read."""
        return EncodedReasons("[" + ",".join([r.json() for r in self.reasons]) + "]")

    def compact(self, limit: int = 255) -> str:
        """CRM text of at most ``limit`` characters, most important reasons first.

        ``67 good | industry Computer Software +30; employees 350 +15; country CA +14; revenue 12M +7.5;
        missing: tech_stack``.
        Disqualifiers come first, then criteria by points contributed (descending), then the missing ones.
        When the text does not fit it is cut at a reason boundary and ends with " …".
        """
        parts: list[str] = []  # disqualifiers, then the scored criteria, then the missing ones
        scored: list[Reason] = []
        missing: list[str] | None = None
        for r in self.reasons:
            status = r.status
            if status == "missing":
                if missing is None:
                    missing = [r.code]
                else:
                    missing.append(r.code)
            elif status == "disqualified":
                parts.append(r.brief or f"disqualified: {r.code}")
            else:
                scored.append(r)
        if len(scored) > 1:
            scored.sort(key=_points, reverse=True)  # stable: ties keep the spec's order
        for r in scored:
            parts.append(r.brief or f"{r.code} {fmt_points(r.points)}")
        if missing is not None:
            parts.append("missing: " + ", ".join(missing))
        text = f"{self.score} {self.tier} | {'; '.join(parts)}" if parts else f"{self.score} {self.tier}"
        if len(text) <= limit:
            return text
        head = f"{self.score} {self.tier}"
        if missing is None:
            return _cut(head, parts, [], max(0, int(limit)))
        return _cut(head, parts[: len(parts) - 1], missing, max(0, int(limit)))


_points = attrgetter("points")


class EncodedReasons(Sequence[Mapping[str, Any]]):
    """A fit's reasons as JSON ``text`` (the store's encoding: compact, as ``orjson`` writes it), decoded
    on first use.

    The score phase stores ``text`` as it is: a fit's reasons come from ``FitResult.encoded_reasons``
    (each Reason encoded once, the list joined), and an opportunity carrying its account's fit copies the
    account's stored text (``worker.store.queries.account_fits``) instead of decoding and encoding it
    again. Either way the text is byte for byte what encoding the decoded list gives. Anything that reads
    the reasons gets the decoded list's items; it compares equal to that list.
    """

    __slots__ = ("text", "_items")

    def __init__(self, text: str) -> None:
        self.text = text
        self._items: list[Mapping[str, Any]] | None = None

    def _decoded(self) -> list[Mapping[str, Any]]:
        if self._items is None:
            self._items = orjson.loads(self.text) or []
        return self._items

    @overload
    def __getitem__(self, index: int) -> Mapping[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Mapping[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> Mapping[str, Any] | Sequence[Mapping[str, Any]]:
        return self._decoded()[index]

    def __len__(self) -> int:
        return len(self._decoded())

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        return iter(self._decoded())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EncodedReasons):
            return self.text == other.text or self._decoded() == other._decoded()
        return self._decoded() == other

    __hash__ = None  # type: ignore[assignment]  # a list's equality, so unhashable like a list

    def __repr__(self) -> str:
        return repr(self._decoded())


def encoded_or_none(text: str | None) -> EncodedReasons | None:
    """A stored fit's reasons read as text (None: the column is empty), left encoded until read."""
    return None if text is None else EncodedReasons(text)


def _cut(head: str, parts: list[str], missing: list[str], limit: int) -> str:
    """Greedy fit of whole parts (then whole missing codes) after ``head``; " …" marks the cut."""
    if len(head) > limit:
        return head[:limit]
    out = head
    sep = " | "
    cut = False
    for part in parts:
        if len(out) + len(sep) + len(part) > limit:
            cut = True
            break
        out += sep + part
        sep = "; "
    if missing and not cut:
        piece = sep + "missing: "
        for code in missing:
            if len(out) + len(piece) + len(code) > limit:
                cut = True
                break
            out += piece + code
            piece = ", "
    if cut and len(out) + 2 <= limit:
        out += " …"
    return out


# ------------------------------------------------------------------------------------ fast construction

# Reasons and results are frozen; building them through the slot descriptors skips the frozen-dataclass
# ``__setattr__`` detour (about twice as fast) and gives exactly the objects ``__init__`` would.
_new = object.__new__
_R_FIELDS = ("code", "credit", "points", "text", "status", "brief", "value", "_json")
_R_SET = tuple(getattr(Reason, f).__set__ for f in _R_FIELDS)
_F_SET = tuple(getattr(FitResult, f).__set__ for f in ("score", "tier", "coverage", "reasons"))


def new_reason(
    code: str, credit: float, points: float, text: str, status: ReasonStatus, brief: str, value: str = ""
) -> Reason:
    obj: Reason = _new(Reason)
    for setter, item in zip(_R_SET, (code, credit, points, text, status, brief, value, ""), strict=True):
        setter(obj, item)
    return obj


_set_score, _set_tier, _set_coverage, _set_reasons = _F_SET


def new_fit(score_: int, tier: str, coverage: float, reasons: tuple[Reason, ...]) -> FitResult:
    obj: FitResult = _new(FitResult)
    _set_score(obj, score_)
    _set_tier(obj, tier)
    _set_coverage(obj, coverage)
    _set_reasons(obj, reasons)
    return obj


# ------------------------------------------------------------------------------------------- formatting


def fmt_points(points: float) -> str:
    text = f"{points:.1f}"
    if text.endswith(".0"):
        text = text[:-2]
    if text == "-0":
        text = "0"
    return "+" + text


#: digits of an integer ≥ 1M → (digits before the point, suffix): 12345678 → "12.3M"
_UNIT_BY_DIGITS = {
    n: (n - exp, suffix) for exp, suffix in ((6, "M"), (9, "B"), (12, "T")) for n in range(exp + 1, exp + 4)
}


def fmt_num(x: float | int, *, exact: bool = False) -> str:
    """A short readable number: 350, 1,200, 35,000, 12M, 12.3M, 0.75, 1.23e+30.

    From a million up, a value shows its first three significant digits, cut (never rounded up, so a value
    below a band's bound never looks equal to it); ``exact`` keeps every digit unless nothing is lost.
    """
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        if not x.is_integer():
            return f"{x:,.6g}" if abs(x) < 1e15 else f"{x:.3g}"
        x = int(x)
    return fmt_int(int(x), exact)


def fmt_int(x: int, exact: bool = False) -> str:
    if -10_000 < x < 10_000:
        return str(x)
    ax = -x if x < 0 else x
    if ax < 1_000_000:
        return f"{x:,}"
    if ax >= 10**15:
        return _fmt_huge(x)
    digits = str(ax)
    if exact and digits[3:].strip("0"):
        return f"{x:,}"
    whole, suffix = _UNIT_BY_DIGITS[len(digits)]
    decimals = digits[whole:3].rstrip("0")
    text = digits[:whole] + "." + decimals + suffix if decimals else digits[:whole] + suffix
    return "-" + text if x < 0 else text


def _fmt_huge(x: int) -> str:
    """1e+30, 1.23e+400: three significant digits, cut; exact integer arithmetic (no float overflow)."""
    ax = -x if x < 0 else x
    exponent = int(math.log10(ax))
    head = ax // 10 ** (exponent - 2)
    while head >= 1000:  # log10 can be a hair off at exact powers of ten
        exponent += 1
        head = ax // 10 ** (exponent - 2)
    while head < 100:
        exponent -= 1
        head = ax // 10 ** (exponent - 2)
    mantissa = (str(head)[0] + "." + str(head)[1:]).rstrip("0").rstrip(".")
    return f"{'-' if x < 0 else ''}{mantissa}e+{exponent}"


def shorten(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` if it fits in ``limit`` characters, else cut (at most ``limit``, "…" included)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def status_of(credit: float) -> ReasonStatus:
    if credit >= 1.0:
        return "match"
    if credit > 0.0:
        return "partial"
    return "miss"


def points_scale(weight: float, total_weight: float) -> float:
    """Points per unit of credit for a criterion: ``100·w/Σw``."""
    return 100.0 * weight / total_weight


def points_for(scale: float, credit: float) -> float:
    """Points as stored in a Reason: rounded to 6 decimals, so 14.000000000000002 reads 14.0."""
    return round(scale * credit, 6)


def brief_of(code: str, shown: str, points: float) -> str:
    """The compact fragment of a reason: ``industry Financial Services +12`` (long values cut with "…")."""
    if shown:
        return f"{code} {shorten(shown, MAX_SHOWN_COMPACT)} {fmt_points(points)}"
    return f"{code} {fmt_points(points)}"


def missing_reason(c: Criterion) -> Reason:
    return Reason(c.key, 0.0, 0.0, f"{c.name} missing", "missing", f"missing: {c.key}")
